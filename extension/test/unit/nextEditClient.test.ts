// The next-edit client (nextEdit.ts) against a hostile server, with the vscode API mocked: open
// documents with versions, one editor, commands and the language client's requests recorded. Each
// case is named after what it attacks (docs/security.md, "Surfaces and their guards").
import { beforeEach, describe, expect, it, vi } from "vitest";

class Position {
  constructor(readonly line: number, readonly character: number) {}
}
class Range {
  constructor(readonly start: Position, readonly end: Position) {}
  isEqual(o: Range): boolean {
    return [this.start.line, this.start.character, this.end.line, this.end.character].join()
      === [o.start.line, o.start.character, o.end.line, o.end.character].join();
  }
}
class Selection extends Range {
  get active(): Position { return this.end; }
}

class Doc {
  isClosed = false;
  constructor(readonly uri: { scheme: string; toString(): string }, public version: number, public lines: string[]) {}
  get lineCount() { return this.lines.length; }
  lineAt(i: number) {
    const line = Math.min(i, this.lines.length - 1);
    return { text: this.lines[line], range: { end: new Position(line, this.lines[line].length) } };
  }
  private clamp(p: Position): Position {
    const line = Math.min(p.line, this.lines.length - 1);
    return new Position(line, Math.min(p.character, this.lines[line].length));
  }
  validateRange(r: Range) { return new Range(this.clamp(r.start), this.clamp(r.end)); }
  offsetAt(p: Position) { return this.lines.slice(0, p.line).join("\n").length + (p.line ? 1 : 0) + p.character; }
  positionAt(o: number) { return advance(this.lines.join("\n").slice(0, o)); }
  getText(r: Range) {
    const v = this.validateRange(r);
    return this.lines.join("\n").slice(this.offsetAt(v.start), this.offsetAt(v.end));
  }
}
function advance(head: string): Position {
  const parts = head.split("\n");
  return new Position(parts.length - 1, parts[parts.length - 1].length);
}
const uri = (s: string) => ({ scheme: s.slice(0, s.indexOf(":")), toString: () => s });

const state = vi.hoisted(() => ({
  docs: [] as unknown[], active: undefined as unknown, commands: new Map<string, () => unknown>(),
  executed: [] as unknown[][], shown: [] as unknown[], settings: {} as Record<string, unknown>,
}));

vi.mock("vscode", () => ({
  Position, Range, Selection,
  ThemeColor: class {},
  MarkdownString: class { constructor(readonly value: string) {} },
  OverviewRulerLane: { Center: 2 },
  TextEditorRevealType: { InCenterIfOutsideViewport: 2 },
  CancellationTokenSource: class {
    token = { isCancellationRequested: false };
    cancel() { this.token.isCancellationRequested = true; }
    dispose() {}
  },
  window: {
    get activeTextEditor() { return state.active; },
    createTextEditorDecorationType: () => ({ dispose() {} }),
    showTextDocument: async (doc: unknown) => { state.shown.push(doc); return state.active; },
    onDidChangeTextEditorSelection: () => ({ dispose() {} }),
    onDidChangeActiveTextEditor: () => ({ dispose() {} }),
  },
  workspace: {
    get textDocuments() { return state.docs; },
    getConfiguration: () => ({ get: (k: string) => state.settings[k], inspect: () => ({}) }),
    onDidChangeTextDocument: () => ({ dispose() {} }),
  },
  commands: {
    registerCommand: (id: string, f: () => unknown) => { state.commands.set(id, f); return { dispose() {} }; },
    executeCommand: async (...args: unknown[]) => { state.executed.push(args); },
  },
}));

const { NextEdits } = await import("../../src/nextEdit");

const CAP = { method: "textDocument/copilotInlineEdit", accept: "vllmCompanion.acceptInlineEdit",
  dismiss: "vllmCompanion.dismissInlineEdit" };
const HERE = "file:///w/scale.py";

