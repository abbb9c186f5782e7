#!/usr/bin/env bash
# Builds the deployable function app folder (default dist/functionapp): the release handler,
# linked against glibc 2.28 so it starts on every Functions Linux image (bullseye ships 2.31,
# bookworm 2.36; a binary linked on bookworm needs GLIBC_2.34) and stripped, then
# `handler package` writes host.json, the binary and one folder per function next to it.
#
#   bash infra/package.sh [out-dir]
#
# The old-glibc link uses zig as the C toolchain through cargo-zigbuild, both from PyPI, pinned,
# in a virtualenv under ~/.cache (no root needed once python3-venv is there).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT_DIR=${1:-dist/functionapp}
TARGET=x86_64-unknown-linux-gnu
GLIBC_BASELINE=2.28
ZIGLANG_VERSION=0.14.1
CARGO_ZIGBUILD_VERSION=0.20.1
TOOLS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/codeconnect-zigbuild-$ZIGLANG_VERSION-$CARGO_ZIGBUILD_VERSION"

log() { printf '[package.sh] %s\n' "$*" >&2; }

ensure_tools() {
  [[ -x "$TOOLS_DIR/bin/cargo-zigbuild" ]] && return 0
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    log "installing python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  log "installing ziglang $ZIGLANG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION into $TOOLS_DIR"
  rm -rf "$TOOLS_DIR"
  python3 -m venv "$TOOLS_DIR"
  "$TOOLS_DIR/bin/pip" install -q --disable-pip-version-check \
    "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
}

ensure_tools
# cargo-zigbuild finds zig as `python3 -m ziglang` through the virtualenv's python3.
PATH="$TOOLS_DIR/bin:$PATH" CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo zigbuild --release --locked -p handler --target "$TARGET.$GLIBC_BASELINE"
"target/$TARGET/release/handler" package "$OUT_DIR"
log "packaged $OUT_DIR: handler $(du -h "$OUT_DIR/handler" | cut -f1), folder $(du -sh "$OUT_DIR" | cut -f1)"
