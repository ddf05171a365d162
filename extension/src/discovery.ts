// Which command starts the language server, in this order (issue 23):
//   1. the vllmCompanion.serverCommand setting (user or machine scope: package.json restricts it);
//   2. the installation recorded by `vllm-companion editor install vscode`
//      ($XDG_CONFIG_HOME/vllm-companion/installation.json, written by server/vllm_companion/cli_editor.py);
//   3. `vllm-companion` on the PATH (absolute PATH entries only: a relative one would be the folder);
//   4. a Python interpreter (the pythonPath setting, then the Python extension's selected one),
//      each CHECKED to have the package (`python -c "import vllm_companion"`): a project's
//      virtualenv without it used to come before the PATH and break the start.
// The record is a file anyone's process could have planted, so it is read with checks: a plain
// file (no link), the user's own, not writable by others, at most MAX_RECORD_BYTES; its command
// an absolute path to an executable file owned by the user or root and not world-writable, its
// arguments strings. Anything else is ignored and the next step is tried. A file is only as safe as
// the folders above it: every folder above the record, the program (and what its link resolves to)
// and a PATH hit must be the user's or root's and closed to others (or sticky, like /tmp), else
// anyone could swap the checked file for their own between the check and the start.
// Python is always run with -P (3.11+, which the server requires): the server starts in the opened
// folder, and `-m`/`-c` would put it first on sys.path, so a repository's vllm_companion/ would run.
// File system and process spawning are injected: tested in test/unit/discovery.test.ts.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const MAX_RECORD_BYTES = 16 * 1024;
export const IMPORT_CHECK_MS = 15_000;
const MAX_ARGS = 64;
const MAX_ARG_CHARS = 4096;

export interface FileInfo {
  kind: "file" | "dir" | "link" | "other";
  mode: number;
  uid: number;
  size: number;
}

export interface DiscoveryDeps {
  env: Record<string, string | undefined>;
  home: string;
  uid: number;
  /** What is at `p`, links not followed (undefined: nothing, or unreadable). */
  lstat(p: string): FileInfo | undefined;
  /** What is at `p`, links followed. */
  stat(p: string): FileInfo | undefined;
  /** `p` with every link resolved (undefined: it does not resolve). */
  realpath(p: string): string | undefined;
  /** At most `limit` + 1 bytes of the plain file at `p`, never through a link. */
  read(p: string, limit: number): string | undefined;
  /** Runs a command; resolves true when it exits 0 within `timeoutMs`. */
  succeeds(command: string, args: string[], timeoutMs: number): Promise<boolean>;
}

export interface Found {
  command: string;
  args: string[];
  /** Which step chose it, for the log. */
  source: "setting" | "installation" | "path" | "pythonPath" | "python extension" | "fallback";
  /** What was passed over, and why (logged; named in the error when nothing starts). */
  skipped: string[];
}

export interface DiscoverySettings {
  serverCommand?: string[];
  pythonPath?: string;
}

export function installationPath(deps: Pick<DiscoveryDeps, "env" | "home">): string {
  const base = deps.env.XDG_CONFIG_HOME;
  const root = base && path.isAbsolute(base) ? base : path.join(deps.home, ".config");
  return path.join(root, "vllm-companion", "installation.json");
}

function trustedExecutable(info: FileInfo | undefined, uid: number): boolean {
  return !!info && info.kind === "file" && (info.mode & 0o111) !== 0 && (info.uid === uid || info.uid === 0)
    && (info.mode & 0o002) === 0;
}

/** Every folder from `p`'s parent up to / is the user's or root's, and closed to others unless sticky. */
export function safeFolders(p: string, deps: Pick<DiscoveryDeps, "stat" | "uid">): boolean {
  for (let dir = path.dirname(p); ; dir = path.dirname(dir)) {
    const d = deps.stat(dir);
    if (!d || d.kind !== "dir" || (d.uid !== deps.uid && d.uid !== 0)) return false;
    if ((d.mode & 0o022) !== 0 && (d.mode & 0o1000) === 0) return false;
    if (dir === path.dirname(dir)) return true;
  }
}

/** An absolute program that is trusted, in trusted folders, as is and with its links resolved. */
function trustedProgram(program: string, deps: DiscoveryDeps): boolean {
  const real = deps.realpath(program);
  return path.isAbsolute(program) && real !== undefined && trustedExecutable(deps.stat(program), deps.uid)
    && safeFolders(program, deps) && safeFolders(real, deps);
}

