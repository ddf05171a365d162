// The chat panel: a webview with a strict Content-Security-Policy (no inline script, a nonce for
// our bundle), fed by vllmCompanion/chat. Deltas stream as $/progress partial results; Stop
// cancels the request (the server closes the engine's stream).
import * as vscode from "vscode";
import { ProgressType } from "vscode-languageclient/node";
import type { CompanionClient } from "./client";

const DELTA = new ProgressType<{ delta?: string }>();

interface Turn {
  role: "user" | "assistant";
  content: string;
}

export class ChatViewProvider implements vscode.WebviewViewProvider {
  static readonly id = "vllmCompanion.chat";
  private view: vscode.WebviewView | undefined;
  private history: Turn[] = [];
  private running: vscode.CancellationTokenSource | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly companion: CompanionClient,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, "media")] };
    view.webview.html = this.html(view.webview);
    view.webview.onDidReceiveMessage((msg) => void this.onMessage(msg));
    if (this.history.length) void view.webview.postMessage({ type: "history", turns: this.history });
  }

  /** Ask from a command ("Explain selection"…): the panel shows the question and the answer. */
  async ask(question: string, attachSelection: boolean): Promise<void> {
    await vscode.commands.executeCommand("vllmCompanion.chat.focus");
    await this.send(question, attachSelection);
  }

  private async onMessage(msg: { type: string; text?: string; attach?: boolean; code?: string }): Promise<void> {
    if (msg.type === "send" && msg.text) await this.send(msg.text, Boolean(msg.attach));
    else if (msg.type === "stop") this.running?.cancel();
    else if (msg.type === "clear") this.history = [];
    else if (msg.type === "copy" && msg.code !== undefined) await vscode.env.clipboard.writeText(msg.code);
    else if (msg.type === "insert" && msg.code !== undefined) await insert(msg.code, false);
    else if (msg.type === "apply" && msg.code !== undefined) await insert(msg.code, true);
  }

  private async send(text: string, attachSelection: boolean): Promise<void> {
    const client = await this.companion.start();
    if (!client || !this.view) return;
    this.running?.cancel();
    const source = new vscode.CancellationTokenSource();
    this.running = source;
    this.history.push({ role: "user", content: text });
    const token = `chat-${Date.now()}`;
    void this.view.webview.postMessage({ type: "start", question: text });
    const progress = client.onProgress(DELTA, token, (value) => {
      if (value?.delta) void this.view?.webview.postMessage({ type: "delta", text: value.delta });
    });
    const editor = vscode.window.activeTextEditor;
    const context: Record<string, unknown> = {};
    if (editor) {
      context.currentFile = editor.document.uri.toString();
      if (attachSelection && !editor.selection.isEmpty) {
        context.selection = { uri: editor.document.uri.toString(), range: client.code2ProtocolConverter.asRange(editor.selection) };
      }
    }
    try {
      const result = await client.sendRequest<{ content: string; finishReason: string }>(
        "vllmCompanion/chat",
        { messages: this.history, context, partialResultToken: token },
        source.token,
      );
      this.history.push({ role: "assistant", content: result.content });
      void this.view.webview.postMessage({ type: "done", content: result.content, finishReason: result.finishReason });
    } catch (err) {
      const cancelled = source.token.isCancellationRequested;
      void this.view.webview.postMessage({ type: "done", finishReason: cancelled ? "cancelled" : "error", error: String(err) });
    } finally {
      progress.dispose();
      if (this.running === source) this.running = undefined;
    }
  }

  private html(webview: vscode.Webview): string {
    const nonce = [...Array(32)].map(() => Math.floor(Math.random() * 36).toString(36)).join("");
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "media", "chat.js"));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "media", "chat.css"));
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
      "img-src data:",
    ].join("; ");
    return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link href="${style}" rel="stylesheet"><title>vLLM Companion Chat</title></head>
<body><main id="log" aria-live="polite"></main>
<form id="form"><textarea id="input" rows="3" placeholder="Ask about your code (Enter to send, Shift+Enter for a new line)" aria-label="Question"></textarea>
<div class="row"><label><input type="checkbox" id="attach" checked> attach selection</label>
<span class="spacer"></span><button type="button" id="clear" title="New conversation">Clear</button>
<button type="button" id="stop" disabled>Stop</button><button type="submit" id="send">Send</button></div></form>
<script nonce="${nonce}" src="${script}"></script></body></html>`;
  }
}

async function insert(code: string, replaceSelection: boolean): Promise<void> {
  const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
  if (!editor) return;
  await editor.edit((edit) => {
    if (replaceSelection && !editor.selection.isEmpty) edit.replace(editor.selection, code);
    else edit.insert(editor.selection.active, code);
  });
}
