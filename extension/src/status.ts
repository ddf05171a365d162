// vllmCompanion/status → what the status bar shows. Pure: tested in test/unit/status.test.ts.

export interface ServerStatus {
  state?: string;
  model?: string;
  message?: string;
  engine?: string;
  latencyMs?: number;
  loopEvents?: number;
}

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

const ICONS: Record<string, string> = {
  starting: "$(loading~spin)",
  ready: "$(sparkle)",
  unavailable: "$(debug-disconnect)",
  error: "$(error)",
  disabled: "$(circle-slash)",
};

export function renderStatus(status: ServerStatus, paused: boolean): StatusView {
  const state = status.state ?? "starting";
  const icon = paused ? "$(debug-pause)" : (ICONS[state] ?? "$(question)");
  const model = status.model ? shortModel(status.model) : "";
  let text = `${icon} ${model || "vLLM"}`;
  if (state === "ready" && status.latencyMs !== undefined && !paused) {
    text += ` ${Math.round(status.latencyMs)} ms`;
  }
  const lines = [`vLLM Companion: ${paused ? "suggestions paused" : state}`];
  if (status.model) lines.push(`model: ${status.model}`);
  if (status.engine) lines.push(`engine: ${status.engine}`);
  if (status.message) lines.push(status.message);
  if (status.loopEvents) lines.push(`repetition loops stopped: ${status.loopEvents}`);
  return { text, tooltip: lines.join("\n"), error: state === "error" };
}

/** "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ" → "Qwen2.5-Coder-7B-Instruct-AWQ" */
export function shortModel(model: string): string {
  const last = model.split("/").pop() ?? model;
  return last.length > 32 ? `${last.slice(0, 31)}…` : last;
}
