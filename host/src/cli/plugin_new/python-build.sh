#!/usr/bin/env bash
# Builds this plugin into {{name}}.wasm next to this script:
#   ./build.sh
# Installs componentize-py, pinned with hashes in requirements.txt, into .venv when it is
# missing (GANNET_PYTHON_VENV names another venv to use or create).
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${GANNET_PYTHON_VENV:-$DIR/.venv}"
if [ ! -x "$VENV/bin/componentize-py" ] || [ "$("$VENV/bin/componentize-py" --version)" != "componentize-py {{componentize_py_version}}" ]; then
  command -v python3 >/dev/null || { echo "build.sh: python3 not found: install Python 3.10+ with venv" >&2; exit 1; }
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$DIR/requirements.txt"
fi
cd "$DIR"
"$VENV/bin/componentize-py" -d wit/plugin.wit -w plugin componentize app -o {{name}}.wasm
echo "built $DIR/{{name}}.wasm" >&2
