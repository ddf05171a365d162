// vLLM Companion for VS Code: a thin client. Everything clever lives in the language server, so
// every editor gets it; this file wires the client, the status bar, the chat panel and commands.
import * as vscode from "vscode";
import { ChatViewProvider } from "./chatView";
import type { Action } from "./actions";
import { API_KEY_SECRET, CompanionClient } from "./client";
import { renderStatus, type ServerStatus } from "./status";

let companion: CompanionClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("vLLM Companion", { log: true });
  const item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  item.command = "vllmCompanion.statusMenu";
  let last: ServerStatus = { state: "starting", message: "starting the language server" };
  const paused = () => !vscode.workspace.getConfiguration("vllmCompanion").get<boolean>("completion.enabled", true);
  const show = () => {
    const view = renderStatus(last, paused());
    item.text = view.text;
    item.tooltip = view.tooltip;
    item.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    item.show();
  };
  show();
  let chat: ChatViewProvider | undefined;
  companion = new CompanionClient(log, (status) => {
    last = status as ServerStatus;
    show();
  }, context.secrets, (action, args, next) => runAction(action, args, next, chat));
  chat = new ChatViewProvider(context.extensionUri, companion);
  const c = companion;
  context.subscriptions.push(
    log,
    item,
    c,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.id, chat, { webviewOptions: { retainContextWhenHidden: true } }),
    vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration("vllmCompanion") && show()),
    ...registerCommands(c, chat, log),
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

function registerCommands(c: CompanionClient, chat: ChatViewProvider, log: vscode.LogOutputChannel): vscode.Disposable[] {
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
    "vllmCompanion.statusMenu": async () => {
      const choices: Array<vscode.QuickPickItem & { command: string }> = [
        { label: "$(debug-restart) Restart server and engine", command: "vllmCompanion.restart" },
        { label: "$(output) Show logs", command: "vllmCompanion.showLogs" },
        { label: "$(pulse) Run doctor", command: "vllmCompanion.doctor" },
        { label: "$(debug-pause) Toggle automatic suggestions", command: "vllmCompanion.toggleCompletions" },
        { label: "$(symbol-keyword) Toggle suggestions for this language", command: "vllmCompanion.toggleLanguage" },
        { label: "$(comment-discussion) Open chat", command: "vllmCompanion.focusChat" },
        { label: "$(gear) Open settings", command: "vllmCompanion.openSettings" },
      ];
      const pick = await vscode.window.showQuickPick(choices, { title: "vLLM Companion" });
      if (pick) await vscode.commands.executeCommand(pick.command);
    },
  };
  return Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, fn));
}

/** A catalog action in VS Code: chat actions answer in the chat panel; an action without an
 * instruction asks for one; edits run on the server (which applies them) with a progress bar. */
async function runAction(
  action: Action,
  args: unknown[],
  next: (args: unknown[]) => Promise<unknown>,
  chat: ChatViewProvider | undefined,
): Promise<unknown> {
  let instruction = action.instruction ?? (typeof args[2] === "string" ? args[2] : undefined);
  if (!instruction) {
    instruction = await vscode.window.showInputBox({ prompt: `${action.title}: what should change?` });
    if (!instruction) return undefined;
  }
  if (action.mode === "chat" && chat) return chat.ask(instruction, true);
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `vLLM Companion: ${action.title}…` },
    () => next([args[0], args[1], instruction]),
  );
}

export async function deactivate(): Promise<void> {
  await companion?.client?.stop();
}
