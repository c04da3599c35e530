#!/usr/bin/env bash
# The same plugin (hello-team) in Rust, Python and JavaScript, measured side by side in one
# run with a release gannet: .wasm size, cold compile, cached load, per-record cost over
# 20,001 records, and the RSS one loaded plugin adds to `gannet run`.
#
#   scripts/bench-languages.sh            # prints one markdown table (docs/BENCHMARKS.md)
#
# Builds what it needs (cargo build --release, plugins/build.sh). No containerd: `gannet
# run` is started with a socket that does not exist, so only the plugin and the API load.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RECORDS=20001

cargo build --release --locked -p gannet --bin gannet >&2
plugins/build.sh >&2
GANNET="${CARGO_TARGET_DIR:-$ROOT/target}/release/gannet"
T="$(mktemp -d /tmp/gannet-bench-lang.XXXXXX)"
trap 'rm -rf "$T"' EXIT

# The sample, repeated to RECORDS lines.
SAMPLE=plugins/rust/hello-team/sample.jsonl
: >"$T/input.jsonl"
while [ "$(wc -l <"$T/input.jsonl")" -lt "$RECORDS" ]; do cat "$SAMPLE" >>"$T/input.jsonl"; done
head -n "$RECORDS" "$T/input.jsonl" >"$T/records.jsonl"
head -n 1 "$SAMPLE" >"$T/one.jsonl"

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# VmRSS (KiB) of `gannet run` with plugin dir $1, 5 s after it became ready to serve.
rss_of_run() {
  local dir=$1 cache=$2 cfg="$T/run.toml"
  printf '[runtime]\nsocket = "%s/none.sock"\n[plugins]\ndir = "%s"\ncache_dir = "%s"\n[api]\nsocket = "%s/api.sock"\n' \
    "$T" "$dir" "$cache" "$T" >"$cfg"
  "$GANNET" run --config "$cfg" >"$T/run.log" 2>&1 &
  local pid=$!
  sleep 8
  awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

mkdir -p "$T/empty"
base_rss=$(rss_of_run "$T/empty" "$T/cache-empty")

echo "| plugin | .wasm size | cold compile | cached load (plugin check) | per record (plugin run, $RECORDS records) | RSS added to gannet run |"
echo "|---|---|---|---|---|---|"
for lang in rust python js; do
  case $lang in
    rust) wasm=plugins/target/wasm32-wasip2/release/hello_team.wasm ;;
    *) wasm=plugins/target/$lang/hello_team.wasm ;;
  esac
  dir="$T/$lang" cache="$T/cache-$lang"
  mkdir -p "$dir"
  cp "$wasm" "$dir/hello-team.wasm"
  cp plugins/rust/hello-team/hello-team.toml "$dir/hello-team.toml"
  size=$(stat -c %s "$wasm")
  t=$(date +%s%N); "$GANNET" plugin compile "$dir/hello-team.wasm" --cache-dir "$cache" --quiet; compile=$(ms "$t")
  t=$(date +%s%N); "$GANNET" plugin check "$dir/hello-team.wasm" --cache-dir "$cache" >/dev/null; load=$(ms "$t")
  t=$(date +%s%N); "$GANNET" plugin run "$dir/hello-team.wasm" --cache-dir "$cache" --input "$T/one.jsonl" >/dev/null 2>&1; one=$(ms "$t")
  t=$(date +%s%N); "$GANNET" plugin run "$dir/hello-team.wasm" --cache-dir "$cache" --input "$T/records.jsonl" >/dev/null 2>&1; all=$(ms "$t")
  per_us=$(( (all - one) * 1000 / (RECORDS - 1) ))
  rss=$(rss_of_run "$dir" "$cache")
  printf '| %s | %s B | %s ms | %s ms | %s µs | %s KiB |\n' "$lang" "$size" "$compile" "$load" "$per_us" "$((rss - base_rss))"
done
echo
echo "gannet run with no plugins: $base_rss KiB"
