#!/usr/bin/env bash
# Runs every test of shoal on a fresh Debian machine with cargo, node/npm and
# python3: installs what the tests need, builds, then runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/dev-null.sh
. scripts/dev-null.sh
fix_dev_null
exec </dev/null  # nothing here reads input; keep tools (rustc probes) off any inherited stdin

echo "== installing the Debian tools the package-manager tests use (apt-ftparchive, dpkg-deb)"
if ! command -v apt-ftparchive >/dev/null || ! command -v dpkg-deb >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends apt-utils dpkg >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends apt-utils dpkg >/dev/null
  fi
fi
python3 -m pip --version >/dev/null || { echo "python3 with pip is needed"; exit 1; }

echo "== installing the JS reference harness and the Helia/js-libp2p peers (npm ci)"
npm ci --prefix tests/interop/js --no-audit --no-fund --loglevel=error
npm ci --prefix tests/interop/helia --no-audit --no-fund --loglevel=error
echo "== providing Node 24 for Helia and js-libp2p (scripts/node24.sh)"
SHOAL_NODE24="$(scripts/node24.sh)"
export SHOAL_NODE24

echo "== building"
# (see scripts/dev-null.sh for why a cargo run can fail in rustc's probe)
if ! cargo build --workspace --locked --all-targets; then
  echo "== build failed; retrying once without target/.rustc_info.json"
  rm -f target/.rustc_info.json
  fix_dev_null
  cargo build --workspace --locked --all-targets
fi

echo "== testing"
fix_dev_null
cargo test --workspace --locked
