// "vLLM Companion: Switch Model" and the restart prompts, with VS Code's API (the choices
// themselves are pure, in models.ts).
import * as vscode from "vscode";
import type { CompanionClient } from "./client";
import {
  changedKeys, DID_CHANGE_MODEL, LIVE, modelParams, MODELS, type ModelsAnswer, type PickItem, pickItems, RESTART_KEYS,
  restartMessage, userValues,
} from "./models";

const TIMEOUT_MS = 15_000; // the server answers within its own 5 s cap; this is for a hung server

/** The quick pick: a served model is used at once; an alternative sets engine.model and offers
 * the restart it needs. Settings go to the user's (global) settings: both are user-only. */
export async function switchModel(companion: CompanionClient): Promise<void> {
  const client = await companion.start();
  if (!client) return;
  const config = () => vscode.workspace.getConfiguration("vllmCompanion");
  const answer = vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: "vLLM Companion: listing models" },
    () => withTimeout(client.sendRequest<ModelsAnswer>(MODELS, {}), TIMEOUT_MS),
  );
  const engineModel = config().inspect<string>("engine.model")?.globalValue ?? undefined;
  const items = answer.then((a) => pickItems(a ?? { error: "the server did not answer in time" }, engineModel).map(toQuickPick));
  const pick = await vscode.window.showQuickPick(items, { title: "vLLM Companion: Switch Model", matchOnDetail: true });
  const action = pick?.item.action;
  if (!action || action.kind === "none") return;
  if (action.kind === "served") {
    await config().update("backend.model", action.model, vscode.ConfigurationTarget.Global);
    return; // ConfigurationWatcher tells the server
  }
  const model = action.kind === "alternative" ? action.model : undefined;
  await config().update("engine.model", model, vscode.ConfigurationTarget.Global);
  // the restart prompt comes from ConfigurationWatcher, as for any engine.* setting
}

/** onDidChangeConfiguration: the model settings go to the running server; settings read only at
 * start say so and offer the restart. Compares the user's own values with the last ones seen. */
export class ConfigurationWatcher {
  private last: Record<string, string>;

  constructor(private readonly companion: CompanionClient) {
    this.last = this.snapshot();
  }

  changed(): void {
    const now = this.snapshot();
    const keys = changedKeys(this.last, now);
    this.last = now;
    if (keys.some((k) => LIVE.includes(k))) {
      const params = modelParams(vscode.workspace.getConfiguration("vllmCompanion"));
      void this.companion.client?.sendNotification(DID_CHANGE_MODEL, params).catch(() => undefined);
    }
    const restart = keys.filter((k) => RESTART_KEYS.includes(k));
    if (restart.length === 0) return;
    void vscode.window.showInformationMessage(restartMessage(restart), "Restart now").then((choice) => {
      if (choice === "Restart now") void vscode.commands.executeCommand("vllmCompanion.restart");
    });
  }

  private snapshot(): Record<string, string> {
    return userValues(vscode.workspace.getConfiguration("vllmCompanion"), [...LIVE, ...RESTART_KEYS]);
  }
}

function toQuickPick(item: PickItem): vscode.QuickPickItem & { item: PickItem } {
  if (item.separator) return { label: item.label, kind: vscode.QuickPickItemKind.Separator, item };
  return { label: item.label, description: item.description, detail: item.detail, item };
}

function withTimeout<T>(promise: Thenable<T>, ms: number): Promise<T | undefined> {
  return Promise.race([
    Promise.resolve(promise).catch(() => undefined),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms)),
  ]);
}
