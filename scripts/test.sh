#!/usr/bin/env bash
# The test suite, from a fresh Debian machine, as root: the one command CI runs (.ci/run).
#
#   scripts/test.sh
#
# 1. installs what the harness needs (containerd, runc, busybox-static, gcc, libc6-dev,
#    protobuf-compiler), python3-venv and Node.js if missing, and the wasm32-wasip2 target;
# 2. checks formatting and clippy (warnings are errors) of the workspace and of both plugin
#    workspaces (plugins/ and tests/plugins/, for wasm32-wasip2);
# 3. validates deploy/daemonset.yaml; builds the tree once, in the test profile, with the
#    test feature set (`cargo test --workspace --no-run`: every binary, example and test;
#    the e2e tests run target/debug/gannet), and every plugin in Rust, Python and
#    JavaScript (plugins/build.sh, which installs the pinned componentize-py and
#    componentize-js when missing);
# 4. starts one containerd for the whole suite (tests/harness/containerd.sh up), runs
#    `cargo test --workspace` against it (GANNET_E2E_LAB) and the example plugins' own
#    unit tests (natively, against MockContainer), runs the README's main job
#    (scripts/demo.sh --duration 20, whose build is then a no-op) as a smoke test, runs
#    each benchmark once in test mode (`cargo test --bench '*'`) and the perf smoke, both on
#    that same debug build;
# 5. runs the soak (scripts/soak.sh: churn, containerd restarts, receiver outages), then
#    every fuzz target for 20 s (scripts/fuzz.sh: cargo-fuzz on the nightly toolchain,
#    its own build in fuzz/target);
# 6. always tears the containerd down, whatever failed.
#
# Env: CARGO_TARGET_DIR is honoured. With CI=true, an e2e test that cannot reach
# containerd fails instead of skipping.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HARNESS="$ROOT/tests/harness/containerd.sh"
T0=$SECONDS

