import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type DiscoveryDeps, type FileInfo, findServer, MAX_RECORD_BYTES, nodeDeps, readInstallation,
} from "../../src/discovery";

const ME = 1000;
const RECORD = "/home/me/.config/vllm-companion/installation.json";
const VENV_PYTHON = "/home/me/vllm-companion/.venv/bin/python";
const SERVER = [VENV_PYTHON, "-P", "-m", "vllm_companion", "lsp"];

const file = (over: Partial<FileInfo> = {}): FileInfo => ({ kind: "file", mode: 0o600, uid: ME, size: 100, ...over });
const exe = (over: Partial<FileInfo> = {}): FileInfo => file({ mode: 0o755, ...over });

interface World {
  files?: Record<string, FileInfo>;
  contents?: Record<string, string>;
  /** Interpreters that have the package. */
  withPackage?: string[];
  env?: Record<string, string>;
  /** What a link resolves to (realpath); others resolve to themselves. */
  links?: Record<string, string>;
}

const ROOT_DIR: FileInfo = { kind: "dir", mode: 0o755, uid: 0, size: 0 };

/** A file system and a process runner made of plain data; `ran` lists what was spawned. */
function world(w: World): DiscoveryDeps & { ran: string[] } {
  const files = w.files ?? {};
  const ran: string[] = [];
  return {
    env: w.env ?? { PATH: "/usr/bin" },
    home: "/home/me",
    uid: ME,
    ran,
    lstat: (p) => files[p],
    // A folder not listed is root's 0755 when something lies below it.
    stat: (p) => (files[p]?.kind === "link" ? files[`${p}->`] : files[p])
      ?? (Object.keys(files).some((f) => p === "/" || f.startsWith(`${p}/`)) ? ROOT_DIR : undefined),
    realpath: (p) => w.links?.[p] ?? p,
    read: (p, limit) => (files[p]?.kind === "file" ? w.contents?.[p]?.slice(0, limit + 1) : undefined),
    succeeds: async (command, args) => {
      ran.push([command, ...args].join(" "));
      return (w.withPackage ?? []).includes(command);
    },
  };
}

const recorded = (text = JSON.stringify({ format: 1, version: "0.1.0", command: SERVER })): World => ({
  files: { [RECORD]: file({ size: text.length }), [VENV_PYTHON]: exe({ uid: 0 }) },
  contents: { [RECORD]: text },
});

const noPython = async () => undefined;

describe("the order in which the server is found", () => {
  it("takes the serverCommand setting first", async () => {
    const found = await findServer({ serverCommand: ["/opt/x", "lsp"] }, noPython, world(recorded()));
    expect(found).toMatchObject({ command: "/opt/x", args: ["lsp"], source: "setting" });
  });

  it("then the installation recorded by `vllm-companion editor install vscode`, before the PATH", async () => {
    const w = recorded();
    w.files!["/usr/bin/vllm-companion"] = exe();
    const found = await findServer({}, noPython, world(w));
    expect(found).toMatchObject({ command: VENV_PYTHON, args: ["-P", "-m", "vllm_companion", "lsp"], source: "installation" });
  });

  it("then vllm-companion on the PATH, before any Python interpreter", async () => {
    const deps = world({ files: { "/usr/local/bin/vllm-companion": exe() }, env: { PATH: "/usr/bin:/usr/local/bin" },
      withPackage: ["/proj/.venv/bin/python"] });
    const found = await findServer({ pythonPath: "/proj/.venv/bin/python" }, noPython, deps);
    expect(found).toMatchObject({ command: "/usr/local/bin/vllm-companion", args: ["lsp"], source: "path" });
    expect(deps.ran).toEqual([]); // no interpreter was even asked
  });

  it("skips a relative PATH entry (it would be the opened folder's file)", async () => {
    const deps = world({ files: { "bin/vllm-companion": exe() }, env: { PATH: "bin:." } });
    expect((await findServer({}, noPython, deps)).source).toBe("fallback");
  });

  it("passes over a project virtualenv without the package (the Python extension's interpreter)", async () => {
    const deps = world({ withPackage: ["/usr/bin/python3"] });
    const found = await findServer({ pythonPath: "/usr/bin/python3" }, async () => "/proj/.venv/bin/python", deps);
    expect(found).toMatchObject({ command: "/usr/bin/python3", source: "pythonPath" });
    const without = await findServer({}, async () => "/proj/.venv/bin/python", world({}));
    expect(without.source).toBe("fallback");
    expect(without.skipped.join("\n")).toContain("/proj/.venv/bin/python (python extension) has no vllm_companion");
  });

  it("uses the Python extension's interpreter once it is checked to have the package", async () => {
    const deps = world({ withPackage: ["/proj/.venv/bin/python"] });
    const found = await findServer({ pythonPath: "/usr/bin/python3" }, async () => "/proj/.venv/bin/python", deps);
    expect(found).toMatchObject({ command: "/proj/.venv/bin/python", source: "python extension" });
    expect(deps.ran).toEqual(["/usr/bin/python3 -P -c import vllm_companion", "/proj/.venv/bin/python -P -c import vllm_companion"]);
  });

  it("reads the record under $XDG_CONFIG_HOME when that is absolute", async () => {
    const w = recorded();
    const xdg = "/xdg/vllm-companion/installation.json";
    w.files![xdg] = w.files![RECORD];
    w.contents![xdg] = w.contents![RECORD];
    delete w.files![RECORD];
    w.env = { XDG_CONFIG_HOME: "/xdg" };
    expect((await findServer({}, noPython, world(w))).source).toBe("installation");
    w.env = { XDG_CONFIG_HOME: "relative" };
    expect((await findServer({}, noPython, world(w))).source).toBe("fallback");
  });
});

