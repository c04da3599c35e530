#!/usr/bin/env bash
# Fuzzes every parser of outside input with cargo-fuzz (libFuzzer), on the machine's
# nightly toolchain; the project itself builds on stable.
#
#   scripts/fuzz.sh [--seconds N | --runs N] [TARGET ...]
#
# Targets (fuzz/fuzz_targets/): verbose_info, native_event, config_file, sidecar,
# plugin_run_line, api_query, and plugin_boundary (the bytes become a program of host calls
# in the boundary-driver test plugin, built here for wasm32-wasip2); all of them when none
# is named. Each starts from seeds taken
# from the repository's own fixtures and examples (copied into fuzz/corpus/TARGET, which is
# not committed), runs for N seconds (default 20: the smoke scripts/test.sh runs) or N
# executions, and prints libFuzzer's last status line. A crash stops the script with the
# input saved under fuzz/artifacts/TARGET/; turn it into a plain regression test.
#
# Needs: rustup's nightly toolchain and cargo-fuzz (installed here if missing, pinned).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"
CARGO_FUZZ_VERSION=0.13.2
ALL=(verbose_info native_event config_file sidecar plugin_run_line api_query plugin_boundary)

die() { echo "scripts/fuzz.sh: error: $*" >&2; exit 1; }

limit=(-max_total_time=20)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) [ $# -ge 2 ] || die "--seconds needs a number"; limit=(-max_total_time="$2"); shift 2 ;;
    --runs) [ $# -ge 2 ] || die "--runs needs a number"; limit=(-runs="$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1; see --help" ;;
    *) printf '%s\n' "${ALL[@]}" | grep -qx "$1" || die "unknown target $1; the targets are: ${ALL[*]}"
       targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

command -v rustup >/dev/null || die "rustup not found: the fuzz targets need its nightly toolchain"
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal \
    || die "no nightly toolchain, and rustup could not install one: run rustup toolchain install nightly"
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# Seeds: what the repository already holds of each input.
seed() {
  local target="$1" dir="corpus/$1"
  mkdir -p "$dir"
  case "$target" in
    verbose_info)
      for f in "$ROOT"/tests/fixtures/*.json; do
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("info",{}).get("info",""))' "$f" > "$dir/$(basename "$f")" 2>/dev/null || true
      done ;;
    native_event)
      # One seed per recorded event: its topic's index, then its message, protobuf-encoded
      # from the fixture's decoded fields (field numbers of containerd's events protos).
      python3 - "$ROOT/tests/fixtures/containerd-1.6-native-events.jsonl" "$dir" <<'PY'
import json, sys
topics = ["/tasks/start", "/tasks/exit", "/tasks/oom", "/tasks/delete",
          "/containers/create", "/containers/update", "/containers/delete"]
fields = {  # topic -> [(json key, field number, kind)]
    "/tasks/start": [("container_id", 1, "s"), ("pid", 2, "v")],
    "/tasks/exit": [("container_id", 1, "s"), ("id", 2, "s"), ("pid", 3, "v"), ("exit_status", 4, "v")],
    "/tasks/delete": [("container_id", 1, "s"), ("pid", 2, "v"), ("exit_status", 3, "v"), ("id", 5, "s")],
    "/tasks/oom": [("container_id", 1, "s")],
    "/containers/create": [("id", 1, "s"), ("image", 2, "s")],
    "/containers/update": [("id", 1, "s"), ("image", 2, "s")],
    "/containers/delete": [("id", 1, "s")],
}
def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
for n, line in enumerate(open(sys.argv[1])):
    e = json.loads(line)
    topic, event = e.get("topic", ""), e.get("event", {})
    if topic not in topics:
        continue
    msg = b""
    for key, number, kind in fields[topic]:
        if key not in event:
            continue
        if kind == "s":
            data = str(event[key]).encode()
            msg += varint(number << 3 | 2) + varint(len(data)) + data
        else:
            msg += varint(number << 3) + varint(int(event[key]))
    open(f"{sys.argv[2]}/event-{n}", "wb").write(bytes([topics.index(topic)]) + msg)
PY
      ;;
    config_file) cp "$ROOT"/examples/gannet.toml "$dir/" ;;
    sidecar) cp "$ROOT"/examples/plugins/*.toml "$ROOT"/plugins/*/*/*.toml "$dir/" 2>/dev/null || true ;;
    plugin_run_line) split -l 1 "$ROOT/plugins/rust/hello-team/sample.jsonl" "$dir/line-" ;;
    api_query) printf 'namespace=shop&state=running' > "$dir/filter"; printf 'state=removed' > "$dir/removed" ;;
    # Programs (tests/plugins/boundary-driver): set-tag then pass, then err, trap, a 64 MiB
    # allocation, 65,025 huge keys in one read; masks and a select.
    plugin_boundary)
      printf '\x00\x01\x00k\x01\x00v\x0f\x01' > "$dir/tag-pass"
      printf '\x00\x01\x00k\x01\x00v\x0c\x01\x00x' > "$dir/tag-err"
      printf '\x00\x01\x00k\x01\x00v\x0d' > "$dir/tag-trap"
      printf '\x02\x01\x00k\x01\x00v\x0e\x40' > "$dir/label-alloc"
      printf '\x07\xff\xff\xffa' > "$dir/huge-read"
      printf '\x04\x01\x00*\x02\x00xx\x06\x10\x03\x00app\x0f\x00' > "$dir/mask-select-drop"
      ;;
  esac
}

if printf '%s\n' "${targets[@]}" | grep -qx plugin_boundary; then
  rustup target add wasm32-wasip2 >/dev/null 2>&1 || die "rustup target add wasm32-wasip2 failed"
  env -u CARGO_TARGET_DIR cargo build -q --manifest-path "$ROOT/tests/plugins/Cargo.toml" \
    --target wasm32-wasip2 --release --locked -p boundary-driver
  export GANNET_FUZZ_BOUNDARY_WASM="$ROOT/tests/plugins/target/wasm32-wasip2/release/boundary_driver.wasm"
fi
if [ ${#targets[@]} -eq ${#ALL[@]} ]; then
  cargo +nightly fuzz build -s none
else
  for target in "${targets[@]}"; do cargo +nightly fuzz build -s none "$target"; done
fi
for target in "${targets[@]}"; do
  seed "$target"
  echo "==> fuzz $target (${limit[*]})" >&2
  # plugin_boundary's inputs range from a few host calls (~0.2 ms) to 65,025-pair bulk
  # edits (~150 ms): libFuzzer gives slow inputs less energy, so the huge ones still run
  # but no longer take most of the time (docs/FUZZING.md).
  extra=()
  [ "$target" != plugin_boundary ] || extra=(-entropic_scale_per_exec_time=1)
  log="$(mktemp)"
  if ! cargo +nightly fuzz run -s none "$target" "corpus/$target" -- "${limit[@]}" ${extra[@]+"${extra[@]}"} >"$log" 2>&1; then
    tail -30 "$log" >&2
    die "$target crashed; the input is in fuzz/artifacts/$target/"
  fi
  grep -E '^#[0-9]+\s+DONE|^Done [0-9]+ runs' "$log" | tail -2 >&2 || tail -3 "$log" >&2
  rm -f "$log"
done
