#!/usr/bin/env bash
# Gannet's main job, shown on a fresh Debian machine, as root:
#
#   scripts/demo.sh [--duration SECONDS]
#
# 1. installs what it needs (containerd, runc, busybox-static, gcc, protoc, jq; the
#    wasm32-wasip2 Rust target);
# 2. starts a private containerd (the e2e harness's: its own socket under /tmp, nothing
#    shared with a system containerd) and creates sample pods in three namespaces
#    (shop, batch, kube-system) through CRI;
# 3. builds gannet and the example plugins of plugins/, and runs `gannet run` with the
#    demo config and plugin sidecars of examples/demo/: lc-filter drops kube-system,
#    team-labels tags each record with its team, redact-env masks secret env values,
#    route-by-namespace sends shop to the `storefront` output and to an OTLP collector
#    (`collector`, type otlp: a small OTLP/gRPC receiver the demo starts), batch to `jobs`;
# 4. shows the enriched records as they reach the outputs, one line each, then creates and
#    kills a container so `added`/`removed` flow, prints the OpenTelemetry entity event the
#    OTLP receiver got for one container, and prints `gannet list`;
# 5. runs until Ctrl-C (or for --duration SECONDS), then stops gannet (SIGTERM: it flushes)
#    and removes everything it created (containers, pods, the containerd, the lab dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HARNESS="$ROOT/tests/harness/containerd.sh"
DEMO="$ROOT/examples/demo"
DURATION=0
# The health listener's port (/healthz, /readyz, /metrics); override if it is taken.
HEALTH_PORT="${GANNET_DEMO_HEALTH_PORT:-19464}"
# The demo OTLP receiver's port; override if it is taken.
OTLP_PORT="${GANNET_DEMO_OTLP_PORT:-14317}"
# Example plugin crate (its .wasm name) -> the name it is deployed under (sets the order).
PLUGINS=(lc_filter:10-lc-filter team_labels:20-team-labels redact_env:30-redact-env
  route_by_namespace:40-route-by-namespace)
OUTPUTS=(storefront jobs default)

usage() { echo "usage: scripts/demo.sh [--duration SECONDS]" >&2; exit 2; }
die() { echo "scripts/demo.sh: error: $*" >&2; exit 1; }
step() { echo "==> $*" >&2; }
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
[[ "$HEALTH_PORT" =~ ^[0-9]+$ ]] || die "GANNET_DEMO_HEALTH_PORT must be a port number, not $HEALTH_PORT"
[[ "$OTLP_PORT" =~ ^[0-9]+$ ]] || die "GANNET_DEMO_OTLP_PORT must be a port number, not $OTLP_PORT"

