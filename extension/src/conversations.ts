// The chat panel's conversations: the current one, the stored ones, New chat, Clear history.
// Pure (no vscode): tested in test/unit/conversations.test.ts; chatView.ts shows them and
// history.ts stores them (per workspace, 0600, bounded).
import { type Conversation, type Excluded, type HistoryStore, newId, type StoredTurn, titleOf } from "./history";

export interface ChatAnswer {
  content?: unknown;
  excludedContext?: unknown;
  excludedWhy?: unknown;
}

export class Conversations {
  private stored: Conversation[] = [];
  current: Conversation = empty();
  private loaded: Promise<void> | undefined;

  /** ``onError``: a write that failed (a full disk, a folder swapped for a file): said, not thrown. */
  constructor(
    private readonly store: HistoryStore,
    private readonly onError: (message: string) => void = () => undefined,
  ) {}

  /** The stored conversations once; the newest becomes the current one (the panel reopens it). */
  load(): Promise<void> {
    this.loaded ??= this.store.load().then((list) => {
      this.stored = list;
      if (this.current.turns.length === 0 && list.length > 0) this.current = list[0];
    });
    return this.loaded;
  }

  list(): Conversation[] {
    return [this.current, ...this.stored.filter((c) => c.id !== this.current.id)].filter((c) => c.turns.length > 0);
  }

  /** The messages the server gets: role and text only. */
  messages(): Array<{ role: "user" | "assistant"; content: string }> {
    return this.current.turns.map((t) => ({ role: t.role, content: t.content }));
  }

  ask(text: string, attached: string[]): StoredTurn {
    const turn: StoredTurn = { role: "user", content: text, attached };
    this.current.turns.push(turn);
    this.current.updated = Date.now();
    if (this.current.turns.length === 1) this.current.title = titleOf(this.current.turns);
    return turn;
  }

  /** The answer, and the files the server left out (named, with why) on the question's turn. */
  async answered(question: StoredTurn, answer: ChatAnswer, nameOf: (uri: string) => string): Promise<void> {
    const excluded = excludedFrom(answer, nameOf);
    if (excluded.length > 0) {
      question.excluded = excluded;
      const left = new Set(excluded.map((e) => e.name));
      question.attached = (question.attached ?? []).filter((name) => !left.has(name));
    }
    this.current.turns.push({ role: "assistant", content: typeof answer.content === "string" ? answer.content : "" });
    this.current.updated = Date.now();
    await this.save();
  }

  /** "New chat": the current conversation stays in the history; an empty one begins. */
  async newChat(): Promise<void> {
    await this.save();
    this.current = empty();
  }

  open(id: string): boolean {
    const found = this.list().find((c) => c.id === id);
    if (found) this.current = found;
    return found !== undefined;
  }

  /** "Clear chat history": every stored conversation and the current one. */
  async clear(): Promise<void> {
    this.stored = [];
    this.current = empty();
    await this.store.clear().catch((err) => this.onError(`could not remove the chat history: ${String(err)}`));
  }

  private async save(): Promise<void> {
    this.stored = this.list();
    try {
      await this.store.save(this.stored);
    } catch (err) {
      this.onError(`could not save the chat history: ${String(err)}`);
    }
  }
}

/** ``excludedContext`` (URIs) and ``excludedWhy`` (uri -> why) of a chat answer, as names. */
export function excludedFrom(answer: ChatAnswer, nameOf: (uri: string) => string): Excluded[] {
  const uris = Array.isArray(answer.excludedContext) ? answer.excludedContext : [];
  const why = typeof answer.excludedWhy === "object" && answer.excludedWhy !== null ? answer.excludedWhy : {};
  return uris
    .filter((u): u is string => typeof u === "string")
    .slice(0, 32)
    .map((uri) => {
      const reason = (why as Record<string, unknown>)[uri];
      return { name: nameOf(uri), why: typeof reason === "string" ? reason : "left out" };
    });
}

function empty(): Conversation {
  return { id: newId(), title: "", updated: Date.now(), turns: [] };
}
