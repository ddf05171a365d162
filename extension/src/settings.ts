// Settings → the language server's initializationOptions (docs/configuration.md there).
// Pure: tested in test/unit/settings.test.ts.

export interface SettingsReader {
  get<T>(key: string): T | undefined;
}

export interface ServerOptions {
  backend: Record<string, unknown>;
  engine: Record<string, unknown>;
  completion: Record<string, unknown>;
  chat: Record<string, unknown>;
}

const SECTIONS: Record<keyof ServerOptions, string[]> = {
  backend: ["launch", "endpoint", "model"], // the API key comes from SecretStorage, never settings
  engine: ["model", "kind"],
  completion: ["enabled", "disabledLanguages", "debounceMs", "maxTokens"],
  chat: ["model", "maxTokens", "excludeGlobs"],
};

/** Only values that are set go to the server: unset ones keep the server's documented defaults.
 * ``apiKey`` comes from VS Code's SecretStorage (command "vLLM Companion: Set API Key"). */
export function toServerOptions(settings: SettingsReader, apiKey?: string): ServerOptions {
  const out: ServerOptions = { backend: {}, engine: {}, completion: {}, chat: {} };
  if (apiKey) out.backend.apiKey = apiKey;
  for (const [section, keys] of Object.entries(SECTIONS) as [keyof ServerOptions, string[]][]) {
    for (const key of keys) {
      const value = settings.get<unknown>(`${section}.${key}`);
      if (value !== undefined && value !== null && value !== "") {
        out[section][key] = value;
      }
    }
  }
  return out;
}

/** How to start the server: explicit command, then a Python interpreter, then PATH. */
export function serverCommand(
  explicit: string[] | undefined,
  pythonPath: string | undefined,
  pythonExtensionInterpreter: string | undefined,
): { command: string; args: string[] } {
  if (explicit && explicit.length > 0) {
    return { command: explicit[0], args: explicit.slice(1) };
  }
  const python = pythonPath || pythonExtensionInterpreter;
  if (python) {
    return { command: python, args: ["-m", "vllm_companion", "lsp"] };
  }
  return { command: "vllm-companion", args: ["lsp"] };
}