[ "$(id -u)" = 0 ] || die "run as root: the demo starts containerd and containers"
command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 with rustup (https://rustup.rs), then rerun"

step "installing what the demo needs (containerd, runc, busybox-static, gcc, protoc, jq, wasm32-wasip2)"
bash "$HARNESS" deps
if ! command -v jq >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq >/dev/null
fi
if command -v rustup >/dev/null; then
  rustup target add wasm32-wasip2 >/dev/null 2>&1 || die "rustup target add wasm32-wasip2 failed"
fi

step "building gannet, the sample-pod driver and the example plugins (minutes the first time)"
# The workspace's binaries and examples with the feature set `cargo test --workspace`
# resolves (dev-dependencies on), so after scripts/test.sh's build this is a no-op; a
# narrower `-p gannet` would resolve other features and rebuild much of the tree.
cargo build -q --workspace --bins --examples --locked
# The plugins workspace has its own target dir (plugins/target), as the tests expect.
env -u CARGO_TARGET_DIR cargo build -q --manifest-path plugins/Cargo.toml \
  --target wasm32-wasip2 --release --locked
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
GANNET="$TARGET/debug/gannet"
PODS="$TARGET/debug/examples/demo-pods"
OTLP_RECEIVER="$TARGET/debug/examples/otlp-receiver"
WASM="$ROOT/plugins/target/wasm32-wasip2/release"

LAB="$(mktemp -d /tmp/gannet-demo.XXXXXX)"
GANNET_PID=""
VIEWER_PIDS=()
teardown() {
  local rc=$? pid
  trap - EXIT INT TERM
  if [ -n "$GANNET_PID" ] && kill -0 "$GANNET_PID" 2>/dev/null; then
    step "stopping gannet (SIGTERM: it drains and flushes)"
    kill -TERM "$GANNET_PID" 2>/dev/null || true
    wait "$GANNET_PID" 2>/dev/null || true
  fi
  for pid in "${VIEWER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  step "removing the pods, the containerd and $LAB"
  bash "$HARNESS" down "$LAB" >&2 || rc=1
  exit $rc
}
trap teardown EXIT
trap 'echo >&2; exit 130' INT
trap 'exit 143' TERM

step "starting containerd in $LAB"
bash "$HARNESS" up "$LAB" >/dev/null
SOCK="$LAB/containerd.sock"
step "creating sample pods"
"$PODS" "$LAB" >&2

step "deploying the plugins and the config into $LAB"
mkdir -p "$LAB/plugins" "$LAB/out"
for p in "${PLUGINS[@]}"; do
  crate="${p%%:*}" name="${p#*:}"
  cp "$DEMO/$name.toml" "$LAB/plugins/$name.toml"
  cp "$WASM/$crate.wasm" "$LAB/plugins/$name.wasm"
done
sed -e "s|@LAB@|$LAB|g" -e "s|@HEALTH_PORT@|$HEALTH_PORT|g" -e "s|@OTLP_PORT@|$OTLP_PORT|g" \
  "$DEMO/gannet.toml" >"$LAB/gannet.toml"
"$GANNET" config check "$LAB/gannet.toml" >/dev/null
for o in "${OUTPUTS[@]}"; do touch "$LAB/out/$o.jsonl"; done

# Env vars every sample container gets from the image or the test harness: not shown.
ENV_NOISE='["PATH","HOSTNAME","GANNET_E2E","CACHE_PORT","DB_PORT","KUBERNETESX_MODE","LOG_LEVEL","METRICS_SERVICE_HOSTNAME","MY_SERVICE_PORTAL"]'
# One line per event as it reaches an output:
#   [output]     event    namespace/pod/container   state    tags   env
VIEW='"[" + $out + "]" + (" " * (12 - ($out|length)))
  + (.event + "        ")[0:8] + " "
  + (((.record.k8s.namespace // "") + "/" + (.record.k8s.pod_name // "") + "/" + (.record.k8s.container_name // "")) + (" " * 40))[0:40]
  + " " + ((.record.state // "") + "        ")[0:8]
  + " tags=" + ((.record.tags // {}) | to_entries | map(.key + "=" + .value) | join(","))
  + "  env=" + ((.record.env // {}) | to_entries | map(select(.key | IN($noise[]) | not))
               | map(.key + "=" + .value) | join(","))'

step "starting an OTLP/gRPC receiver on 127.0.0.1:$OTLP_PORT (what it gets: $LAB/out/otlp.jsonl)"
"$OTLP_RECEIVER" "$OTLP_PORT" grpc >"$LAB/out/otlp.jsonl" 2>"$LAB/otlp-receiver.log" &
VIEWER_PIDS+=($!)

step "running gannet (log: $LAB/gannet.log); records as they reach the outputs:"
"$GANNET" run --config "$LAB/gannet.toml" --node-name demo-node 2>"$LAB/gannet.log" &
GANNET_PID=$!
# --duration counts from here.
SECONDS=0
for o in "${OUTPUTS[@]}"; do
  tail -n +1 -F --pid="$GANNET_PID" "$LAB/out/$o.jsonl" 2>/dev/null |
    jq --unbuffered -r --arg out "$o" --argjson noise "$ENV_NOISE" "$VIEW" &
  VIEWER_PIDS+=($!)
done

ready=""
for _ in $(seq 1 300); do
  kill -0 "$GANNET_PID" 2>/dev/null || { tail -20 "$LAB/gannet.log" >&2; die "gannet run exited; its log is above"; }
  if (exec 3<>"/dev/tcp/127.0.0.1/$HEALTH_PORT" && printf "GET /readyz HTTP/1.0\r\n\r\n" >&3 && head -1 <&3) 2>/dev/null | grep -q " 200"; then
    ready=1
  fi
  [ -n "$ready" ] && break
  sleep 0.2
done
[ -n "$ready" ] || { tail -20 "$LAB/gannet.log" >&2; die "gannet did not become ready within 60s"; }
sleep 2

step "creating and killing a container (shop/checkout) while gannet runs"
"$PODS" "$LAB" churn >&2
sleep 2

echo
step "the OpenTelemetry entity event the OTLP receiver got for shop/checkout (attributes in docs/otlp.md):"
# The churn container's last entity.state (gannet list below shows it gone).
jq -c -n '[inputs | select(.event_name == "entity.state"
                 and (.attributes["entity.description"]["k8s.pod.name"] // "" | startswith("checkout")))]
          | last // "none received"
          | if type == "object" then {event_name, "entity.type": .attributes["entity.type"],
              "entity.id": .attributes["entity.id"],
              description: (.attributes["entity.description"]
                            | with_entries(select(.key | test("^(k8s|container)\\."))))} else . end' \
  "$LAB/out/otlp.jsonl"
deletes="$(grep -c '"event_name":"entity.delete"' "$LAB/out/otlp.jsonl" || true)"
echo "entity.delete events the receiver got: ${deletes:-0}"

echo
echo "\$ gannet list --socket $SOCK"
"$GANNET" list --socket "$SOCK"
echo

if [ "$DURATION" -gt 0 ]; then
  step "running for ${DURATION}s in all (Ctrl-C ends it early)"
  while [ "$SECONDS" -lt "$DURATION" ]; do sleep 1; done
else
  step "running until Ctrl-C. Try, in another shell:"
  echo "  curl -s http://127.0.0.1:$HEALTH_PORT/metrics | grep gannet_plugin_calls_total" >&2
  echo "  curl -s --unix-socket $LAB/api.sock http://x/v1/containers | jq ." >&2
  while :; do sleep 1; done
fi
