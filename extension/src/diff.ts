// Edits show a diff before they land (issue 23, item 7). Fix, "Edit with instruction" (the server
// returns their edit unapplied to a client that declares experimental.vllmCompanion.previewEdits:
// docs/protocol.md) and chat's Apply open VS Code's diff editor: the document on the left, a
// read-only virtual document with the edit applied on the right. Accept applies the edit, only to
// the document version it was computed for (refused with a message if the document moved on);
// Reject discards it. Both are commands (editor title buttons on the diff, the command palette)
// and the buttons of a notification. The vscode API is passed in (test/unit/diff.test.ts mocks
// it), so nothing here imports it at run time.
import type * as vscode from "vscode";

export const PROPOSAL_SCHEME = "vllm-companion-proposal";
export const ACCEPT = "vllmCompanion.acceptEdit";
export const REJECT = "vllmCompanion.rejectEdit";
const PENDING_KEY = "vllmCompanion.editPending";

export interface WirePosition {
  line: number;
  character: number;
}

/** One edit waiting for the user: replace `range` of document `uri` by `newText`. `version`: the
 * document version the range was computed for (null: the version when the diff opens). */
export interface Proposal {
  uri: string;
  version: number | null;
  range: { start: WirePosition; end: WirePosition };
  newText: string;
  title: string;
}

export type Outcome = "accepted" | "rejected" | "stale" | "pending" | "none";

export interface VscodeApi {
  Uri: Pick<typeof vscode.Uri, "parse" | "from">;
  Range: typeof vscode.Range;
  Position: typeof vscode.Position;
  WorkspaceEdit: typeof vscode.WorkspaceEdit;
  workspace: Pick<typeof vscode.workspace, "textDocuments" | "openTextDocument" | "applyEdit" | "registerTextDocumentContentProvider">;
  window: Pick<typeof vscode.window, "showInformationMessage" | "showWarningMessage" | "tabGroups">;
  commands: Pick<typeof vscode.commands, "executeCommand" | "registerCommand">;
}

interface Pending {
  proposal: Proposal & { version: number };
  text: string; // the whole proposed document (the diff's right side)
}

/** The edit in a vllmCompanion/edit or edit-command result, or undefined when it has none that
 * this can preview (one document, one text edit). */
export function proposalFromResult(result: unknown, title: string): Proposal | undefined {
  const changes = (result as { edit?: { documentChanges?: unknown } } | null | undefined)?.edit?.documentChanges;
  if (!Array.isArray(changes) || changes.length !== 1) return undefined;
  const change = changes[0] as { textDocument?: { uri?: unknown; version?: unknown }; edits?: unknown };
  const edits = change.edits;
  if (typeof change.textDocument?.uri !== "string" || !Array.isArray(edits) || edits.length !== 1) return undefined;
  const { range, newText } = edits[0] as { range?: Proposal["range"]; newText?: unknown };
  if (typeof newText !== "string" || typeof range?.start?.line !== "number" || typeof range?.end?.line !== "number") {
    return undefined;
  }
  const version = typeof change.textDocument.version === "number" ? change.textDocument.version : null;
  return { uri: change.textDocument.uri, version, range, newText, title };
}

/** Whether an edit result asks for a preview (the server sent it unapplied for us to show): only
 * a whole answer ("stop"). One the token cap cut ("length") would replace the selection with half
 * the code: the server answers it with an error, and an answer that says so is never offered. */
export function wantsPreview(result: unknown): boolean {
  const r = result as { preview?: unknown; finishReason?: unknown } | null | undefined;
  return r?.preview === true && r.finishReason === "stop";
}

export class EditPreviews implements vscode.Disposable {
  private readonly pending = new Map<string, Pending>();
  private count = 0;
  private readonly registrations: vscode.Disposable[];

