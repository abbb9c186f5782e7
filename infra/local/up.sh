#!/usr/bin/env bash
# Bring up the local backing services CodeConnect and its tests need:
#   PostgreSQL 15 (:5432), Redis 7 (:6379), PgBouncer >= 1.21 (:6432), Azurite blob (:10000),
#   and what the build and tests use from npm (Swagger UI for /api/docs, Web PubSub SDKs, the
#   TypeScript client's tools, the browser test's) and Debian's Chromium.
#
# Idempotent: safe to run any number of times; each run only installs/starts what is
# missing, so a second run is a fast no-op. Meant to run as root on Debian bookworm
# (developer machines and CI alike); it installs what it needs with apt-get and npm.
#
# On success it prints the app's environment and writes it, as `export` lines, to
# $RUNTIME_DIR/env so other scripts can `source` it.
set -euo pipefail

# Work relative to this script so it can be called from any cwd.
cd "$(dirname "$0")"
SCRIPT_DIR="$(pwd)"

RUNTIME_DIR=/tmp/codeconnect-local
PGB_DIR="$RUNTIME_DIR/pgbouncer"
AZURITE_DIR="$RUNTIME_DIR/azurite"
ENV_FILE="$RUNTIME_DIR/env"

PG_PORT=5432
REDIS_PORT=6379
PGB_PORT=6432
AZURITE_PORT=10000
DB_NAME=codeconnect

PG_MIN_MAX_CONNECTIONS=200
PGB_MIN_VERSION=1.21 # first release with max_prepared_statements
PGB_LOCAL_BIN=/usr/local/bin/pgbouncer
PGB_SRC_SUITE=trixie # ships pgbouncer 1.24.x; bookworm only has 1.18
PGB_BUILD_DIR=/usr/local/src/pgbouncer-build
TRIXIE_SRC_LIST=/etc/apt/sources.list.d/codeconnect-trixie-src.sources
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources

export DEBIAN_FRONTEND=noninteractive

