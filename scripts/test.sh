#!/usr/bin/env bash
# Sets up and runs every test of nanotype on a fresh machine (rustup/cargo, node/npm, apt):
#   1. the native suite: `cargo test --workspace` (schema model, macro + trybuild UI cases,
#      round trips, migrations, the sync engine with fault injection, actor extras);
#   2. clippy with the workspace's lints and `-D warnings` (native and wasm32), the docs build
#      with no warnings, and the migrations drift check: the committed migrations match the
#      example's structs;
#   3. the end-to-end suite: the example Worker built to wasm, run in local workerd
#      (`wrangler dev`), driven over HTTP and WebSockets on 127.0.0.1, with the local D1
#      inspected directly, and its dashboard in headless Chromium (Debian's `chromium`);
#   4. `nanotype new` in a temporary folder: built, migrated, served, changed, served again;
#   5. the crates as crates.io would get them: packaged, built from the `.crate` files, docs as
#      docs.rs builds them (scripts/package.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
stamp() { echo "[test +$(( $(date +%s) - t0 ))s] $*"; }

if ! command -v sqlite3 >/dev/null 2>&1; then
  stamp "apt-get install sqlite3 (the migrations are also applied with the sqlite3 CLI)"
  (apt-get update -q && apt-get install -y -q sqlite3) >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM_PATH:-}" ]; then
  stamp "apt-get install chromium (the dashboard is tested in a real, headless browser)"
  (apt-get update -q && apt-get install -y -q chromium) >/dev/null
fi

stamp "cargo test --workspace"
cargo test --workspace

stamp "cargo clippy -D warnings (the workspace's lints, Cargo.toml [workspace.lints]; native and wasm32)"
cargo clippy -q --workspace --all-targets -- -D warnings
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo clippy -q -p nanotype-runtime -p tasks-example -p nanotype-bench-worker --target wasm32-unknown-unknown -- -D warnings

stamp "cargo doc (no warnings: every public item documented, every link resolves; the worker module too)"
RUSTDOCFLAGS="-D warnings" cargo doc -q --workspace --no-deps --features nanotype-runtime/worker

stamp "gen-migrations --check"
cargo run -q --bin gen-migrations -- --check

stamp "end-to-end suite in local workerd"
bash scripts/e2e.sh

stamp "nanotype doctor: the Workers' wrangler.toml agree with their code"
cargo build -q -p nanotype-cli --bin nanotype
bash -c 'source scripts/setup-tools.sh >/dev/null &&
  target/debug/nanotype doctor --crate examples/tasks &&
  target/debug/nanotype doctor --crate nanotype-bench/worker'

stamp "nanotype new, used as a user would, outside this repository"
bash -c 'source scripts/setup-tools.sh && node scripts/scaffold-e2e.mjs'

stamp "the crates, packaged and built as published"
bash scripts/package.sh

stamp "all tests passed"
