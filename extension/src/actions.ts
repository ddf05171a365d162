// Editor actions come from the server's one catalog (initialize: capabilities.experimental
// .vllmCompanion.actions); nothing here names one. The language client registers the server's
// commands; this middleware gives them the VS Code behaviour: the selection when a menu passes
// none, an input box for an action that needs an instruction, chat actions answered in the chat
// panel, edits with a progress notification. Pure parts are unit-tested (test/unit/actions.test.ts).

export interface Action {
  command: string;
  title: string;
  mode: "chat" | "edit";
  instruction: string | null;
  kind: string;
}

export interface SelectionArgs {
  uri: string;
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
}

/** The catalog as the server sent it (anything malformed is dropped). */
export function readCatalog(experimental: unknown): Action[] {
  const ours = (experimental as { vllmCompanion?: { actions?: unknown } } | undefined)?.vllmCompanion;
  const list = Array.isArray(ours?.actions) ? ours.actions : [];
  return list.filter(
    (a): a is Action =>
      typeof a?.command === "string" && typeof a?.title === "string" && (a.mode === "chat" || a.mode === "edit"),
  );
}

/** [uri, range, instruction, version, opened] from a code action (the version the range was
 * taken on and which opening of the document: the server refuses to run on a document that moved,
 * or was closed and opened again, since), or [uri, range] from the active selection when a menu
 * passed none (the range is on the text as it is now). */
export function actionArgs(args: unknown[], selection: SelectionArgs | undefined): unknown[] | undefined {
  if (args.length >= 2 && typeof args[0] === "string" && typeof args[1] === "object") return args.slice(0, 5);
  return selection ? [selection.uri, selection.range] : undefined;
}

/** What goes to the server: the arguments with the instruction in third place, the version and
 * the opening kept. */
export function withInstruction(args: unknown[], instruction: string): unknown[] {
  return [args[0], args[1], instruction, ...args.slice(3, 5)];
}
