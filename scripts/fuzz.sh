#!/usr/bin/env bash
# Runs every cargo-fuzz target of shoal (fuzz/fuzz_targets/*) for a fixed time
# each, starting from the seeds in fuzz/seeds/<target>/ plus whatever earlier
# runs left in the scratch corpus fuzz/corpus/<target>/ (gitignored).
#
# Prints one summary line per target and exits non-zero if any target found a
# crash, panic, leak, OOM or timeout (its input is kept in
# fuzz/artifacts/<target>/, the full log in fuzz/artifacts/<target>.log).
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_TARGETS    space-separated targets (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER  address | none | ... (default address)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, -Cpasses=sancov...).
# On a stable toolchain they are unlocked with RUSTC_BOOTSTRAP=1, which this
# script sets unless the caller already chose a value (e.g. RUSTC_BOOTSTRAP=0
# together with `RUSTUP_TOOLCHAIN=nightly`).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
timeout="${FUZZ_TIMEOUT:-10}"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
build_start=$SECONDS
cargo fuzz build --sanitizer "$sanitizer"
echo "== built in $((SECONDS - build_start)) s"

summaries=()
failed=0
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  log="fuzz/artifacts/$t.log"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "fuzz/seeds/$t" ]; then
    cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  fi
  before=$(find "$artifacts" -maxdepth 1 -type f | wc -l)

  echo "== fuzzing $t for $seconds s (corpus: $(find "$corpus" -type f | wc -l) inputs)"
  start=$SECONDS
  status=0
  cargo fuzz run --sanitizer "$sanitizer" "$t" "$corpus" -- \
    -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  elapsed=$((SECONDS - start))

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  if [ -z "$execs" ]; then
    # No final stats (e.g. killed): fall back to the last status line "#N ...".
    execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n1)
  fi
  execs="${execs:-?}"
  # Fuzzing time as libFuzzer reports it ("Done N runs in S second(s)"), which
  # excludes a rebuild by `cargo fuzz run` when sources changed meanwhile.
  fuzz_secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
  fuzz_secs="${fuzz_secs:-$elapsed}"

  after=$(find "$artifacts" -maxdepth 1 -type f | wc -l)
  if [ "$status" -eq 0 ] && [ "$after" -eq "$before" ]; then
    result="ok"
  else
    failed=1
    artifact=$(ls -t "$artifacts" 2>/dev/null | head -n1 || true)
    # A Rust panic prints "thread '..' panicked at file:line:col:" and the
    # message on the next line; sanitizers print one "ERROR: ..." line.
    reason=$(grep -m1 -A1 "panicked at" "$log" | tr '\n' ' ' || true)
    if [ -z "$reason" ]; then
      reason=$(grep -m1 -E "ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)" "$log" || true)
    fi
    if [ -z "$reason" ]; then
      reason="exit status $status"
    fi
    reason="${reason#"${reason%%[![:space:]]*}"}"
    result="FAILED: ${reason%"${reason##*[![:space:]]}"}"
    # The innermost stack frame in this repository's crates, if any.
    frame=$(grep -m1 -E "^ *#[0-9]+ 0x[0-9a-f]+ in .* $PWD/crates/" "$log" | sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in //' || true)
    if [ -n "$frame" ]; then
      result="$result; in ${frame/$PWD\//}"
    fi
    if [ -n "$artifact" ]; then
      result="$result; input: $artifacts/$artifact"
    fi
    result="$result; log: $log"
  fi
  line="$t: $execs execs in $fuzz_secs s ($elapsed s wall): $result"
  echo "$line"
  summaries+=("$line")
done

echo "== summary"
printf '%s\n' "${summaries[@]}"
exit "$failed"
