// The chat panel's conversations (conversations.ts) over a real HistoryStore on disk.
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Conversations, excludedFrom } from "../../src/conversations";
import { HistoryStore } from "../../src/history";

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "vllm-convo-"));
});
afterEach(async () => fs.rm(dir, { recursive: true, force: true }));
const name = (uri: string) => uri.replace("file:///ws/", "");

describe("Conversations", () => {
  it("stores each question with the files sent and those left out, and reopens the newest", async () => {
    const chats = new Conversations(new HistoryStore(dir));
    await chats.load();
    const q = chats.ask("what does main do?", ["main.py", ".env"]);
    await chats.answered(q, { content: "It starts.", excludedContext: ["file:///ws/.env"], excludedWhy: { "file:///ws/.env": "secret file" } }, name);
    expect(chats.messages()).toEqual([{ role: "user", content: "what does main do?" }, { role: "assistant", content: "It starts." }]);

    const again = new Conversations(new HistoryStore(dir));
    await again.load();
    expect(again.current.title).toBe("what does main do?");
    expect(again.current.turns[0]).toEqual({
      role: "user", content: "what does main do?", attached: ["main.py"], excluded: [{ name: ".env", why: "secret file" }],
    });
    const text = await fs.readFile(path.join(dir, "chat-history.json"), "utf8");
    expect(text).not.toContain("file:///"); // names, never the files' text or URIs
  });

  it("New chat keeps the last conversation in the history; Clear removes them all", async () => {
    const chats = new Conversations(new HistoryStore(dir));
    await chats.answered(chats.ask("one", []), { content: "1" }, name);
    await chats.newChat();
    expect(chats.current.turns).toEqual([]);
    await chats.answered(chats.ask("two", []), { content: "2" }, name);
    expect(chats.list().map((c) => c.title)).toEqual(["two", "one"]);
    const first = chats.list()[1].id;
    expect(chats.open(first)).toBe(true);
    expect(chats.current.title).toBe("one");
    await chats.clear();
    expect(chats.list()).toEqual([]);
    expect(await new HistoryStore(dir).load()).toEqual([]);
  });

  it("a failed write is reported, not thrown", async () => {
    const file = path.join(dir, "not-a-folder");
    await fs.writeFile(file, "x");
    const errors: string[] = [];
    const chats = new Conversations(new HistoryStore(file), (m) => errors.push(m));
    await chats.answered(chats.ask("q", []), { content: "a" }, name);
    expect(errors[0]).toContain("could not save the chat history");
  });
});

describe("excludedFrom", () => {
  it("reads only strings from a hostile answer, at most 32", () => {
    const uris = Array.from({ length: 100 }, (_, i) => `file:///ws/f${i}`);
    expect(excludedFrom({ excludedContext: [...uris, 5], excludedWhy: { "file:///ws/f0": 7 } }, name)).toHaveLength(32);
    expect(excludedFrom({ excludedContext: "x", excludedWhy: null }, name)).toEqual([]);
    expect(excludedFrom({ excludedContext: ["file:///ws/f0"], excludedWhy: { "file:///ws/f0": 7 } }, name)).toEqual([{ name: "f0", why: "left out" }]);
  });
});