  constructor(private readonly api: VscodeApi) {
    this.registrations = [
      api.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, {
        provideTextDocumentContent: (uri) => this.pending.get(uri.toString())?.text ?? "",
      }),
      api.commands.registerCommand(ACCEPT, (uri?: unknown) => this.accept(keyOf(uri))),
      api.commands.registerCommand(REJECT, (uri?: unknown) => this.reject(keyOf(uri))),
    ];
  }

  /** Open the diff and offer Accept / Reject. `choice` settles when the notification is answered
   * ("pending" if it is dismissed: the editor title buttons and commands still decide). */
  async propose(proposal: Proposal): Promise<{ key?: string; choice: Promise<Outcome> }> {
    const doc = await this.api.workspace.openTextDocument(this.api.Uri.parse(proposal.uri));
    const version = proposal.version ?? doc.version;
    if (doc.version !== version) return { choice: Promise.resolve(this.stale(proposal)) };
    const text = doc.getText();
    const start = doc.offsetAt(this.position(proposal.range.start));
    const end = doc.offsetAt(this.position(proposal.range.end));
    const proposed = text.slice(0, Math.min(start, end)) + proposal.newText + text.slice(Math.max(start, end));
    const right = this.api.Uri.from({ scheme: PROPOSAL_SCHEME, path: doc.uri.path, query: String(++this.count) });
    const key = right.toString();
    this.pending.set(key, { proposal: { ...proposal, version }, text: proposed });
    await this.setPendingContext();
    const name = baseName(doc.uri.path);
    await this.api.commands.executeCommand("vscode.diff", doc.uri, right, `${name} ↔ ${proposal.title} (proposed)`);
    const choice = Promise.resolve(
      this.api.window.showInformationMessage(`vLLM Companion: ${proposal.title}: review the diff of ${name}.`, "Accept", "Reject"),
    ).then((pick): Outcome | Promise<Outcome> =>
      pick === "Accept" ? this.accept(key) : pick === "Reject" ? this.reject(key) : "pending",
    );
    return { key, choice };
  }

  /** Apply the proposal (the latest one without a key) to the version it was computed for. */
  async accept(key?: string): Promise<Outcome> {
    const found = this.take(key);
    if (!found) return "none";
    const { proposal } = found;
    const doc = this.api.workspace.textDocuments.find((d) => d.uri.toString() === proposal.uri);
    if (!doc || doc.version !== proposal.version) return this.stale(proposal);
    const edit = new this.api.WorkspaceEdit();
    const { start, end } = proposal.range;
    edit.replace(doc.uri, new this.api.Range(this.position(start), this.position(end)), proposal.newText);
    // The extension host sends the document version along: VS Code refuses the edit if the
    // document changed in between (applyEdit answers false).
    return (await this.api.workspace.applyEdit(edit)) ? "accepted" : this.stale(proposal);
  }

  async reject(key?: string): Promise<Outcome> {
    return this.take(key) ? "rejected" : "none";
  }

  /** Keys of the proposals waiting for the user (oldest first). */
  keys(): string[] {
    return [...this.pending.keys()];
  }

  dispose(): void {
    for (const r of this.registrations) r.dispose();
    this.pending.clear();
  }

  private take(key: string | undefined): Pending | undefined {
    const k = key ?? this.keys().at(-1);
    const found = k === undefined ? undefined : this.pending.get(k);
    if (!found || k === undefined) return undefined;
    this.pending.delete(k);
    void this.setPendingContext();
    const tabs = this.api.window.tabGroups.all
      .flatMap((g) => g.tabs)
      .filter((t) => (t.input as { modified?: { toString(): string } } | undefined)?.modified?.toString() === k);
    if (tabs.length) void Promise.resolve(this.api.window.tabGroups.close(tabs)).catch(() => undefined);
    return found;
  }

  private stale(proposal: Proposal): Outcome {
    void this.api.window.showWarningMessage(
      `vLLM Companion: ${baseName(proposal.uri)} changed since the edit was proposed; nothing was applied. ` +
        `Run ${proposal.title} again.`,
    );
    return "stale";
  }

  private position(p: WirePosition): vscode.Position {
    return new this.api.Position(p.line, p.character);
  }

  private async setPendingContext(): Promise<void> {
    await Promise.resolve(this.api.commands.executeCommand("setContext", PENDING_KEY, this.pending.size > 0)).catch(
      () => undefined,
    );
  }
}

function keyOf(arg: unknown): string | undefined {
  if (typeof arg === "string") return arg;
  const uri = arg as { scheme?: unknown; toString(): string } | undefined;
  return uri?.scheme === PROPOSAL_SCHEME ? uri.toString() : undefined;
}

function baseName(path: string): string {
  const last = path.split("/").pop() ?? path;
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}
