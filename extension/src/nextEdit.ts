// Next-edit suggestions in VS Code (issue 22; docs/next-edit.md): asks the server for the next
// edit when the user pauses typing or moves the cursor, draws it with decorations (stable API
// only: nextEditView.ts decides what), Tab jumps to it then accepts it, Escape dismisses it. The
// server does the work (edit propagation without a model, or the next-edit model); this file only
// asks, draws and applies.
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import {
  acceptCall, editId, type EditView, fitsDocument, type InlineEdit, isCurrent, isNoop, NEXT_EDIT, type NextEditCapability,
  nextEditCapability, parseEdits, SCHEMES, tabAction, viewOf,
} from "./nextEditView";
import { isSwitchedOff } from "./settings";
import type { Snooze } from "./snooze";

export const DID_SHOW = "textDocument/didShowInlineEdit";
export const DID_FOCUS = "textDocument/didFocus";
/** The `when` context of the Tab and Escape keybindings (package.json). */
export const VISIBLE_KEY = "vllmCompanion.nextEditVisible";
/** How long the user pauses before the server is asked; edit propagation answers in about a
 * millisecond, so this is only about not asking on every keystroke. */
export const PAUSE_MS = 300;

interface Showing { edit: InlineEdit; editor: vscode.TextEditor }

function decorationTypes(): Record<"deletion" | "insertion" | "jump", vscode.TextEditorDecorationType> {
  const ghost = new vscode.ThemeColor("editorGhostText.foreground");
  const ruler = new vscode.ThemeColor("editorOverviewRuler.modifiedForeground");
  return {
    deletion: vscode.window.createTextEditorDecorationType({
      backgroundColor: new vscode.ThemeColor("diffEditor.removedTextBackground"), textDecoration: "line-through",
      overviewRulerColor: ruler, overviewRulerLane: vscode.OverviewRulerLane.Center,
    }),
    insertion: vscode.window.createTextEditorDecorationType({
      after: { color: ghost, backgroundColor: new vscode.ThemeColor("diffEditor.insertedTextBackground"), fontStyle: "italic" },
      overviewRulerColor: ruler, overviewRulerLane: vscode.OverviewRulerLane.Center,
    }),
    jump: vscode.window.createTextEditorDecorationType({ after: { color: ghost, fontStyle: "italic", margin: "0 0 0 2em" } }),
  };
}

const pos = (p: { line: number; character: number }) => new vscode.Position(p.line, p.character);
const range = (r: InlineEdit["range"]) => new vscode.Range(pos(r.start), pos(r.end));

export class NextEdits implements vscode.Disposable {
  private showing: Showing | undefined;
  private pending: vscode.CancellationTokenSource | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The document version whose inline completion (ghost text) is showing: it takes precedence. */
  private ghostAt: string | undefined;
  private readonly shownIds = new Set<string>();
  private readonly types = decorationTypes();

  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly snooze: Pick<Snooze, "active">,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The listeners and the Tab/Escape commands (bound in package.json under VISIBLE_KEY). */
  register(): vscode.Disposable[] {
    return [
      vscode.workspace.onDidChangeTextDocument((e) => this.changed(e)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.moved(e.textEditor)),
      vscode.window.onDidChangeActiveTextEditor((editor) => this.focused(editor)),
      vscode.commands.registerCommand("vllmCompanion.nextEdit.tab", () => this.tab()),
      vscode.commands.registerCommand("vllmCompanion.nextEdit.dismiss", () => this.dismiss()),
      vscode.commands.registerCommand("vllmCompanion.nextEdit.suggest", () => this.request(false)),
      this,
    ];
  }

  /** The inline completion middleware saw ghost text for this document version (client.ts). */
  inlineShown(uri: string, version: number): void {
    this.ghostAt = `${uri}@${version}`;
    if (this.showing?.editor.document.uri.toString() === uri) this.clear();
  }