function setup(answer: (params: unknown) => unknown) {
  const doc = new Doc(uri(HERE), 3, ["def scale(values, ratio):", "    return [v * factor for v in values]"]);
  const editor = {
    document: doc, selection: new Selection(new Position(1, 0), new Position(1, 0)),
    setDecorations: vi.fn(), revealRange: vi.fn(),
    edit: vi.fn(async (f: (b: { replace: (r: Range, t: string) => void }) => void) => {
      f({ replace: (r, t) => {
        const all = doc.lines.join("\n");
        doc.lines = (all.slice(0, doc.offsetAt(r.start)) + t + all.slice(doc.offsetAt(r.end))).split("\n");
        doc.version += 1;
      } });
      return true;
    }),
  };
  state.docs = [doc];
  state.active = editor;
  const requests: [string, unknown][] = [];
  const client = {
    initializeResult: { capabilities: { experimental: { vllmCompanion: { nextEdit: CAP } } } },
    sendRequest: vi.fn(async (method: string, params: unknown) => {
      requests.push([method, params]);
      return method === "textDocument/copilotInlineEdit" ? answer(params) : null;
    }),
    sendNotification: vi.fn(async () => undefined),
  };
  const log = { debug: vi.fn() };
  const edits = new NextEdits(() => client as never, { active: () => false }, log as never);
  edits.register();
  const tab = () => state.commands.get("vllmCompanion.nextEdit.tab")!() as Promise<void>;
  return { doc, editor, requests, edits, tab };
}

const edit = (over: Record<string, unknown> = {}) => ({
  text: "ratio", range: { start: { line: 1, character: 16 }, end: { line: 1, character: 22 } },
  textDocument: { uri: HERE, version: 3 },
  command: { title: "Accept", command: CAP.accept, arguments: ["s17"] }, ...over,
});
const visible = () => state.executed.some((a) => a[0] === "setContext" && a[2] === true);

beforeEach(() => {
  state.docs = []; state.active = undefined; state.commands.clear(); state.executed = []; state.shown = [];
  state.settings = {};
});

describe("paused suggestions", () => {
  it("while completion.enabled is off (paused) no automatic ask goes out; the command still asks", async () => {
    state.settings["completion.enabled"] = false;
    const s = setup(() => ({ edits: [edit()] }));
    await s.edits.request();
    expect(s.requests).toEqual([]);
    await state.commands.get("vllmCompanion.nextEdit.suggest")!();
    expect(s.requests.map(([m]) => m)).toEqual(["textDocument/copilotInlineEdit"]);
  });
});

describe("Tab accepting a hostile edit", () => {
  it("an edit naming another command: Tab applies the text but sends no other command", async () => {
    const s = setup(() => ({ edits: [edit({ command: { title: "x", command: "vllmCompanion.edit", arguments: [{ uri: HERE }] } })] }));
    await s.edits.request();
    await s.tab();
    expect(s.doc.lines[1]).toBe("    return [v * ratio for v in values]");
    expect(s.requests.filter(([m]) => m === "workspace/executeCommand")).toEqual([]);
  });

  it("the advertised accept command is still sent with the edit's id (what the server counts)", async () => {
    const s = setup(() => ({ edits: [edit()] }));
    await s.edits.request();
    await s.tab();
    expect(s.requests.filter(([m]) => m === "workspace/executeCommand"))
      .toEqual([["workspace/executeCommand", { command: CAP.accept, arguments: ["s17"] }]]);
  });

  it("a keystroke between show and Tab: Tab applies nothing to the changed document", async () => {
    const s = setup(() => ({ edits: [edit()] }));
    await s.edits.request();
    expect(visible()).toBe(true);
    s.doc.version += 1; // the user typed (the change event may not have reached us yet)
    await s.tab();
    expect(s.editor.edit).not.toHaveBeenCalled();
  });
});

describe("what a hostile edit may name", () => {
  it("a range running past the document is never shown, so Tab cannot replace the whole file", async () => {
    const s = setup(() => ({ edits: [edit({ range: { start: { line: 0, character: 0 }, end: { line: 1_000_000_000, character: 0 } } })] }));
    await s.edits.request();
    expect(visible()).toBe(false);
    await s.tab();
    expect(s.editor.edit).not.toHaveBeenCalled();
  });

  it("the user's settings.json open in the background (vscode-userdata:) is never jumped to nor written", async () => {
    const s = setup(() => ({ edits: [edit({ text: "\"vllmCompanion.serverCommand\": [\"sh\"],",
      range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
      textDocument: { uri: "vscode-userdata:/home/me/.config/Code/User/settings.json", version: 1 } })] }));
    state.docs.push(new Doc(uri("vscode-userdata:/home/me/.config/Code/User/settings.json"), 1, ["{", "}"]));
    await s.edits.request();
    expect(visible()).toBe(false);
    await s.tab();
    expect(state.shown).toEqual([]);
    expect(s.editor.edit).not.toHaveBeenCalled();
  });

  it("an edit with a bidi override is never shown", async () => {
    const s = setup(() => ({ edits: [edit({ text: "ratio\u202e" })] }));
    await s.edits.request();
    expect(visible()).toBe(false);
  });
});
