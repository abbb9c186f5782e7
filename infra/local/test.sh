#!/usr/bin/env bash
# Runs the whole test suite: starts the backing services (PostgreSQL, Redis, PgBouncer,
# Azurite), then formatting and lint checks, builds the deployable package (release handler
# linked against glibc 2.28, infra/package.sh), then every unit and end-to-end test, the
# package's own check included (it is `#[ignore]`d in plain `cargo test` runs for its build).
set -euo pipefail
cd "$(dirname "$0")/../.."

bash infra/local/up.sh >/dev/null
# shellcheck source=/dev/null
source /tmp/codeconnect-local/env

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
bash infra/package.sh dist/functionapp
cargo test --workspace --locked -- --include-ignored
