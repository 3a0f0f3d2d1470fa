#!/usr/bin/env bash
# End-to-end suite of the tasks example in local workerd, over 127.0.0.1 only:
#   tools (installed only when missing) → migrations drift check → worker-build --release →
#   fresh state dir + D1 migrations applied → the checks in examples/tasks/e2e/run.mjs.
# Prints the time of each phase. Env: NT_E2E_PORT (default 18787), NT_E2E_STATE,
# NT_MIGRATIONS_DIR, ONLY=<check name substring>, VERBOSE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
phase_t=$t0
phase() {
  local now
  now=$(date +%s)
  echo "[e2e +$((now - t0))s] $* (previous phase $((now - phase_t))s)"
  phase_t=$now
}

phase "setup tools"
# shellcheck source=scripts/setup-tools.sh
source scripts/setup-tools.sh

phase "Schemathesis (PyPI), the OpenAPI fuzzer, in a venv of the tools cache"
SCHEMATHESIS_VERSION=4.32.5
ST_ROOT="${NANOTYPE_TOOLS:-$HOME/.cache/nanotype/tools}/schemathesis-$SCHEMATHESIS_VERSION"
if ! "$ST_ROOT/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  rm -rf "$ST_ROOT"
  python3 -m venv "$ST_ROOT"
  "$ST_ROOT/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
export SCHEMATHESIS_BIN="$ST_ROOT/bin/schemathesis"

phase "gen-migrations --check (the committed migrations match the structs)"
cargo run -q --bin gen-migrations -- --check

phase "worker-build --release"
(
  cd examples/tasks
  # worker-build runs cargo for wasm32 and finds its output by the default target dir.
  unset CARGO_TARGET_DIR
  worker-build --release
)
ls -l examples/tasks/build/index.js examples/tasks/build/index_bg.wasm

phase "fresh state, D1 migrations apply --local"
(cd examples/tasks && node e2e/run.mjs prepare)

phase "end-to-end checks"
status=0
(cd examples/tasks && node --test-reporter=spec e2e/run.mjs) || status=$?
phase "done (exit $status)"
exit $status
