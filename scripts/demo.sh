#!/usr/bin/env bash
# Gannet's main job, shown on a fresh Debian machine, as root:
#
#   scripts/demo.sh [--duration SECONDS]
#
# Starts a private containerd (the e2e harness's: its own socket, nothing shared with a
# system containerd), creates a few sample pods in two namespaces through CRI, prints
# `gannet list` (and `gannet list --all`), and tears everything down. With --duration the
# lab stays up that long so you can run gannet against it yourself; Ctrl-C ends it early.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HARNESS="$ROOT/tests/harness/containerd.sh"
DURATION=0

usage() { echo "usage: scripts/demo.sh [--duration SECONDS]" >&2; exit 2; }
die() { echo "scripts/demo.sh: error: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) [ $# -ge 2 ] || usage; DURATION="$2"; shift 2 ;;
    --duration=*) DURATION="${1#--duration=}"; shift ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
DURATION="${DURATION%s}"
[[ "$DURATION" =~ ^[0-9]+$ ]] || die "--duration takes whole seconds (e.g. 60), not $DURATION"

[ "$(id -u)" = 0 ] || die "run as root: the demo starts containerd and containers"
command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 with rustup (https://rustup.rs), then rerun"

echo "==> installing what the demo needs (containerd, runc, busybox-static, gcc, protoc)" >&2
bash "$HARNESS" deps
echo "==> building gannet and the sample-pod driver" >&2
cargo build -q -p gannet --bins
cargo build -q -p gannet-e2e --example demo-pods
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
GANNET="$TARGET/debug/gannet"

LAB="$(mktemp -d /tmp/gannet-demo.XXXXXX)"
teardown() {
  local rc=$?
  echo "==> tearing down $LAB" >&2
  bash "$HARNESS" down "$LAB" || rc=1
  exit $rc
}
trap teardown EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

echo "==> starting containerd in $LAB" >&2
bash "$HARNESS" up "$LAB" >/dev/null
SOCK="$LAB/containerd.sock"
echo "==> creating sample pods" >&2
"$TARGET/debug/examples/demo-pods" "$LAB"

rc=0
echo
echo "\$ gannet list --socket $SOCK"
"$GANNET" list --socket "$SOCK" || rc=$?
echo
echo "\$ gannet list --all --socket $SOCK"
"$GANNET" list --all --socket "$SOCK" || rc=$?

if [ "$DURATION" -gt 0 ]; then
  echo
  echo "The lab stays up for ${DURATION}s (Ctrl-C ends it). Try:" >&2
  echo "  $GANNET list --json --socket $SOCK" >&2
  end=$((SECONDS + DURATION))
  while [ $SECONDS -lt $end ]; do sleep 1; done
fi
exit $rc
