#!/usr/bin/env bash
# Runs the whole test suite: starts the backing services (PostgreSQL, Redis, PgBouncer,
# Azurite), then formatting and lint checks, then every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash infra/local/up.sh >/dev/null
# shellcheck source=/dev/null
source /tmp/codeconnect-local/env

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
