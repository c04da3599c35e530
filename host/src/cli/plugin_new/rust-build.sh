#!/usr/bin/env bash
# Builds this plugin into {{name}}.wasm next to this script:
#   ./build.sh
# Adds the wasm32-wasip2 target with rustup if it is missing. CARGO_TARGET_DIR is honoured.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v cargo >/dev/null || { echo "build.sh: cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
cargo build --manifest-path "$DIR/Cargo.toml" --target wasm32-wasip2 --release
cp "${CARGO_TARGET_DIR:-$DIR/target}/wasm32-wasip2/release/{{crate_name}}.wasm" "$DIR/{{name}}.wasm"
echo "built $DIR/{{name}}.wasm" >&2
