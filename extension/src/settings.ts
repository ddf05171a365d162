// Settings → the language server's initializationOptions (docs/configuration.md there).
// Pure: tested in test/unit/settings.test.ts.
import {
  BOUNDED_TUNABLE, FORWARDED_TUNABLE, PRIVACY_LISTS, USER_ONLY, WORKSPACE_GLOB_STARS, WORKSPACE_ITEM_MAX, WORKSPACE_LIST_MAX,
} from "./generated/settingsKeys";

export interface SettingsReader {
  get<T>(key: string): T | undefined;
  /** Where a value comes from (vscode.WorkspaceConfiguration.inspect). */
  inspect<T>(key: string): { defaultValue?: T; globalValue?: T; workspaceValue?: T; workspaceFolderValue?: T } | undefined;
}

/** The server's sections (config.py); a section added there arrives with its generated keys. */
export type ServerOptions = Record<string, Record<string, unknown>>;

/** Where code and keys go, and what runs, is the user's alone: only the user's own settings
 * (never a folder's .vscode/settings.json) set the USER_ONLY keys, and every one of them is
 * forwarded, so the server, which drops them from the workspace/configuration answers it gets (a
 * repository's), still obeys the user (a user's `completion.telemetry: false` was dropped that
 * way). The lists are generated from server/vllm_companion/settings_trust.py into
 * ./generated/settingsKeys.ts by scripts/gen_extension_config.py (which also makes these keys
 * machine-scoped and restricted in package.json); tests/unit/test_extension_config.py fails when
 * they are stale. `backend.apiKey` comes from SecretStorage only (see toServerOptions). */
export { FORWARDED_TUNABLE, PRIVACY_LISTS, USER_ONLY };

export function isUserOnly(key: string): boolean {
  return USER_ONLY.includes(key);
}

/** Off when the user or the folder switched it off: a folder may switch a feature off, never on
 * against the user (settings_trust.OFF_ONLY; VS Code's merged value lets the folder's win). */
export function isSwitchedOff(settings: SettingsReader, key: string): boolean {
  return settings.get<unknown>(key) === false || settings.inspect<unknown>(key)?.globalValue === false;
}

/** What a folder may add to a privacy list, bounded as the server bounds a workspace's additions
 * (settings_trust._additions): these arrive as initializationOptions, which the server takes as
 * the user's own and does not bound, so 10,000 globs of 4,000 characters would cost it minutes
 * of fnmatch compilation. */
function folderAdditions(values: unknown[], globs: boolean): string[] {
  const items = values.flatMap((v) => (Array.isArray(v) ? v : [])).slice(0, WORKSPACE_LIST_MAX);
  return items.filter((v): v is string => typeof v === "string" && v.length <= WORKSPACE_ITEM_MAX
    && !(globs && v.split("*").length - 1 > WORKSPACE_GLOB_STARS));
}

/** The value the server gets: the user's own for user-only keys and for the tunables the server
 * bounds by the user's value (a folder's value reaches it through workspace/configuration, where
 * it is bounded; sent here it would be taken as the user's and bound nothing), every scope's
 * items joined for privacy lists, VS Code's merged value for the rest. */
function valueOf(settings: SettingsReader, key: string): unknown {
  if (isUserOnly(key)) {
    const where = settings.inspect<unknown>(key);
    return where?.globalValue ?? where?.defaultValue;
  }
  if (BOUNDED_TUNABLE.includes(key)) return settings.inspect<unknown>(key)?.globalValue;
  if (PRIVACY_LISTS.includes(key)) {
    const where = settings.inspect<unknown>(key);
    const globs = key === "chat.excludeGlobs";
    const mine = Array.isArray(where?.globalValue) ? where.globalValue : [];
    const folders = folderAdditions([where?.workspaceValue, where?.workspaceFolderValue], globs);
    const items = [...mine, ...folders];
    return items.length > 0 ? [...new Set(items)] : where?.defaultValue;
  }
  return settings.get<unknown>(key);
}

/** Only values that are set go to the server: unset ones keep the server's documented defaults.
 * ``apiKey`` comes from VS Code's SecretStorage (command "vLLM Companion: Set API Key"). */
export function toServerOptions(settings: SettingsReader, apiKey?: string): ServerOptions {
  const out: ServerOptions = { backend: {}, engine: {}, completion: {}, chat: {}, log: {} };
  for (const path of [...FORWARDED_TUNABLE, ...USER_ONLY]) {
    const [section, key] = path.split(".") as [string, string];
    const value = path === "backend.apiKey" ? apiKey : valueOf(settings, path);
    if (value !== undefined && value !== null && value !== "") {
      (out[section] ??= {})[key] = value;
    }
  }
  return out;
}
