// Next-edit suggestions (issue 22): what to draw for one edit, and what Tab does. Pure (no vscode
// import): tested in test/unit/nextEditView.test.ts; nextEdit.ts turns the view into decorations.
//
// The server speaks Copilot's language server shapes (docs/protocol.md, "Next-edit suggestions"):
// `textDocument/copilotInlineEdit` answers `{edits: [{text, range, textDocument: {uri, version},
// command}]}`, `range` may span lines and `text` replaces it. VS Code's stable API has no inline
// edit widget (Copilot's uses the proposed `inlineCompletionsAdditions`), so an edit is drawn the
// way copilot-lsp draws it in Neovim: the removed text struck through on a red background, the
// inserted text after it as ghost text, and, when the edit is away from the cursor, a "jump" hint
// on the cursor's line (Tab jumps first, then Tab accepts: a suggestion the user cannot see is
// never applied).

export const NEXT_EDIT = "textDocument/copilotInlineEdit";

/** What the server advertises in initialize (`experimental.vllmCompanion.nextEdit`, server
 * lsp/nextedit.py): the request, and the commands that accept and dismiss an edit by its id. */
export interface NextEditCapability { method: string; accept: string; dismiss: string }

/** A command name the client sends back (`workspace/executeCommand`, to the server only). */
const COMMAND_NAME = /^[A-Za-z0-9_.\-/]{1,128}$/;
/** An edit's id, as the server issues them ("s17"): the only argument the client sends back. */
const EDIT_ID = /^[\x21-\x7e]{1,128}$/;

export function nextEditCapability(experimental: unknown): NextEditCapability | undefined {
  const cap = (experimental as { vllmCompanion?: { nextEdit?: Partial<NextEditCapability> } } | undefined)
    ?.vllmCompanion?.nextEdit;
  const name = (v: unknown) => typeof v === "string" && COMMAND_NAME.test(v);
  const ok = cap && cap.method === NEXT_EDIT && name(cap.accept) && name(cap.dismiss) && cap.accept !== cap.dismiss;
  return ok ? { method: NEXT_EDIT, accept: cap.accept as string, dismiss: cap.dismiss as string } : undefined;
}

/** The documents the language client syncs (client.ts documentSelector): the only ones the
 * server can know, so the only ones an edit may name. Anything else open in VS Code (the user's
 * settings.json as `vscode-userdata:`, `git:`, `output:`, a remote or UNC `file://host/` file)
 * is never jumped to nor written. */
export const SCHEMES = ["file", "untitled"];

export function isEditableUri(uri: string): boolean {
  return uri.startsWith("file:///") || uri.startsWith("untitled:");
}

/** Characters an inserted text may not hold: C0/C1 controls but tab, line feed and carriage
 * return (ANSI escapes, NUL), bidi overrides and isolates (Trojan Source, CVE-2021-42574: the
 * ghost text would read other than what lands), zero-width and line/paragraph separators, a BOM,
 * and lone surrogates. Each is invisible or misleading in ghost text, so what the user sees would
 * not be what Tab writes; an edit holding one is dropped. */
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function isSafeText(text: string): boolean {
  return !UNSAFE.test(text);
}

export interface Pos { line: number; character: number }
export interface Range { start: Pos; end: Pos }
export interface EditCommand { title: string; command: string; arguments?: unknown[] }
export interface InlineEdit {
  text: string;
  range: Range;
  textDocument: { uri: string; version: number };
  command?: EditCommand;
}

/** What to draw: the struck-through range, the ghost text (its first line; `more` lines follow,
 * shown in the hover), and the jump hint when the edit is away from the cursor. */
export interface EditView {
  deletion?: Range;
  insertion?: { at: Pos; text: string; more: number };
  jump?: { line: number; target: Pos; label: string };
  /** The edit is in another open document: only the jump hint shows here. */
  elsewhere?: boolean;
  hover: string;
}

/** Answers larger than this are not drawn: a suggestion is a few lines, not a file. */
export const MAX_EDIT_CHARS = 20_000;
export const MAX_EDITS = 8;

function isPos(v: unknown): v is Pos {
  const p = v as Pos;
  return typeof p === "object" && p !== null && Number.isInteger(p.line) && Number.isInteger(p.character)
    && p.line >= 0 && p.character >= 0;
}

function isRange(v: unknown): v is Range {
  const r = v as Range;
  return typeof r === "object" && r !== null && isPos(r.start) && isPos(r.end)
    && (r.start.line < r.end.line || (r.start.line === r.end.line && r.start.character <= r.end.character));
}

function isCommand(v: unknown): v is EditCommand {
  const c = v as EditCommand;
  return typeof c === "object" && c !== null && typeof c.command === "string" && typeof c.title === "string"
    && (c.arguments === undefined || Array.isArray(c.arguments));
}

function isEdit(v: unknown): v is InlineEdit {
  const e = v as InlineEdit;
  return typeof e === "object" && e !== null && typeof e.text === "string" && e.text.length <= MAX_EDIT_CHARS
    && isSafeText(e.text) && isRange(e.range) && typeof e.textDocument === "object" && e.textDocument !== null
    && typeof e.textDocument.uri === "string" && isEditableUri(e.textDocument.uri)
    && Number.isInteger(e.textDocument.version) && (e.command === undefined || isCommand(e.command));
}

/** The range lies within the document as it is (``lineCount`` lines, ``lineLength`` UTF-16
 * units each): VS Code would otherwise clamp it, and a range from line 0 to line 10^9 would make
 * Tab replace the whole file from any line. */
export function fitsDocument(range: Range, lineCount: number, lineLength: (line: number) => number): boolean {
  const { start, end } = range;
  return end.line < lineCount && start.character <= lineLength(start.line) && end.character <= lineLength(end.line);
}

