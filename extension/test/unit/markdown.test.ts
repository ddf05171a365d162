import { describe, expect, it } from "vitest";
import { codeBlocks, renderMarkdown } from "../../src/markdown";

describe("renderMarkdown", () => {
  it("never lets HTML from the model through", () => {
    const html = renderMarkdown('<img src=x onerror="alert(1)"> <script>alert(2)</script> **bold**');
    expect(html).not.toContain("<img");
    expect(html).not.toContain("<script");
    expect(html).toContain("&lt;script&gt;");
    expect(html).toContain("<strong>bold</strong>");
  });
  it("escapes inside code blocks and inline code", () => {
    const html = renderMarkdown("`<b>x</b>`\n\n```html\n<div onclick=\"x()\">hi</div>\n```");
    expect(html).toContain("<code>&lt;b&gt;x&lt;/b&gt;</code>");
    expect(html).toContain("&lt;div onclick=&quot;x()&quot;&gt;hi&lt;/div&gt;");
    expect(html).not.toContain("<div onclick");
  });
  it("stays linear on hostile input (no regex backtracking blow-up)", () => {
    for (const evil of ["[".repeat(20000), "[a](".repeat(5000), "*a".repeat(20000), "`".repeat(20000) + "x"]) {
      const t0 = performance.now();
      renderMarkdown(evil);
      expect(performance.now() - t0).toBeLessThan(250);
    }
  });
  it("does not turn links into anchors (no javascript: URLs)", () => {
    const html = renderMarkdown("[click](javascript:alert(1))");
    expect(html).not.toContain("<a");
    expect(html).toContain("click (javascript:alert(1))");
  });
  it("renders code blocks with buttons, lists and paragraphs, also while streaming", () => {
    const md = "Steps:\n\n1. one\n2. two\n\n```python\nprint('hi')\n```\n\n```js\nlet x";
    const html = renderMarkdown(md);
    expect(html).toContain("<ol><li>one</li><li>two</li></ol>");
    expect(html).toContain('data-action="copy" data-index="0"');
    expect(html).toContain('data-index="1"');
    expect(codeBlocks(md)).toEqual([{ language: "python", code: "print('hi')" }, { language: "js", code: "let x" }]);
  });
});
