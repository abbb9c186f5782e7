# Python tools from PyPI, pinned, each in a virtualenv of its own under ~/.cache, made once.
# Sourced by infra/package.sh (zig for the old-glibc link) and infra/local/test.sh (schemathesis).

# ensure_venv DIR TOOL REQUIREMENT...: a virtualenv at DIR holding the requirements, unless
# DIR/bin/TOOL is there already. Debian's python3, the one a fresh machine has, not whichever a
# version manager puts first on PATH.
ensure_venv() {
  local dir=$1 tool=$2
  shift 2
  [[ -x "$dir/bin/$tool" ]] && return 0
  if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  printf '[venv.sh] installing %s into %s\n' "$*" "$dir" >&2
  rm -rf "$dir"
  /usr/bin/python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
}
