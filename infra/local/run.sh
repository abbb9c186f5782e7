#!/usr/bin/env bash
# Runs the backend locally with demo data: starts the backing services, migrates, seeds demo
# accounts and serves the API on http://127.0.0.1:7071/api (as `func start` would).
set -euo pipefail
cd "$(dirname "$0")/../.."

bash infra/local/up.sh >/dev/null
# shellcheck source=/dev/null
source /tmp/codeconnect-local/env

cargo build --release -p handler
export FUNCTIONS_CUSTOMHANDLER_PORT="${FUNCTIONS_CUSTOMHANDLER_PORT:-7071}"
# No Functions host here: the handler fires the timers itself, on their function.json schedules.
export TIMERS_IN_PROCESS=true
export API_ALLOWED_ORIGINS="${API_ALLOWED_ORIGINS:-http://localhost:3000,http://localhost:5173}"
target/release/handler migrate
target/release/handler seed-demo
echo "serving on http://127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT/api (reference at /api/docs, OpenAPI at /api/openapi.json)"
exec target/release/handler serve
