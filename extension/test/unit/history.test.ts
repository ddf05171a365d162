// Chat history storage (history.ts): bounds on write and read, 0600, corrupt files ignored,
// clear; and the adversarial cases (a planted symlink, an oversize file, garbage), on a real disk.
import { execFileSync } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type Conversation, FILE_NAME, HistoryStore, MAX_CONVERSATION_BYTES, MAX_CONVERSATIONS, MAX_FILE_BYTES, MAX_TURN_CHARS,
} from "../../src/history";

let root: string;
let dir: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "vllm-history-"));
  dir = path.join(root, "workspaceStorage", "abc123", "vllm-companion.vllm-companion"); // not there yet
});
afterEach(async () => fs.rm(root, { recursive: true, force: true }));

const convo = (i: number, turns = 2, text = "question"): Conversation => ({
  id: `c${i}`, title: `t${i}`, updated: 1_000 + i,
  turns: Array.from({ length: turns }, (_, k) => ({ role: k % 2 ? "assistant" : "user", content: `${text} ${k}` })),
});

describe("HistoryStore", () => {
  it("creates VS Code's storage folder and writes a 0600 file in a 0700 folder", async () => {
    const store = new HistoryStore(dir);
    expect(await store.save([convo(1)])).toBe(true);
    expect((await fs.stat(path.join(dir, FILE_NAME))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(dir)).mode & 0o077).toBe(0);
    expect(await store.load()).toEqual([{ ...convo(1), turns: convo(1).turns }]);
    expect((await fs.readdir(dir)).filter((n) => n !== FILE_NAME)).toEqual([]); // no temp file left
  });

  it("keeps the newest conversations only", async () => {
    const store = new HistoryStore(dir);
    await store.save(Array.from({ length: MAX_CONVERSATIONS + 10 }, (_, i) => convo(i)));
    const loaded = await store.load();
    expect(loaded).toHaveLength(MAX_CONVERSATIONS);
    expect(loaded[0].id).toBe(`c${MAX_CONVERSATIONS + 9}`);
  });

  it("caps each conversation in bytes, dropping its oldest turns, and each turn in characters", async () => {
    const store = new HistoryStore(dir);
    const long = convo(1, 200, "x".repeat(2_000));
    long.turns.push({ role: "user", content: "y".repeat(MAX_TURN_CHARS * 3) });
    await store.save([long]);
    const [loaded] = await store.load();
    expect(Buffer.byteLength(JSON.stringify(loaded.turns))).toBeLessThanOrEqual(MAX_CONVERSATION_BYTES);
    expect(loaded.turns.at(-1)?.content.length).toBe(MAX_TURN_CHARS + 1);
    expect(loaded.turns.length).toBeLessThan(200);
  });

  it("without a workspace stores nothing", async () => {
    const store = new HistoryStore(undefined);
    expect(await store.save([convo(1)])).toBe(false);
    expect(await store.load()).toEqual([]);
  });

  it("clear removes the file", async () => {
    const store = new HistoryStore(dir);
    await store.save([convo(1)]);
    await store.clear();
    expect(await store.load()).toEqual([]);
    await expect(fs.stat(path.join(dir, FILE_NAME))).rejects.toThrow();
  });

  it("keeps what fits the shape and drops the rest", async () => {
    await fs.mkdir(dir, { recursive: true });
    const data = { version: 1, conversations: [convo(1), { id: 5 }, "x", { id: "c2", turns: [{ role: "system", content: "s" }, { role: "user", content: "ok", attached: ["a.py", 3] }] }] };
    await fs.writeFile(path.join(dir, FILE_NAME), JSON.stringify(data));
    const loaded = await new HistoryStore(dir).load();
    expect(loaded.map((c) => c.id)).toEqual(["c1", "c2"]);
    expect(loaded[1].turns).toEqual([{ role: "user", content: "ok", attached: ["a.py"] }]);
  });
});

describe("the history file, attacked", () => {
  it("a symlinked history file is refused on read and replaced, not written through, on save", async () => {
    await fs.mkdir(dir, { recursive: true });
    const target = path.join(root, "victim.json");
    await fs.writeFile(target, JSON.stringify({ version: 1, conversations: [convo(9)] }));
    await fs.symlink(target, path.join(dir, FILE_NAME));
    const store = new HistoryStore(dir);
    expect(await store.load()).toEqual([]);
    await store.save([convo(1)]);
    expect(JSON.parse(await fs.readFile(target, "utf8")).conversations[0].id).toBe("c9"); // untouched
    expect((await fs.lstat(path.join(dir, FILE_NAME))).isSymbolicLink()).toBe(false);
    await store.clear();
    expect(await fs.readFile(target, "utf8")).toContain("c9"); // clear removed the link's name only
  });

  it("an oversize file is ignored without being read", async () => {
    await fs.mkdir(dir, { recursive: true });
    const big = JSON.stringify({ version: 1, conversations: [{ ...convo(1), title: "z".repeat(MAX_FILE_BYTES) }] });
    await fs.writeFile(path.join(dir, FILE_NAME), big);
    expect(await new HistoryStore(dir).load()).toEqual([]);
  });

  it("garbage, a folder, a FIFO, deep nesting and other versions load as no history", async () => {
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, FILE_NAME);
    for (const body of ["\u0000\u00ff garbage", "null", "[]", '{"version": 2, "conversations": []}', "[".repeat(100_000)]) {
      await fs.writeFile(file, body);
      expect(await new HistoryStore(dir).load()).toEqual([]);
    }
    await fs.rm(file);
    execFileSync("mkfifo", [file]); // opening a FIFO for reading would block without a writer
    expect(await new HistoryStore(dir).load()).toEqual([]);
    await fs.rm(file);
    await fs.mkdir(file);
    expect(await new HistoryStore(dir).load()).toEqual([]);
  });

  it("a storage folder that is a file is an error the caller reports, not a crash", async () => {
    await fs.mkdir(path.dirname(dir), { recursive: true });
    await fs.writeFile(dir, "not a folder");
    await expect(new HistoryStore(dir).save([convo(1)])).rejects.toThrow();
  });
});