  private changed(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0 || e.document !== vscode.window.activeTextEditor?.document) return;
    this.clear(); // its version moved on
    this.schedule();
  }

  /** A cursor move redraws what shows (jump hint or not), or asks anew when nothing does. */
  private moved(editor: vscode.TextEditor): void {
    if (editor !== vscode.window.activeTextEditor) return;
    const showing = this.showing;
    if (showing && showing.editor === editor && this.current(showing)) {
      this.draw(showing);
      return;
    }
    this.clear();
    this.schedule();
  }

  private focused(editor: vscode.TextEditor | undefined): void {
    this.clear();
    const client = this.client();
    if (!editor || !SCHEMES.includes(editor.document.uri.scheme) || !client || !this.capability()) return;
    void client.sendNotification(DID_FOCUS, { textDocument: { uri: editor.document.uri.toString() } }).catch(() => undefined);
  }

  private capability(): NextEditCapability | undefined {
    return nextEditCapability(this.client()?.initializeResult?.capabilities.experimental);
  }

  /** Escape: the server counts the dismissal (the local telemetry store) and the edit goes. */
  private dismiss(): void {
    const id = this.showing && editId(this.showing.edit);
    const command = this.capability()?.dismiss;
    this.clear();
    if (id && command) void this.execute(command, [id]);
  }

  private async execute(command: string, args: unknown[]): Promise<void> {
    const params = { command, arguments: args };
    await this.client()?.sendRequest("workspace/executeCommand", params).then(undefined, (err) => this.log.debug(String(err)));
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.request(), PAUSE_MS);
  }

  /** The open document the edit is for (the cursor's, or another one the client syncs), while it
   * is current and the edit's range lies within it (parseEdits kept only file:/untitled: URIs). */
  private target(edit: InlineEdit): vscode.TextDocument | undefined {
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === edit.textDocument.uri);
    if (!doc || doc.isClosed || !SCHEMES.includes(doc.uri.scheme) || !isCurrent(edit, doc.uri.toString(), doc.version)) {
      return undefined;
    }
    const r = range(edit.range);
    const fits = fitsDocument(edit.range, doc.lineCount, (line) => doc.lineAt(line).text.length);
    return fits && doc.validateRange(r).isEqual(r) ? doc : undefined; // validateRange: not inside a surrogate pair
  }

  private current(s: Showing): boolean {
    const here = s.editor.document;
    return !here.isClosed && this.target(s.edit) !== undefined && this.ghostAt !== `${here.uri}@${here.version}`;
  }

  /** Asks for the active document's next edit at the cursor; a newer ask cancels this one.
   * Automatic asks stop while suggestions are snoozed or paused (`completion.enabled` off, the
   * status bar's toggle), as ghost text does; the command asks anyway, like Alt+\. */
  async request(automatic = true): Promise<void> {
    this.timer = undefined;
    this.pending?.cancel();
    const editor = vscode.window.activeTextEditor;
    const client = this.client();
    const config = vscode.workspace.getConfiguration("vllmCompanion");
    const held = automatic && (this.snooze.active() || isSwitchedOff(config, "completion.enabled"));
    if (!editor || !SCHEMES.includes(editor.document.uri.scheme) || !client || held || this.showing) return;
    if (!this.capability() || isSwitchedOff(config, "nextEdit.enabled")) return;
    const doc = editor.document;
    const source = (this.pending = new vscode.CancellationTokenSource());
    if (this.ghostAt === `${doc.uri}@${doc.version}`) return;
    const { line, character } = editor.selection.active;
    const params = { textDocument: { uri: doc.uri.toString(), version: doc.version }, position: { line, character } };
    try {
      const result = await client.sendRequest(NEXT_EDIT, params, source.token);
      if (source.token.isCancellationRequested || editor !== vscode.window.activeTextEditor) return;
      const edit = parseEdits(result).find((e) => this.current({ edit: e, editor }));
      if (edit) this.show({ edit, editor });
    } catch (err) {
      if (!source.token.isCancellationRequested) this.log.debug(`next edit: ${String(err)}`);
    } finally {
      if (this.pending === source) this.pending = undefined;
      source.dispose();
    }
  }

  private show(showing: Showing): void {
    if (!this.draw(showing)) return;
    this.showing = showing;
    void vscode.commands.executeCommand("setContext", VISIBLE_KEY, true);
    const id = editId(showing.edit);
    if (id && !this.shownIds.has(id)) {
      this.shownIds.add(id);
      void this.client()?.sendNotification(DID_SHOW, { item: showing.edit }).catch(() => undefined);
    }
  }

  /** Draws the edit (and the jump hint when it is away from the cursor); false when it changes nothing. */
  private draw({ edit, editor }: Showing): boolean {
    const doc = this.target(edit);
    if (!doc || editor.document.isClosed) return false; // typed on meanwhile (the jump to another file awaits)
    const text = doc.getText(range(edit.range));
    const view = viewOf(edit, text, editor.selection.active, editor.document.uri.toString());
    if (isNoop(view)) return false;
    editor.setDecorations(this.types.deletion, view.deletion ? [{ range: range(view.deletion), hoverMessage: hover(view) }] : []);
    editor.setDecorations(this.types.insertion, view.insertion ? [insertion(view, view.insertion)] : []);
    const jump = view.jump;
    const end = jump && editor.document.lineAt(jump.line).range.end;
    editor.setDecorations(this.types.jump, jump && end
      ? [{ range: new vscode.Range(end, end), renderOptions: { after: { contentText: jump.label } } }] : []);
    return true;
  }

  /** Tab: jump to an edit away from the cursor, accept one at it. */
  private async tab(): Promise<void> {
    const showing = this.showing;
    if (!showing || !this.current(showing)) return this.clear();
    const { edit, editor } = showing;
    const doc = this.target(edit);
    if (doc && doc !== editor.document) { // another open file: show it at the edit, then draw there
      const at = pos(edit.range.start);
      const opened = await vscode.window.showTextDocument(doc, { selection: new vscode.Range(at, at) });
      this.clear();
      this.show({ edit, editor: opened });
      return;
    }
    if (tabAction(edit, editor.selection.active, editor.document.uri.toString()) === "jump") {
      const target = pos(edit.range.start);
      editor.selection = new vscode.Selection(target, target); // redrawn by the selection event
      editor.revealRange(range(edit.range), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      return;
    }
    this.clear();
    // No await since current(): VS Code also refuses the edit if the version moved (its versionId check).
    const applied = await editor.edit((b) => b.replace(range(edit.range), edit.text)).then(undefined, () => false);
    if (!applied) return;
    const end = editor.document.positionAt(editor.document.offsetAt(pos(edit.range.start)) + edit.text.length);
    editor.selection = new vscode.Selection(end, end);
    const call = acceptCall(edit, this.capability()); // the advertised accept command and the id, nothing else
    if (call) await this.execute(call.command, call.arguments);
  }

  clear(): void {
    const showing = this.showing;
    this.showing = undefined;
    if (!showing) return;
    for (const type of Object.values(this.types)) showing.editor.setDecorations(type, []);
    void vscode.commands.executeCommand("setContext", VISIBLE_KEY, false);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.pending?.cancel();
    this.clear();
    for (const type of Object.values(this.types)) type.dispose();
  }
}

/** Untrusted Markdown (no command: links, no HTML); the edit's text sits in a code fence. */
function hover(view: EditView): vscode.MarkdownString {
  const md = new vscode.MarkdownString(view.hover, false);
  md.isTrusted = false;
  md.supportHtml = false;
  return md;
}

function insertion(view: EditView, ins: NonNullable<EditView["insertion"]>): vscode.DecorationOptions {
  const more = ins.more > 0 ? `  (+${ins.more} line${ins.more > 1 ? "s" : ""})` : "";
  const at = pos(ins.at);
  return { range: new vscode.Range(at, at), hoverMessage: hover(view), renderOptions: { after: { contentText: ins.text + more } } };
}
