// Acceptance telemetry from VS Code to the server, which keeps it on this machine. Accepts need
// nothing here: each item's command (vllmCompanion.didAcceptCompletion) is a server command the
// language client registers, and VS Code runs it when the user accepts the item. "Shown" is sent
// as textDocument/didShowCompletion (the Copilot language server's name) when VS Code takes the
// first item of an answer for the editor: stable VS Code has no event for the ghost text itself
// (handleDidShowCompletionItem and partial accepts are proposed API only).
export const SHOWN = "textDocument/didShowCompletion";

export interface ShownItem {
  insertText?: unknown;
  command?: { title?: string; command: string; arguments?: unknown[] };
}

/** The notification's params for the first item of an answer, or undefined when it has none of ours. */
export function shownParams(result: unknown): { item: ShownItem } | undefined {
  const items: unknown = Array.isArray(result) ? result : (result as { items?: unknown } | null | undefined)?.items;
  const first = Array.isArray(items) ? (items[0] as ShownItem | undefined) : undefined;
  const command = first?.command;
  if (!command || command.command !== "vllmCompanion.didAcceptCompletion" || !command.arguments?.length) return undefined;
  const text = first.insertText;
  return {
    item: {
      insertText: typeof text === "string" ? text : undefined,
      command: { title: command.title ?? "", command: command.command, arguments: command.arguments },
    },
  };
}
