// The language client: finds and starts `vllm-companion lsp`, passes settings, restarts the
// server on crash a bounded number of times, and never starts twice.
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";
import { type Action, actionArgs, readCatalog, type SelectionArgs } from "./actions";
import { findServer, nodeDeps } from "./discovery";
import type { NextEdits } from "./nextEdit";
import { toServerOptions } from "./settings";
import { type Snooze, shouldAsk } from "./snooze";
import { SHOWN, shownParams } from "./telemetry";

/** What the extension does with a catalog action (the chat panel, an input box...). */
export type ActionRunner = (action: Action, args: unknown[], next: (args: unknown[]) => Promise<unknown>) => Promise<unknown>;

const MAX_RESTARTS = 4;
export const API_KEY_SECRET = "vllmCompanion.backend.apiKey";

export class CompanionClient implements vscode.Disposable {
  client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private restarts = 0;
  /** Set by the extension: while it is active, automatic inline triggers are not sent (snooze.ts). */
  snooze: Pick<Snooze, "active"> | undefined;
  /** Set by the extension: told when ghost text shows, which then takes precedence (nextEdit.ts). */
  nextEdits: Pick<NextEdits, "inlineShown"> | undefined;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly onStatus: (status: Record<string, unknown>) => void,
    private readonly secrets: vscode.SecretStorage,
    private readonly runAction: ActionRunner,
  ) {}

  /** The server's action catalog (empty until it has started). */
  actions(): Action[] {
    return readCatalog(this.client?.initializeResult?.capabilities.experimental);
  }

  /** Starts once; concurrent callers share the same start. */
  start(): Promise<LanguageClient | undefined> {
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    if (this.client) return this.client;
    const config = vscode.workspace.getConfiguration("vllmCompanion");
    const { command, args, source, skipped } = await findServer(
      { serverCommand: config.get<string[]>("serverCommand"), pythonPath: config.get<string>("pythonPath") },
      pythonExtensionInterpreter,
      nodeDeps(),
    );
    for (const why of skipped) this.log.info(`server discovery: ${why}`);
    if (source === "fallback") {
      // A bare name would be looked up on a PATH that may hold the workspace folder itself
      // (an empty or relative entry): start nothing rather than a repository's own program.
      void vscode.window.showErrorMessage(
        "vLLM Companion: no server found. Run `vllm-companion editor install vscode`, or set " +
          "vllmCompanion.serverCommand; see \"vLLM Companion: Show Logs\" for what was tried.",
      );
      return undefined;
    }
    this.log.info(`starting ${command} ${args.join(" ")} (from ${source})`);
    const serverOptions: ServerOptions = { command, args, transport: TransportKind.stdio };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      initializationOptions: toServerOptions(config, (await this.secrets.get(API_KEY_SECRET)) ?? undefined),
      outputChannel: this.log,
      synchronize: { configurationSection: "vllmCompanion" },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (!shouldAsk(this.snooze, context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic)) return null;
          const result = await next(document, position, context, token);
          const shown = token.isCancellationRequested ? undefined : shownParams(result);
          if (shown) void this.client?.sendNotification(SHOWN, shown).catch(() => undefined);
          if (shown) this.nextEdits?.inlineShown(document.uri.toString(), document.version);
          return result;
        },
        executeCommand: async (command, args, next) => {
          const action = this.actions().find((a) => a.command === command);
          if (!action) return next(command, args);
          const full = actionArgs(args, activeSelection(client));
          if (!full) return undefined;
          return this.runAction(action, full, (final) => Promise.resolve(next(command, final)));
        },
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => {
          this.restarts += 1;
          if (this.restarts > MAX_RESTARTS) {
            void vscode.window.showErrorMessage(
              `vLLM Companion: the server stopped ${this.restarts} times; see "vLLM Companion: Show Logs".`,
            );
            return { action: CloseAction.DoNotRestart };
          }
          return { action: CloseAction.Restart };
        },
      },
    };
    const client = new LanguageClient("vllmCompanion", "vLLM Companion", serverOptions, clientOptions);
    client.registerFeature({
      // This client can ask the user for an instruction (the server then offers every action) and
      // previews edits as a diff (the server returns them unapplied: diff.ts).
      fillClientCapabilities: (caps) => {
        caps.experimental = { ...(caps.experimental as object | undefined), vllmCompanion: { prompts: true, previewEdits: true } };
      },
      initialize: () => undefined,
      getState: () => ({ kind: "static" }),
      clear: () => undefined,
    });
    client.onNotification("vllmCompanion/status", (params: Record<string, unknown>) => this.onStatus(params));
    try {
      await client.start();
    } catch (err) {
      this.log.error(`could not start the server: ${String(err)}`);
      void vscode.window
        .showErrorMessage(
          `vLLM Companion: could not start "${command}". Run \`vllm-companion editor install vscode\` from ` +
            "your installation (scripts/quickstart.sh makes one), or set vllmCompanion.serverCommand.",
          "Open Settings",
        )
        .then((choice) => choice && vscode.commands.executeCommand("vllmCompanion.openSettings"));
      return undefined;
    }
    this.client = client;
    return client;
  }

  async restart(): Promise<void> {
    this.restarts = 0;
    const old = this.client;
    this.client = undefined;
    if (old) await old.stop().catch(() => undefined);
    await this.start();
  }

  dispose(): void {
    void this.client?.stop();
  }
}

function activeSelection(client: LanguageClient): SelectionArgs | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.selection.isEmpty) return undefined;
  const range = client.code2ProtocolConverter.asRange(editor.selection);
  return range ? { uri: editor.document.uri.toString(), range } : undefined;
}

async function pythonExtensionInterpreter(): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension("ms-python.python");
  if (!ext) return undefined;
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const details = api?.settings?.getExecutionDetails?.();
    const command: string[] | undefined = details?.execCommand;
    return command?.[0];
  } catch {
    return undefined;
  }
}
