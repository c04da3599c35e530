#!/usr/bin/env bash
# Builds this plugin into {{name}}.wasm next to this script:
#   ./build.sh
# Installs componentize-js, pinned by package-lock.json, with `npm ci` when node_modules is
# missing or older than the lock.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$DIR"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  command -v npm >/dev/null || { echo "build.sh: npm not found: install Node.js 18+ with npm" >&2; exit 1; }
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs app.js wit/plugin.wit {{name}}.wasm
echo "built $DIR/{{name}}.wasm" >&2
