#!/usr/bin/env bash
# Benchmark a feed update (re-publish on one daemon, follow on another) against
# rsync updating a copy of the old tree, locally and through an rsync daemon on
# 127.0.0.1, all in the same run.  See README.md.
set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [--files N] [--fraction F] [--total-bytes B] [--seed S] [--mutate-seed S]
          [--runs N] [--work DIR] [--shoal PATH] [--build] [--timeout S]
          [--baseline-only] [--json] [--strict] [--keep]
  --files N        files in the generated tree (default 20000; env SHOAL_BENCH_FILES)
  --fraction F     share of packages each update touches (default 0.01): of them 80%
                   get a new version, 10% are deleted, 10% are added (gen_repo.py mutate)
  --total-bytes B  bytes in the generated pool (default N * 215000, i.e. 4.3e9 at
                   20000 files; env SHOAL_BENCH_TOTAL_BYTES)
  --seed S         generator seed (default 1; env SHOAL_BENCH_SEED); same tree as
                   bench/fetch and bench/add at the same --files/--total-bytes/--seed
  --mutate-seed S  seed of the mutations (default 1)
  --runs N         updates measured one after another, each a new mutation of the
                   tree; the table shows medians (default 1)
  --work DIR       work dir (default \${TMPDIR:-/tmp}/shoal-bench-update; env
                   SHOAL_BENCH_WORK); WORK/base (the generated tree) is kept and reused
  --shoal PATH     shoal binary (default \$SHOAL_BIN, else target/release/shoal)
  --build          cargo build --release -p shoal-cli first (never done otherwise)
  --timeout S      give up on one shoal command after S seconds (default 3600)
  --baseline-only  skip every shoal step: generate, mutate, diff and the rsync baselines
  --json           print the summary as JSON instead of the table (WORK/results.json
                   is written either way)
  --strict         exit 3 when a target is not met
  --keep           keep the work trees, SHOAL_HOMEs and logs afterwards
EOF
}

FILES=${SHOAL_BENCH_FILES:-20000} TOTAL=${SHOAL_BENCH_TOTAL_BYTES:-} SEED=${SHOAL_BENCH_SEED:-1}
WORK=${SHOAL_BENCH_WORK:-${TMPDIR:-/tmp}/shoal-bench-update} SHOAL=${SHOAL_BIN:-}
FRACTION=0.01 MSEED=1 RUNS=1 LIMIT=3600 BUILD=0 BASELINE_ONLY=0 JSON=0 STRICT=0 KEEP=0
while (($#)); do
  case $1 in
    --files) FILES=$2; shift 2 ;;
    --fraction) FRACTION=$2; shift 2 ;;
    --total-bytes) TOTAL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --mutate-seed) MSEED=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --shoal) SHOAL=$2; shift 2 ;;
    --build) BUILD=1; shift ;;
    --timeout) LIMIT=$2; shift 2 ;;
    --baseline-only) BASELINE_ONLY=1; shift ;;
    --json) JSON=1; shift ;;
    --strict) STRICT=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $FILES =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ && $LIMIT =~ ^[1-9][0-9]*$ \
  && $SEED =~ ^[0-9]+$ && $MSEED =~ ^[0-9]+$ ]] || { usage >&2; exit 2; }
awk -v f="$FRACTION" 'BEGIN { exit !(f + 0 > 0 && f + 0 <= 1) }' </dev/null \
  || { echo "run.sh: --fraction must be in (0, 1]" >&2; exit 2; }

die() { echo "run.sh: error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
export LC_ALL=C # rsync --stats digits grouping, sort order

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))
GEN="$ROOT/../shared/tools/gen_repo.py"
MANIFEST_PY="$ROOT/bench/fetch/manifest.py"
[[ -f $GEN ]] || die "generator not found at $GEN"
[[ -f $MANIFEST_PY ]] || die "bench/fetch/manifest.py not found at $MANIFEST_PY"
for t in rsync python3 cp find timeout; do
  command -v "$t" >/dev/null || die "$t not found (apt-get install rsync python3 coreutils findutils)"
done
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
BASE="$WORK/base"           # generated tree, pristine, reused between invocations
BASE_MANIFEST="$WORK/base.manifest"
PUB="$WORK/pub"             # the publish dir: hard links to BASE, mutated in place
PREV="$WORK/prev"           # pristine copy (hard links) of PUB before this run's mutation
DEST_L="$WORK/rsync-local"  # copies of the old tree that rsync brings up to date
DEST_D="$WORK/rsync-daemon"
OUT_B="$WORK/follower"      # daemon B's `follow --into` directory
HOME_A="$WORK/home-A" HOME_B="$WORK/home-B"
RSD="$WORK/rsyncd"
NPROC=$(nproc)
rm -f "$WORK"/{runs.jsonl,results.json,log.*,diff.*,stats.*,pub.manifest*,changed.list} # stale outputs