describe("an installation record that cannot be trusted is ignored", () => {
  const ignored = (w: World) => expect(typeof readInstallation(world(w))).toBe("string");

  it("a link at the record's place", () => {
    const w = recorded();
    w.files![RECORD] = file({ kind: "link", mode: 0o777 });
    ignored(w);
  });

  it("another user's record, or one others may write", () => {
    for (const over of [{ uid: 1001 }, { uid: 0 }, { mode: 0o622 }, { mode: 0o660 }]) {
      const w = recorded();
      w.files![RECORD] = file(over);
      ignored(w);
    }
  });

  it("a huge record (by its size, or by what is read)", () => {
    const w = recorded();
    w.files![RECORD] = file({ size: MAX_RECORD_BYTES + 1 });
    ignored(w);
    const big = JSON.stringify({ command: SERVER, pad: "x".repeat(MAX_RECORD_BYTES) });
    ignored({ ...recorded(big), files: { [RECORD]: file(), [VENV_PYTHON]: exe() } }); // grew after the lstat
  });

  it("garbage, or a command that is not a list of strings", () => {
    for (const text of ["\u0000\u00ff not json", "null", "[]", "{}", '{"command": "/bin/sh -c x"}', '{"command": []}',
      JSON.stringify({ command: [VENV_PYTHON, 7] }), JSON.stringify({ command: [VENV_PYTHON, ""] })]) {
      ignored(recorded(text));
    }
  });

  it("a command that is relative, missing, not executable, someone else's or world-writable", () => {
    for (const [program, info] of [["python3", exe()], ["/nowhere/python", undefined], [VENV_PYTHON, file()],
      [VENV_PYTHON, exe({ uid: 1001 })], [VENV_PYTHON, exe({ mode: 0o777 })], [VENV_PYTHON, exe({ kind: "dir" })]] as const) {
      const w = recorded(JSON.stringify({ command: [program, "-m", "vllm_companion", "lsp"] }));
      if (info) w.files![program] = info;
      else delete w.files![VENV_PYTHON];
      ignored(w);
    }
  });

  it("follows the interpreter's link (a virtualenv's python) to a root-owned binary", () => {
    const w = recorded();
    w.files![VENV_PYTHON] = file({ kind: "link", mode: 0o777 });
    w.files![`${VENV_PYTHON}->`] = exe({ uid: 0 });
    expect(readInstallation(world(w))).toEqual(SERVER);
  });
});

