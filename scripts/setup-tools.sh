#!/usr/bin/env bash
# Installs what building and running the Worker example needs, skipping whatever is already
# there at the exact version, and exports the environment that keeps the tools offline:
#   - the wasm32-unknown-unknown target,
#   - worker-build 0.8.7 and wasm-bindgen-cli (= the wasm-bindgen in Cargo.lock) under
#     $NANOTYPE_TOOLS (default ~/.cache/nanotype/tools/<tool>-<version>), so later runs reuse them,
#   - wrangler, binaryen (wasm-opt) and esbuild from examples/tasks/package-lock.json (npm ci).
# Run it, or source it to keep the exported variables: `source scripts/setup-tools.sh`.
set -euo pipefail

NT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NT_TOOLS="${NANOTYPE_TOOLS:-$HOME/.cache/nanotype/tools}"
NT_EXAMPLE="$NT_ROOT/examples/tasks"
NT_STATE="${NANOTYPE_STATE:-$NT_ROOT/.state}"
WORKER_BUILD_VERSION=0.8.7
# The CLI must equal the wasm-bindgen crate in Cargo.lock.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$NT_ROOT/Cargo.lock")
: "${WASM_BINDGEN_VERSION:?no wasm-bindgen in Cargo.lock}"

nt_log() { echo "[setup-tools] $*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  nt_log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown >&2
fi

WB_ROOT="$NT_TOOLS/worker-build-$WORKER_BUILD_VERSION"
if ! [ "$("$WB_ROOT/bin/worker-build" --version 2>/dev/null)" = "$WORKER_BUILD_VERSION" ]; then
  nt_log "cargo install worker-build $WORKER_BUILD_VERSION (about 4 minutes)"
  cargo install -q worker-build --version "$WORKER_BUILD_VERSION" --locked --root "$WB_ROOT" >&2
fi

WBG_ROOT="$NT_TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION"
if ! "$WBG_ROOT/bin/wasm-bindgen" --version 2>/dev/null | grep -qx "wasm-bindgen $WASM_BINDGEN_VERSION"; then
  # No --locked: the CLI's own lockfile pins a webpki-roots the registry mirror lacks.
  nt_log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 minutes)"
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$WBG_ROOT" >&2
fi

# npm ci only when node_modules does not match the lockfile.
if ! cmp -s "$NT_EXAMPLE/package-lock.json" "$NT_EXAMPLE/node_modules/.package-lock.json.ci" 2>/dev/null; then
  nt_log "npm ci (wrangler, binaryen, esbuild)"
  (cd "$NT_EXAMPLE" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$NT_EXAMPLE/package-lock.json" "$NT_EXAMPLE/node_modules/.package-lock.json.ci"
fi

mkdir -p "$NT_STATE/xdg/config" "$NT_STATE/xdg/cache" "$NT_STATE/xdg/data" "$NT_STATE/wrangler-logs"
export PATH="$WB_ROOT/bin:$WBG_ROOT/bin:$NT_EXAMPLE/node_modules/.bin:$PATH"
# worker-build downloads these from GitHub unless told where they are.
export WASM_BINDGEN_BIN="$WBG_ROOT/bin/wasm-bindgen"
export WASM_OPT_BIN="$NT_EXAMPLE/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$NT_EXAMPLE/node_modules/.bin/esbuild"
# wrangler: no prompts, no telemetry, no cf.json fetch, state in the ignored folder.
export CI=true
export WRANGLER_SEND_METRICS=false
export WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export XDG_CONFIG_HOME="$NT_STATE/xdg/config"
export XDG_CACHE_HOME="$NT_STATE/xdg/cache"
export XDG_DATA_HOME="$NT_STATE/xdg/data"
export WRANGLER_LOG_PATH="$NT_STATE/wrangler-logs"
export NT_ROOT NT_EXAMPLE NT_STATE
nt_log "ready: worker-build $WORKER_BUILD_VERSION, wasm-bindgen $WASM_BINDGEN_VERSION, $("$NT_EXAMPLE/node_modules/.bin/wrangler" --version 2>/dev/null | tail -1 | tr -d '\n')"