step() { echo "==> [$((SECONDS - T0))s] $*" >&2; }
die() { echo "scripts/test.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: the e2e tests start containerd and containers"
command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 with rustup (https://rustup.rs), then rerun"

step "system packages"
bash "$HARNESS" deps
# The Python and JavaScript plugin toolchains run on python3 (with venv) and Node.js.
if ! command -v node >/dev/null || ! command -v npm >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3 python3-venv nodejs npm >/dev/null
fi

step "rust components"
if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null
  rustup target add wasm32-wasip2 >/dev/null
else
  echo "rustup not found: assuming rustfmt, clippy and the wasm32-wasip2 target are installed" >&2
fi

# The two plugin workspaces (their own target dirs, as the tests expect).
PLUGIN_WORKSPACES=()
for ws in plugins tests/plugins; do
  [ -f "$ws/Cargo.toml" ] && PLUGIN_WORKSPACES+=("$ws")
done

step "cargo fmt --check (workspace, ${PLUGIN_WORKSPACES[*]}, fuzz)"
cargo fmt --all --check
cargo fmt --all --check --manifest-path fuzz/Cargo.toml
for ws in "${PLUGIN_WORKSPACES[@]}"; do
  cargo fmt --all --check --manifest-path "$ws/Cargo.toml"
done

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
for ws in "${PLUGIN_WORKSPACES[@]}"; do
  step "cargo clippy $ws (wasm32-wasip2, warnings are errors)"
  env -u CARGO_TARGET_DIR cargo clippy --manifest-path "$ws/Cargo.toml" \
    --target wasm32-wasip2 --lib --locked -- -D warnings
done
# The example plugins' unit tests run natively (MockContainer exists only off wasm32), so
# their test targets are linted natively; tests/plugins has no tests (and is wasm-only).
if [ -f plugins/Cargo.toml ]; then
  step "cargo clippy plugins --all-targets (native: their unit tests)"
  env -u CARGO_TARGET_DIR cargo clippy --manifest-path plugins/Cargo.toml \
    --all-targets --locked -- -D warnings
fi

step "validate the DaemonSet manifest (kubernetes-validate)"
bash deploy/validate.sh

# One build of the tree: what `cargo test --workspace` needs (binaries, examples, tests, in
# the feature set with dev-dependencies), so the test run, scripts/demo.sh's build, the
# benches in test mode and the perf smoke all reuse it.
step "build the tree (cargo test --workspace --no-run)"
cargo test --workspace --no-run --locked

if [ -f plugins/Cargo.toml ]; then
  locked=()
  [ -f plugins/Cargo.lock ] && locked=(--locked)
fi
# Rust into plugins/target/wasm32-wasip2/release, Python and JavaScript into
# {plugins,tests/plugins}/target/{python,js}, where the tests look for them; each pinned
# toolchain (componentize-py in a venv, componentize-js through npm ci) is installed when
# missing.
step "build the plugins: plugins/build.sh (Rust, Python, JavaScript)"
plugins/build.sh

LAB="$(mktemp -d /tmp/gannet-e2e-suite.XXXXXX)"
TEST_LOG=""
teardown() {
  local rc=$?
  step "tear down the containerd lab $LAB"
  bash "$HARNESS" down "$LAB" || rc=1
  step "done (exit $rc)"
  # The closing line: one count over every test binary and doctest that ran.
  if [ -n "${TEST_LOG:-}" ] && [ -f "$TEST_LOG" ]; then
    awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$TEST_LOG"
    rm -f "$TEST_LOG"
  fi
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "start containerd ($LAB)"
bash "$HARNESS" up "$LAB" >/dev/null

step "cargo test --workspace"
TEST_LOG="$(mktemp /tmp/gannet-cargo-test.XXXXXX.log)"
GANNET_E2E_LAB="$LAB" cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$TEST_LOG"

if [ -f plugins/Cargo.toml ]; then
  step "cargo test: the example plugins' own unit tests (native, against MockContainer)"
  env -u CARGO_TARGET_DIR cargo test --manifest-path plugins/Cargo.toml "${locked[@]}" 2>&1 | tee -a "$TEST_LOG"
fi

step "README main job: scripts/demo.sh --duration 20 (smoke test)"
DEMO_LOG="$(mktemp /tmp/gannet-demo-smoke.XXXXXX.log)"
if ! scripts/demo.sh --duration 20 >"$DEMO_LOG" 2>&1; then
  tail -40 "$DEMO_LOG" >&2
  die "scripts/demo.sh failed; its output is above (all of it: $DEMO_LOG)"
fi
# Enriched records flowed: routed to their outputs, tagged by team-labels, secrets masked
# by redact-env, the churned container added and removed, kube-system dropped by lc-filter.
demo_expect() {
  grep -Eq "$1" "$DEMO_LOG" || { tail -40 "$DEMO_LOG" >&2; die "demo smoke test: no line matching /$1/ ($2; output: $DEMO_LOG)"; }
}
demo_expect '^\[storefront\] +added +shop/web-[0-9a-f]+/server .*tags=team=storefront' "a shop record routed to storefront and tagged"
demo_expect '^\[jobs\] +added +batch/report-[0-9a-f]+/worker .*tags=team=data' "a batch record routed to jobs and tagged"
demo_expect 'DB_PASSWORD=\*\*\*\*\*\*' "redact-env masked DB_PASSWORD"
demo_expect '^\[storefront\] +added +shop/checkout-' "the churned container was added"
demo_expect '^\[storefront\] +removed +shop/checkout-' "the churned container was removed"
demo_expect '^\{"event_name":"entity.state","entity.type":"container","entity.id":\{"container.id":"[0-9a-f]{64}"\},"description":\{.*"k8s.namespace.name":"shop".*"k8s.pod.ip":"10\.' "the OTLP receiver got the churned container's entity event"
demo_expect '^entity.delete events the receiver got: [1-9]' "the OTLP receiver got entity.delete events"
demo_expect '^\$ gannet list' "gannet list printed"
if grep -Eq '^\[[a-z]+\] .*kube-system/' "$DEMO_LOG" || grep -q 's3cret-demo' "$DEMO_LOG"; then
  die "demo smoke test: a kube-system record or a secret value reached an output ($DEMO_LOG)"
fi
rm -f "$DEMO_LOG"

if compgen -G "*/benches/*.rs" >/dev/null || grep -qs '^\[\[bench\]\]' ./*/Cargo.toml; then
  # Criterion's test mode: each case runs once, in the debug build above (no release
  # build); the real numbers come from `cargo bench` (docs/BENCHMARKS.md).
  step "cargo test --bench '*' (each benchmark once, test mode)"
  cargo test --workspace --bench '*' --locked
fi

# The performance benchmarks (tests/examples/perf.rs, run in full and optimised by
# scripts/bench.sh) are not run here; a smoke with about 10 containers proves they still
# work (under a minute). It needs no release numbers: the debug perf example that
# `cargo test --no-run` built, against the debug gannet beside it.
step "perf smoke: target/debug/examples/perf --smoke"
"${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/perf" --smoke --lab "$LAB"

# Churn, containerd restarts and receiver outages under one agent; the checks at the end
# (table = runtime, exactly-once added/removed, flat RSS and fds) fail the suite. About
# 5 minutes; a 30-minute run is in docs/SOAK.md.
step "soak: scripts/soak.sh (4.5 minutes, 2 of them measured)"
scripts/soak.sh

# Every parser of outside input, fuzzed for a short while from the fixtures' seeds; the
# documented long runs are in docs/FUZZING.md.
step "fuzz smoke: scripts/fuzz.sh --seconds 20"
scripts/fuzz.sh --seconds 20
