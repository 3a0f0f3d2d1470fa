#!/usr/bin/env bash
# The crates as crates.io would get them, checked before any release:
#   1. `cargo package` of the four published crates in dependency order: each `.crate` is
#      unpacked and built on its own, its nanotype dependencies resolved from the other packaged
#      `.crate` files (never from this checkout's paths);
#   2. the unpacked runtime built for wasm32 with the `worker` feature, as a Worker depends on it;
#   3. the docs as docs.rs builds them (package.metadata.docs.rs: wasm32, `worker`), no warnings;
#   4. `cargo semver-checks` against the newest published version, once one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
CRATES=(nanotype-schema nanotype-macros nanotype-runtime nanotype-cli)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

# `cargo package` unpacks each `.crate` it verifies into cargo's registry cache, by name and
# version; an unpacked copy left by an earlier run of the same version would be built instead of
# this one (nothing of ours is published, so every copy there is such a leftover).
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/nanotype-{schema,macros,runtime,cli}-"$VERSION"
# Cargo takes a registry crate of a given version to never change, so what an earlier run compiled
# of ours would be linked again: the verification builds in its own target dir, cleared of ours.
export CARGO_TARGET_DIR="$PWD/target/package-verify"
rm -rf "$CARGO_TARGET_DIR"/debug/.fingerprint/nanotype-* "$CARGO_TARGET_DIR"/debug/deps/*nanotype*
# --allow-dirty: this checks what the crates build from; `cargo publish` itself refuses a dirty tree.
echo "== cargo package ${CRATES[*]} ($VERSION)"
cargo package -q --allow-dirty $(printf -- '-p %s ' "${CRATES[@]}")

echo "== the packaged runtime, unpacked, built for wasm32 with features = [\"worker\"]"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
patches=()
for c in "${CRATES[@]}"; do
  tar xzf "$CARGO_TARGET_DIR/package/$c-$VERSION.crate" -C "$unpacked"
  patches+=(--config "patch.crates-io.$c.path='$unpacked/$c-$VERSION'")
done
CARGO_TARGET_DIR="$PWD/target/package-check" cargo check -q \
  --manifest-path "$unpacked/nanotype-runtime-$VERSION/Cargo.toml" \
  --target wasm32-unknown-unknown --features worker "${patches[@]}"

echo "== docs as docs.rs builds them (wasm32, worker)"
RUSTDOCFLAGS="-D warnings" cargo doc -q -p nanotype-runtime --no-deps \
  --target wasm32-unknown-unknown --features worker

echo "== cargo semver-checks"
if published=$(cargo info nanotype-runtime --registry crates-io 2>&1); then
  TOOLS="${NANOTYPE_TOOLS:-$HOME/.cache/nanotype/tools}/cargo-semver-checks"
  [ -x "$TOOLS/bin/cargo-semver-checks" ] ||
    cargo install -q cargo-semver-checks --locked --root "$TOOLS"
  PATH="$TOOLS/bin:$PATH" cargo semver-checks $(printf -- '-p %s ' "${CRATES[@]}")
elif grep -q "could not find" <<<"$published"; then
  echo "nothing published yet: semver-checks starts with the first release (see CHANGELOG.md)"
else
  echo "$published" >&2
  exit 1
fi
