// The chat panel's script (bundled into media/chat.js). Answers are rendered with the escaping
// renderer in ../markdown.ts: no HTML from the model reaches the DOM.
import { FrameBatcher } from "../frame";
import { codeBlocks, escapeHtml, renderMarkdown } from "../markdown";

declare function acquireVsCodeApi(): { postMessage(msg: unknown): void };
const vscode = acquireVsCodeApi();
const log = document.getElementById("log") as HTMLElement;
const form = document.getElementById("form") as HTMLFormElement;
const input = document.getElementById("input") as HTMLTextAreaElement;
const stop = document.getElementById("stop") as HTMLButtonElement;
const send = document.getElementById("send") as HTMLButtonElement;
const attach = document.getElementById("attach") as HTMLInputElement;
const clear = document.getElementById("clear") as HTMLButtonElement;

let answer = "";
let current: HTMLElement | null = null;
// Deltas arrive per token: render at most once per animation frame (a long answer re-rendered
// per token made the panel quadratic).
const frame = new FrameBatcher((cb) => requestAnimationFrame(cb));

function renderAnswer(): void {
  if (!current) return;
  current.dataset.markdown = answer;
  current.innerHTML = renderMarkdown(answer);
  current.scrollIntoView({ block: "end" });
}

function addTurn(role: "user" | "assistant", html: string): HTMLElement {
  const div = document.createElement("div");
  div.className = `turn ${role}`;
  div.innerHTML = html;
  log.appendChild(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function busy(on: boolean): void {
  stop.disabled = !on;
  send.disabled = on;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  vscode.postMessage({ type: "send", text, attach: attach.checked });
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    form.requestSubmit();
  }
});
stop.addEventListener("click", () => vscode.postMessage({ type: "stop" }));
clear.addEventListener("click", () => {
  log.innerHTML = "";
  vscode.postMessage({ type: "clear" });
});
log.addEventListener("click", (e) => {
  const button = (e.target as HTMLElement).closest("button[data-action]") as HTMLButtonElement | null;
  if (!button) return;
  const turn = button.closest(".turn.assistant") as HTMLElement | null;
  const blocks = codeBlocks(turn?.dataset.markdown ?? "");
  const block = blocks[Number(button.dataset.index)];
  if (block) vscode.postMessage({ type: button.dataset.action, code: block.code });
});

window.addEventListener("message", (event) => {
  const msg = event.data;
  if (msg.type === "start") {
    addTurn("user", `<p>${escapeHtml(msg.question)}</p>`);
    answer = "";
    current = addTurn("assistant", '<p class="pending">…</p>');
    busy(true);
  } else if (msg.type === "delta" && current) {
    answer += msg.text;
    frame.request(renderAnswer);
  } else if (msg.type === "done" && current) {
    frame.cancel();
    if (typeof msg.content === "string") answer = msg.content;
    current.dataset.markdown = answer;
    current.innerHTML = renderMarkdown(answer) || "<p></p>";
    if (msg.finishReason && msg.finishReason !== "stop") {
      const note = msg.finishReason === "error" ? `error: ${msg.error ?? ""}` : msg.finishReason;
      current.insertAdjacentHTML("beforeend", `<p class="note">(${escapeHtml(note)})</p>`);
    }
    current = null;
    busy(false);
    input.focus();
  } else if (msg.type === "history") {
    for (const t of msg.turns) {
      const div = addTurn(t.role, t.role === "user" ? `<p>${escapeHtml(t.content)}</p>` : renderMarkdown(t.content));
      div.dataset.markdown = t.content;
    }
  }
});
input.focus();
