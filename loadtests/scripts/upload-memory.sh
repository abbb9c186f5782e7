#!/usr/bin/env bash
# Measures the handler's memory while it streams one recording part (100 MiB by default) to blob storage
# (Azurite): resident memory before, and the peak (VmHWM) after. Streaming keeps the peak near
# one 4 MiB block per upload, whatever the part's size.
# Usage: bash loadtests/scripts/upload-memory.sh [MEGABYTES, default 100]
# (after `cargo build --release -p handler`)
set -euo pipefail
cd "$(dirname "$0")/../.."

bash infra/local/up.sh >/dev/null
# shellcheck source=/dev/null
source /tmp/codeconnect-local/env
database=codeconnect_upload
port=7391
megabytes=${1:-100}
work=$(mktemp -d)
trap 'kill "$handler_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database"
export DATABASE_URL="postgres://postgres@127.0.0.1:6432/$database"
export DATABASE_DIRECT_URL="postgres://postgres@127.0.0.1:5432/$database"
export FUNCTIONS_CUSTOMHANDLER_PORT=$port LOG_LEVEL=warn
target/release/handler migrate >/dev/null

token=upload-memory-$(date +%s)
booking=$(psql -h 127.0.0.1 -U postgres -d "$database" -qtA <<SQL
INSERT INTO users (user_id, email, password_hash, first_name, last_name, role, approval_status)
VALUES ('00000000-0000-4000-8000-000000000001', 'mentor@upload.example', 'unused', 'Up', 'Loader', 'mentor', 'approved'),
       ('00000000-0000-4000-8000-000000000002', 'student@upload.example', 'unused', 'Stu', 'Dent', 'student', 'approved');
INSERT INTO sessions (session_id, user_id, token_hash, kind, expires_at)
VALUES (gen_random_uuid(), '00000000-0000-4000-8000-000000000001', sha256(convert_to('$token', 'UTF8')), 'session', now() + interval '1 hour');
INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status, scheduled_at, ends_at, blocked_until)
VALUES (gen_random_uuid(), '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'Physics',
        'regular', 'confirmed', now() - interval '5 minutes', now() + interval '50 minutes', now() + interval '55 minutes')
RETURNING booking_id;
SQL
)

# Part 1 of a WebM stream: the EBML header, then noise.
{ printf '\x1a\x45\xdf\xa3'; head -c $((megabytes * 1024 * 1024 - 4)) /dev/urandom; } >"$work/part.webm"

target/release/handler serve &
handler_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$handler_pid/status"; }

# Warm up with a small part, so the baseline includes connection pools and TLS-free HTTP clients.
head -c 1000000 "$work/part.webm" >"$work/small.webm"
curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: video/webm' \
  --data-binary @"$work/small.webm" "http://127.0.0.1:$port/api/bookings/$booking/recording/parts/1"
before=$(kib VmRSS)
start=$(date +%s.%N)
curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: video/webm' \
  --data-binary @"$work/part.webm" "http://127.0.0.1:$port/api/bookings/$booking/recording/parts/1"
seconds=$(echo "$(date +%s.%N) - $start" | bc)
peak=$(kib VmHWM)
after=$(kib VmRSS)
stored=$(psql -h 127.0.0.1 -U postgres -d "$database" -qtA -c "SELECT size_bytes FROM recording_parts WHERE part_number = 1")

echo "$megabytes MiB part ($stored bytes stored) uploaded in ${seconds}s"
echo "handler RSS before: $((before / 1024)) MiB, peak during: $((peak / 1024)) MiB, after: $((after / 1024)) MiB"
