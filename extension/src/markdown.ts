// Model output → HTML for the chat webview, safely: everything is escaped first, then only the
// markup we generate ourselves (code blocks, inline code, bold, italics, lists, paragraphs,
// headings, links shown as text) is added. No HTML from the model ever reaches the DOM.
// Pure: tested in test/unit/markdown.test.ts.

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

export interface CodeBlock {
  language: string;
  code: string;
}

const FENCE = /^(`{3,}|~{3,})\s*([\w+#.-]*)[^\n]*$/;

/** Splits markdown into text and fenced code; an unterminated fence (still streaming) is code. */
export function splitBlocks(markdown: string): Array<{ kind: "text"; text: string } | ({ kind: "code" } & CodeBlock)> {
  const out: Array<{ kind: "text"; text: string } | ({ kind: "code" } & CodeBlock)> = [];
  const lines = markdown.split("\n");
  let text: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const open = FENCE.exec(lines[i]);
    if (!open) {
      text.push(lines[i]);
      i++;
      continue;
    }
    if (text.length) out.push({ kind: "text", text: text.join("\n") });
    text = [];
    const fence = open[1];
    const code: string[] = [];
    i++;
    while (i < lines.length && !lines[i].trim().startsWith(fence)) {
      code.push(lines[i]);
      i++;
    }
    i++; // the closing fence
    out.push({ kind: "code", language: open[2] || "", code: code.join("\n") });
  }
  if (text.length) out.push({ kind: "text", text: text.join("\n") });
  return out;
}

function inline(text: string): string {
  let html = escapeHtml(text);
  html = html.replace(/`([^`]+)`/g, "<code>$1</code>");
  html = html.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  html = html.replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
  // Links: shown as text with the address, never as clickable HTML from the model.
  // Link text excludes "[" so each "[" is tried once: linear ("[" x 20000 took 2.7 s before).
  html = html.replace(/\[([^[\]\n]{1,500})\]\(([^)\s]{1,2000})\)/g, "$1 ($2)");
  return html;
}

function renderText(text: string): string {
  const parts: string[] = [];
  for (const para of text.split(/\n{2,}/)) {
    const lines = para.split("\n").filter((l) => l.trim() !== "");
    if (!lines.length) continue;
    if (lines.every((l) => /^\s*([-*]|\d+\.)\s+/.test(l))) {
      const ordered = /^\s*\d+\./.test(lines[0]);
      const items = lines.map((l) => `<li>${inline(l.replace(/^\s*([-*]|\d+\.)\s+/, ""))}</li>`).join("");
      parts.push(ordered ? `<ol>${items}</ol>` : `<ul>${items}</ul>`);
    } else if (/^#{1,6}\s/.test(lines[0]) && lines.length === 1) {
      parts.push(`<h4>${inline(lines[0].replace(/^#{1,6}\s+/, ""))}</h4>`);
    } else {
      parts.push(`<p>${lines.map(inline).join("<br>")}</p>`);
    }
  }
  return parts.join("");
}

/** The whole answer as HTML; code blocks carry an index for the Copy / Insert / Apply buttons. */
export function renderMarkdown(markdown: string): string {
  let index = 0;
  return splitBlocks(markdown)
    .map((block) => {
      if (block.kind === "text") return renderText(block.text);
      const i = index++;
      const lang = escapeHtml(block.language);
      return (
        `<div class="code" data-index="${i}"><div class="code-bar"><span>${lang}</span>` +
        `<button data-action="copy" data-index="${i}">Copy</button>` +
        `<button data-action="insert" data-index="${i}">Insert</button>` +
        `<button data-action="apply" data-index="${i}">Apply</button></div>` +
        `<pre><code>${escapeHtml(block.code)}</code></pre></div>`
      );
    })
    .join("");
}

export function codeBlocks(markdown: string): CodeBlock[] {
  return splitBlocks(markdown)
    .filter((b): b is { kind: "code" } & CodeBlock => b.kind === "code")
    .map(({ language, code }) => ({ language, code }));
}
