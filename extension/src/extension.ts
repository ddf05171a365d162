// vLLM Companion for VS Code: a thin client. Everything clever lives in the language server, so
// every editor gets it; this file wires the client, the status bar, the chat panel and commands.
import * as vscode from "vscode";
import { ChatViewProvider } from "./chatView";
import { type Action, withInstruction } from "./actions";
import { API_KEY_SECRET, CompanionClient } from "./client";
import { EditPreviews, proposalFromResult, wantsPreview } from "./diff";
import { HistoryStore } from "./history";
import { ConfigurationWatcher, switchModel } from "./modelPicker";
import { NextEdits } from "./nextEdit";
import { SNOOZE_MINUTES, Snooze, snoozeLabel } from "./snooze";
import { renderStatus, type ServerStatus } from "./status";

let companion: CompanionClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("vLLM Companion", { log: true });
  const item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  item.command = "vllmCompanion.statusMenu";
  let last: ServerStatus = { state: "starting", message: "starting the language server" };
  const paused = () => !vscode.workspace.getConfiguration("vllmCompanion").get<boolean>("completion.enabled", true);
  const snooze = new Snooze(() => show());
  const show = () => {
    const view = renderStatus(last, paused());
    const ends = snooze.endsAt();
    item.text = ends ? `$(debug-pause) ${snoozeLabel(ends)}` : view.text;
    item.tooltip = ends
      ? `vLLM Companion: automatic suggestions ${snoozeLabel(ends)} (Alt+\\ still asks)\n${view.tooltip}`
      : view.tooltip;
    item.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    item.show();
  };
  show();
  let chat: ChatViewProvider | undefined;
  companion = new CompanionClient(log, (status) => {
    last = status as ServerStatus;
    show();
  }, context.secrets, (action, args, next) => runAction(action, args, next, chat, previews));
  companion.snooze = snooze;
  const previews = new EditPreviews(vscode);
  // Chat history: this workspace's storage folder, kept by VS Code (history.ts; none without a workspace)
  chat = new ChatViewProvider(context.extensionUri, companion, previews, new HistoryStore(context.storageUri?.fsPath));
  const c = companion;
  // Next-edit suggestions (nextEdit.ts): the client tells it when ghost text shows (it wins).
  const nextEdits = new NextEdits(() => c.client, snooze, log);
  c.nextEdits = nextEdits;
  const watcher = new ConfigurationWatcher(c);
  context.subscriptions.push(
    log,
    item,
    c,
    snooze,
    previews,
    ...nextEdits.register(),
    vscode.window.registerWebviewViewProvider(ChatViewProvider.id, chat, { webviewOptions: { retainContextWhenHidden: true } }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration("vllmCompanion")) return;
      show();
      watcher.changed(); // models to the server at once; a restart offered where one is needed
    }),
    ...registerCommands(c, chat, log, snooze),
    vscode.commands.registerCommand("vllmCompanion.setApiKey", async () => {
      const key = await vscode.window.showInputBox({ prompt: "API key for the endpoint (empty: none)", password: true });
      if (key === undefined) return;
      if (key) await context.secrets.store(API_KEY_SECRET, key);
      else await context.secrets.delete(API_KEY_SECRET);
      await c.restart();
    }),
  );
  await c.start();
}

