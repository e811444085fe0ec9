#!/usr/bin/env bash
# Builds shoal in release mode and runs it with the embedded defaults
# (store under $SHOAL_HOME, default ~/.shoal). With arguments, runs
# `shoal ARGS...`; without, initialises the home and verifies the store.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p shoal-cli
bin="$PWD/target/release/shoal"
cd - >/dev/null
if [ "$#" -gt 0 ]; then
  exec "$bin" "$@"
fi
"$bin" init
exec "$bin" verify
