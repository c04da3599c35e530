#!/usr/bin/env bash
# The performance benchmarks on a real containerd, in one table:
#
#   scripts/bench.sh [perf options]        e.g. scripts/bench.sh --rss-variants
#
# Builds a release `gannet`, the release `perf` example (tests/examples/perf.rs) and the
# example plugins, then runs perf, which starts a private containerd
# (tests/harness/containerd.sh), measures detection latency to a file output (events
# against poll), a full sync against the reference algorithm and the steady state with the
# four example plugins, prints the table and tears everything down. About 8 minutes, plus
# the release build (fat LTO: about 10 minutes from clean on two cores, 5 after a change).
# Not run in CI (CI runs `perf --smoke`); run it on an idle machine, as root.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "scripts/bench.sh: run as root (it starts containerd)" >&2; exit 1; }
bash tests/harness/containerd.sh deps
cargo build --release --locked -p gannet --bins
cargo build --release --locked -p gannet-e2e --example perf
env -u CARGO_TARGET_DIR cargo build --manifest-path plugins/Cargo.toml \
  --target wasm32-wasip2 --release --locked
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
GANNET_BIN="$TARGET/release/gannet" exec "$TARGET/release/examples/perf" "$@"
