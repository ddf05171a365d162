import { describe, expect, it } from "vitest";
import {
  advance, commonEnds, type InlineEdit, isCurrent, isNoop, MAX_EDIT_CHARS, nextEditCapability, parseEdits, tabAction,
  viewOf,
} from "../../src/nextEditView";

const URI = "file:///w/scale.py";
const edit = (sl: number, sc: number, el: number, ec: number, text: string, version = 3): InlineEdit => ({
  text, range: { start: { line: sl, character: sc }, end: { line: el, character: ec } },
  textDocument: { uri: URI, version }, command: { title: "Accept", command: "vllmCompanion.acceptNextEdit", arguments: ["id-1"] },
});

describe("a rename offered at the next use", () => {
  // def scale(values, ratio):        <- the user renamed factor to ratio here (line 0)
  //     return [v * factor for v in values]   <- the suggestion: line 1, characters 16-22
  const rename = edit(1, 16, 1, 22, "ratio");

  it("away from the cursor: the edit is drawn where it is and a jump hint sits on the cursor's line", () => {
    const view = viewOf(rename, "factor", { line: 0, character: 21 }, URI);
    expect(view.deletion).toEqual({ start: { line: 1, character: 16 }, end: { line: 1, character: 22 } });
    expect(view.insertion).toEqual({ at: { line: 1, character: 22 }, text: "ratio", more: 0 });
    expect(view.jump?.line).toBe(0);
    expect(view.jump?.target).toEqual({ line: 1, character: 16 });
    expect(view.jump?.label).toContain("↓ Tab: jump to the suggested edit (line 2)");
    expect(tabAction(rename, { line: 0, character: 21 }, URI)).toBe("jump");
  });

  it("on the cursor's line: no jump hint, Tab accepts", () => {
    const view = viewOf(rename, "factor", { line: 1, character: 0 }, URI);
    expect(view.jump).toBeUndefined();
    expect(tabAction(rename, { line: 1, character: 0 }, URI)).toBe("accept");
  });

  it("above the cursor: the hint points up", () => {
    expect(viewOf(rename, "factor", { line: 5, character: 0 }, URI).jump?.label).toContain("↑");
  });
});

describe("an edit in another open file (edit propagation looks there too)", () => {
  const other = { ...edit(4, 0, 4, 6, "ratio"), textDocument: { uri: "file:///w/use%20it.py", version: 2 } };

  it("shows only the jump hint here, naming the file; Tab jumps even from the same line number", () => {
    const view = viewOf(other, "factor", { line: 4, character: 0 }, URI);
    expect(view.deletion).toBeUndefined();
    expect(view.insertion).toBeUndefined();
    expect(view.jump?.label).toContain("→ Tab: jump to the suggested edit (use it.py:5)");
    expect(isNoop(view)).toBe(false);
    expect(tabAction(other, { line: 4, character: 0 }, URI)).toBe("jump");
  });

  it("is drawn in full once its file is the one with the cursor", () => {
    const view = viewOf(other, "factor", { line: 4, character: 0 }, "file:///w/use%20it.py");
    expect(view.jump).toBeUndefined();
    expect(view.insertion?.text).toBe("ratio");
  });

  it("that changes nothing is not shown either", () => {
    expect(isNoop(viewOf({ ...other, text: "factor" }, "factor", { line: 0, character: 0 }, URI))).toBe(true);
  });
});