describe("nothing but the user chooses the program", () => {
  const dir = (over: Partial<FileInfo> = {}): FileInfo => ({ ...ROOT_DIR, ...over });

  it("never imports a vllm_companion planted in the opened folder (python runs with -P: no cwd on sys.path)", async () => {
    const deps = world({ withPackage: ["/proj/.venv/bin/python"] });
    const found = await findServer({}, async () => "/proj/.venv/bin/python", deps);
    expect(found.args).toEqual(["-P", "-m", "vllm_companion", "lsp"]);
    expect(deps.ran).toEqual(["/proj/.venv/bin/python -P -c import vllm_companion"]);
  });

  it("ignores a record in a folder others may write (they could swap it between the check and the read)", () => {
    const w = recorded();
    w.files!["/home/me/.config/vllm-companion"] = dir({ uid: ME, mode: 0o777 });
    expect(typeof readInstallation(world(w))).toBe("string");
    w.files!["/home/me/.config/vllm-companion"] = dir({ uid: 1001, mode: 0o700 });
    expect(typeof readInstallation(world(w))).toBe("string");
    w.files!["/home/me/.config/vllm-companion"] = dir({ uid: ME, mode: 0o700 });
    expect(readInstallation(world(w))).toEqual(SERVER);
  });

  it("ignores a recorded program in a folder others may write, or whose link resolves into one", () => {
    const w = recorded();
    w.files!["/home/me/vllm-companion/.venv/bin"] = dir({ uid: 1001 });
    expect(typeof readInstallation(world(w))).toBe("string");
    w.files!["/home/me/vllm-companion/.venv/bin"] = dir({ mode: 0o777 });
    expect(typeof readInstallation(world(w))).toBe("string");
    const linked = recorded();
    linked.files!["/shared/python"] = exe({ uid: ME });
    linked.files!["/shared"] = dir({ mode: 0o777 });
    linked.links = { [VENV_PYTHON]: "/shared/python" };
    expect(typeof readInstallation(world(linked))).toBe("string");
    linked.files!["/shared"] = dir({ mode: 0o1777 }); // sticky, like /tmp: only the owner may replace it
    expect(readInstallation(world(linked))).toEqual(SERVER);
  });

  it("passes over vllm-companion in a world-writable PATH entry, or someone else's", async () => {
    const deps = world({ files: { "/tmp/bin/vllm-companion": exe({ uid: 1001 }), "/tmp/bin": dir({ mode: 0o1777 }),
      "/scratch/vllm-companion": exe(), "/scratch": dir({ mode: 0o777 }) }, env: { PATH: "/tmp/bin:/scratch" } });
    const found = await findServer({}, noPython, deps);
    expect(found.source).toBe("fallback");
  });
});

describe("the real file system (nodeDeps)", () => {
  it("reads a 0600 record of the user's and refuses the same record through a link", async () => {
    const root = mkdtempSync(join(tmpdir(), "discovery-"));
    try {
      mkdirSync(join(root, "vllm-companion"), { mode: 0o700 });
      const record = join(root, "vllm-companion", "installation.json");
      writeFileSync(record, JSON.stringify({ command: [process.execPath, "lsp"] }), { mode: 0o600 });
      const deps = { ...nodeDeps(), env: { XDG_CONFIG_HOME: root } };
      expect(readInstallation(deps)).toEqual([process.execPath, "lsp"]);
      chmodSync(record, 0o666);
      expect(typeof readInstallation(deps)).toBe("string");
      chmodSync(record, 0o600);
      const elsewhere = join(root, "elsewhere.json");
      writeFileSync(elsewhere, JSON.stringify({ command: [process.execPath, "lsp"] }), { mode: 0o600 });
      rmSync(record);
      symlinkSync(elsewhere, record);
      expect(typeof readInstallation(deps)).toBe("string");
      expect(deps.read(record, 100)).toBeUndefined(); // O_NOFOLLOW
      expect(await deps.succeeds(process.execPath, ["-e", "process.exit(3)"], 5000)).toBe(false);
      expect(await deps.succeeds(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], 200)).toBe(false);
      expect(await deps.succeeds(process.execPath, ["-e", ""], 5000)).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
