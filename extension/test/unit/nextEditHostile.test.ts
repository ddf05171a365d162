// A hostile or buggy server against the VS Code next-edit client (docs/security.md, "Surfaces and
// their guards"): each case is named after what it attacks. nextEditView.ts decides; nextEdit.ts
// draws and applies only what these functions let through.
import { describe, expect, it } from "vitest";
import {
  acceptCall, editId, fitsDocument, type InlineEdit, isEditableUri, isSafeText, nextEditCapability, parseEdits, tabAction,
  viewOf,
} from "../../src/nextEditView";

const URI = "file:///w/scale.py";
const CAP = { method: "textDocument/copilotInlineEdit", accept: "vllmCompanion.acceptInlineEdit",
  dismiss: "vllmCompanion.dismissInlineEdit" };
const good: InlineEdit = {
  text: "ratio", range: { start: { line: 1, character: 16 }, end: { line: 1, character: 22 } },
  textDocument: { uri: URI, version: 3 }, command: { title: "Accept", command: CAP.accept, arguments: ["s17"] },
};
const withText = (text: string) => ({ edits: [{ ...good, text }] });
const at = (range: unknown) => ({ edits: [{ ...good, range }] });
const pos = (line: unknown, character: unknown) => ({ line, character });

describe("positions a buggy server may send", () => {
  it.each([
    ["NaN", pos(NaN, 0)], ["negative", pos(-1, 0)], ["float", pos(1.5, 0)], ["string", pos("1", 0)],
    ["null", pos(null, 0)], ["missing", { line: 1 }], ["infinite", pos(Infinity, 0)],
  ])("a %s position is dropped", (_, p) => {
    expect(parseEdits(at({ start: p, end: { line: 1, character: 22 } }))).toEqual([]);
    expect(parseEdits(at({ start: { line: 1, character: 0 }, end: p }))).toEqual([]);
  });

  it("an inverted range is dropped", () => {
    expect(parseEdits(at({ start: pos(1, 22), end: pos(1, 16) }))).toEqual([]);
  });

  // Lines of the document: "def scale(values, ratio):" and "    return [v * factor for v in values]"
  const lines = [25, 39];
  const fits = (sl: number, sc: number, el: number, ec: number) =>
    fitsDocument({ start: pos(sl, sc), end: pos(el, ec) } as InlineEdit["range"], lines.length, (l) => lines[l]);

  it("a range past the last line is refused: VS Code would clamp it and Tab would replace the whole file", () => {
    expect(fits(0, 0, 1_000_000_000, 0)).toBe(false);
    expect(fits(2, 0, 2, 0)).toBe(false);
    const whole = { ...good, range: { start: pos(0, 0), end: pos(1_000_000_000, 0) } } as InlineEdit;
    expect(tabAction(whole, { line: 0, character: 0 }, URI)).toBe("accept"); // why it must never be shown
  });

  it("a range past the end of its line is refused", () => {
    expect(fits(1, 16, 1, 40)).toBe(false);
    expect(fits(0, 26, 0, 26)).toBe(false);
    expect(fits(1, 16, 1, 22)).toBe(true);
    expect(fits(1, 39, 1, 39)).toBe(true);
  });
});

describe("documents an edit may name", () => {
  it.each([
    ["the user's settings.json", "vscode-userdata:/home/me/.config/Code/User/settings.json"],
    ["a command: URI", "command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22rm%22%7D"],
    ["a git: view", "git:/w/scale.py?%7B%22ref%22%3A%22HEAD%22%7D"],
    ["an output channel", "output:extension-output-vllm"],
    ["another machine's file (UNC)", "file://evil-host/share/scale.py"],
    ["a remote file", "vscode-remote://ssh-remote%2Bbox/w/scale.py"],
  ])("an edit for %s is dropped: Tab never opens nor writes it", (_, uri) => {
    expect(isEditableUri(uri)).toBe(false);
    expect(parseEdits({ edits: [{ ...good, textDocument: { uri, version: 1 } }] })).toEqual([]);
  });

  it("files and untitled buffers the client syncs are kept", () => {
    expect(isEditableUri("file:///w/scale.py")).toBe(true);
    expect(isEditableUri("untitled:Untitled-1")).toBe(true);
  });

  it("a malformed escape in another file's name does not throw while drawing the jump hint", () => {
    const other = { ...good, textDocument: { uri: "file:///w/bad%E0%A4%A.py", version: 1 } };
    expect(() => viewOf(other, "factor", pos(0, 0) as never, URI)).not.toThrow();
  });

  it("a bidi override in another file's name cannot disguise the jump hint", () => {
    const other = { ...good, textDocument: { uri: "file:///w/exe%E2%80%AEyp.py", version: 1 } };
    const label = viewOf(other, "factor", { line: 0, character: 0 }, URI).jump?.label ?? "";
    expect(label).not.toContain("\u202e");
    expect(label).toContain("exe?yp.py");
  });
});

