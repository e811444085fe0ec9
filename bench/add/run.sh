#!/usr/bin/env bash
# Benchmark `shoal add -r` (copy and --nocopy) against plain SHA-256 of the same
# tree (openssl, sha256sum), all reading from a warm page cache.  See README.md.
set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [--files N] [--total-bytes B] [--seed S] [--work DIR] [--shoal PATH] [--keep]
  --files N        files in the generated tree (default 20000)
  --total-bytes B  bytes in the generated pool (default 4.3e9)
  --seed S         generator seed (default 1)
  --work DIR       work dir (default /tmp/shoal-bench-add); WORK/tree is kept for reuse
  --shoal PATH     shoal binary (default: cargo build --release -p shoal-cli)
  --keep           keep WORK/home-* (the shoal stores) afterwards
  --runs N         runs per contender; the table shows the median (default 3)
EOF
}

FILES=20000 TOTAL=4.3e9 SEED=1 WORK=/tmp/shoal-bench-add SHOAL="" KEEP=0 SKIP_SHOAL=0 RUNS=3
while (($#)); do
  case $1 in
    --files) FILES=$2; shift 2 ;;
    --total-bytes) TOTAL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --shoal) SHOAL=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --runs) RUNS=$2; shift 2 ;;
    --skip-shoal) SKIP_SHOAL=1; shift ;; # hidden: test the baseline/table paths only
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

