#!/usr/bin/env bash
# The test suite, from a fresh Debian machine, as root: the one command CI runs (.ci/run).
#
#   scripts/test.sh
#
# 1. installs what the harness needs (containerd, runc, busybox-static, gcc, libc6-dev,
#    protobuf-compiler) and the wasm32-wasip2 target;
# 2. checks formatting and clippy (warnings are errors);
# 3. validates deploy/daemonset.yaml; builds the binaries (the e2e tests run target/debug/gannet) and the example plugins;
# 4. starts one containerd for the whole suite (tests/harness/containerd.sh up), runs
#    `cargo test --workspace` against it (GANNET_E2E_LAB) and the example plugins' own
#    unit tests (natively, against MockContainer), runs the README's main job
#    (scripts/demo.sh --duration 20) as a smoke test, compiles the benches;
# 5. always tears the containerd down, whatever failed.
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

step "rust components"
if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null
  rustup target add wasm32-wasip2 >/dev/null
else
  echo "rustup not found: assuming rustfmt, clippy and the wasm32-wasip2 target are installed" >&2
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "validate the DaemonSet manifest (kubernetes-validate)"
bash deploy/validate.sh

step "build the binaries"
cargo build --workspace --bins --locked

if [ -f plugins/Cargo.toml ]; then
  step "build the example plugins (wasm32-wasip2)"
  locked=()
  [ -f plugins/Cargo.lock ] && locked=(--locked)
  # Into plugins/target, where the tests look for them (they unset CARGO_TARGET_DIR too).
  env -u CARGO_TARGET_DIR cargo build --manifest-path plugins/Cargo.toml \
    --target wasm32-wasip2 --release "${locked[@]}"
fi

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
demo_expect '^\$ gannet list' "gannet list printed"
if grep -Eq '^\[[a-z]+\] .*kube-system/' "$DEMO_LOG" || grep -q 's3cret-demo' "$DEMO_LOG"; then
  die "demo smoke test: a kube-system record or a secret value reached an output ($DEMO_LOG)"
fi
rm -f "$DEMO_LOG"

if compgen -G "*/benches/*.rs" >/dev/null || grep -qs '^\[\[bench\]\]' ./*/Cargo.toml; then
  step "cargo bench --no-run"
  cargo bench --workspace --no-run --locked
fi

# The benchmarks of issue 5 (tests/examples/perf.rs, run in full by scripts/bench.sh) are
# not run here; a smoke with about 10 containers proves they still work (under a minute).
step "perf smoke: cargo run --example perf -- --smoke"
cargo run --locked -q -p gannet-e2e --example perf -- --smoke --lab "$LAB"
