#!/usr/bin/env bash
# Builds every plugin of the repository from source, in the three plugin languages:
#
#   plugins/build.sh [--only rust|python|js]
#
# - Rust: the plugins/ cargo workspace (plugins/rust/*, plugins/bench-probes/*) for
#   wasm32-wasip2 in release, into plugins/target/wasm32-wasip2/release/<crate>.wasm
#   (dashes become underscores).
# - Python: each directory with an app.py under plugins/python/ and tests/plugins/python/,
#   with componentize-py, into <workspace>/target/python/<dir>.wasm (dashes become
#   underscores): plugins/target/python/hello_team.wasm, tests/plugins/target/python/probe.wasm.
#   componentize-py is pinned with hashes in plugins/python/requirements.txt and installed
#   (pip --require-hashes) into the venv plugins/target/tools/python-venv when missing.
# - JavaScript: each directory with an app.js under plugins/js/ and tests/plugins/js/, with
#   componentize-js (plugins/js/build.mjs), into <workspace>/target/js/<dir>.wasm.
#   componentize-js is pinned by plugins/js/package-lock.json and installed with `npm ci`
#   into plugins/js/node_modules when missing or older than the lock.
#
# Every component is built against wit/plugin.wit, world `plugin`. A Python or JS component
# newer than its sources, the WIT file and its toolchain pin is not rebuilt. Needs python3
# (with venv) and node 18+ with npm; cargo with the wasm32-wasip2 target for Rust.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WIT="$ROOT/wit/plugin.wit"
REQUIREMENTS="$ROOT/plugins/python/requirements.txt"
VENV="$ROOT/plugins/target/tools/python-venv"
COMPONENTIZE_PY_VERSION="0.25.1"
JS_TOOLS="$ROOT/plugins/js"
ONLY=""

usage() { echo "usage: plugins/build.sh [--only rust|python|js]" >&2; exit 2; }
die() { echo "plugins/build.sh: error: $*" >&2; exit 1; }
step() { echo "==> $*" >&2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --only) [ $# -ge 2 ] || usage; ONLY="$2"; shift 2 ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
case "$ONLY" in ""|rust|python|js) ;; *) usage ;; esac
wanted() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# True when $1 exists and is newer than every other argument (files or directories,
# searched for files).
fresh() {
  local out="$1"; shift
  [ -f "$out" ] || return 1
  [ -z "$(find "$@" -type f -newer "$out" -not -path '*/__pycache__/*' -print -quit 2>/dev/null)" ]
}

# The component name of a plugin directory: its base name, dashes to underscores.
component_name() { basename "$1" | tr - _; }

build_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 with rustup (https://rustup.rs), then rerun"
  step "rust: the plugins/ workspace (wasm32-wasip2, release)"
  # Into plugins/target, where the tests look for them, whatever CARGO_TARGET_DIR says.
  env -u CARGO_TARGET_DIR cargo build --manifest-path plugins/Cargo.toml \
    --target wasm32-wasip2 --release --locked
}

# Installs the pinned componentize-py into $VENV unless it is there already.
python_tools() {
  if [ -x "$VENV/bin/componentize-py" ] &&
    [ "$("$VENV/bin/componentize-py" --version 2>/dev/null)" = "componentize-py $COMPONENTIZE_PY_VERSION" ] &&
    [ "$VENV/.installed" -nt "$REQUIREMENTS" ]; then
    return
  fi
  command -v python3 >/dev/null || die "python3 not found: install Python 3.10+ (apt-get install python3 python3-venv)"
  step "python: installing componentize-py $COMPONENTIZE_PY_VERSION (pinned with hashes) into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed: install the venv module (apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$REQUIREMENTS"
  touch "$VENV/.installed"
}

build_python() {
  local dirs=() dir out
  for dir in plugins/python/*/ tests/plugins/python/*/; do
    [ -f "$dir/app.py" ] && dirs+=("${dir%/}")
  done
  [ ${#dirs[@]} -gt 0 ] || return 0
  python_tools
  for dir in "${dirs[@]}"; do
    out="${dir%%/python/*}/target/python/$(component_name "$dir").wasm"
    if fresh "$out" "$dir" "$WIT" "$REQUIREMENTS"; then
      step "python: $out is up to date"
      continue
    fi
    step "python: $dir -> $out"
    mkdir -p "$(dirname "$out")"
    (cd "$dir" && "$VENV/bin/componentize-py" -d "$WIT" -w plugin componentize app -o "$ROOT/$out.tmp" >/dev/null)
    mv "$ROOT/$out.tmp" "$ROOT/$out"
  done
}

# Installs the locked componentize-js into plugins/js/node_modules unless it is current.
js_tools() {
  if [ -f "$JS_TOOLS/node_modules/.package-lock.json" ] &&
    [ "$JS_TOOLS/node_modules/.package-lock.json" -nt "$JS_TOOLS/package-lock.json" ]; then
    return
  fi
  command -v npm >/dev/null || die "npm not found: install Node.js 18+ with npm (apt-get install nodejs npm)"
  step "js: npm ci in plugins/js (componentize-js, pinned by package-lock.json)"
  (cd "$JS_TOOLS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

build_js() {
  local dirs=() dir out
  for dir in plugins/js/*/ tests/plugins/js/*/; do
    [ -f "$dir/app.js" ] && [ "${dir%/}" != plugins/js/node_modules ] && dirs+=("${dir%/}")
  done
  [ ${#dirs[@]} -gt 0 ] || return 0
  js_tools
  for dir in "${dirs[@]}"; do
    out="${dir%%/js/*}/target/js/$(component_name "$dir").wasm"
    if fresh "$out" "$dir" "$WIT" "$JS_TOOLS/package-lock.json" "$JS_TOOLS/build.mjs"; then
      step "js: $out is up to date"
      continue
    fi
    step "js: $dir -> $out"
    node "$JS_TOOLS/build.mjs" "$dir/app.js" "$WIT" "$out.tmp"
    mv "$out.tmp" "$out"
  done
}

if wanted rust; then build_rust; fi
if wanted python; then build_python; fi
if wanted js; then build_js; fi