# --- shoal binary --------------------------------------------------------------------
SHOAL_DESC="(not run: --baseline-only)"
if ((!BASELINE_ONLY)); then
  if ((BUILD)); then
    log "building shoal-cli (release)"
    (cd "$ROOT" && cargo build --release -p shoal-cli) >&2 || die "cargo build failed"
  fi
  SHOAL=${SHOAL:-$ROOT/target/release/shoal}
  [[ -x $SHOAL ]] || die "shoal binary not executable: $SHOAL (build it: cargo build --release -p shoal-cli, or pass --build; --baseline-only runs without shoal)"
  SHOAL=$(cd "$(dirname "$SHOAL")" && pwd)/$(basename "$SHOAL")
  # run a private copy, so a rebuild of target/release during the run cannot mix builds
  SHOAL_ORIG=$SHOAL SHOAL="$WORK/shoal.bin"
  cp "$SHOAL_ORIG" "$SHOAL.tmp" && mv -f "$SHOAL.tmp" "$SHOAL"
  for c in publish follow; do
    "$SHOAL" "$c" --help >/dev/null 2>&1 || die "$SHOAL_ORIG has no '$c' command (too old? --baseline-only runs without shoal)"
  done
  "$SHOAL" feed create --help >/dev/null 2>&1 || die "$SHOAL_ORIG has no 'feed create' command"
  SHOAL_DESC="$SHOAL_ORIG ($("$SHOAL" --version), built $(date -u -r "$SHOAL_ORIG" '+%F %H:%M UTC'), sha256 $(sha256sum "$SHOAL" | cut -c1-12))"
fi

