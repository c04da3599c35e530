#!/usr/bin/env bash
# The agent image's base, measured: the glibc binary with its shared libraries against a
# static musl binary, side by side on one lab (docs/BENCHMARKS.md, "Agent image: glibc or
# musl"). As root, on Debian; builds both release binaries first (minutes), installing the
# musl target and musl-tools when missing.
#
#   scripts/bench-image.sh
#
# Prints, for each: the binary, the image archive and its unpacked tree; the time of
# `gannet plugin compile` of the four example plugins into a cold cache, three rounds
# interleaved; and the VmRSS of `gannet run` with those plugins (warm cache) over the
# demo's sample pods, both agents running at once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MUSL_TARGET=x86_64-unknown-linux-musl
command -v musl-gcc >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
}
rustup target add "$MUSL_TARGET" >/dev/null
bash tests/harness/containerd.sh deps
cargo build -q --release -p gannet --locked
cargo build -q --release -p gannet --target "$MUSL_TARGET" --locked
cargo build -q -p gannet-e2e --example demo-pods --locked
env -u CARGO_TARGET_DIR cargo build -q --manifest-path plugins/Cargo.toml \
  --target wasm32-wasip2 --release --locked
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
GLIBC=$TARGET/release/gannet
MUSL=$TARGET/$MUSL_TARGET/release/gannet
L=$(mktemp -d /tmp/libc-lab.XXXX)
bash tests/harness/containerd.sh up $L >/dev/null
trap 'kill $(cat $L/pids 2>/dev/null) 2>/dev/null || true; bash tests/harness/containerd.sh down $L >/dev/null' EXIT
"$TARGET/debug/examples/demo-pods" $L >/dev/null
mkdir -p $L/plugins
for n in 10-lc-filter:lc_filter 20-team-labels:team_labels 30-redact-env:redact_env 40-route-by-namespace:route_by_namespace; do
  cp examples/plugins/${n%%:*}.toml $L/plugins/${n%%:*}.toml
  cp plugins/target/wasm32-wasip2/release/${n#*:}.wasm $L/plugins/${n%%:*}.wasm
done
echo "== image size (scripts/image.sh, and the unpacked tree)"
for b in glibc:$GLIBC musl:$MUSL; do
  name=${b%%:*}; bin=${b#*:}
  out=$L/img-$name; scripts/image.sh --binary $bin --out $out 2>/dev/null >/dev/null
  scripts/image.sh --binary $bin --rootfs-only $out/rootfs >/dev/null 2>&1
  echo "$name: binary $(stat -c %s $bin) B, archive $(stat -c %s $out/gannet-image.tar) B, unpacked $(du -sb $out/rootfs | cut -f1) B, libs: $(ldd $bin 2>&1 | wc -l) lines of ldd"
done
echo "== compile the 4 example plugins (gannet plugin compile, cold cache), 3 rounds interleaved"
for r in 1 2 3; do
  for b in glibc:$GLIBC musl:$MUSL; do
    name=${b%%:*}; bin=${b#*:}; rm -rf $L/cc-$name
    s=$(date +%s%N); $bin plugin compile --cache-dir $L/cc-$name $L/plugins/*.wasm >/dev/null; e=$(date +%s%N)
    echo "round $r $name: $(( (e-s)/1000000 )) ms"
  done
done
echo "== steady RSS: gannet run with the 4 plugins (warm cache), both at once, 40 s"
i=0
for b in glibc:$GLIBC musl:$MUSL; do
  name=${b%%:*}; bin=${b#*:}; i=$((i+1))
  mkdir -p $L/run-$name; cp -a $L/cc-$name $L/run-$name/cache
  cat > $L/run-$name/gannet.toml <<T
[runtime]
socket = "$L/containerd.sock"
[plugins]
dir = "$L/plugins"
cache_dir = "$L/run-$name/cache"
[outputs.default]
type = "file"
path = "$L/run-$name/out.jsonl"
[api]
socket = "$L/run-$name/api.sock"
grpc_socket = "$L/run-$name/grpc.sock"
health_listen = "127.0.0.1:1947$i"
[logging]
level = "warn"
T
  $bin run --config $L/run-$name/gannet.toml >$L/run-$name/log 2>&1 &
  echo $! >> $L/pids
done
sleep 40
for p in $(cat $L/pids); do
  echo "$(readlink /proc/$p/exe): VmRSS $(awk '/VmRSS/ {print $2}' /proc/$p/status) kB, VmHWM $(awk '/VmHWM/ {print $2}' /proc/$p/status) kB, CPU ticks $(awk '{print $14+$15}' /proc/$p/stat)"
done
wc -l $L/run-*/out.jsonl
