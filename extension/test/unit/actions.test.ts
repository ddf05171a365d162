import { describe, expect, it } from "vitest";
import { actionArgs, readCatalog, withInstruction } from "../../src/actions";

describe("the server's action catalog", () => {
  it("is read from initialize's experimental capabilities, malformed entries dropped", () => {
    const experimental = {
      vllmCompanion: {
        actions: [
          { command: "a.explain", title: "Explain", mode: "chat", instruction: "Explain.", kind: "refactor.rewrite" },
          { command: "a.edit", title: "Edit", mode: "edit", instruction: null, kind: "refactor.rewrite" },
          { command: 5, title: "bad" },
          { command: "a.x", title: "X", mode: "delete" },
        ],
      },
    };
    expect(readCatalog(experimental).map((a) => a.command)).toEqual(["a.explain", "a.edit"]);
    expect(readCatalog(undefined)).toEqual([]);
    expect(readCatalog({ vllmCompanion: { actions: "nope" } })).toEqual([]);
  });

  it("takes [uri, range] from a code action, else the active selection", () => {
    const range = { start: { line: 0, character: 0 }, end: { line: 1, character: 2 } };
    expect(actionArgs(["file:///a.py", range], undefined)).toEqual(["file:///a.py", range]);
    expect(actionArgs([{ path: "/a.py" }], { uri: "file:///b.py", range })).toEqual(["file:///b.py", range]);
    expect(actionArgs([], undefined)).toBeUndefined();
  });

  it("keeps the document version and opening a code action carries, with the instruction third", () => {
    const range = { start: { line: 0, character: 0 }, end: { line: 1, character: 2 } };
    const fromCodeAction = actionArgs(["file:///a.py", range, null, 7, 3, "extra"], undefined) as unknown[];
    expect(fromCodeAction).toEqual(["file:///a.py", range, null, 7, 3]);
    expect(withInstruction(fromCodeAction, "rename x")).toEqual(["file:///a.py", range, "rename x", 7, 3]);
    expect(withInstruction(["file:///b.py", range], "rename x")).toEqual(["file:///b.py", range, "rename x"]);
  });
});
