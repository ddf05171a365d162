// Bundles the extension (CommonJS, vscode external) and the chat panel script.
import { build } from "esbuild";

await build({
  entryPoints: ["src/extension.ts"], bundle: true, platform: "node", format: "cjs", target: "node18",
  external: ["vscode"], outfile: "dist/extension.js", sourcemap: true, logLevel: "warning",
});
await build({
  entryPoints: ["src/webview/main.ts"], bundle: true, platform: "browser", format: "iife", target: "es2020",
  outfile: "media/chat.js", logLevel: "warning",
});
