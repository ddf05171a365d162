import { describe, expect, it } from "vitest";
import {
  ACCEPT,
  EditPreviews,
  PROPOSAL_SCHEME,
  REJECT,
  type VscodeApi,
  proposalFromResult,
  wantsPreview,
} from "../../src/diff";

// The vscode API, mocked: documents with versions, a diff editor that opens tabs, notifications.
class FakeUri {
  constructor(readonly scheme: string, readonly path: string, private readonly text: string) {}
  toString(): string {
    return this.text;
  }
}
const parse = (s: string) => new FakeUri(s.split(":")[0], s.replace(/^[a-z-]+:\/\//, "").replace(/^[a-z-]+:/, ""), s);
class Position {
  constructor(readonly line: number, readonly character: number) {}
}
class Range {
  constructor(readonly start: Position, readonly end: Position) {}
}
class WorkspaceEdit {
  readonly edits: Array<{ uri: FakeUri; range: Range; text: string }> = [];
  replace(uri: FakeUri, range: Range, text: string): void {
    this.edits.push({ uri, range, text });
  }
}
class FakeDoc {
  constructor(readonly uri: FakeUri, public text: string, public version = 1) {}
  getText(): string {
    return this.text;
  }
  offsetAt(p: Position): number {
    const lines = this.text.split("\n");
    let off = 0;
    for (let i = 0; i < Math.min(p.line, lines.length); i++) off += lines[i].length + 1;
    return Math.min(off + (p.line < lines.length ? Math.min(p.character, lines[p.line].length) : 0), this.text.length);
  }
}

function fakeVscode(text: string, choice?: string | Promise<string | undefined>) {
  const doc = new FakeDoc(parse("file:///p/a.py"), text, 7);
  const tabs: Array<{ input: { original: FakeUri; modified: FakeUri } }> = [];
  const handlers: Record<string, (...a: unknown[]) => unknown> = {};
  const warnings: string[] = [];
  const applied: WorkspaceEdit[] = [];
  const providers: Record<string, { provideTextDocumentContent(uri: FakeUri): string }> = {};
  const state = { applyOk: true, contexts: [] as unknown[] };
  const api = {
    Uri: { parse, from: (c: { scheme: string; path: string; query: string }) => new FakeUri(c.scheme, c.path, `${c.scheme}:${c.path}?${c.query}`) },
    Position,
    Range,
    WorkspaceEdit,
    workspace: {
      textDocuments: [doc],
      openTextDocument: async (uri: FakeUri) => (uri.toString() === doc.uri.toString() ? doc : Promise.reject(new Error("no such file"))),
      applyEdit: async (edit: WorkspaceEdit) => {
        applied.push(edit);
        if (!state.applyOk) return false;
        for (const e of edit.edits) {
          doc.text = doc.text.slice(0, doc.offsetAt(e.range.start)) + e.text + doc.text.slice(doc.offsetAt(e.range.end));
        }
        doc.version++;
        return true;
      },
      registerTextDocumentContentProvider: (scheme: string, p: { provideTextDocumentContent(uri: FakeUri): string }) => {
        providers[scheme] = p;
        return { dispose: () => undefined };
      },
    },
    window: {
      showInformationMessage: async () => choice,
      showWarningMessage: async (m: string) => void warnings.push(m),
      tabGroups: {
        get all() {
          return [{ tabs: [...tabs] }];
        },
        close: async (closing: typeof tabs) => {
          for (const t of closing) tabs.splice(tabs.indexOf(t), 1);
          return true;
        },
      },
    },
    commands: {
      executeCommand: async (id: string, ...args: unknown[]) => {
        if (id === "vscode.diff") tabs.push({ input: { original: args[0] as FakeUri, modified: args[1] as FakeUri } });
        if (id === "setContext") state.contexts.push(args[1]);
      },
      registerCommand: (id: string, fn: (...a: unknown[]) => unknown) => {
        handlers[id] = fn;
        return { dispose: () => undefined };
      },
    },
  };
  return { api: api as unknown as VscodeApi, doc, tabs, handlers, warnings, applied, providers, state };
}

const TEXT = "def double(x):\n    return x + x\n\nprint(double(2))\n";
const RANGE = { start: { line: 0, character: 0 }, end: { line: 1, character: 16 } };
const NEW = "def double(x):\n    return x * 2";
const serverResult = (version: number | null) => ({
  content: "...",
  finishReason: "stop",
  applied: false,
  preview: true,
  edit: { documentChanges: [{ textDocument: { uri: "file:///p/a.py", version }, edits: [{ range: RANGE, newText: NEW }] }] },
});

describe("the server's edit result", () => {
  it("becomes a proposal when it is one versioned text edit", () => {
    expect(wantsPreview(serverResult(7))).toBe(true);
    expect(wantsPreview({ applied: true })).toBe(false);
    expect(wantsPreview({ ...serverResult(7), finishReason: "length" })).toBe(false); // cut by the token cap
    expect(proposalFromResult(serverResult(7), "Fix")).toEqual({ uri: "file:///p/a.py", version: 7, range: RANGE, newText: NEW, title: "Fix" });
    expect(proposalFromResult(serverResult(null), "Fix")?.version).toBeNull();
    expect(proposalFromResult({ edit: { documentChanges: [] } }, "Fix")).toBeUndefined();
    expect(proposalFromResult({ edit: { documentChanges: [{ textDocument: { uri: 1 }, edits: [] }] } }, "Fix")).toBeUndefined();
    expect(proposalFromResult(undefined, "Fix")).toBeUndefined();
  });
});

describe("the diff before an edit lands", () => {
  it("opens the document against the proposed text; Accept applies the edit", async () => {
    let click: (choice: string) => void = () => undefined;
    const v = fakeVscode(TEXT, new Promise((resolve) => (click = resolve)));
    const previews = new EditPreviews(v.api);
    const { key, choice } = await previews.propose(proposalFromResult(serverResult(7), "Fix")!);
    expect(v.tabs).toHaveLength(1);
    expect(v.tabs[0].input.original).toBe(v.doc.uri);
    expect(v.tabs[0].input.modified.scheme).toBe(PROPOSAL_SCHEME);
    expect(v.tabs[0].input.modified.toString()).toBe(key);
    expect(v.providers[PROPOSAL_SCHEME].provideTextDocumentContent(v.tabs[0].input.modified)).toBe(
      "def double(x):\n    return x * 2\n\nprint(double(2))\n",
    );
    expect(v.doc.text).toBe(TEXT); // nothing lands before the user accepts
    click("Accept");
    expect(await choice).toBe("accepted");
    expect(v.doc.text).toBe("def double(x):\n    return x * 2\n\nprint(double(2))\n");
    expect(v.tabs).toHaveLength(0);
    expect(previews.keys()).toEqual([]);
    expect(v.state.contexts).toEqual([true, false]);
  });

  it("Reject discards it", async () => {
    const v = fakeVscode(TEXT, "Reject");
    const previews = new EditPreviews(v.api);
    const { choice } = await previews.propose(proposalFromResult(serverResult(7), "Fix")!);
    expect(await choice).toBe("rejected");
    expect(v.applied).toEqual([]);
    expect(v.doc.text).toBe(TEXT);
    expect(v.tabs).toHaveLength(0);
  });

  it("Accept is refused, with a message, when the document moved on", async () => {
    const v = fakeVscode(TEXT);
    const previews = new EditPreviews(v.api);
    const { choice } = await previews.propose(proposalFromResult(serverResult(7), "Fix")!);
    expect(await choice).toBe("pending"); // notification dismissed: the title buttons decide
    v.doc.text = "# typed\n" + v.doc.text;
    v.doc.version++;
    expect(await v.handlers[ACCEPT]()).toBe("stale");
    expect(v.applied).toEqual([]);
    expect(v.doc.text).toBe("# typed\n" + TEXT);
    expect(v.warnings[0]).toContain("a.py changed since the edit was proposed; nothing was applied");
    expect(v.tabs).toHaveLength(0);
  });

  it("is not opened when the document changed while the model wrote", async () => {
    const v = fakeVscode(TEXT, "Accept");
    const previews = new EditPreviews(v.api);
    const { key, choice } = await previews.propose(proposalFromResult(serverResult(6), "Fix")!);
    expect(key).toBeUndefined();
    expect(await choice).toBe("stale");
    expect(v.tabs).toHaveLength(0);
    expect(v.applied).toEqual([]);
  });

  it("reports VS Code refusing the edit (the document changed as it applied)", async () => {
    const v = fakeVscode(TEXT);
    v.state.applyOk = false;
    const previews = new EditPreviews(v.api);
    await previews.propose(proposalFromResult(serverResult(7), "Fix")!);
    expect(await previews.accept()).toBe("stale");
    expect(v.warnings).toHaveLength(1);
  });

  it("the title buttons act on their own diff; chat's Apply inserts at an empty selection", async () => {
    const v = fakeVscode(TEXT);
    const previews = new EditPreviews(v.api);
    const first = await previews.propose(proposalFromResult(serverResult(7), "Fix")!);
    const at = { line: 2, character: 0 };
    const second = await previews.propose({ uri: "file:///p/a.py", version: 7, range: { start: at, end: at }, newText: "# hi\n", title: "Apply from chat" });
    expect(v.tabs).toHaveLength(2);
    expect(v.providers[PROPOSAL_SCHEME].provideTextDocumentContent(v.tabs[1].input.modified)).toBe(
      "def double(x):\n    return x + x\n# hi\n\nprint(double(2))\n",
    );
    expect(await v.handlers[REJECT](v.tabs[0].input.modified)).toBe("rejected"); // the Fix diff
    expect(previews.keys()).toEqual([second.key]);
    expect(await v.handlers[ACCEPT](v.tabs[0].input.modified)).toBe("accepted");
    expect(v.doc.text).toBe("def double(x):\n    return x + x\n# hi\n\nprint(double(2))\n");
    expect(await previews.accept(first.key)).toBe("none");
    expect(await v.handlers[ACCEPT]()).toBe("none");
  });
});
