# Sourced by scripts/test-all.sh and .ci/run.
#
# Some containers have a regular file at /dev/null: whatever one process
# writes there, the next one reads back. Cargo's rustc probe reads its
# (empty) input from /dev/null, so it then parses stray compiler warnings
# and fails ("failed to run `rustc` to learn about target-specific
# information"). Make it the null device again, or at least empty it.
fix_dev_null() {
  [ -c /dev/null ] && return 0
  # (errors go to /dev/zero, which discards writes: /dev/null is the broken one)
  if mknod -m 666 /dev/null.shoal c 1 3 2>/dev/zero && mv -f /dev/null.shoal /dev/null; then
    echo "== /dev/null was a regular file; replaced it with the null device" >&2
    return 0
  fi
  rm -f /dev/null.shoal
  : > /dev/null
  echo "== /dev/null is a regular file and cannot be replaced here; emptied it" >&2
}