die() { echo "run.sh: error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
GEN="$ROOT/../shared/tools/gen_repo.py"
[[ -f $GEN ]] || die "generator not found at $GEN"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
TREE="$WORK/tree"
rm -f "$WORK"/{time,stderr,cid}.* "$WORK/rows.txt" "$WORK/results.json" # stale outputs

if [[ ! -x /usr/bin/time ]]; then
  log "installing GNU time"
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

if ((!SKIP_SHOAL)) && [[ -z $SHOAL ]]; then
  log "building shoal-cli (release)"
  (cd "$ROOT" && cargo build --release -p shoal-cli)
  SHOAL="$ROOT/target/release/shoal"
fi
((SKIP_SHOAL)) || [[ -x $SHOAL ]] || die "shoal binary not executable: $SHOAL"

cleanup() { rm -rf "$WORK"/cp-copy.*; ((KEEP)) || rm -rf "$WORK"/home-*; }
trap cleanup EXIT

# --- tree: regenerate unless the marker records the same parameters ---------
TOTAL_INT=$(awk -v b="$TOTAL" 'BEGIN { printf "%.0f", b }')
PARAMS="files=$FILES total-bytes=$TOTAL_INT seed=$SEED gen=$(sha256sum "$GEN" | cut -c1-16)"
MARKER="$WORK/tree.params" # beside the tree, so it is not part of what is hashed
if [[ -d $TREE && -f $MARKER && $(cat "$MARKER") == "$PARAMS" ]]; then
  log "reusing $TREE ($PARAMS)"
else
  log "generating $TREE ($PARAMS)"
  rm -rf "$TREE" "$MARKER"
  python3 "$GEN" generate --files "$FILES" --total-bytes "$TOTAL_INT" --seed "$SEED" \
    --out "$TREE" >&2
  echo "$PARAMS" >"$MARKER"
fi
TREE_FILES=$(find "$TREE" -type f | wc -l)
TREE_BYTES=$(find "$TREE" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')

# --- timing -------------------------------------------------------------------
# Page cache idle > 30 s gets reclaimed here, so re-warm right before each run.
# Every contender starts from the same memory state: dirty data written back,
# the page cache emptied (as root; otherwise skipped), then only the tree read in.
warm() {
  sync
  echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
  sleep 2
  find "$TREE" -type f -print0 | xargs -0 cat >/dev/null
}

RESULTS=() # "name wall_s rss_kib" (median wall of RUNS runs, max RSS)
# timed NAME OUTFILE CMD...: RUNS times: warm the cache, run CMD under GNU time
# with stdout to OUTFILE (and PREP, if set, before each run); fails on the first
# failing run, else records the median wall time.
timed() {
  local name=$1 out=$2; shift 2
  local tf="$WORK/time.$name" rc=0 walls=() rss=0 i
  for ((i = 1; i <= RUNS; i++)); do
    [[ -n ${PREP:-} ]] && eval "$PREP"
    log "warming cache, then running $name ($i/$RUNS)"
    warm
    /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$out" 2>"$WORK/stderr.$name" || rc=$?
    if ((rc)); then cat "$WORK/stderr.$name" >&2; return "$rc"; fi
    read -r w m <"$tf"
    walls+=("$w")
    ((m > rss)) && rss=$m
  done
  RESULTS+=("$name $(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p") $rss")
}

# One sequential pass over every file (xargs batches paths into a few processes).
timed openssl /dev/null bash -c 'find "$0" -type f -print0 | xargs -0 openssl dgst -sha256' \
  "$TREE" || die "openssl baseline failed"
timed sha256sum /dev/null bash -c 'find "$0" -type f -print0 | xargs -0 sha256sum' \
  "$TREE" || die "sha256sum failed"

declare -A CID=()
shoal_add() { # MODE [extra add flags...]
  local mode=$1 home="$WORK/home-$1"; shift
  # each run starts from a fresh, initialised store; earlier runs' stores are
  # deleted only at the end (deleting gigabytes on a disk mounted with
  # discard slows down whatever writes next)
  PREP="export home=\$(mktemp -d '$home.XXXX') && SHOAL_HOME=\$home '$SHOAL' init >/dev/null && sync && sleep 3"
  timed "shoal-$mode" "$WORK/cid.$mode" bash -c 'SHOAL_HOME=$home exec "$0" "$@"' "$SHOAL" add -r -Q "$@" "$TREE" \
    || die "shoal add ($mode) exited non-zero (stderr above)"
  CID[$mode]=$(tr -d '[:space:]' <"$WORK/cid.$mode")
  [[ ${CID[$mode]} =~ ^(baf|Qm)[A-Za-z0-9]+$ ]] \
    || die "shoal add ($mode) printed no CID: '$(head -c 200 "$WORK/cid.$mode")'"
}
if ((!SKIP_SHOAL)); then
  shoal_add nocopy --nocopy
  shoal_add copy
fi
# The floor for adding with a copy: copying the bytes durably at all. Run last:
# deleting gigabytes on this disk (mounted with discard) slows whatever runs next.
PREP="export dest=\$(mktemp -u '$WORK/cp-copy.XXXX') && sync && sleep 3"
timed cp+sync /dev/null bash -c 'cp -r "$0" "$dest" && sync' "$TREE" \
  || die "cp baseline failed"
PREP=""

# --- report (table on stdout, WORK/results.json) ------------------------------
printf '%s\n' "${RESULTS[@]}" >"$WORK/rows.txt"
TREE_FILES=$TREE_FILES TREE_BYTES=$TREE_BYTES PARAMS=$PARAMS NPROC=$(nproc) \
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo -dirty) \
CID_COPY=${CID[copy]:-} CID_NOCOPY=${CID[nocopy]:-} \
python3 - "$WORK/rows.txt" "$WORK/results.json" <<'PY'
import json, os, sys
E = os.environ
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
total, base = int(E["TREE_BYTES"]), float(rows[0][1])
out = {"tree": {"files": int(E["TREE_FILES"]), "bytes": total, "params": E["PARAMS"]},
       "machine": {"nproc": int(E["NPROC"]), "cpu": E["CPU"]}, "commit": E["COMMIT"],
       "cids": {"copy": E["CID_COPY"], "nocopy": E["CID_NOCOPY"]}, "results": []}
fmt = lambda v, f: "n/a" if v is None else format(v, f)
print(f"tree:    {out['tree']['files']} files, {total} bytes ({total / 2**30:.2f} GiB)")
print(f"machine: nproc={E['NPROC']}, {E['CPU']}")
print(f"commit:  {E['COMMIT']}\n")
print(f"{'contender':<14}{'wall s':>9}{'MB/s':>9}{'x openssl':>11}{'peak RSS MiB':>14}")
for name, wall, rss in rows:
    w = float(wall)
    r = {"contender": name, "wall_s": w,
         "mb_per_s": round(total / w / 1e6, 1) if w else None,
         "ratio_to_openssl": round(w / base, 3) if base else None,
         "peak_rss_mib": round(int(rss) / 1024, 1)}
    out["results"].append(r)
    print(f"{name:<14}{w:>9.2f}{fmt(r['mb_per_s'], '.1f'):>9}"
          f"{fmt(r['ratio_to_openssl'], '.2f'):>11}{r['peak_rss_mib']:>14.1f}")
print(f"\nroot CID (copy):   {E['CID_COPY'] or 'n/a'}")
print(f"root CID (nocopy): {E['CID_NOCOPY'] or 'n/a'}")
with open(sys.argv[2], "w") as f:
    json.dump(out, f, indent=2)
print(f"results: {sys.argv[2]}")
PY
