#!/usr/bin/env bash
# Builds the deployable function app folder (default dist/functionapp): the release handler,
# linked against glibc 2.28 so it starts on every Functions Linux image (bullseye ships 2.31,
# bookworm 2.36; a binary linked on bookworm needs GLIBC_2.34) and stripped, then
# `handler package` writes host.json, the binary and one folder per function next to it.
#
#   bash infra/package.sh [out-dir]
#
# The old-glibc link uses zig as the C toolchain through cargo-zigbuild, both from PyPI, pinned,
# in a virtualenv under ~/.cache (infra/venv.sh; no root needed once python3-venv is there).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT_DIR=${1:-dist/functionapp}
TARGET=x86_64-unknown-linux-gnu
GLIBC_BASELINE=2.28
ZIGLANG_VERSION=0.14.1
CARGO_ZIGBUILD_VERSION=0.20.1
TOOLS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/codeconnect-zigbuild-$ZIGLANG_VERSION-$CARGO_ZIGBUILD_VERSION"

log() { printf '[package.sh] %s\n' "$*" >&2; }

# The /api/docs page embeds Swagger UI from npm at build time (functions/handler/build.rs).
if [[ ! -f functions/handler/docs/node_modules/swagger-ui-dist/swagger-ui-bundle.js ]]; then
  log "installing Swagger UI for the API reference page (npm ci)"
  npm ci --prefix functions/handler/docs --no-audit --no-fund --loglevel=error >&2
fi

# shellcheck source=infra/venv.sh
source infra/venv.sh
ensure_venv "$TOOLS_DIR" cargo-zigbuild "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
# cargo-zigbuild finds zig as `python3 -m ziglang` through the virtualenv's python3.
PATH="$TOOLS_DIR/bin:$PATH" CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo zigbuild --release --locked -p handler --target "$TARGET.$GLIBC_BASELINE"
"target/$TARGET/release/handler" package "$OUT_DIR"
log "packaged $OUT_DIR: handler $(du -h "$OUT_DIR/handler" | cut -f1), folder $(du -sh "$OUT_DIR" | cut -f1)"
