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
const attachFile = document.getElementById("attachFile") as HTMLInputElement;
const fileName = document.getElementById("fileName") as HTMLElement;
const history = document.getElementById("history") as HTMLButtonElement;

interface Excluded {
  name: string;
  why: string;
}

/** Under a question: the files sent with it, and those the server left out (and why). */
function filesHtml(attached: unknown, excluded: unknown): string {
  const sent = Array.isArray(attached) ? attached.filter((n): n is string => typeof n === "string") : [];
  const left = Array.isArray(excluded) ? (excluded as Excluded[]).filter((e) => typeof e?.name === "string") : [];
  const parts: string[] = [];
  if (sent.length) parts.push(`attached: ${sent.map(escapeHtml).join(", ")}`);
  if (left.length) parts.push(`left out: ${left.map((e) => `${escapeHtml(e.name)} (${escapeHtml(String(e.why))})`).join(", ")}`);
  if (!sent.length && !left.length) parts.push("no files attached");
  return `<p class="files">${parts.join(" · ")}</p>`;
}

function questionHtml(text: string, attached: unknown, excluded: unknown): string {
  return `<p>${escapeHtml(text)}</p>${filesHtml(attached, excluded)}`;
}

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
  vscode.postMessage({ type: "send", text, attach: attach.checked, attachFile: attachFile.checked });
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    form.requestSubmit();
  }
});
stop.addEventListener("click", () => vscode.postMessage({ type: "stop" }));
clear.addEventListener("click", () => vscode.postMessage({ type: "newChat" }));
history.addEventListener("click", () => vscode.postMessage({ type: "pickHistory" }));
let question: HTMLElement | null = null;
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
    question = addTurn("user", questionHtml(msg.question, msg.attached, []));
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
    if (question && (msg.attached || msg.excluded)) question.innerHTML = questionHtml(question.querySelector("p")?.textContent ?? "", msg.attached, msg.excluded);
    current = null;
    question = null;
    busy(false);
    input.focus();
  } else if (msg.type === "history") {
    log.innerHTML = "";
    frame.cancel();
    current = null;
    question = null;
    busy(false);
    for (const t of msg.turns) {
      const div = addTurn(t.role, t.role === "user" ? questionHtml(t.content, t.attached, t.excluded) : renderMarkdown(t.content));
      div.dataset.markdown = t.content;
    }
  } else if (msg.type === "file") {
    const name = typeof msg.name === "string" ? msg.name : "";
    fileName.textContent = name ? `attach ${name}` : "attach current file (none open)";
    attachFile.disabled = !name;
  }
});
input.focus();