/** The recorded command, or the reason it cannot be used. */
export function readInstallation(deps: DiscoveryDeps): string[] | string {
  const file = installationPath(deps);
  const info = deps.lstat(file);
  if (!info) return `no installation record at ${file}`;
  if (info.kind !== "file" || info.uid !== deps.uid || (info.mode & 0o022) !== 0 || info.size > MAX_RECORD_BYTES
      || !safeFolders(file, deps)) {
    return `${file} ignored: not a plain file of yours, closed to others (and its folders), of at most ${MAX_RECORD_BYTES} bytes`;
  }
  const text = deps.read(file, MAX_RECORD_BYTES);
  let record: unknown;
  try {
    if (text === undefined || text.length > MAX_RECORD_BYTES) throw new Error("unreadable");
    record = JSON.parse(text);
  } catch {
    return `${file} ignored: not a readable JSON record`;
  }
  const command = (record as { command?: unknown } | null)?.command;
  if (!Array.isArray(command) || command.length === 0 || command.length > MAX_ARGS
      || !command.every((a) => typeof a === "string" && a.length > 0 && a.length <= MAX_ARG_CHARS)) {
    return `${file} ignored: its command is not a list of strings`;
  }
  const [program] = command as string[];
  if (!trustedProgram(program, deps)) {
    return `${file} ignored: ${program} is not an executable file of yours or root's, closed to others (and its folders)`;
  }
  return command as string[];
}

/** `name` in an absolute PATH entry, as an executable file of the user's or root's in folders closed to others
 * (a world-writable PATH entry such as /tmp, or a file others may write, is passed over). */
export function onPath(name: string, deps: DiscoveryDeps): string | undefined {
  for (const dir of (deps.env.PATH ?? "").split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    if (deps.stat(candidate) && trustedProgram(candidate, deps)) return candidate;
  }
  return undefined;
}

export async function findServer(
  settings: DiscoverySettings,
  pythonExtension: () => Promise<string | undefined>,
  deps: DiscoveryDeps,
): Promise<Found> {
  const skipped: string[] = [];
  const explicit = settings.serverCommand;
  if (explicit && explicit.length > 0) return { command: explicit[0], args: explicit.slice(1), source: "setting", skipped };
  const recorded = readInstallation(deps);
  if (typeof recorded !== "string") {
    return { command: recorded[0], args: recorded.slice(1), source: "installation", skipped };
  }
  skipped.push(recorded);
  const script = onPath("vllm-companion", deps);
  if (script) return { command: script, args: ["lsp"], source: "path", skipped };
  skipped.push("no vllm-companion on the PATH");
  const pythons: [Found["source"], () => Promise<string | undefined>][] = [
    ["pythonPath", async () => settings.pythonPath || undefined],
    ["python extension", pythonExtension],
  ];
  for (const [source, get] of pythons) {
    const python = await get();
    if (!python) continue;
    if (await deps.succeeds(python, ["-P", "-c", "import vllm_companion"], IMPORT_CHECK_MS)) {
      return { command: python, args: ["-P", "-m", "vllm_companion", "lsp"], source, skipped };
    }
    skipped.push(`${python} (${source}) has no vllm_companion package`);
  }
  return { command: "vllm-companion", args: ["lsp"], source: "fallback", skipped };
}

function info(s: fs.Stats): FileInfo {
  const kind = s.isFile() ? "file" : s.isDirectory() ? "dir" : s.isSymbolicLink() ? "link" : "other";
  return { kind, mode: s.mode & 0o7777, uid: s.uid, size: s.size };
}

function statOrUndefined(stat: () => fs.Stats): FileInfo | undefined {
  try {
    return info(stat());
  } catch {
    return undefined;
  }
}

/** The real file system and processes. */
export const nodeDeps = (): DiscoveryDeps => ({
  env: process.env,
  home: os.homedir(),
  uid: process.getuid?.() ?? -1,
  lstat: (p) => statOrUndefined(() => fs.lstatSync(p)),
  stat: (p) => statOrUndefined(() => fs.statSync(p)),
  realpath: (p) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return undefined;
    }
  },
  read: (p, limit) => {
    let fd: number | undefined;
    try {
      fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      if (!fs.fstatSync(fd).isFile()) return undefined;
      const buf = Buffer.alloc(limit + 1);
      const n = fs.readSync(fd, buf, 0, limit + 1, 0);
      return buf.subarray(0, n).toString("utf8");
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  },
  succeeds: (command, args, timeoutMs) =>
    new Promise((resolve) => {
      execFile(command, args, { timeout: timeoutMs, killSignal: "SIGKILL", windowsHide: true }, (err) => resolve(!err));
    }),
});