# --- bookkeeping: processes we started, stopped on exit --------------------------------
A_PID="" B_PID="" RSD_PID=""
alive() { # PID: running and not a zombie
  local s
  read -r s 2>/dev/null <"/proc/$1/stat" || return 1
  s=${s##*) }
  [[ ${s:0:1} != Z ]]
}
stop_pid() { # PID [SIGNAL]: signal, wait up to 10 s, then SIGKILL; reaps it
  local p=$1 i
  [[ -n $p ]] || return 0
  kill "-${2:-TERM}" "$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$p" || break; sleep 0.1; done
  alive "$p" && kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null || true
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  stop_pid "$B_PID"; B_PID=""
  stop_pid "$A_PID"; A_PID=""
  stop_pid "$RSD_PID"; RSD_PID=""
  if ((!KEEP)); then
    rm -rf "$PUB" "$PREV" "$DEST_L" "$DEST_D" "$OUT_B" "$HOME_A" "$HOME_B" "$RSD" "$WORK/shoal.bin"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers ----------------------------------------------------------------------------
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }' </dev/null; }
record() { # KEY VALUE ... -> one JSON object per line in WORK/runs.jsonl (values that
  # parse as JSON stay JSON: numbers, objects from shoal --json)
  python3 - "$@" >>"$WORK/runs.jsonl" <<'PY'
import json, sys
a = sys.argv[1:]
out = {}
for k, v in zip(a[::2], a[1::2]):
    try:
        out[k] = json.loads(v)
    except ValueError:
        out[k] = v
print(json.dumps(out))
PY
}
last_json() { # FILE: the last line of FILE that is a JSON object ({} if none)
  python3 - "$1" <<'PY'
import json, sys
obj = {}
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            pass
print(json.dumps(obj))
PY
}
jfield() { # JSON PATH (a.b.c): the value, or empty when absent
  python3 -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))' "$1" "$2"
}
tail_of() { tail -c 600 "$1" | tr '\n' ' '; }
failed() { # RC LOG: why a bounded command failed
  if (($1 == 124)); then echo "timed out after $LIMIT s"; else echo "exited $1: $(tail_of "$2")"; fi
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# The page cache cannot be dropped for a fair cold start on these machines, and
# idle cache is reclaimed after ~30 s: instead every timed step starts warm.
# Dirty data is written back first, then every file of the trees is stat'ed and
# the files this update added or changed are read.
warm() { # DIR...
  sync
  sleep 1
  find "$@" -type f -printf '%s\n' >/dev/null
  [[ -s $WORK/changed.list ]] && (cd "$PUB" && xargs -0 -a "$WORK/changed.list" cat >/dev/null)
  return 0
}
warm_full() { # DIR...: every byte of the trees read in
  sync
  sleep 1
  find "$@" -type f -print0 | xargs -0 -r cat >/dev/null
}
same_tree() { # SRC DEST: DEST is SRC after this update: rsync's quick check (size,
  # mtime) finds nothing to do, and the added/changed files (WORK/changed.list) have
  # the SHA-256 of WORK/pub.manifest (the quick check alone misses a file rewritten
  # with its old size within the same second)
  local out
  out=$(rsync -a --delete --dry-run --itemize-changes "$1/" "$2/" | grep -v '^\.d' || true)
  [[ -z $out ]] || { echo "$(wc -l <<<"$out") differences, first: $(head -3 <<<"$out" | tr '\n' ' ')"; return 1; }
  python3 - "$WORK/pub.manifest" "$WORK/changed.list" "$2" <<'PY'
import hashlib, os, sys
want = {}
for line in open(sys.argv[1], encoding="utf-8"):
    h, _, rel = line.rstrip("\n").split("\t", 2)
    want[rel] = h
bad = []
for rel in (r for r in open(sys.argv[2], "rb").read().split(b"\0") if r):
    rel = os.fsdecode(rel)
    h = hashlib.sha256()
    with open(os.path.join(sys.argv[3], rel), "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    if h.hexdigest() != want.get(rel):
        bad.append(rel)
if bad:
    print(f"{len(bad)} added/changed file(s) with the wrong content, first: {' '.join(bad[:3])}")
    sys.exit(1)
PY
}

# --- the tree: regenerate unless the marker records the same parameters ----------------
[[ -n $TOTAL ]] || TOTAL=$((FILES * 215000))
TOTAL_INT=$(awk -v b="$TOTAL" 'BEGIN { printf "%.0f", b }' </dev/null)
PARAMS="files=$FILES total-bytes=$TOTAL_INT seed=$SEED gen=$(sha256sum "$GEN" | cut -c1-16)"
MARKER="$WORK/base.params" # written last (after the manifest)
if [[ -d $BASE && -f $MARKER && -f $BASE_MANIFEST && $(cat "$MARKER") == "$PARAMS" ]]; then
  log "reusing $BASE ($PARAMS)"
else
  log "generating $BASE ($PARAMS)"
  rm -rf "$BASE" "$MARKER" "$BASE_MANIFEST"
  python3 "$GEN" generate --files "$FILES" --total-bytes "$TOTAL_INT" --seed "$SEED" \
    --out "$BASE" --jobs "$NPROC" >&2
  log "hashing $BASE into $BASE_MANIFEST"
  python3 "$MANIFEST_PY" make "$BASE" "$BASE_MANIFEST"
  echo "$PARAMS" >"$MARKER"
fi
TREE_FILES=$(wc -l <"$BASE_MANIFEST")
TREE_BYTES=$(awk -F'\t' '{ s += $2 } END { printf "%.0f", s }' "$BASE_MANIFEST")

# The publish dir and the two rsync destinations start as hard-link copies of the
# tree: cheap, and safe because gen_repo.py mutate and rsync (without --inplace)
# replace files by rename and never write into an existing inode.
rm -rf "$PUB" "$PREV" "$DEST_L" "$DEST_D" "$OUT_B"
cp -al "$BASE" "$PUB"
cp -al "$BASE" "$DEST_L"
cp -al "$BASE" "$DEST_D"
cp "$BASE_MANIFEST" "$WORK/pub.manifest"

# space: B's store and B's output each hold the tree; each update adds ~fraction of it
GROWTH=$(awk -v t="$TREE_BYTES" -v f="$FRACTION" -v r="$RUNS" 'BEGIN { printf "%.0f", 4 * t * f * r }' </dev/null)
NEED=$((GROWTH + (1 << 30)))
((BASELINE_ONLY)) || NEED=$((NEED + 2 * TREE_BYTES))
AVAIL=$(df -B1 --output=avail "$WORK" | tail -1)
((AVAIL > NEED)) || die "need $NEED bytes free in $WORK, have $AVAIL"

# --- tree diff: what an update really changed ------------------------------------------
# OLD NEW OLD_MANIFEST NEW_MANIFEST CHANGED_LIST -> JSON on stdout.  A file whose
# inode is the same in both trees is unchanged (mutate never writes into an inode);
# the others are compared by size, then SHA-256.  Writes NEW's manifest (reusing
# OLD's hashes for unchanged files) and the NUL-separated list of added/changed paths.
tree_diff() {
  python3 - "$@" <<'PY'
import hashlib, json, os, sys
from concurrent.futures import ThreadPoolExecutor
old, new, old_manifest, new_manifest, changed_list = sys.argv[1:6]

def files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_dev, st.st_ino, st.st_size)
    return out

def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()

known = {}
for line in open(old_manifest, encoding="utf-8"):
    h, size, rel = line.rstrip("\n").split("\t", 2)
    known[rel] = h
o, n = files(old), files(new)
same_inode = {r for r in n if r in o and o[r][:2] == n[r][:2] and r in known}
todo = sorted(r for r in n if r not in same_inode)
with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as ex:
    new_hash = dict(zip(todo, ex.map(lambda r: sha(os.path.join(new, r)), todo)))
    old_todo = [r for r in todo if r in o and r not in known and o[r][2] == n[r][2]]
    old_hash = dict(zip(old_todo, ex.map(lambda r: sha(os.path.join(old, r)), old_todo)))
old_hash.update({r: known[r] for r in todo if r in known})
s = {"added_files": 0, "added_bytes": 0, "changed_files": 0, "changed_bytes": 0,
     "changed_old_bytes": 0, "removed_files": 0, "removed_bytes": 0, "rewritten_same_files": 0}
changed = []
for r in todo:
    if r not in o:
        s["added_files"] += 1; s["added_bytes"] += n[r][2]; changed.append(r)
    elif o[r][2] != n[r][2] or old_hash.get(r) != new_hash[r]:
        s["changed_files"] += 1; s["changed_bytes"] += n[r][2]; s["changed_old_bytes"] += o[r][2]
        changed.append(r)
    else:
        s["rewritten_same_files"] += 1
for r in o:
    if r not in n:
        s["removed_files"] += 1; s["removed_bytes"] += o[r][2]
s["update_bytes"] = s["added_bytes"] + s["changed_bytes"]
s["new_tree_files"] = len(n)
s["new_tree_bytes"] = sum(v[2] for v in n.values())
with open(new_manifest + ".tmp", "w", encoding="utf-8") as f:
    for r in sorted(n):
        f.write(f"{new_hash.get(r) or known[r]}\t{n[r][2]}\t{r}\n")
os.replace(new_manifest + ".tmp", new_manifest)
with open(changed_list, "wb") as f:
    f.write(b"".join(os.fsencode(r) + b"\0" for r in changed))
print(json.dumps(s))
PY
}

# --- rsync ------------------------------------------------------------------------------
rsync_stats() { # LOG -> JSON of the --stats figures
  python3 - "$1" <<'PY'
import json, re, sys
keys = {"Number of files": "files", "Number of regular files transferred": "files_transferred",
        "Number of deleted files": "files_deleted", "Total file size": "total_file_size",
        "Total transferred file size": "transferred_file_size", "Literal data": "literal",
        "Matched data": "matched", "File list size": "file_list_size",
        "Total bytes sent": "sent", "Total bytes received": "received"}
out = {}
for line in open(sys.argv[1], errors="replace"):
    k, sep, v = line.partition(":")
    if sep and k.strip() in keys:
        m = re.match(r"\s*([\d,.]+)", v)
        if m:
            out[keys[k.strip()]] = int(re.sub(r"[,.]", "", m.group(1)))
print(json.dumps(out))
PY
}
RSYNC_VERSION=$(rsync --version | awk 'NR == 1 { print $3 }')
start_rsyncd() {
  rm -rf "$RSD"
  mkdir -p "$RSD"
  RSD_PORT=$(free_port)
  local ids=""
  [[ $(id -u) == 0 ]] && ids=$'uid = root\ngid = root'
  cat >"$RSD/rsyncd.conf" <<EOF
# written by bench/update/run.sh
pid file = $RSD/rsyncd.pid
lock file = $RSD/rsyncd.lock
log file = $RSD/rsyncd.log
use chroot = no
$ids
[tree]
  path = $PUB
  read only = yes
  list = yes
EOF
  rsync --daemon --no-detach --config="$RSD/rsyncd.conf" --port="$RSD_PORT" --address=127.0.0.1 \
    >"$RSD/stdout.log" 2>&1 &
  RSD_PID=$!
  local i
  for ((i = 0; i < 200; i++)); do
    rsync "rsync://127.0.0.1:$RSD_PORT/" >/dev/null 2>&1 && break
    alive "$RSD_PID" || die "rsync daemon exited: $(tail_of "$RSD/stdout.log") $(tail_of "$RSD/rsyncd.log")"
    sleep 0.05
  done
  ((i < 200)) || die "rsync daemon did not answer on 127.0.0.1:$RSD_PORT"
  log "rsync daemon up (pid $RSD_PID): rsync://127.0.0.1:$RSD_PORT/tree/"
}
run_rsync() { # NAME RUN DEST SRC: time `rsync -a --delete --stats SRC/ DEST/`, check DEST
  local name=$1 r=$2 dest=$3 src=$4 t0 t1 rc=0 lg="$WORK/log.$1.$2" err="" v
  warm "$PUB" "$dest"
  log "$name ($r/$RUNS): rsync -a --delete --stats $src/ $dest/"
  t0=$(now)
  rsync -a --delete --stats "$src/" "$dest/" >"$lg" 2>&1 || rc=$?
  t1=$(now)
  ((rc == 0)) || err="rsync exited $rc: $(tail_of "$lg")"
  if [[ -z $err ]] && ! v=$(same_tree "$PUB" "$dest"); then err="$dest differs from $PUB after rsync: $v"; fi
  [[ -z $err ]] || die "$name: $err"
  record step "$name" run "$r" wall_s "$(elapsed "$t0" "$t1")" stats "$(rsync_stats "$lg")"
}

# --- shoal ------------------------------------------------------------------------------
sh_a() { SHOAL_HOME=$HOME_A "$SHOAL" "$@"; }
sh_b() { SHOAL_HOME=$HOME_B "$SHOAL" "$@"; }
new_home() { # DIR: empty SHOAL_HOME whose config keeps the node to loopback
  rm -rf "$1"
  mkdir -p "$1"
  # no mDNS (multicast on the LAN) and no bootstrap peers: only the peer we connect
  printf '[network]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\nbootstrap = []\nmdns = false\n' >"$1/config.toml"
}
start_daemon() { # HOME VAR: spawn a daemon, set VAR to its pid, wait for its API
  local home=$1 var=$2 i pid
  rm -f "$home/api" "$home/api.token"
  SHOAL_HOME=$home "$SHOAL" daemon --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --gateway 127.0.0.1:0 \
    >"$home/daemon.log" 2>&1 &
  pid=$!
  printf -v "$var" %s "$pid"
  for ((i = 0; i < 3000; i++)); do
    SHOAL_HOME=$home "$SHOAL" id >/dev/null 2>&1 && break
    alive "$pid" || die "daemon ($home) exited: $(tail_of "$home/daemon.log")"
    sleep 0.01
  done
  ((i < 3000)) || die "daemon ($home) did not answer within 30 s"
}
bytes_received() { # HOME -> sum of every "bytes_received" counter in `shoal stats --json`
  SHOAL_HOME=$1 "$SHOAL" stats --json 2>/dev/null | python3 -c '
import json, sys
def walk(v):
    if isinstance(v, dict):
        return sum(x if k == "bytes_received" and isinstance(x, int) else walk(x) for k, x in v.items())
    return 0
try:
    print(walk(json.load(sys.stdin)))
except ValueError:
    print("")' || true
}
FEED_NAME=bench-update FEED_KEY="" A_ADDR=""
bounded() { # LOG CMD...: run CMD with the timeout, stdout+stderr to LOG; returns its status
  local lg=$1; shift
  timeout --foreground -k 10 "$LIMIT" "$@" >"$lg" 2>&1
}
# publish_then_follow PSTEP FSTEP RUN: `shoal publish PUB --feed NAME --json` on A,
# then, as soon as it returns (nothing else in between: parsing and recording come
# after), `shoal follow KEY --into OUT_B --peer A --json` on B; then checks OUT_B
# against the publisher's tree and records both steps.
publish_then_follow() {
  local ps=$1 fs=$2 r=$3 plg="$WORK/log.$1.$3" flg="$WORK/log.$2.$3"
  local p0 p1 f1 prc=0 frc=0 pout fout b0 b1 v delta=""
  b0=$(bytes_received "$HOME_B")
  log "$ps ($r/$RUNS): shoal publish $PUB --feed $FEED_NAME, then $fs: shoal follow $FEED_KEY --into $OUT_B"
  p0=$EPOCHREALTIME
  bounded "$plg" env SHOAL_HOME="$HOME_A" "$SHOAL" publish "$PUB" --feed "$FEED_NAME" --json || prc=$?
  p1=$EPOCHREALTIME
  ((prc == 0)) || die "$ps: shoal publish $(failed "$prc" "$plg")"
  bounded "$flg" env SHOAL_HOME="$HOME_B" "$SHOAL" follow "$FEED_KEY" --into "$OUT_B" --peer "$A_ADDR" --json || frc=$?
  f1=$EPOCHREALTIME
  ((frc == 0)) || die "$fs: shoal follow $(failed "$frc" "$flg")"
  log "$ps: $(elapsed "$p0" "$p1") s; $fs: $(elapsed "$p1" "$f1") s"
  b1=$(bytes_received "$HOME_B")
  [[ -n $b0 && -n $b1 ]] && delta=$((b1 - b0))
  pout=$(last_json "$plg")
  [[ -n $(jfield "$pout" seq) ]] || die "$ps: shoal publish printed no JSON with a seq: $(tail_of "$plg")"
  fout=$(last_json "$flg")
  [[ -n $(jfield "$fout" seq) ]] || die "$fs: shoal follow printed no JSON with a seq: $(tail_of "$flg")"
  [[ $(jfield "$fout" seq) == "$(jfield "$pout" seq)" ]] \
    || die "$fs: follow reached seq $(jfield "$fout" seq), publish made seq $(jfield "$pout" seq)"
  log "$fs: checking $OUT_B against the publisher's tree"
  v=$(python3 "$MANIFEST_PY" check "$WORK/pub.manifest" "$OUT_B") || die "$fs: $OUT_B differs from $PUB: $v"
  record step "$ps" run "$r" wall_s "$(elapsed "$p0" "$p1")" out "$pout"
  # follow's wall is measured from publish returning: the follow is started right then
  record step "$fs" run "$r" wall_s "$(elapsed "$p1" "$f1")" out "$fout" \
    from_publish_s "$(elapsed "$p1" "$f1")" stats_bytes_received "$delta"
}
setup_shoal() {
  new_home "$HOME_A"
  new_home "$HOME_B"
  start_daemon "$HOME_A" A_PID
  start_daemon "$HOME_B" B_PID
  A_ADDR=$(sh_a id --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["addrs"][0])') \
    || die "shoal id --json on A gave no address"
  sh_b connect "$A_ADDR" >"$WORK/log.connect" 2>&1 || die "shoal connect $A_ADDR failed: $(tail_of "$WORK/log.connect")"
  local out
  out=$(sh_a feed create "$FEED_NAME" --json 2>"$WORK/log.feed") || die "shoal feed create failed: $(tail_of "$WORK/log.feed")"
  FEED_KEY=$(jfield "$(last_json <(echo "$out"))" key)
  [[ $FEED_KEY =~ ^[0-9a-f]{64}$ ]] || die "shoal feed create printed no 64-hex key: $out"
  log "feed $FEED_NAME = $FEED_KEY; A at $A_ADDR"
  rm -rf "$OUT_B"
  log "initial publish: reading $PUB into the page cache first"
  warm_full "$PUB"
  publish_then_follow publish-initial follow-initial 0
}

# --- the runs ---------------------------------------------------------------------------
((BASELINE_ONLY)) || setup_shoal
start_rsyncd
for ((r = 1; r <= RUNS; r++)); do
  rm -rf "$PREV"
  cp -al "$PUB" "$PREV" # the pre-mutation tree, pristine
  cp "$WORK/pub.manifest" "$WORK/prev.manifest"
  # a second boundary between the old files and the new: rsync's quick check (and any
  # size+mtime change detection) compares whole seconds
  sleep 1.1
  log "update $r/$RUNS: gen_repo.py mutate --fraction $FRACTION --seed $MSEED"
  python3 "$GEN" mutate --dir "$PUB" --fraction "$FRACTION" --seed "$MSEED" --jobs "$NPROC" \
    >"$WORK/log.mutate.$r" 2>&1 || die "mutate failed: $(tail_of "$WORK/log.mutate.$r")"
  record step mutate run "$r" out "$(last_json "$WORK/log.mutate.$r")"
  diff_json=$(tree_diff "$PREV" "$PUB" "$WORK/prev.manifest" "$WORK/pub.manifest" "$WORK/changed.list") \
    || die "tree diff failed"
  record step diff run "$r" out "$diff_json"
  log "update $r: $diff_json"
  if ((!BASELINE_ONLY)); then
    warm "$PUB"
    publish_then_follow publish follow "$r"
  fi
  run_rsync rsync-local "$r" "$DEST_L" "$PUB"
  run_rsync rsync-daemon "$r" "$DEST_D" "rsync://127.0.0.1:$RSD_PORT/tree"
  rm -rf "$PREV"
done
stop_pid "$RSD_PID"; RSD_PID=""
stop_pid "$B_PID"; B_PID=""
stop_pid "$A_PID"; A_PID=""

# --- report -----------------------------------------------------------------------------
rc=0
RUNS=$RUNS FRACTION=$FRACTION PARAMS=$PARAMS TREE_FILES=$TREE_FILES TREE_BYTES=$TREE_BYTES \
BASELINE_ONLY=$BASELINE_ONLY JSON=$JSON STRICT=$STRICT NPROC=$NPROC SHOAL_DESC=$SHOAL_DESC \
RSYNC_VERSION=$RSYNC_VERSION MSEED=$MSEED \
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo -dirty) \
python3 - "$WORK/runs.jsonl" "$WORK/results.json" <<'PY' || rc=$?
import json, os, statistics, sys

