#!/usr/bin/env bash
# Builds shoal in release mode and runs the node (`shoal daemon`) with the
# embedded defaults (store, identity and config under $SHOAL_HOME, default
# ~/.shoal). With arguments, runs `shoal ARGS...` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p shoal-cli
bin="$PWD/target/release/shoal"
cd - >/dev/null
if [ "$#" -gt 0 ]; then
  exec "$bin" "$@"
fi
exec "$bin" daemon
