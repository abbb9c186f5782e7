#!/usr/bin/env bash
# Runs the whole test suite: starts the backing services (PostgreSQL, Redis, PgBouncer,
# Azurite), then formatting and lint checks, builds the deployable package (release handler
# linked against glibc 2.28, infra/package.sh), then every unit and end-to-end test, the
# package's own check and the schemathesis run included (both are `#[ignore]`d in plain
# `cargo test` runs: one needs the package, the other schemathesis, installed here).
set -euo pipefail
cd "$(dirname "$0")/../.."

bash infra/local/up.sh >/dev/null
# shellcheck source=/dev/null
source /tmp/codeconnect-local/env

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
bash infra/package.sh dist/functionapp
# The schema fuzzer tests/api/schemathesis.rs runs, pinned, from PyPI.
# shellcheck source=infra/venv.sh
source infra/venv.sh
SCHEMATHESIS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/codeconnect-schemathesis-4.32.5"
ensure_venv "$SCHEMATHESIS_DIR" schemathesis "schemathesis==4.32.5"
export SCHEMATHESIS="$SCHEMATHESIS_DIR/bin/schemathesis"
cargo test --workspace --locked -- --include-ignored