E = os.environ
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = int(E["RUNS"])
shoal = E["BASELINE_ONLY"] != "1"

def get(step, run):
    for r in rows:
        if r["step"] == step and r["run"] == run:
            return r
    return None

def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def ratio(a, b):
    return a / b if a is not None and b else None

def follow_s(f):
    """The follower's own time (follow --json elapsed_ms), else the command's wall time."""
    ms = num(f["out"].get("elapsed_ms"))
    return ms / 1000 if ms is not None else f["wall_s"]

per_run = []
for i in range(1, runs + 1):
    d = get("diff", i)["out"]
    rl, rd = get("rsync-local", i), get("rsync-daemon", i)
    x = {"run": i, "changed_bytes": d["update_bytes"], "diff": d, "mutate": get("mutate", i)["out"],
         "rsync_local_s": rl["wall_s"], "rsync_local_bytes": num(rl["stats"].get("sent")),
         "rsync_local_literal": num(rl["stats"].get("literal")), "rsync_local_stats": rl["stats"],
         "rsync_daemon_s": rd["wall_s"], "rsync_daemon_bytes": num(rd["stats"].get("received")),
         "rsync_daemon_literal": num(rd["stats"].get("literal")), "rsync_daemon_stats": rd["stats"]}
    if shoal:
        p, f = get("publish", i), get("follow", i)
        pb = p["out"].get("bytes") or {}
        x.update({"publish_s": p["wall_s"], "publish": p["out"],
                  "publish_changed_bytes": (num(pb.get("added")) or 0) + (num(pb.get("changed")) or 0)
                  if isinstance(pb, dict) and pb else None,
                  "follow_s": follow_s(f), "follow": f["out"], "follow_bytes": num(f["out"].get("bytes")),
                  "follow_stats_bytes": num(f.get("stats_bytes_received")),
                  "publish_to_follower_s": num(f.get("from_publish_s"))})
    per_run.append(x)