/** The edit's id, when it is one the server could have issued (else nothing is sent back). */
export function editId(edit: InlineEdit): string | undefined {
  const args = edit.command?.arguments;
  const id = args?.length === 1 ? args[0] : undefined;
  return typeof id === "string" && EDIT_ID.test(id) ? id : undefined;
}

/** What accepting runs: the advertised accept command with the edit's id, nothing else. An
 * answer naming another command, or other arguments, runs nothing: the answer is built from model
 * output, and a client that ran whatever an edit names would run it with the user's Tab. */
export function acceptCall(edit: InlineEdit, cap: NextEditCapability | undefined): { command: string; arguments: [string] } | undefined {
  const id = editId(edit);
  return cap && id && edit.command?.command === cap.accept ? { command: cap.accept, arguments: [id] } : undefined;
}

/** The edits of a `copilotInlineEdit` answer that are well formed (the rest are dropped). */
export function parseEdits(result: unknown): InlineEdit[] {
  const edits = (result as { edits?: unknown } | null)?.edits;
  return Array.isArray(edits) ? edits.slice(0, MAX_EDITS).filter(isEdit) : [];
}

/** An edit answers one version of one document: once the user typed on, it is dropped. */
export function isCurrent(edit: InlineEdit, uri: string, version: number): boolean {
  return edit.textDocument.uri === uri && edit.textDocument.version === version;
}

/** Near: the edit is in the document the cursor is in (``here``, a URI) and touches the cursor's
 * line, where the user is looking; anything else (another line, another open file: edit
 * propagation looks there too) gets the jump hint first. */
export function isNear(edit: InlineEdit, cursor: Pos, here: string): boolean {
  return edit.textDocument.uri === here && edit.range.start.line <= cursor.line && cursor.line <= edit.range.end.line;
}

/** What Tab does while a suggestion shows: jump to it when it is away, else accept it. */
export function tabAction(edit: InlineEdit, cursor: Pos, here: string): "jump" | "accept" {
  return isNear(edit, cursor, here) ? "accept" : "jump";
}

/** The position ``offset`` UTF-16 units into ``text``, which starts at ``start``. */
export function advance(start: Pos, text: string, offset: number): Pos {
  const head = text.slice(0, offset);
  const breaks = head.split("\n");
  if (breaks.length === 1) return { line: start.line, character: start.character + head.length };
  return { line: start.line + breaks.length - 1, character: breaks[breaks.length - 1].length };
}

const isHigh = (s: string, i: number) => i >= 0 && i < s.length && s.charCodeAt(i) >= 0xd800 && s.charCodeAt(i) <= 0xdbff;

/** Common prefix and suffix of ``a`` and ``b`` (not overlapping, never splitting a surrogate
 * pair): the part in between is what really changes. */
export function commonEnds(a: string, b: string): [number, number] {
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  if (isHigh(a, p - 1)) p--;
  let s = 0;
  while (s < a.length - p && s < b.length - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  if (s > 0 && isHigh(a, a.length - s - 1)) s--;
  return [p, s];
}

/** The last segment of ``uri``, decoded (when it decodes), with unsafe characters shown as "?". */
function fileName(uri: string): string {
  const raw = uri.split(/[/:]/).pop() ?? "";
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch {
    // a malformed escape: shown as sent
  }
  return [...name.slice(0, 80)].map((ch) => (isSafeText(ch) ? ch : "?")).join("");
}

function jumpLabel(edit: InlineEdit, cursor: Pos, here: string): string {
  const line = edit.range.start.line + 1;
  if (edit.textDocument.uri !== here) {
    const name = fileName(edit.textDocument.uri);
    return ` → Tab: jump to the suggested edit (${name}:${line})`;
  }
  return ` ${edit.range.start.line < cursor.line ? "↑" : "↓"} Tab: jump to the suggested edit (line ${line})`;
}

/** The view of ``edit``, given the text its range covers now (``current``), the cursor and the
 * URI of the document the cursor is in: an edit in another file shows only the jump hint here. */
export function viewOf(edit: InlineEdit, current: string, cursor: Pos, here: string): EditView {
  const [p, s] = commonEnds(current, edit.text);
  const removed = current.slice(p, current.length - s);
  const added = edit.text.slice(p, edit.text.length - s);
  const from = advance(edit.range.start, current, p);
  const view: EditView = { hover: hoverOf(removed, added) };
  if (removed) view.deletion = { start: from, end: advance(edit.range.start, current, current.length - s) };
  if (added) {
    const lines = added.split("\n");
    const text = lines[0] || `⏎ ${lines[1] ?? ""}`; // an insertion of lines starts with a line break
    view.insertion = { at: view.deletion?.end ?? from, text, more: Math.max(0, lines.length - (lines[0] ? 1 : 2)) };
  }
  if (isNoop(view) || isNear(edit, cursor, here)) return view;
  const jump = { line: cursor.line, target: from, label: jumpLabel(edit, cursor, here) };
  return edit.textDocument.uri === here ? { ...view, jump } : { hover: view.hover, jump, elsewhere: true };
}

function fence(text: string): string {
  const ticks = "`".repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return `${ticks}\n${text}\n${ticks}`;
}

/** An edit that changes nothing (the text its range covers already reads so) is not shown. */
export function isNoop(view: EditView): boolean {
  return !view.deletion && !view.insertion && !view.elsewhere;
}

/** The hover: the whole change (multi-line insertions do not fit in one line of ghost text). */
export function hoverOf(removed: string, added: string): string {
  const parts = ["**vLLM Companion: suggested edit** (Tab accepts, Esc dismisses)"];
  if (removed) parts.push("Removes:", fence(removed));
  if (added) parts.push("Inserts:", fence(added));
  return parts.join("\n\n");
}