describe("only what changes is drawn", () => {
  it("a common prefix and suffix are neither struck nor repeated", () => {
    const view = viewOf(edit(2, 4, 2, 15, "grand_total(x)"), "total(x)", { line: 2, character: 0 }, URI);
    expect(view.deletion).toBeUndefined(); // "total(x)" stays: an insertion of "grand_" at 4
    expect(view.insertion).toEqual({ at: { line: 2, character: 4 }, text: "grand_", more: 0 });
  });

  it("a deletion is struck through with nothing inserted", () => {
    const view = viewOf(edit(0, 0, 1, 0, ""), "import os\n", { line: 0, character: 0 }, URI);
    expect(view.deletion).toEqual({ start: { line: 0, character: 0 }, end: { line: 1, character: 0 } });
    expect(view.insertion).toBeUndefined();
    expect(view.hover).toContain("Removes:");
  });

  it("an insertion of lines shows its first line and how many follow; the hover has them all", () => {
    const view = viewOf(edit(3, 8, 3, 8, "\n        self.y = y\n        self.z = z"), "", { line: 3, character: 8 }, URI);
    expect(view.insertion).toEqual({ at: { line: 3, character: 8 }, text: "⏎         self.y = y", more: 1 });
    expect(view.hover).toContain("self.z = z");
  });

  it("an edit that changes nothing is not shown", () => {
    expect(isNoop(viewOf(edit(0, 0, 0, 3, "abc"), "abc", { line: 0, character: 0 }, URI))).toBe(true);
    expect(isNoop(viewOf(edit(0, 0, 0, 3, "abd"), "abc", { line: 0, character: 0 }, URI))).toBe(false);
  });

  it("never splits a surrogate pair (astral characters are two UTF-16 units)", () => {
    const [p] = commonEnds("x\u{1F600}", "x\u{1F601}");
    expect(p).toBe(1); // not 2: both emoji share their high surrogate
    const [, s] = commonEnds("\u{1F600}a", "\u{1FA00}a"); // D83D DE00 vs D83E DE00: same low half
    expect(s).toBe(1); // not 2
  });

  it("positions advance over line breaks in UTF-16 units", () => {
    expect(advance({ line: 4, character: 7 }, "ab", 2)).toEqual({ line: 4, character: 9 });
    expect(advance({ line: 4, character: 7 }, "ab\n\u{1F600}c", 6)).toEqual({ line: 5, character: 3 });
  });

  it("a code fence in the hover is longer than any backtick run in the text", () => {
    expect(viewOf(edit(0, 0, 0, 0, "```js"), "", { line: 0, character: 0 }, URI).hover).toContain("````\n```js\n````");
  });
});

describe("the server's answer", () => {
  it("keeps well-formed edits and drops the rest", () => {
    const good = edit(1, 16, 1, 22, "ratio");
    const answer = { edits: [good, { text: 1 }, { ...good, range: { start: { line: 2, character: 0 }, end: { line: 1, character: 0 } } },
      { ...good, text: "x".repeat(MAX_EDIT_CHARS + 1) }, { ...good, textDocument: { uri: URI } }] };
    expect(parseEdits(answer)).toEqual([good]);
    expect(parseEdits(null)).toEqual([]);
    expect(parseEdits({ edits: "no" })).toEqual([]);
  });

  it("answers one version of one document: typing on drops it", () => {
    const e = edit(1, 16, 1, 22, "ratio", 7);
    expect(isCurrent(e, URI, 7)).toBe(true);
    expect(isCurrent(e, URI, 8)).toBe(false);
    expect(isCurrent(e, "file:///w/other.py", 7)).toBe(false);
  });
});

describe("the server's capability", () => {
  const nextEdit = { method: "textDocument/copilotInlineEdit", accept: "vllmCompanion.acceptInlineEdit",
    dismiss: "vllmCompanion.dismissInlineEdit" };

  it("is read from initialize's experimental.vllmCompanion.nextEdit", () => {
    expect(nextEditCapability({ vllmCompanion: { prompts: true, nextEdit } })).toEqual(nextEdit);
  });

  it("is absent from a server that does not advertise it: nothing is asked", () => {
    expect(nextEditCapability(undefined)).toBeUndefined();
    expect(nextEditCapability({ vllmCompanion: { prompts: true } })).toBeUndefined();
    expect(nextEditCapability({ vllmCompanion: { nextEdit: { ...nextEdit, method: "other/method" } } })).toBeUndefined();
  });
});
