// The model picker and the restart prompts, as pure functions (issue 23, item 9): tested in
// test/unit/models.test.ts; src/modelPicker.ts shows them with VS Code's API.
//
// vllmCompanion/models (docs/protocol.md) answers what the endpoint serves and, when the server
// launched the engine, the launch plan's other candidates. A served model is picked by setting
// backend.model in the *user's* settings (it is user-only: a folder cannot set it) and telling
// the server at once (vllmCompanion/didChangeModel, the user's own values, as
// initializationOptions are); an alternative sets engine.model, which needs the engine restarted.
import { type SettingsReader, USER_ONLY } from "./settings";

export const MODELS = "vllmCompanion/models";
export const DID_CHANGE_MODEL = "vllmCompanion/didChangeModel";

export interface ModelsAnswer {
  served?: Array<{ id?: unknown; maxModelLen?: unknown }>;
  current?: unknown;
  chatModel?: unknown;
  alternatives?: Array<{ model?: unknown; why?: unknown; needsRestart?: unknown }>;
  truncated?: unknown;
  error?: unknown;
}

export type PickAction =
  | { kind: "served"; model: string }
  | { kind: "alternative"; model: string }
  | { kind: "automatic" }
  | { kind: "none" };

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
  separator?: boolean;
  action: PickAction;
}

const MAX_ITEMS = 1000; // the server sends at most this many; a longer answer is not its
const text = (v: unknown, n = 256): string => (typeof v === "string" ? v.slice(0, n) : "");
/** A model id as the server sends it; a longer one is not a model (cutting it would name another). */
const modelId = (v: unknown): string => (typeof v === "string" && v.length <= 256 ? v : "");

/** The quick pick's items: served models (the current one marked), then the plan's alternatives
 * (each says it restarts the engine), then "automatic" when engine.model is set. */
export function pickItems(answer: ModelsAnswer, engineModel: string | undefined): PickItem[] {
  const current = modelId(answer.current);
  const items: PickItem[] = [{ label: "Served by the endpoint", separator: true, action: { kind: "none" } }];
  for (const m of (Array.isArray(answer.served) ? answer.served : []).slice(0, MAX_ITEMS)) {
    const id = modelId(m?.id);
    if (!id) continue;
    const context = typeof m.maxModelLen === "number" ? `${m.maxModelLen.toLocaleString("en-US")} tokens` : undefined;
    items.push({
      label: `${id === current ? "$(check) " : ""}${id}`,
      description: [id === current ? "in use" : "", context].filter(Boolean).join(" · ") || undefined,
      action: { kind: "served", model: id },
    });
  }
  if (items.length === 1) {
    const why = text(answer.error, 300) || "the endpoint lists no model";
    items.push({ label: "$(warning) No served models", detail: why, action: { kind: "none" } });
  }
  const alternatives = (Array.isArray(answer.alternatives) ? answer.alternatives : []).slice(0, MAX_ITEMS);
  const usable = alternatives.filter((a) => modelId(a?.model));
  if (usable.length > 0 || engineModel) {
    items.push({ label: "Other models for this machine (restarts the engine)", separator: true, action: { kind: "none" } });
  }
  for (const a of usable) {
    items.push({ label: modelId(a.model), detail: text(a.why, 300) || undefined, description: "restart",
      action: { kind: "alternative", model: modelId(a.model) } });
  }
  if (engineModel) {
    items.push({ label: "$(sparkle) Automatic: the plan's choice for this GPU", description: `now: ${engineModel}`,
      action: { kind: "automatic" } });
  }
  return items;
}

/** Settings the server reads only when it starts (user-only, sent as initializationOptions), and
 * those that choose the server itself. backend.model and chat.model reach the running server
 * (didChangeModel); the API key has its own command, which restarts. */
export const LIVE = ["backend.model", "chat.model"];
export const RESTART_KEYS = [
  "serverCommand", "pythonPath",
  ...USER_ONLY.filter((k) => !LIVE.includes(k) && k !== "backend.apiKey"),
];

/** The user's own values (never a folder's: a folder cannot set these) of ``keys``. */
export function userValues(settings: SettingsReader, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [k, JSON.stringify(settings.inspect<unknown>(k)?.globalValue ?? null)]));
}

/** The keys whose user value differs between two snapshots: a folder's edit to an ignored key
 * asks for no restart. */
export function changedKeys(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.keys(after).filter((k) => before[k] !== after[k]);
}

export function restartMessage(keys: string[]): string {
  const shown = keys.slice(0, 3).join(", ") + (keys.length > 3 ? ` and ${keys.length - 3} more` : "");
  const what = keys.some((k) => k.startsWith("engine.") || k === "backend.launch") ? "server and engine" : "server";
  return `vLLM Companion: changing ${shown} takes effect after restarting the ${what}.`;
}

/** didChangeModel's params: the user's own values (never a folder's), null when unset. */
export function modelParams(settings: SettingsReader): { backend: { model: string | null }; chat: { model: string | null } } {
  const own = (key: string) => {
    const value = settings.inspect<unknown>(key)?.globalValue;
    return typeof value === "string" && value ? value : null;
  };
  return { backend: { model: own("backend.model") }, chat: { model: own("chat.model") } };
}