log() { printf '[up.sh] %s\n' "$*" >&2; }
die() { printf '[up.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# True if something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp, no extra tools).
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Wait up to ~30 s for a port, naming the service if it never comes up.
wait_for_port() {
  local name=$1 port=$2 i
  for ((i = 0; i < 60; i++)); do
    port_open "$port" && return 0
    sleep 0.5
  done
  die "$name did not accept connections on 127.0.0.1:$port within 30 s"
}

# ---------------------------------------------------------------------------
# 0. Packages: the machine images we use ship PostgreSQL, Redis and Node; a bare
#    Debian/Ubuntu machine gets them from its own package archive. A fresh cluster
#    is set to trust loopback connections (a local development database only).
# ---------------------------------------------------------------------------
ensure_packages() {
  local missing=()
  command -v pg_ctlcluster >/dev/null || missing+=(postgresql postgresql-client)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v npm >/dev/null || missing+=(nodejs npm)
  # The handler's allocator (jemalloc) is built from C sources with make.
  command -v make >/dev/null || missing+=(make)
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    local hba
    hba="/etc/postgresql/$(pg_cluster_version)/main/pg_hba.conf"
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    sed -i -E 's/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$(pg_cluster_version)" main restart || true
  fi
}

psql_admin() {
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"
}

pg_cluster_version() {
  # shellcheck disable=SC2012 # directory names are plain version numbers (e.g. 15)
  ls /etc/postgresql | sort -V | tail -n 1
}

# ---------------------------------------------------------------------------
# 1. PostgreSQL: normally already running; start it if not, make sure it allows
#    enough connections (PgBouncer pools per test database add up) and that the
#    app's database exists.
# ---------------------------------------------------------------------------
ensure_postgres() {
  local ver
  ver="$(pg_cluster_version)"
  if ! port_open "$PG_PORT"; then
    log "starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  fi
  wait_for_port PostgreSQL "$PG_PORT"

  local max_conn
  max_conn="$(psql_admin -Atc 'SHOW max_connections')"
  if ((max_conn < PG_MIN_MAX_CONNECTIONS)); then
    log "raising PostgreSQL max_connections $max_conn -> $PG_MIN_MAX_CONNECTIONS (restart)"
    psql_admin -c "ALTER SYSTEM SET max_connections = $PG_MIN_MAX_CONNECTIONS"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main restart
    wait_for_port PostgreSQL "$PG_PORT"
  fi

  if [[ "$(psql_admin -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]]; then
    log "creating database $DB_NAME"
    psql_admin -c "CREATE DATABASE $DB_NAME"
  fi
}

# ---------------------------------------------------------------------------
# 2. Redis: normally already running; start an ephemeral (no persistence) one if not.
# ---------------------------------------------------------------------------
ensure_redis() {
  if ! port_open "$REDIS_PORT"; then
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  wait_for_port Redis "$REDIS_PORT"
}

# ---------------------------------------------------------------------------
# 3. PgBouncer >= 1.21: sqlx uses named prepared statements, which only work in
#    transaction pooling with max_prepared_statements (1.21+). Bookworm ships 1.18,
#    so build trixie's source package with apt-get source.
# ---------------------------------------------------------------------------

# Prints the version number of the pgbouncer binary $1 (e.g. 1.24.1), or nothing.
pgbouncer_version_of() {
  "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true
}

version_ok() {
  [[ -n "$1" ]] && dpkg --compare-versions "$1" ge "$PGB_MIN_VERSION"
}

# Prefer our own build in /usr/local/bin over anything on PATH (e.g. Debian's 1.18).
pgbouncer_bin() {
  if [[ -x "$PGB_LOCAL_BIN" ]]; then
    echo "$PGB_LOCAL_BIN"
  else
    command -v pgbouncer || true
  fi
}

# The apt URI and keyring of the machine's main Debian entry, read at run time so
# no mirror host is hard-coded here.
debian_uri() {
  awk '$1 == "URIs:" { print $2; exit }' "$DEBIAN_SOURCES"
}
debian_keyring() {
  awk '$1 == "Signed-By:" { print $2; exit }' "$DEBIAN_SOURCES"
}

write_trixie_src_list() {
  local options=$1 uri
  uri="$(debian_uri)"
  [[ -n "$uri" ]] || die "no URIs: line in $DEBIAN_SOURCES"
  {
    echo "# Temporary: lets up.sh fetch the $PGB_SRC_SUITE pgbouncer source; removed after the build."
    echo "Types: deb-src"
    echo "URIs: $uri"
    echo "Suites: $PGB_SRC_SUITE"
    echo "Components: main"
    printf '%s\n' "$options"
  } >"$TRIXIE_SRC_LIST"
}

remove_trixie_src_list() {
  if [[ -e "$TRIXIE_SRC_LIST" ]]; then
    rm -f "$TRIXIE_SRC_LIST"
    # Drop the trixie index again so later apt-get source/installs stay on bookworm.
    apt-get update -qq || log "warning: apt-get update after removing $PGB_SRC_SUITE sources failed"
  fi
}

# apt-get update; returns 1 if a source could not be verified (unsigned / unknown key),
# dies on any other failure (so a broken entry never falls through to Trusted: yes).
apt_update_verified() {
  local out rc=0
  out="$(apt-get update -qq 2>&1)" || rc=$?
  [[ -z "$out" ]] || printf '%s\n' "$out" >&2
  if grep -qiE 'NO_PUBKEY|not signed|EXPKEYSIG|invalid signature|GPG error' <<<"$out"; then
    return 1
  fi
  ((rc == 0)) || die "apt-get update failed (exit $rc)"
}

# Add the deb-src entry and refresh apt. The bookworm archive keyring (2023.3+deb12u*)
# already carries the trixie keys; if it can't verify, upgrade debian-archive-keyring
# and use its full keyring; [trusted=yes] is only the last resort.
enable_trixie_sources() {
  local keyring
  keyring="$(debian_keyring)"
  write_trixie_src_list "Signed-By: ${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}"
  apt_update_verified && return 0

  log "apt could not verify $PGB_SRC_SUITE with $keyring; upgrading debian-archive-keyring"
  apt-get install -y -qq debian-archive-keyring >/dev/null || true
  write_trixie_src_list "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  apt_update_verified && return 0

  log "still unverifiable; last resort: Trusted: yes for the $PGB_SRC_SUITE deb-src entry only"
  write_trixie_src_list "Trusted: yes"
  apt-get update -qq
}

build_pgbouncer() {
  log "building PgBouncer from $PGB_SRC_SUITE sources (installed: '${1:-none}', need >= $PGB_MIN_VERSION)"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    build-essential pkg-config libevent-dev libssl-dev libc-ares-dev dpkg-dev >/dev/null

  trap remove_trixie_src_list EXIT
  enable_trixie_sources

  rm -rf "$PGB_BUILD_DIR"
  mkdir -p "$PGB_BUILD_DIR"
  (
    cd "$PGB_BUILD_DIR"
    # Runs as root: apt warns that the download is unsandboxed; harmless here.
    apt-get source -qq "pgbouncer/$PGB_SRC_SUITE"
    cd "$(find . -maxdepth 1 -type d -name 'pgbouncer-*' | head -n 1)"
    # No pandoc: the release tarball already ships the man pages.
    ./configure --prefix=/usr/local --with-cares >configure.log 2>&1 ||
      { tail -n 30 configure.log >&2; exit 1; }
    make -j"$(nproc)" >make.log 2>&1 || { tail -n 30 make.log >&2; exit 1; }
    make install >>make.log 2>&1 || { tail -n 30 make.log >&2; exit 1; }
  ) >&2 # stdout is reserved for the env lines

  remove_trixie_src_list
  trap - EXIT
  hash -r
  version_ok "$(pgbouncer_version_of "$PGB_LOCAL_BIN")" ||
    die "PgBouncer build finished but $PGB_LOCAL_BIN is not >= $PGB_MIN_VERSION"
  log "installed $("$PGB_LOCAL_BIN" --version | head -n 1) at $PGB_LOCAL_BIN"
}

ensure_pgbouncer_installed() {
  local bin ver=""
  bin="$(pgbouncer_bin)"
  [[ -n "$bin" ]] && ver="$(pgbouncer_version_of "$bin")"
  version_ok "$ver" || build_pgbouncer "$ver"
}

# Config in the runtime dir, owned by `postgres`: pgbouncer refuses to run as root,
# so it is started as root with `-u postgres` and must then read/write its files.
write_pgbouncer_config() {
  mkdir -p "$PGB_DIR"
  cat >"$PGB_DIR/userlist.txt" <<'EOF'
"postgres" ""
EOF
  # The superuser the tests and tools use signs in without a password; any other role proves
  # its password, which PgBouncer checks against Postgres (auth_query as postgres), as Azure
  # checks an app identity's Entra token: the credential-renewal tests need that.
  cat >"$PGB_DIR/pgbouncer_hba.conf" <<'EOF'
local all postgres              trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
EOF
  cat >"$PGB_DIR/pgbouncer.ini.new" <<EOF
; Generated by infra/local/up.sh -- local development / CI only.
[databases]
; Forward every database name (tests create a fresh database per test).
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir = $PGB_DIR
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid

auth_type = hba
auth_hba_file = $PGB_DIR/pgbouncer_hba.conf
auth_file = $PGB_DIR/userlist.txt
auth_user = postgres
admin_users = postgres

pool_mode = transaction
; sqlx's named prepared statements across transaction-pooled server connections.
max_prepared_statements = 500
; The test suite asserts a server pool of 10.
default_pool_size = 10
max_client_conn = 10000
; Cap total server connections below PostgreSQL's max_connections (>= 200), leaving
; room for direct connections; pgbouncer then evicts idle connections of other pools.
max_user_connections = 150
; Release idle server connections of finished per-test databases quickly.
server_idle_timeout = 15
; Transaction pooling: no per-session reset query.
server_reset_query =
ignore_startup_parameters = extra_float_digits
EOF
  if ! cmp -s "$PGB_DIR/pgbouncer.ini.new" "$PGB_DIR/pgbouncer.ini"; then
    mv "$PGB_DIR/pgbouncer.ini.new" "$PGB_DIR/pgbouncer.ini"
    PGB_CONFIG_CHANGED=1
  else
    rm -f "$PGB_DIR/pgbouncer.ini.new"
    PGB_CONFIG_CHANGED=0
  fi
  chown -R postgres:postgres "$PGB_DIR"
  chmod 755 "$PGB_DIR"
}

# PID of whatever listens on the PgBouncer port, if any.
pgbouncer_listener_pid() {
  local pidfile="$PGB_DIR/pgbouncer.pid" pid
  if [[ -r "$pidfile" ]] && pid="$(cat "$pidfile")" && kill -0 "$pid" 2>/dev/null; then
    echo "$pid"
    return
  fi
  if command -v ss >/dev/null; then
    ss -Hltnp "sport = :$PGB_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true
  fi
}

stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
}

start_pgbouncer() {
  local bin
  bin="$(pgbouncer_bin)"
  log "starting $("$bin" --version | head -n 1) on 127.0.0.1:$PGB_PORT"
  (
    # Thousands of client connections need file descriptors; go as high as allowed.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
    "$bin" -u postgres -d "$PGB_DIR/pgbouncer.ini"
  ) || { tail -n 20 "$PGB_DIR/pgbouncer.log" >&2 || true; die "PgBouncer failed to start"; }
}

ensure_pgbouncer_running() {
  local pid ver
  if port_open "$PGB_PORT"; then
    pid="$(pgbouncer_listener_pid)"
    # /proc/PID/exe still runs the old binary even if the file was replaced since.
    ver=""
    if [[ -n "$pid" ]]; then ver="$(pgbouncer_version_of "/proc/$pid/exe")"; fi
    if [[ -n "$pid" ]] && ! version_ok "$ver"; then
      log "running PgBouncer (pid $pid, version '${ver:-unknown}') is too old; replacing it"
      stop_pid "$pid"
    elif [[ "$PGB_CONFIG_CHANGED" == 1 && -n "$pid" ]]; then
      log "PgBouncer config changed; reloading pid $pid"
      kill -HUP "$pid"
    fi
  fi
  port_open "$PGB_PORT" || start_pgbouncer
  wait_for_port PgBouncer "$PGB_PORT"
}

# ---------------------------------------------------------------------------
# 4. Azurite (blob only), pinned at 3.35.0 in package.json / package-lock.json:
#    newer releases need Node 22 and this machine has Node 20.
# ---------------------------------------------------------------------------
ensure_azurite() {
  local bin="$SCRIPT_DIR/node_modules/.bin/azurite-blob"
  if [[ ! -x "$bin" ]]; then
    log "installing Azurite (npm ci)"
    npm ci --prefix "$SCRIPT_DIR" --no-audit --no-fund --loglevel=error >&2
  fi
  if ! port_open "$AZURITE_PORT"; then
    log "starting Azurite blob on 127.0.0.1:$AZURITE_PORT"
    mkdir -p "$AZURITE_DIR"
    nohup "$bin" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --location "$AZURITE_DIR" \
      --skipApiVersionCheck --disableTelemetry --silent \
      >"$RUNTIME_DIR/azurite.log" 2>&1 </dev/null &
    echo $! >"$RUNTIME_DIR/azurite.pid"
  fi
  wait_for_port Azurite "$AZURITE_PORT"
  # Browsers upload straight to storage: CORS as Bicep sets it on the storage account.
  node "$SCRIPT_DIR/azurite-cors.mjs" "http://127.0.0.1:$AZURITE_PORT/devstoreaccount1"
}

# ---------------------------------------------------------------------------
# 4b. Microsoft's Web PubSub npm SDKs that check the local hub (tests/pubsub-sdk), pinned to
#     versions that run on Node 20.
# ---------------------------------------------------------------------------
ensure_pubsub_sdks() {
  local dir="$SCRIPT_DIR/../../tests/pubsub-sdk"
  if [[ ! -d "$dir/node_modules/@azure/web-pubsub-client" ]]; then
    log "installing the Web PubSub SDKs for the hub tests (npm ci)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  fi
}

# ---------------------------------------------------------------------------
# 4c. The typed TypeScript client's pinned tools (shared/api-client): openapi-typescript for the
#     drift check, tsc and openapi-fetch for the client's own test against the handler.
# ---------------------------------------------------------------------------
ensure_api_client() {
  local dir="$SCRIPT_DIR/../../shared/api-client"
  if [[ ! -x "$dir/node_modules/.bin/tsc" || ! -d "$dir/node_modules/openapi-fetch" ]]; then
    log "installing the TypeScript client's tools (npm ci)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  fi
}

# ---------------------------------------------------------------------------
# 4d. Swagger UI, which the handler embeds at build time for /api/docs (functions/handler/build.rs).
# ---------------------------------------------------------------------------
ensure_reference_assets() {
  local dir="$SCRIPT_DIR/../../functions/handler/docs"
  if [[ ! -f "$dir/node_modules/swagger-ui-dist/swagger-ui-bundle.js" ]]; then
    log "installing Swagger UI for the API reference page (npm ci)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  fi
}

# ---------------------------------------------------------------------------
# 4e. The browser class test (tests/browser): Debian's Chromium (a browser download by the npm
#     tools cannot work here) and playwright-core, esbuild and the Web PubSub client, pinned.
# ---------------------------------------------------------------------------
ensure_browser() {
  if [[ ! -x /usr/bin/chromium ]]; then
    log "installing Chromium (apt-get)"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  local dir="$SCRIPT_DIR/../../tests/browser"
  if [[ ! -d "$dir/node_modules/playwright-core" || ! -d "$dir/node_modules/esbuild" ]]; then
    log "installing the browser test's tools (npm ci)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  fi
}

# ---------------------------------------------------------------------------
# 5. Publish the environment the app and tests need.
# ---------------------------------------------------------------------------
write_env() {
  local lines
  lines="DATABASE_URL=postgres://postgres@127.0.0.1:$PGB_PORT/$DB_NAME
DATABASE_DIRECT_URL=postgres://postgres@127.0.0.1:$PG_PORT/$DB_NAME
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
AZURE_STORAGE_CONNECTION_STRING=UseDevelopmentStorage=true
RESET_CODE_KEY=local-only-reset-code-key-not-for-azure"
  sed 's/^/export /' <<<"$lines" >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  echo "$lines"
}

main() {
  [[ $EUID -eq 0 ]] || die "run as root (installs packages and starts services)"
  mkdir -p "$RUNTIME_DIR"
  chmod 755 "$RUNTIME_DIR"

  ensure_packages
  ensure_postgres
  ensure_redis
  ensure_pgbouncer_installed
  write_pgbouncer_config
  ensure_pgbouncer_running
  ensure_azurite
  ensure_pubsub_sdks
  ensure_api_client
  ensure_reference_assets
  ensure_browser
  write_env
}

main "$@"
