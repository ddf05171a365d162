// Settings → the language server's initializationOptions (docs/configuration.md there).
// Pure: tested in test/unit/settings.test.ts.

export interface SettingsReader {
  get<T>(key: string): T | undefined;
  /** Where a value comes from (vscode.WorkspaceConfiguration.inspect). */
  inspect<T>(key: string): { defaultValue?: T; globalValue?: T; workspaceValue?: T; workspaceFolderValue?: T } | undefined;
}

export interface ServerOptions {
  backend: Record<string, unknown>;
  engine: Record<string, unknown>;
  completion: Record<string, unknown>;
  chat: Record<string, unknown>;
  log: Record<string, unknown>;
}

/** Settings a folder may tune, forwarded as VS Code merges them (the folder's value wins). */
const TUNABLE = [
  "completion.enabled", "completion.disabledLanguages", "completion.debounceMs", "completion.maxTokens",
  "chat.maxTokens", "chat.excludeGlobs",
];

/** Where code and keys go, and what runs, is the user's alone: only the user's own settings
 * (never a folder's .vscode/settings.json) set these, and every one of them is forwarded, so the
 * server, which drops them from the workspace/configuration answers it gets (a repository's),
 * still obeys the user (a user's `completion.telemetry: false` was dropped that way). The server's
 * table is server/vllm_companion/settings_trust.py USER_ONLY; package.json's
 * restrictedConfigurations lists the same keys; tests/adversarial/test_settings.py keeps the three
 * equal. `backend.apiKey` comes from SecretStorage only (see toServerOptions). */
export const USER_ONLY = [
  "backend.endpoint", "backend.model", "backend.apiKey", "backend.launch", "backend.headers",
  "completion.telemetry", "chat.model",
  "engine.kind", "engine.device", "engine.model", "engine.servedName", "engine.quantization", "engine.dtype",
  "engine.gpuMemoryUtilization", "engine.maxModelLen", "engine.maxNumSeqs", "engine.enforceEager",
  "engine.tensorParallel", "engine.inventory", "engine.replicas", "engine.workers", "engine.python", "engine.host",
  "engine.port", "engine.apiKey", "engine.command", "engine.keepAlive", "engine.readyTimeoutS", "engine.stallTimeoutS",
  "log.file",
];
/** What is never sent: a folder may add to the user's list, never take from it (a union). */
export const PRIVACY_LISTS = ["chat.excludeGlobs", "completion.disabledLanguages"];

export function isUserOnly(key: string): boolean {
  return USER_ONLY.includes(key);
}

/** The value the server gets: the user's own for user-only keys, every scope's items joined for
 * privacy lists, VS Code's merged value for the rest. */
function valueOf(settings: SettingsReader, key: string): unknown {
  if (isUserOnly(key)) {
    const where = settings.inspect<unknown>(key);
    return where?.globalValue ?? where?.defaultValue;
  }
  if (PRIVACY_LISTS.includes(key)) {
    const where = settings.inspect<unknown>(key);
    const scopes = [where?.globalValue, where?.workspaceValue, where?.workspaceFolderValue];
    const items = scopes.flatMap((v) => (Array.isArray(v) ? v : []));
    return items.length > 0 ? [...new Set(items)] : settings.get<unknown>(key);
  }
  return settings.get<unknown>(key);
}

/** Only values that are set go to the server: unset ones keep the server's documented defaults.
 * ``apiKey`` comes from VS Code's SecretStorage (command "vLLM Companion: Set API Key"). */
export function toServerOptions(settings: SettingsReader, apiKey?: string): ServerOptions {
  const out: ServerOptions = { backend: {}, engine: {}, completion: {}, chat: {}, log: {} };
  for (const path of [...TUNABLE, ...USER_ONLY]) {
    const [section, key] = path.split(".") as [keyof ServerOptions, string];
    const value = path === "backend.apiKey" ? apiKey : valueOf(settings, path);
    if (value !== undefined && value !== null && value !== "") {
      out[section][key] = value;
    }
  }
  return out;
}
