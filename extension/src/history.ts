// Chat history, per workspace, on this machine only (issue 23, item 10). Pure Node (no vscode):
// tested in test/unit/history.test.ts.
//
// Where: one JSON file in VS Code's ExtensionContext.storageUri, the folder VS Code keeps for
// this extension and this workspace (~/.config/Code/User/workspaceStorage/<id>/<extension>/),
// created here if missing (0700), the file 0600. No workspace: no history (nothing is written).
// What: each conversation's turns as shown: the user's message as typed (the user's own words,
// on the user's own machine, where VS Code already keeps unsaved files' text for hot exit; the
// server redacts inline secrets on the way to the model, every time they are sent), the answer,
// and for each question the *names* of the files attached and left out (never their text: a
// secret file's content is never stored, and the server refuses to send it anyway).
// Bounds, on write and on read: at most MAX_CONVERSATIONS (the newest), each at most
// MAX_CONVERSATION_BYTES (its oldest turns dropped first), a turn's text at most MAX_TURN_CHARS;
// a file over MAX_FILE_BYTES, not a regular file, a symlink (lstat + O_NOFOLLOW, and the opened
// descriptor must be the file checked), or not the expected shape is ignored (never followed,
// never thrown at the user). Writes go to a fresh 0600 file (O_EXCL|O_NOFOLLOW) renamed over the
// old one: a link planted at the file's name is replaced, never written through.
import { randomBytes } from "node:crypto";
import { constants, promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import * as path from "node:path";

export const MAX_CONVERSATIONS = 50;
export const MAX_CONVERSATION_BYTES = 128 * 1024;
export const MAX_TURN_CHARS = 32 * 1024;
export const MAX_FILE_BYTES = 8 * 1024 * 1024; // 50 x 128 KiB with room; refused above
export const MAX_NAMES = 32; // attached or left-out files shown per question
export const FILE_NAME = "chat-history.json";
const VERSION = 1;

export interface Excluded {
  name: string;
  why: string;
}

export interface StoredTurn {
  role: "user" | "assistant";
  content: string;
  attached?: string[]; // user turns: files sent with the question (names relative to the workspace)
  excluded?: Excluded[]; // user turns: files the server left out, and why
}

export interface Conversation {
  id: string;
  title: string;
  updated: number; // ms since the epoch
  turns: StoredTurn[];
}

export class HistoryStore {
  readonly file: string | undefined;

  /** ``dir``: ExtensionContext.storageUri's path, undefined without a workspace (no history). */
  constructor(private readonly dir: string | undefined) {
    this.file = dir ? path.join(dir, FILE_NAME) : undefined;
  }

  /** The stored conversations, newest first; [] for a missing, oversize, linked or corrupt file. */
  async load(): Promise<Conversation[]> {
    if (!this.file) return [];
    const text = await readBounded(this.file);
    if (text === undefined) return [];
    try {
      return bound(parse(JSON.parse(text)));
    } catch {
      return [];
    }
  }

  /** Replace the stored conversations (bounded first); false when there is nowhere to write. */
  async save(conversations: Conversation[]): Promise<boolean> {
    if (!this.dir || !this.file) return false;
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const info = await fs.lstat(this.dir);
    if (!info.isDirectory()) throw new Error(`${this.dir} is not a folder`);
    const data = JSON.stringify({ version: VERSION, conversations: bound(conversations) });
    const temp = path.join(this.dir, `.${FILE_NAME}.${process.pid}.${randomBytes(6).toString("hex")}`);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const handle = await fs.open(temp, flags, 0o600);
    try {
      await handle.writeFile(data, "utf8");
      await handle.chmod(0o600); // whatever the umask said
    } finally {
      await handle.close();
    }
    await fs.rename(temp, this.file).catch(async (err) => {
      await fs.rm(temp, { force: true });
      throw err;
    });
    return true;
  }

  /** "Clear chat history": the file is removed (a link at its name too, not what it points to). */
  async clear(): Promise<void> {
    if (this.file) await fs.rm(this.file, { force: true });
  }
}

/** The file's text if it is a regular file (not a link) of at most MAX_FILE_BYTES, else undefined. */
async function readBounded(file: string): Promise<string | undefined> {
  let handle: FileHandle | undefined;
  try {
    const before = await fs.lstat(file);
    if (!before.isFile() || before.size > MAX_FILE_BYTES) return undefined;
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const opened = await handle.stat();
    if (!opened.isFile() || opened.ino !== before.ino || opened.dev !== before.dev || opened.size > MAX_FILE_BYTES) {
      return undefined;
    }
    const buffer = Buffer.alloc(opened.size + 1); // one more: a file that grew since is refused
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return bytesRead > opened.size ? undefined : buffer.subarray(0, bytesRead).toString("utf8");
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

/** The stored shape, item by item: what does not fit it is dropped, not the whole file. */
export function parse(data: unknown): Conversation[] {
  const list = isObject(data) && data.version === VERSION ? data.conversations : undefined;
  if (!Array.isArray(list)) return [];
  const out: Conversation[] = [];
  for (const item of list.slice(0, MAX_CONVERSATIONS)) {
    if (!isObject(item) || typeof item.id !== "string" || !Array.isArray(item.turns)) continue;
    const turns = item.turns.map(parseTurn).filter((t): t is StoredTurn => t !== undefined);
    const updated = typeof item.updated === "number" && Number.isFinite(item.updated) ? item.updated : 0;
    const title = typeof item.title === "string" ? item.title : titleOf(turns);
    out.push({ id: item.id.slice(0, 64), title: title.slice(0, 200), updated, turns });
  }
  return out;
}

function parseTurn(raw: unknown): StoredTurn | undefined {
  if (!isObject(raw) || (raw.role !== "user" && raw.role !== "assistant") || typeof raw.content !== "string") {
    return undefined;
  }
  const turn: StoredTurn = { role: raw.role, content: raw.content };
  if (Array.isArray(raw.attached)) turn.attached = raw.attached.filter((n): n is string => typeof n === "string");
  if (Array.isArray(raw.excluded)) {
    turn.excluded = raw.excluded.filter(
      (e): e is Excluded => isObject(e) && typeof e.name === "string" && typeof e.why === "string",
    );
  }
  return turn;
}

/** Newest first, at most MAX_CONVERSATIONS, each within its byte and character caps. */
export function bound(conversations: Conversation[]): Conversation[] {
  return [...conversations]
    .filter((c) => c.turns.length > 0)
    .sort((a, b) => b.updated - a.updated)
    .slice(0, MAX_CONVERSATIONS)
    .map(boundOne)
    .filter((c) => c.turns.length > 0);
}

function boundOne(c: Conversation): Conversation {
  const turns = c.turns.map(boundTurn);
  while (turns.length > 0 && Buffer.byteLength(JSON.stringify(turns)) > MAX_CONVERSATION_BYTES) {
    turns.splice(0, turns[0].role === "user" && turns.length > 1 ? 2 : 1); // a question with its answer
  }
  return { id: c.id.slice(0, 64), title: c.title.slice(0, 200), updated: c.updated, turns };
}

function boundTurn(t: StoredTurn): StoredTurn {
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…` : s);
  const out: StoredTurn = { role: t.role, content: cut(t.content, MAX_TURN_CHARS) };
  if (t.attached?.length) out.attached = t.attached.slice(0, MAX_NAMES).map((n) => cut(n, 512));
  if (t.excluded?.length) {
    out.excluded = t.excluded.slice(0, MAX_NAMES).map((e) => ({ name: cut(e.name, 512), why: cut(e.why, 300) }));
  }
  return out;
}

/** A conversation's title: its first question's first line, shortened. */
export function titleOf(turns: StoredTurn[]): string {
  const first = turns.find((t) => t.role === "user")?.content.trim().split("\n")[0] ?? "";
  return first.length > 80 ? `${first.slice(0, 79)}…` : first || "(empty)";
}

export function newId(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