def m(key):
    return med([num(r.get(key)) for r in per_run])

S = {"params": E["PARAMS"], "fraction": float(E["FRACTION"]), "mutate_seed": int(E["MSEED"]), "runs": runs,
     "tree_files": int(E["TREE_FILES"]), "tree_bytes": int(E["TREE_BYTES"]), "commit": E["COMMIT"],
     "cpu": f'{E["CPU"]} x{E["NPROC"]}', "shoal": E["SHOAL_DESC"], "rsync": E["RSYNC_VERSION"],
     "changed_bytes": m("changed_bytes"), "rsync_local_s": m("rsync_local_s"),
     "rsync_local_bytes": m("rsync_local_bytes"), "rsync_daemon_s": m("rsync_daemon_s"),
     "rsync_daemon_bytes": m("rsync_daemon_bytes"), "per_run": per_run}
targets = []
if shoal:
    pi, fi = get("publish-initial", 0), get("follow-initial", 0)
    init_bytes = num(fi["out"].get("bytes")) or S["tree_bytes"]
    S.update({"initial_publish_s": pi["wall_s"], "initial_publish": pi["out"],
              "initial_follow_s": fi["wall_s"], "initial_follow_internal_s": follow_s(fi), "initial_follow": fi["out"],
              "initial_follow_stats_bytes": num(fi.get("stats_bytes_received")),
              "throughput_Bps": init_bytes / fi["wall_s"] if fi["wall_s"] else None})
    for k in ("publish_s", "follow_s", "follow_bytes", "follow_stats_bytes", "publish_to_follower_s",
              "publish_changed_bytes"):
        S[k] = m(k)
    S["publish_vs_rsync"] = med([ratio(r["publish_s"], r["rsync_local_s"]) for r in per_run])
    S["follow_vs_changed"] = med([ratio(r["follow_bytes"], r["changed_bytes"]) for r in per_run])
    budget = med([1 + r["changed_bytes"] / S["throughput_Bps"] for r in per_run]) if S["throughput_Bps"] else None
    S["publish_to_follower_budget_s"] = budget
    def t(name, have, limit, what):
        ok = None if have is None or limit is None else have <= limit
        targets.append({"target": name, "value": have, "limit": limit, "met": ok, "what": what})
    t("re-publish <= 1.0x rsync local", S["publish_vs_rsync"], 1.0, "wall(re-publish) / wall(rsync -a --delete local)")
    t("follower bytes <= 1.05x changed", S["follow_vs_changed"], 1.05, "follow --json bytes / bytes of added+changed files")
    t("publish->follower <= 1 s + transfer", S["publish_to_follower_s"], budget,
      "seconds from publish returning to follow returning; limit = 1 s + changed bytes at the initial follow's throughput")
