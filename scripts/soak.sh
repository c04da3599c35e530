#!/usr/bin/env bash
# A soak of `gannet run` on a private containerd, as root on a Debian machine:
#
#   scripts/soak.sh [--minutes N] [--restart-every SECS] [--warmup SECS]
#
# Pods churn (creations, kill -9s, stops and removals, several a second), containerd
# restarts every --restart-every seconds (default 50), and the HTTP and OTLP receivers go
# down for 4 s every 25 s, in turn. N minutes in all (default 4.5); the first --warmup
# seconds (default 150) are not measured. At the end it checks that the agent's table
# equals the runtime, that every container was `added` exactly once and every ended one
# `removed` exactly once (by event id, after dedup) and reached the OTLP receiver, that
# VmRSS grew at most 1 MiB and the fd count did not change after the warm-up; it exits
# non-zero when one fails. scripts/test.sh runs the default; docs/SOAK.md has a 30-minute
# run. The churn and the checks are tests/examples/soak.rs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
die() { echo "scripts/soak.sh: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: the soak starts containerd and containers"
command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 with rustup (https://rustup.rs), then rerun"
for a in "$@"; do
  case "$a" in -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
done

bash tests/harness/containerd.sh deps
if command -v rustup >/dev/null; then
  rustup target add wasm32-wasip2 >/dev/null 2>&1 || die "rustup target add wasm32-wasip2 failed"
fi
# The test feature set, as scripts/test.sh builds it: a no-op after its build.
cargo build -q --workspace --bins --examples --locked
env -u CARGO_TARGET_DIR cargo build -q --manifest-path plugins/Cargo.toml \
  --target wasm32-wasip2 --release --locked
exec "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/soak" "$@"
