#!/usr/bin/env bash
# Brings the tasks example up on a fresh machine: installs what is missing (wasm target, pinned
# worker-build and wasm-bindgen CLI, wrangler/binaryen/esbuild), generates the migrations,
# builds the Worker, applies the D1 migrations locally and starts `wrangler dev` on 127.0.0.1.
# Env: PORT (default 8787). State (DO SQLite, D1) persists in .state/example between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8787}"

source scripts/setup-tools.sh

echo "[run-example] gen-migrations (writes the next migration if src/schema.rs changed)"
cargo run -q --bin gen-migrations

echo "[run-example] worker-build --release"
(cd examples/tasks && unset CARGO_TARGET_DIR && worker-build --release)

PERSIST="$NT_STATE/example"
echo "[run-example] applying D1 migrations to $PERSIST"
(cd examples/tasks && wrangler d1 migrations apply DB --local --persist-to "$PERSIST")

# The app serves nothing without its policy's consent: a local token for every room, kept in
# the ignored .dev.vars (wrangler dev's secrets) and generated once.
DEV_VARS=examples/tasks/.dev.vars
if ! grep -q '^API_TOKENS=' "$DEV_VARS" 2>/dev/null; then
  echo "API_TOKENS=\"local-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')=*\"" >> "$DEV_VARS"
  echo "[run-example] wrote a local token to $DEV_VARS"
fi
TOKEN=$(sed -n 's/^API_TOKENS="\{0,1\}\([^=]*\)=.*/\1/p' "$DEV_VARS" | head -1)

cat <<MSG

  nanotype tasks example: http://127.0.0.1:$PORT  (token from $DEV_VARS)

  T='authorization: Bearer $TOKEN'
  curl -s -H "\$T" -X POST http://127.0.0.1:$PORT/rooms/demo/tasks -H 'content-type: application/json' -d '{"title":"write the README"}'
  curl -s -H "\$T" 'http://127.0.0.1:$PORT/rooms/demo/tasks?consistency=replica'
  curl -s -H "\$T" -X PATCH http://127.0.0.1:$PORT/rooms/demo/tasks/1 -H 'content-type: application/json' -d '{"status":"done"}'
  curl -s -H "\$T" http://127.0.0.1:$PORT/rooms/demo/_sync

MSG
cd examples/tasks
exec wrangler dev --local --ip 127.0.0.1 --port "$PORT" --persist-to "$PERSIST" --show-interactive-dev-session=false
