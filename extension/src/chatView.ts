// The chat panel: a webview with a strict Content-Security-Policy (no inline script, a nonce for
// our bundle), fed by vllmCompanion/chat. Deltas stream as $/progress partial results; Stop
// cancels the request (the server closes the engine's stream). Conversations are kept per
// workspace (conversations.ts, history.ts); each question shows the files sent with it and those
// the server left out. Attaching the current file is a checkbox naming the file, on by default:
// most questions are about the file in front of you (Copilot Chat attaches it by default too),
// the name is visible before sending, and the server still refuses secret and out-of-workspace
// files and says so (excludedContext).
import * as vscode from "vscode";
import { ProgressType } from "vscode-languageclient/node";
import type { CompanionClient } from "./client";
import { Conversations } from "./conversations";
import type { EditPreviews } from "./diff";
import type { HistoryStore } from "./history";

const DELTA = new ProgressType<{ delta?: string }>();

interface Attach {
  file: boolean; // the current file
  selection: boolean;
}

export class ChatViewProvider implements vscode.WebviewViewProvider {
  static readonly id = "vllmCompanion.chat";
  private view: vscode.WebviewView | undefined;
  private readonly chats: Conversations;
  private running: vscode.CancellationTokenSource | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly companion: CompanionClient,
    private readonly previews: EditPreviews,
    history: HistoryStore,
  ) {
    this.chats = new Conversations(history, (message) => void vscode.window.showWarningMessage(`vLLM Companion: ${message}`));
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, "media")] };
    view.webview.html = this.html(view.webview);
    view.webview.onDidReceiveMessage((msg) => void this.onMessage(msg));
    const watch = vscode.window.onDidChangeActiveTextEditor(() => this.showFile());
    view.onDidDispose(() => watch.dispose());
    this.showFile();
    void this.chats.load().then(() => this.showConversation());
  }

  /** "New chat" (panel button and command): the conversation so far stays in the history. */
  async newChat(): Promise<void> {
    this.running?.cancel();
    await this.chats.newChat();
    this.showConversation();
  }

  /** "Clear chat history": asks first, then removes the stored file and empties the panel. */
  async clearHistory(): Promise<void> {
    const yes = "Clear history";
    const answer = await vscode.window.showWarningMessage(
      "Remove every stored chat conversation of this workspace?", { modal: true }, yes);
    if (answer !== yes) return;
    this.running?.cancel();
    await this.chats.clear();
    this.showConversation();
  }

  private async pickConversation(): Promise<void> {
    await this.chats.load();
    const items = this.chats.list().map((c) => ({
      label: c.title || "(untitled)", description: new Date(c.updated).toLocaleString(), id: c.id,
    }));
    const pick = await vscode.window.showQuickPick(items, { title: "vLLM Companion: chat history" });
    if (pick && this.chats.open(pick.id)) this.showConversation();
  }

  private showConversation(): void {
    void this.view?.webview.postMessage({ type: "history", turns: this.chats.current.turns });
  }

  /** The checkbox's label: the file that "attach current file" would send. */
  private showFile(): void {
    const doc = vscode.window.activeTextEditor?.document;
    void this.view?.webview.postMessage({ type: "file", name: doc ? vscode.workspace.asRelativePath(doc.uri) : "" });
  }

  /** Ask from a command ("Explain selection"…): the panel shows the question and the answer. */
  async ask(question: string, attachSelection: boolean): Promise<void> {
    await vscode.commands.executeCommand("vllmCompanion.chat.focus");
    await this.send(question, { file: true, selection: attachSelection });
  }

  private async onMessage(msg: {
    type: string; text?: string; attach?: boolean; attachFile?: boolean; code?: string;
  }): Promise<void> {
    if (msg.type === "send" && msg.text) {
      await this.send(msg.text, { file: msg.attachFile !== false, selection: Boolean(msg.attach) });
    } else if (msg.type === "stop") this.running?.cancel();
    else if (msg.type === "newChat") await this.newChat();
    else if (msg.type === "pickHistory") await this.pickConversation();
    else if (msg.type === "copy" && msg.code !== undefined) await vscode.env.clipboard.writeText(msg.code);
    else if (msg.type === "insert" && msg.code !== undefined) await insert(msg.code);
    else if (msg.type === "apply" && msg.code !== undefined) await this.apply(msg.code);
  }

  /** Apply: the code replaces the selection (or goes in at the cursor) through a diff to accept. */
  private async apply(code: string): Promise<void> {
    const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
    if (!editor) return;
    const { start, end } = editor.selection;
    const range = { start: { line: start.line, character: start.character }, end: { line: end.line, character: end.character } };
    const uri = editor.document.uri.toString();
    await this.previews.propose({ uri, version: editor.document.version, range, newText: code, title: "Apply from chat" });
  }

  private async send(text: string, attach: Attach): Promise<void> {
    const client = await this.companion.start();
    if (!client || !this.view) return;
    this.running?.cancel();
    await this.chats.load();
    const source = new vscode.CancellationTokenSource();
    this.running = source;
    const token = `chat-${Date.now()}`;
    const progress = client.onProgress(DELTA, token, (value) => {
      if (value?.delta) void this.view?.webview.postMessage({ type: "delta", text: value.delta });
    });
    const editor = vscode.window.activeTextEditor;
    const context: Record<string, unknown> = {};
    const attached: string[] = [];
    if (editor && attach.file) {
      context.currentFile = editor.document.uri.toString();
      attached.push(vscode.workspace.asRelativePath(editor.document.uri));
    }
    if (editor && attach.selection && !editor.selection.isEmpty) {
      context.selection = { uri: editor.document.uri.toString(), range: client.code2ProtocolConverter.asRange(editor.selection) };
      if (!attach.file) attached.push(`${vscode.workspace.asRelativePath(editor.document.uri)} (selection)`);
    }
    const question = this.chats.ask(text, attached);
    void this.view.webview.postMessage({ type: "start", question: text, attached });
    try {
      const result = await client.sendRequest<{ content: string; finishReason: string; excludedContext?: string[] }>(
        "vllmCompanion/chat",
        { messages: this.chats.messages(), context, partialResultToken: token },
        source.token,
      );
      await this.chats.answered(question, result, (uri) => vscode.workspace.asRelativePath(vscode.Uri.parse(uri)));
      void this.view.webview.postMessage({
        type: "done", content: result.content, finishReason: result.finishReason,
        attached: question.attached, excluded: question.excluded,
      });
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
<div class="row"><label title="Send the active editor's file with the question"><input type="checkbox" id="attachFile" checked> <span id="fileName">current file</span></label>
<label><input type="checkbox" id="attach" checked> selection</label></div>
<div class="row"><button type="button" id="history" title="Earlier conversations of this workspace">History</button>
<span class="spacer"></span><button type="button" id="clear" title="Start a new conversation (this one stays in the history)">New chat</button>
<button type="button" id="stop" disabled>Stop</button><button type="submit" id="send">Send</button></div></form>
<script nonce="${nonce}" src="${script}"></script></body></html>`;
  }
}

async function insert(code: string): Promise<void> {
  const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
  if (!editor) return;
  await editor.edit((edit) => edit.insert(editor.selection.active, code));
}