S["targets"] = targets
json.dump(S, open(sys.argv[2], "w"), indent=1)

if E["JSON"] == "1":
    print(json.dumps({k: v for k, v in S.items() if k != "per_run"}))
else:
    def f(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)
    def b(v):
        if v is None:
            return "-"
        for u, d in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if v >= d:
                return f"{v / d:.2f} {u}"
        return f"{v} B"
    ch, rl = S["changed_bytes"], S["rsync_local_s"]
    print(f"bench/update: {S['tree_files']} files, {b(S['tree_bytes'])} ({S['params']}); "
          f"update fraction {S['fraction']} (mutate seed {S['mutate_seed']}), {runs} run(s), medians")
    print(f"commit {S['commit']}; {S['cpu']}; rsync {S['rsync']}; shoal: {S['shoal']}")
    print("page cache: not dropped (not possible here); every timed step starts warm: dirty pages "
          "written back, all files stat'ed, the added/changed files read")
    if shoal:
        print(f"initial: publish {f(S['initial_publish_s'])} s (by reference); follow {f(S['initial_follow_s'])} s, "
              f"{b(num(S['initial_follow'].get('bytes')))} received, {f(S['throughput_Bps'] and S['throughput_Bps'] / 1e6, '{:.1f}')} MB/s")
    print()
    hdr = f"{'step':<28} {'wall s':>8} {'vs rsync':>9} {'bytes moved':>13} {'vs changed':>11}"
    print(hdr)
    print("-" * len(hdr))
    def row(name, s, byts=None, show_vs_changed=False):
        print(f"{name:<28} {f(s, '{:.3f}'):>8} {f(ratio(s, rl)):>9} {b(byts):>13} "
              f"{f(ratio(byts, ch)) if show_vs_changed else '':>11}")
    if shoal:
        row("re-publish", S["publish_s"])
    row("rsync -a --delete (local)", S["rsync_local_s"], S["rsync_local_bytes"], True)
    row("rsync daemon (127.0.0.1)", S["rsync_daemon_s"], S["rsync_daemon_bytes"], True)
    if shoal:
        row("follower update", S["follow_s"], S["follow_bytes"], True)
        row("publish→follower complete", S["publish_to_follower_s"])
    else:
        print("(shoal rows skipped: --baseline-only)")
    print()
    d = per_run[-1]["diff"] if runs == 1 else None
    extra = (f" ({d['added_files']} added, {d['changed_files']} changed, {d['removed_files']} removed files)"
             if d else "")
    print(f"changed bytes (added + changed files, by size+SHA-256 against the old tree): {b(ch)} = {f(ch, '{:.0f}')}{extra}")
    if shoal:
        pc = S.get("publish_changed_bytes")
        if pc is not None and pc != ch:
            print(f"changed bytes per publish --json (bytes.added + bytes.changed): {b(pc)} = {pc}  [differs]")
        fs = S.get("follow_stats_bytes")
        if fs is not None and fs != S.get("follow_bytes"):
            print(f"follower bytes per shoal stats (sum of bytes_received counters): {b(fs)}  [differs from follow --json]")
    print("bytes moved: rsync local = 'Total bytes sent' (over the pipe between its processes), rsync daemon = "
          "'Total bytes received' by the client; follower = follow --json 'bytes' (block bytes from the network)")
    if shoal:
        print("follower update wall = follow --json elapsed_ms (the command's wall time if absent); "
              "publish→follower = wall time from publish returning to follow exiting (follow is started at once)")
    print(f"rsync literal data: local {b(S['per_run'][-1]['rsync_local_literal'])}, "
          f"daemon {b(S['per_run'][-1]['rsync_daemon_literal'])} (last run)")
    for t in targets:
        verdict = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        print(f"target {t['target']}: {f(t['value'], '{:.3f}')} (limit {f(t['limit'], '{:.3f}')}): {verdict}  [{t['what']}]")
    if not shoal:
        print("targets: n/a (--baseline-only)")
    print(f"details: {sys.argv[2]}")
if E["STRICT"] == "1" and any(t["met"] is False for t in targets):
    sys.exit(3)
PY
exit "$rc"