describe("text the ghost text would not show truthfully", () => {
  it.each([
    ["a bidi override (Trojan Source)", "ratio\u202e // )llac(nimda"],
    ["a bidi isolate", "ratio\u2066x\u2069"],
    ["an ANSI escape", "ratio\u001b[31m"],
    ["a NUL", "ra\u0000tio"],
    ["a zero-width space", "ra\u200btio"],
    ["a C1 control", "ratio\u009b"],
    ["a line separator", "ratio\u2028"],
    ["a BOM", "\ufeffratio"],
    ["a lone surrogate", "ratio\ud800"],
  ])("text with %s is dropped", (_, text) => {
    expect(isSafeText(text)).toBe(false);
    expect(parseEdits(withText(text))).toEqual([]);
  });

  it("ordinary code with tabs, line ends, accents and astral characters is kept", () => {
    for (const text of ["\tratio\r\n", "déjà_vu = \"😀\"", "a\u200db"]) expect(parseEdits(withText(text))).toHaveLength(1);
  });
});

describe("Markdown in the hover", () => {
  it.each([
    ["a command: link", "[run](command:workbench.action.terminal.new)"],
    ["an image", "![x](https://evil.example/pixel.png)"],
    ["HTML", "<img src=x onerror=alert(1)>"],
    ["a fence breakout", "```\n[run](command:x)\n```"],
  ])("%s stays inside a code fence longer than any backtick run", (_, text) => {
    const hover = viewOf({ ...good, text }, "factor", { line: 1, character: 0 }, URI).hover;
    const [, fence, inner] = hover.match(/\nInserts:\n\n(`{3,})\n([\s\S]*)\n\1$/) ?? [];
    expect(inner).toBe(text); // nothing after the fence: all of it is the inserted text, verbatim
    expect(inner.split("\n").some((line) => line.trimStart().startsWith(fence))).toBe(false);
  });
});

describe("the command run on accept", () => {
  it("is the advertised accept command with the edit's id", () => {
    expect(acceptCall(good, CAP)).toEqual({ command: CAP.accept, arguments: ["s17"] });
  });

  it("an edit naming another command runs nothing", () => {
    for (const command of ["vllmCompanion.dismissInlineEdit", "workbench.action.terminal.sendSequence", "vllmCompanion.edit"]) {
      expect(acceptCall({ ...good, command: { title: "Accept", command, arguments: ["s17"] } }, CAP)).toBeUndefined();
    }
  });

  it("an accept with other arguments runs nothing", () => {
    for (const args of [[], ["s17", { text: "rm -rf ~" }], [{ id: "s17" }], ["x".repeat(10_000)], ["s 17"], undefined]) {
      const edit = { ...good, command: { title: "Accept", command: CAP.accept, arguments: args as unknown[] } };
      expect(acceptCall(edit, CAP)).toBeUndefined();
      expect(editId(edit)).toBeUndefined(); // nor is it echoed in didShowInlineEdit or a dismissal
    }
  });

  it("without the capability nothing runs", () => {
    expect(acceptCall(good, undefined)).toBeUndefined();
  });

  it("a malformed command drops the edit", () => {
    for (const command of [{ command: 1, title: "x" }, { command: "x", title: "x", arguments: "s17" }, null]) {
      expect(parseEdits({ edits: [{ ...good, command }] })).toEqual([]);
    }
  });
});

describe("a spoofed capability", () => {
  it.each([
    ["an empty accept", { ...CAP, accept: "" }],
    ["a URI as the command", { ...CAP, accept: "command:workbench.action.terminal.new" }],
    ["spaces and shell", { ...CAP, dismiss: "x; rm -rf ~" }],
    ["a huge name", { ...CAP, accept: "a".repeat(10_000) }],
    ["accept and dismiss the same", { ...CAP, dismiss: CAP.accept }],
    ["a number", { ...CAP, accept: 1 }],
  ])("%s is not a capability", (_, nextEdit) => {
    expect(nextEditCapability({ vllmCompanion: { nextEdit } })).toBeUndefined();
  });

  it("extra fields are not carried along", () => {
    expect(nextEditCapability({ vllmCompanion: { nextEdit: { ...CAP, run: "x" } } })).toEqual(CAP);
  });
});

describe("many edits", () => {
  it("only the first eight are looked at, however many come", () => {
    const edits = Array.from({ length: 100_000 }, () => ({ text: 1 }));
    edits[9] = good as never;
    expect(parseEdits({ edits })).toEqual([]);
  });

  it("a textDocument that is not an object drops the edit without throwing", () => {
    for (const textDocument of [null, "file:///w/scale.py", 7]) {
      expect(parseEdits({ edits: [{ ...good, textDocument }] })).toEqual([]);
    }
  });
});