function registerCommands(
  c: CompanionClient,
  chat: ChatViewProvider,
  log: vscode.LogOutputChannel,
  snooze: Snooze,
): vscode.Disposable[] {
  const config = () => vscode.workspace.getConfiguration("vllmCompanion");
  const commands: Record<string, (...args: unknown[]) => unknown> = {
    "vllmCompanion.triggerSuggestion": () => vscode.commands.executeCommand("editor.action.inlineSuggest.trigger"),
    "vllmCompanion.toggleCompletions": () =>
      config().update("completion.enabled", !config().get<boolean>("completion.enabled", true), true),
    "vllmCompanion.toggleLanguage": () => {
      const language = vscode.window.activeTextEditor?.document.languageId;
      if (!language) return;
      const off = new Set(config().get<string[]>("completion.disabledLanguages", []));
      if (off.has(language)) off.delete(language);
      else off.add(language);
      return config().update("completion.disabledLanguages", [...off], true);
    },
    "vllmCompanion.restart": () => c.restart(),
    "vllmCompanion.showLogs": () => log.show(),
    "vllmCompanion.doctor": () => {
      const terminal = vscode.window.createTerminal("vLLM Companion doctor");
      const python = config().get<string>("pythonPath");
      terminal.sendText(python ? `"${python}" -m vllm_companion doctor` : "vllm-companion doctor");
      terminal.show();
    },
    "vllmCompanion.openSettings": () => vscode.commands.executeCommand("workbench.action.openSettings", "vllmCompanion"),
    "vllmCompanion.focusChat": () => vscode.commands.executeCommand("vllmCompanion.chat.focus"),
    "vllmCompanion.switchModel": () => switchModel(c),
    "vllmCompanion.newChat": () => chat.newChat(),
    "vllmCompanion.clearChatHistory": () => chat.clearHistory(),
    // Snooze: in memory only (snooze.ts); no argument asks how long.
    "vllmCompanion.snooze": async (minutes?: unknown) => {
      let m = typeof minutes === "number" ? minutes : undefined;
      if (m === undefined) {
        const items = SNOOZE_MINUTES.map((n) => ({ label: `${n} minutes`, minutes: n }));
        m = (await vscode.window.showQuickPick(items, { title: "Snooze automatic suggestions for" }))?.minutes;
      }
      if (m !== undefined) snooze.start(m);
    },
    "vllmCompanion.resumeSuggestions": () => snooze.resume(),
    "vllmCompanion.statusMenu": async () => {
      const pick = await vscode.window.showQuickPick(menuChoices(snooze), { title: "vLLM Companion" });
      if (pick) await vscode.commands.executeCommand(pick.command, ...(pick.args ?? []));
    },
  };
  return Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, fn));
}

type MenuChoice = vscode.QuickPickItem & { command: string; args?: unknown[] };

/** The status bar menu; while snoozed it offers "Resume suggestions" instead of the snoozes. */
function menuChoices(snooze: Snooze): MenuChoice[] {
  const ends = snooze.endsAt();
  const snoozes: MenuChoice[] = ends
    ? [{ label: "$(play) Resume suggestions", description: snoozeLabel(ends), command: "vllmCompanion.resumeSuggestions" }]
    : SNOOZE_MINUTES.map((n) => ({
        label: `$(clock) Snooze suggestions for ${n} minutes`,
        command: "vllmCompanion.snooze",
        args: [n],
      }));
  return [
    { label: "$(debug-restart) Restart server and engine", command: "vllmCompanion.restart" },
    { label: "$(output) Show logs", command: "vllmCompanion.showLogs" },
    { label: "$(pulse) Run doctor", command: "vllmCompanion.doctor" },
    { label: "$(debug-pause) Toggle automatic suggestions", command: "vllmCompanion.toggleCompletions" },
    ...snoozes,
    { label: "$(symbol-keyword) Toggle suggestions for this language", command: "vllmCompanion.toggleLanguage" },
    { label: "$(server-process) Switch model", command: "vllmCompanion.switchModel" },
    { label: "$(comment-discussion) Open chat", command: "vllmCompanion.focusChat" },
    { label: "$(gear) Open settings", command: "vllmCompanion.openSettings" },
  ];
}

/** A catalog action in VS Code: chat actions answer in the chat panel; an action without an
 * instruction asks for one; edits run on the server with a progress bar and come back unapplied
 * (this client declares previewEdits), to be shown as a diff and accepted or rejected (diff.ts). */
async function runAction(
  action: Action,
  args: unknown[],
  next: (args: unknown[]) => Promise<unknown>,
  chat: ChatViewProvider | undefined,
  previews: EditPreviews,
): Promise<unknown> {
  let instruction = action.instruction ?? (typeof args[2] === "string" ? args[2] : undefined);
  if (!instruction) {
    instruction = await vscode.window.showInputBox({ prompt: `${action.title}: what should change?` });
    if (!instruction) return undefined;
  }
  if (action.mode === "chat" && chat) return chat.ask(instruction, true);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `vLLM Companion: ${action.title}…` },
    () => next(withInstruction(args, instruction)),
  );
  const proposal = wantsPreview(result) ? proposalFromResult(result, action.title) : undefined;
  if (proposal) await previews.propose(proposal);
  return result;
}

export async function deactivate(): Promise<void> {
  await companion?.client?.stop();
}
