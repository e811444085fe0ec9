#!/usr/bin/env bash
# Swarm benchmark: shoal fetching a tree from one source on loopback and from N
# rate-limited seeders in network namespaces, against nginx measured in the same run;
# bytes on the follower's wire, small-file rate, gateway time to first byte, and the
# cost of a killed, a lying and a stopped seeder.  See README.md.
set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [--files N] [--total-bytes B] [--seed S] [--seeders N] [--rate MBIT]
          [--small-files N] [--runs N] [--conns N] [--only LIST] [--timeout S]
          [--work DIR] [--shoal PATH] [--liar PATH] [--json] [--keep]
  --files N        files in the generated tree (default 20000; env SHOAL_BENCH_FILES)
  --total-bytes B  bytes in the tree (default N * 215000, i.e. 4.3e9 at 20000 files)
  --seed S         generator seed (default 1); same tree as bench/fetch at the same values
  --seeders N      seeder namespaces for (b) and (f) (default 4)
  --rate MBIT      uplink of every seeder and of the nginx namespace, Mbit/s (default 200)
  --small-files N  files in the small-file tree of (d), each 1 B .. 16 KiB (default 20000)
  --runs N         runs per contender of (a), (b), (d); the table shows medians (default 3)
  --conns N        parallel keep-alive connections of the HTTP client (default 16)
  --only LIST      comma-separated groups or rows (default all):
                     lo     = lo-nginx-http, lo-nginx-https, lo-shoal        (a, c)
                     ns     = ns-nginx-http, ns-nginx-https, ns-shoal        (b, c)
                     small  = small-nginx-http, small-nginx-https, small-shoal (d)
                     ttfb   = ttfb-nginx, ttfb-shoal                          (e)
                     faults = fault-kill, fault-liar, fault-stop (need ns-shoal) (f)
  --timeout S      give up on one fetch after S seconds (default 3600); fault runs get
                   max(300, 20 x the clean netns fetch), at most S
  --work DIR       work dir (default /tmp/shoal-bench-swarm; env SHOAL_BENCH_WORK);
                   WORK/tree and WORK/small are kept and reused
  --shoal PATH     shoal binary (default \$SHOAL_BIN, else target/release/shoal; never built)
  --liar PATH      shoal-liar binary for fault-liar (default target/debug/shoal-liar)
  --json           print the results as JSON instead of the table (WORK/results.json
                   is written either way)
  --keep           keep the SHOAL_HOMEs, logs and outputs afterwards
EOF
}

FILES=${SHOAL_BENCH_FILES:-20000} TOTAL="" SEED=1 SEEDERS=4 RATE=200 SMALL=20000 RUNS=3
CONNS=16 ONLY="" LIMIT=3600 WORK=${SHOAL_BENCH_WORK:-/tmp/shoal-bench-swarm}
SHOAL=${SHOAL_BIN:-} LIAR="" JSON=0 KEEP=0
while (($#)); do
  case $1 in
    --files) FILES=$2; shift 2 ;;
    --total-bytes) TOTAL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --seeders) SEEDERS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --small-files) SMALL=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --timeout) LIMIT=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --shoal) SHOAL=$2; shift 2 ;;
    --liar) LIAR=$2; shift 2 ;;
    --json) JSON=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
for v in "$FILES" "$SEEDERS" "$RATE" "$SMALL" "$RUNS" "$CONNS" "$LIMIT"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
done
((SEEDERS <= 80)) || { echo "run.sh: at most 80 seeders" >&2; exit 2; }

die() { echo "run.sh: error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
[[ $(id -u) == 0 ]] || die "run as root (network namespaces, tc, drop_caches)"

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))
GEN="$ROOT/../shared/tools/gen_repo.py"
MANIFEST_PY="$ROOT/bench/fetch/manifest.py"
NETNS="$HERE/netns.sh"
[[ -f $GEN ]] || die "generator not found at $GEN"
[[ -f $MANIFEST_PY ]] || die "bench/fetch/manifest.py not found"

# --- which rows ---------------------------------------------------------------------
ALL_ROWS="lo-nginx-http lo-nginx-https lo-shoal ns-nginx-http ns-nginx-https ns-shoal
small-nginx-http small-nginx-https small-shoal ttfb-nginx ttfb-shoal fault-kill fault-liar fault-stop"
group_of() { case $1 in lo-*) echo lo ;; ns-*) echo ns ;; small-*) echo small ;; ttfb-*) echo ttfb ;; fault-*) echo faults ;; esac; }
for n in ${ONLY//,/ }; do
  [[ " lo ns small ttfb faults "$'\n'" $ALL_ROWS " =~ [[:space:]]$n[[:space:]] ]] || die "unknown row or group in --only: $n"
done
want() { [[ -z $ONLY || ,$ONLY, == *,$1,* || ,$ONLY, == *,$(group_of "$1"),* ]]; }
want_any() { local r; for r in $ALL_ROWS; do [[ $r == "$1"-* ]] && want "$r" && return 0; done; return 1; }
# the fault rows compare against a clean netns fetch: they imply it
FAULTS=0; for r in fault-kill fault-liar fault-stop; do want "$r" && FAULTS=1; done
NS_SHOAL=0; { want ns-shoal || ((FAULTS)); } && NS_SHOAL=1

# --- binaries: private copies, so a rebuild cannot change them mid-run ---------------
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
SHOAL=${SHOAL:-$ROOT/target/release/shoal}
[[ -x $SHOAL ]] || die "shoal binary not executable: $SHOAL (cargo build --release -p shoal-cli)"
SHOAL_ORIG=$(cd "$(dirname "$SHOAL")" && pwd)/$(basename "$SHOAL") SHOAL="$WORK/shoal.bin"
cp "$SHOAL_ORIG" "$SHOAL.tmp" && mv -f "$SHOAL.tmp" "$SHOAL"
SHOAL_DESC="$SHOAL_ORIG ($("$SHOAL" --version), built $(date -u -r "$SHOAL_ORIG" '+%F %H:%M UTC'), sha256 $(sha256sum "$SHOAL" | cut -c1-12))"
LIAR_DESC="(not run)"
if want fault-liar; then
  LIAR=${LIAR:-$ROOT/target/debug/shoal-liar}
  [[ -x $LIAR ]] || die "shoal-liar not executable: $LIAR (cargo build -p shoal-tests --bins), or leave fault-liar out with --only"
  LIAR_ORIG=$(cd "$(dirname "$LIAR")" && pwd)/$(basename "$LIAR") LIAR="$WORK/shoal-liar.bin"
  cp "$LIAR_ORIG" "$LIAR.tmp" && mv -f "$LIAR.tmp" "$LIAR"
  LIAR_DESC="$LIAR_ORIG (built $(date -u -r "$LIAR_ORIG" '+%F %H:%M UTC'), sha256 $(sha256sum "$LIAR" | cut -c1-12))"
fi

# --- tools ------------------------------------------------------------------------------
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
missing=()
[[ -x $NGINX ]] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v tc >/dev/null || missing+=(iproute2)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2 || apt-get install -y -qq "${missing[@]/nginx-light/nginx}" >&2 \
    || die "apt-get install failed"
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

TREE="$WORK/tree" MANIFEST="$WORK/tree.manifest"
STREE="$WORK/small" SMANIFEST="$WORK/small.manifest"
NGX="$WORK/nginx"
NET=10.77.0 PORT=4001
TCK=$(getconf CLK_TCK)
rm -rf "$WORK"/{runs.jsonl,results.json,link.json,log.*,time.*,stats.*,out.*}

# --- bookkeeping: everything started is stopped on exit -------------------------------
PIDS=()        # daemons, nginx, liar, forwarder: stopped by pid
NETNS_UP=0
alive() {
  local s
  read -r s 2>/dev/null <"/proc/$1/stat" || return 1
  s=${s##*) }
  [[ ${s:0:1} != Z ]]
}
stop_pid() { # PID [SIGNAL]: signal (a stopped process is continued), wait up to 10 s, SIGKILL
  local p=$1 i
  [[ -n $p ]] || return 0
  kill "-${2:-TERM}" "$p" 2>/dev/null || true
  kill -CONT "$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$p" || break; sleep 0.1; done
  alive "$p" && kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null || true
  local q=() x
  for x in "${PIDS[@]}"; do [[ $x == "$p" ]] || q+=("$x"); done
  PIDS=("${q[@]}")
}
stop_all() { local p; for p in "${PIDS[@]}"; do stop_pid "$p"; done; PIDS=(); }
cleanup() {
  local rc=$?
  stop_all
  ((NETNS_UP)) && "$NETNS" down >&2 2>/dev/null
  ((KEEP)) || rm -rf "$WORK"/home-* "$WORK"/out.* "$WORK/shoal.bin" "$WORK/shoal-liar.bin" "$NGX"
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- trees ------------------------------------------------------------------------------
[[ -n $TOTAL ]] || TOTAL=$((FILES * 215000))
TOTAL=$(awk -v b="$TOTAL" 'BEGIN { printf "%.0f", b }')
PARAMS="files=$FILES total-bytes=$TOTAL seed=$SEED gen=$(sha256sum "$GEN" | cut -c1-16)"
if [[ -d $TREE && -f $WORK/tree.params && -f $MANIFEST && $(cat "$WORK/tree.params") == "$PARAMS" ]]; then
  log "reusing $TREE ($PARAMS)"
else
  log "generating $TREE ($PARAMS)"
  rm -rf "$TREE" "$WORK/tree.params" "$MANIFEST"
  python3 "$GEN" generate --files "$FILES" --total-bytes "$TOTAL" --seed "$SEED" --out "$TREE" \
    --jobs "$(nproc)" >&2
  python3 "$MANIFEST_PY" make "$TREE" "$MANIFEST"
  echo "$PARAMS" >"$WORK/tree.params"
fi
TREE_FILES=$(wc -l <"$MANIFEST")
TREE_BYTES=$(awk -F'\t' '{ s += $2 } END { printf "%.0f", s }' "$MANIFEST")
if want_any small; then
  SPARAMS="files=$SMALL seed=$SEED max=16384 gen=$(sha256sum "$HERE/smallfiles.py" | cut -c1-16)"
  if [[ -d $STREE && -f $WORK/small.params && -f $SMANIFEST && $(cat "$WORK/small.params") == "$SPARAMS" ]]; then
    log "reusing $STREE ($SPARAMS)"
  else
    log "generating $STREE ($SPARAMS)"
    rm -rf "$STREE" "$WORK/small.params" "$SMANIFEST"
    python3 "$HERE/smallfiles.py" "$STREE" --files "$SMALL" --seed "$SEED" >&2
    python3 "$MANIFEST_PY" make "$STREE" "$SMANIFEST"
    echo "$SPARAMS" >"$WORK/small.params"
  fi
fi
NEED=$((2 * TREE_BYTES + (1 << 30)))
AVAIL=$(df -B1 --output=avail "$WORK" | tail -1)
((AVAIL > NEED)) || die "need $NEED bytes free in $WORK, have $AVAIL"

# --- helpers ------------------------------------------------------------------------------
cpu_ticks() { local p s f t=0; for p; do read -r s <"/proc/$p/stat"; s=${s##*) }; read -ra f <<<"$s"; t=$((t + f[11] + f[12])); done; echo "$t"; }
secs() { awk -v a="$1" -v b="$2" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
record() { # KEY VALUE ...: one JSON object per line in WORK/runs.jsonl (JSON-looking values stay JSON)
  python3 - "$@" >>"$WORK/runs.jsonl" <<'PY'
import json, sys
a = sys.argv[1:]
out = {}
for k, v in zip(a[::2], a[1::2]):
    try:
        out[k] = json.loads(v) if v[:1] in "{[0123456789-" else v
    except ValueError:
        out[k] = v
print(json.dumps(out))
PY
}
failed() { if (($1 == 124)); then echo "timed out after $2 s"; else echo "exited $1: $(tail -c 400 "$3" | tr '\n' ' ')"; fi; }
verify() { python3 "$MANIFEST_PY" check "$1" "$2"; }
# same memory state before every timed run (as bench/fetch): dirty data written back,
# page cache dropped, then the served tree (and the seeders' stores) read back in
warm() {
  sync
  sleep 2
  echo 3 >/proc/sys/vm/drop_caches
  sleep 1
  find "$@" -type f -print0 | xargs -0 cat >/dev/null
}
in_ns() { # NS|"" CMD...: run CMD in namespace NS (root namespace when empty)
  local ns=$1; shift
  if [[ -n $ns ]]; then ip netns exec "$ns" "$@"; else "$@"; fi
}
bg_in() { # NS|"" CMD...: for `bg_in ... &`: the background job execs CMD, so $! is its pid
  local ns=$1; shift
  if [[ -n $ns ]]; then exec ip netns exec "$ns" "$@"; else exec "$@"; fi
}
rx_bytes() { # NS|"" IF
  in_ns "$1" cat "/sys/class/net/$2/statistics/rx_bytes"
}
tx_bytes() { in_ns "$1" cat "/sys/class/net/$2/statistics/tx_bytes"; }
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
PY
}

# --- nginx: one config per place (root namespace on 127.0.0.1, or sw-h on NET.100) --------
CERT_DONE=0
make_cert() {
  ((CERT_DONE)) && return 0
  mkdir -p "$NGX"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -keyout "$NGX/key.pem" -out "$NGX/cert.pem" -subj /CN=shoal-bench-swarm \
    -addext "subjectAltName=IP:127.0.0.1,IP:$NET.100" 2>"$NGX/openssl.log" || die "openssl failed"
  CERT_DONE=1
}
NGINX_PID="" NGINX_HOST="" NGINX_HTTP="" NGINX_HTTPS="" NGINX_NS=""
start_nginx() { # NS|"" HOST HTTP_PORT HTTPS_PORT: serves WORK (/tree, /small)
  local ns=$1 host=$2 dir="$NGX/${1:-lo}" i
  make_cert
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
# written by bench/swarm/run.sh
user root;
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  types { }
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server { listen $host:$3; root $WORK; location = /nginx_status { stub_status; } }
  server {
    listen $host:$4 ssl;
    root $WORK;
    ssl_certificate $NGX/cert.pem;
    ssl_certificate_key $NGX/key.pem;
    ssl_protocols TLSv1.3;
  }
}
EOF
  in_ns "$ns" "$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/test.log" 2>&1 \
    || die "nginx -t: $(tail -3 "$dir/test.log")"
  bg_in "$ns" "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  NGINX_PID=$! NGINX_NS=$ns NGINX_HOST=$host NGINX_HTTP=$3 NGINX_HTTPS=$4
  PIDS+=("$NGINX_PID")
  local cl=""; [[ -n $ns ]] && cl=sw-f # the client's namespace
  for ((i = 0; i < 300; i++)); do
    in_ns "$cl" curl -sf "http://$host:$3/nginx_status" -o /dev/null && break
    alive "$NGINX_PID" || die "nginx exited: $(tail -3 "$dir/error.log")"
    sleep 0.05
  done
  ((i < 300)) || die "nginx did not answer on $host:$3"
}
stop_nginx() { stop_pid "$NGINX_PID" QUIT; NGINX_PID=""; }
nginx_pids() { echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true); }

# ROW RUN NS IF TREE_NAME MANIFEST PROTO: one curl process, CONNS keep-alive connections
run_http() {
  local row=$1 i=$2 ns=$3 ifc=$4 tname=$5 man=$6 proto=$7 out="$WORK/out.$1"
  local base="http://$NGINX_HOST:$NGINX_HTTP/$tname" tls=() cfg="$WORK/curl.$row.cfg"
  [[ $proto == https ]] && base="https://$NGINX_HOST:$NGINX_HTTPS/$tname" tls=(--cacert "$NGX/cert.pem")
  python3 "$MANIFEST_PY" curl "$man" "$base" "$out" >"$cfg"
  rm -rf "$out"
  log "$row ($i/$RUNS): $(wc -l <"$man") files over $CONNS connections from ${ns:-the root namespace}"
  warm "$WORK/$tname"
  local pids rc=0 err="" verdict r0 r1 c0 c1 t0 t1
  pids=$(nginx_pids)
  c0=$(cpu_ticks $pids); r0=$(rx_bytes "$ns" "$ifc")
  t0=$EPOCHREALTIME
  in_ns "$ns" timeout -k 10 "$LIMIT" curl --http1.1 --parallel \
    --parallel-immediate --parallel-max "$CONNS" --fail --silent --show-error --create-dirs "${tls[@]}" \
    -K "$cfg" >"$WORK/log.$row" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  r1=$(rx_bytes "$ns" "$ifc"); c1=$(cpu_ticks $pids)
  local wall; wall=$(elapsed "$t0" "$t1")
  if ((rc)); then err="curl $(failed "$rc" "$LIMIT" "$WORK/log.$row")"
  elif ! verdict=$(verify "$man" "$out"); then err="output differs: $verdict"; fi
  [[ -n $err ]] && log "$row: $err"
  record row "$row" run "$i" ok "$([[ -z $err ]] && echo 1 || echo 0)" error "$err" wall_s "$wall" \
    files "$(wc -l <"$man")" bytes "$(awk -F'\t' '{ s += $2 } END { printf "%.0f", s }' "$man")" \
    wire_rx "$((r1 - r0))" wire_if "${ns:-root}:$ifc" server_cpu_s "$(secs "$c0" "$c1")"
  rm -rf "$out"
}

# --- shoal daemons -------------------------------------------------------------------------
new_home() { # DIR LISTEN_MULTIADDR
  rm -rf "$1"; mkdir -p "$1"
  printf '[network]\nlisten = ["%s"]\nbootstrap = []\nmdns = false\n' "$2" >"$1/config.toml"
}
sh_in() { # NS|"" HOME ARGS...: the CLI (through that home's daemon, if one runs)
  local ns=$1 home=$2; shift 2
  in_ns "$ns" env SHOAL_HOME="$home" "$SHOAL" "$@"
}
DAEMON_PID=""
start_daemon() { # NS|"" HOME LISTEN GATEWAY: sets DAEMON_PID once `shoal id` answers
  local ns=$1 home=$2 i
  rm -f "$home/api" "$home/api.token"
  bg_in "$ns" env SHOAL_HOME="$home" "$SHOAL" daemon --listen "$3" --api 127.0.0.1:0 --gateway "$4" \
    >"$home/daemon.log" 2>&1 &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
  for ((i = 0; i < 3000; i++)); do
    sh_in "$ns" "$home" id >/dev/null 2>&1 && return 0
    alive "$DAEMON_PID" || die "daemon ($home) exited: $(tail -5 "$home/daemon.log")"
    sleep 0.01
  done
  die "daemon ($home) did not answer within 30 s"
}
addr_of() { # NS HOME PREFIX: the daemon's first listen address starting with PREFIX
  sh_in "$1" "$2" id --json | python3 -c '
import json, sys
p = sys.argv[1]
print(next(a for a in json.load(sys.stdin)["addrs"] if a.startswith(p)))' "$3"
}
add_tree() { # HOME TREE LISTEN -> prints the root CID (store indexes the files in place)
  new_home "$1" "$3"
  SHOAL_HOME=$1 "$SHOAL" add -r -Q --nocopy "$2" >"$1/add.log" 2>&1 || die "shoal add: $(tail -3 "$1/add.log")"
  tail -1 "$1/add.log" | tr -d '[:space:]'
}

# one fetch on a follower that is already connected: ROW RUN NS HOME IF CID MANIFEST TIMEOUT
# [SEEDER_NS...]: times `shoal get CID -o OUT` through the follower's daemon, verifies OUT
FETCH_WALL="" FETCH_OK=0
timed_get() {
  local row=$1 i=$2 ns=$3 home=$4 ifc=$5 cid=$6 man=$7 lim=$8; shift 8
  local out="$WORK/out.$row" rc=0 err="" verdict r0 r1 k tx0=() tx1=() shares=()
  rm -rf "$out"
  r0=$(rx_bytes "$ns" "$ifc")
  for k in "$@"; do tx0+=("$(tx_bytes "$k" eth0)"); done
  local t0=$EPOCHREALTIME t1
  # in a subshell: bash's notice of a seeder killed meanwhile goes to run.sh's stderr, not the log
  (in_ns "$ns" timeout -k 10 "$lim" env SHOAL_HOME="$home" "$SHOAL" \
    get "$cid" -o "$out") >"$WORK/log.$row.$i" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  r1=$(rx_bytes "$ns" "$ifc")
  for k in "$@"; do tx1+=("$(tx_bytes "$k" eth0)"); done
  for ((k = 0; k < ${#tx0[@]}; k++)); do shares+=("$((tx1[k] - tx0[k]))"); done
  local wall; wall=$(elapsed "$t0" "$t1")
  FETCH_WALL=$wall
  local stats; stats=$(sh_in "$ns" "$home" stats --json 2>/dev/null || echo '{}')
  local peers; peers=$(sh_in "$ns" "$home" peers --json 2>/dev/null | python3 -c '
import json, sys
print(len(json.load(sys.stdin).get("peers", [])))' 2>/dev/null || echo "")
  if ((rc)); then err="shoal get $(failed "$rc" "$lim" "$WORK/log.$row.$i")"
  elif ! verdict=$(verify "$man" "$out"); then err="output differs: $verdict"; fi
  [[ -n $err ]] && log "$row: $err"
  FETCH_OK=$([[ -z $err ]] && echo 1 || echo 0)
  record row "$row" run "$i" ok "$FETCH_OK" error "$err" wall_s "$wall" \
    files "$(wc -l <"$man")" bytes "$(awk -F'\t' '{ s += $2 } END { printf "%.0f", s }' "$man")" \
    wire_rx "$((r1 - r0))" wire_if "${ns:-root}:$ifc" \
    seeder_tx "[$(IFS=,; echo "${shares[*]}")]" stats "$stats" peers_after "$peers" "${EXTRA[@]}"
  rm -rf "$out"
}
EXTRA=()

# (a)/(d): loopback, one source.  ROW RUN SRC_HOME CID MANIFEST TREE
run_lo_shoal() {
  local row=$1 i=$2 src=$3 cid=$4 man=$5 tdir=$6 fh="$WORK/home-lo-F"
  new_home "$fh" /ip4/127.0.0.1/tcp/0
  log "$row ($i/$RUNS): shoal get through a follower daemon, one source on 127.0.0.1"
  warm "$tdir" "$src/store"
  start_daemon "" "$src" /ip4/127.0.0.1/tcp/0 ""; local a=$DAEMON_PID
  start_daemon "" "$fh" /ip4/127.0.0.1/tcp/0 ""; local b=$DAEMON_PID
  sleep 1
  sh_in "" "$fh" connect "$(addr_of "" "$src" /ip4/127.0.0.1/)" >/dev/null || die "connect failed"
  EXTRA=()
  timed_get "$row" "$i" "" "$fh" lo "$cid" "$man" "$LIMIT"
  stop_pid "$b"; stop_pid "$a"
  rm -rf "$fh"
}

# --- (b)/(f): seeders in namespaces ----------------------------------------------------------
SEED_PIDS=() SEED_ADDRS=() SEED_NS=()
start_seeders() { # starts every seeder daemon; fills SEED_PIDS, SEED_ADDRS, SEED_NS
  local k
  SEED_PIDS=() SEED_ADDRS=() SEED_NS=()
  for ((k = 1; k <= SEEDERS; k++)); do
    start_daemon "sw-s$k" "$WORK/home-s$k" "/ip4/$NET.$((10 + k))/tcp/$PORT" ""
    SEED_PIDS+=("$DAEMON_PID") SEED_NS+=("sw-s$k")
    SEED_ADDRS+=("$(addr_of "sw-s$k" "$WORK/home-s$k" "/ip4/$NET.")")
  done
}
LIAR_PID="" FWD_PID=""
start_liar() { # K: seeder K's daemon replaced by shoal-liar on seeder K's store
  local k=$1 ns="sw-s$1" home="$WORK/home-s$1" i line lport
  stop_pid "${SEED_PIDS[k - 1]}"
  # shoal-liar listens on 127.0.0.1 only: a forwarder in the same namespace exposes it on
  # the seeder's address (so its bytes still leave through the rate-limited eth0)
  bg_in "$ns" "$LIAR" "$home/store" >"$WORK/log.liar" 2>&1 &
  LIAR_PID=$!; PIDS+=("$LIAR_PID")
  for ((i = 0; i < 500; i++)); do
    line=$(grep -m1 '^{' "$WORK/log.liar" || true)
    [[ -n $line ]] && break
    alive "$LIAR_PID" || die "shoal-liar exited: $(tail -3 "$WORK/log.liar")"
    sleep 0.02
  done
  [[ -n $line ]] || die "shoal-liar printed no address"
  local addr peer
  addr=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["addr"])' "$line")
  lport=$(sed -E 's#^/ip4/127\.0\.0\.1/tcp/([0-9]+)/.*#\1#' <<<"$addr")
  peer=${addr##*/}
  bg_in "$ns" python3 "$HERE/tcpfwd.py" "$NET.$((10 + k)):$PORT" "127.0.0.1:$lport" >"$WORK/log.fwd" 2>&1 &
  FWD_PID=$!; PIDS+=("$FWD_PID")
  for ((i = 0; i < 100; i++)); do grep -q listening "$WORK/log.fwd" && break; sleep 0.05; done
  SEED_PIDS[k - 1]=$LIAR_PID
  SEED_ADDRS[k - 1]="/ip4/$NET.$((10 + k))/tcp/$PORT/p2p/$peer"
}

# ROW RUN [FAULT]: the follower in sw-f connects to every seeder, then fetches
CLEAN_WALL=""
run_ns_shoal() {
  local row=$1 i=$2 fault=${3:-} fh="$WORK/home-F" k lim=$LIMIT
  new_home "$fh" "/ip4/$NET.1/tcp/$PORT"
  local of=$RUNS; [[ -n $fault ]] && of=1
  log "$row ($i/$of): follower in sw-f fetching from $SEEDERS seeders at $RATE Mbit/s${fault:+, fault: $fault}"
  warm "$TREE" "$WORK"/home-s*/store
  start_seeders
  [[ $fault == liar ]] && start_liar "$SEEDERS"
  start_daemon sw-f "$fh" "/ip4/$NET.1/tcp/$PORT" ""; local f=$DAEMON_PID
  for a in "${SEED_ADDRS[@]}"; do
    sh_in sw-f "$fh" connect "$a" >>"$WORK/log.connect" 2>&1 || die "connect $a failed: $(tail -2 "$WORK/log.connect")"
  done
  sleep 1
  EXTRA=(fault "${fault:-none}")
  local watcher=""
  case $fault in
    stop) # seeder 1 accepts (the kernel still ACKs) but its process never answers
      kill -STOP "${SEED_PIDS[0]}"; EXTRA+=(fault_target "sw-s1 (SIGSTOP after connect)") ;;
    kill) # the seeder that has sent the most when the follower has 30% of the bytes dies
      fault_kill_watcher & watcher=$!
      EXTRA+=(fault_target "busiest seeder at 30% of the payload (SIGKILL)") ;;
    liar) EXTRA+=(fault_target "sw-s$SEEDERS is shoal-liar (every block corrupted)") ;;
  esac
  if [[ -n $fault && -n $CLEAN_WALL ]]; then
    lim=$(awk -v c="$CLEAN_WALL" -v l="$LIMIT" 'BEGIN { t = 20 * c; if (t < 300) t = 300; if (t > l) t = l; printf "%d", t }')
  fi
  timed_get "$row" "$i" sw-f "$fh" eth0 "$ROOT_CID" "$MANIFEST" "$lim" "${SEED_NS[@]}"
  if [[ -n $watcher ]]; then
    kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true
    [[ -s $WORK/log.killed ]] && log "killed $(cat "$WORK/log.killed")"
  fi
  stop_pid "$f"
  for k in "${SEED_PIDS[@]}"; do stop_pid "$k"; done
  [[ -n $FWD_PID ]] && { stop_pid "$FWD_PID"; FWD_PID=""; }
  LIAR_PID=""
  rm -rf "$fh"
}
fault_kill_watcher() { # runs in a subshell during the fetch
  local r0 need k best bestv v tx0=()
  r0=$(rx_bytes sw-f eth0); need=$((TREE_BYTES * 3 / 10))
  for k in "${SEED_NS[@]}"; do tx0+=("$(tx_bytes "$k" eth0)"); done
  : >"$WORK/log.killed"
  while :; do
    (($(rx_bytes sw-f eth0) - r0 >= need)) && break
    sleep 0.02
  done
  best=0 bestv=-1
  for ((k = 0; k < ${#SEED_NS[@]}; k++)); do
    v=$(($(tx_bytes "${SEED_NS[k]}" eth0) - tx0[k]))
    ((v > bestv)) && best=$k bestv=$v
  done
  kill -KILL "${SEED_PIDS[best]}" 2>/dev/null || true
  echo "${SEED_NS[best]} (pid ${SEED_PIDS[best]}) after it sent $bestv bytes" >"$WORK/log.killed"
}

# --- (e): gateway time to first byte ------------------------------------------------------------
TTFB_N=5
run_ttfb() {
  local rel size url i k
  # the file closest to 60 KiB
  read -r size rel < <(awk -F'\t' '{ d = $2 - 61440; if (d < 0) d = -d; print d, $2, $3 }' "$MANIFEST" | sort -n | head -1 | cut -d' ' -f2-)
  local q; q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$rel")
  local sha; sha=$(awk -F'\t' -v r="$rel" '$3 == r { print $1 }' "$MANIFEST")
  check_body() { [[ $(sha256sum "$WORK/out.ttfb" | cut -c1-64) == "$sha" ]]; }
  if want ttfb-nginx; then
    start_nginx "" 127.0.0.1 $(free_ports 2)
    warm "$TREE/$rel"
    for proto in http https; do
      url="http://127.0.0.1:$NGINX_HTTP/tree/$q"; local tls=()
      [[ $proto == https ]] && url="https://127.0.0.1:$NGINX_HTTPS/tree/$q" tls=(--cacert "$NGX/cert.pem")
      for ((i = 1; i <= TTFB_N; i++)); do
        local t; t=$(curl -sf "${tls[@]}" -o "$WORK/out.ttfb" -w '%{time_starttransfer}' "$url") || die "nginx ttfb curl failed"
        check_body || die "nginx sent a wrong body for $rel"
        record row ttfb-nginx run "$i" ok 1 proto "$proto" state warm ttfb_s "$t" size "$size" path "$rel"
      done
    done
    stop_nginx
  fi
  if want ttfb-shoal; then
    local fh="$WORK/home-gw" gw
    for ((i = 1; i <= TTFB_N; i++)); do
      log "ttfb-shoal ($i/$TTFB_N): fresh follower with a gateway, one source on 127.0.0.1"
      warm "$TREE/$rel" "$WORK/home-lo/store"
      start_daemon "" "$WORK/home-lo" /ip4/127.0.0.1/tcp/0 ""; local a=$DAEMON_PID
      gw=$(free_ports 1)
      new_home "$fh" /ip4/127.0.0.1/tcp/0
      start_daemon "" "$fh" /ip4/127.0.0.1/tcp/0 "127.0.0.1:$gw"; local b=$DAEMON_PID
      sh_in "" "$fh" connect "$(addr_of "" "$WORK/home-lo" /ip4/127.0.0.1/)" >/dev/null || die "connect failed"
      url="http://127.0.0.1:$gw/ipfs/$ROOT_CID/$q"
      for ((k = 0; k <= TTFB_N; k++)); do
        local t st=warm; ((k == 0)) && st=cold
        t=$(curl -sf -o "$WORK/out.ttfb" -w '%{time_starttransfer}' "$url") || die "gateway curl failed: $url"
        check_body || die "the gateway sent a wrong body for $rel"
        # cold: one per fresh follower; warm: the requests after it (recorded for run 1 only)
        ((k == 0 || i == 1)) && record row ttfb-shoal run "$i" ok 1 proto http state "$st" ttfb_s "$t" size "$size" path "$rel"
      done
      stop_pid "$b"; stop_pid "$a"
      rm -rf "$fh"
    done
  fi
  rm -f "$WORK/out.ttfb"
}

# --- the runs ------------------------------------------------------------------------------------
ROOT_CID="" SMALL_CID=""
if want lo-shoal || want ttfb-shoal; then
  log "shoal add -r --nocopy $TREE (loopback source)"
  ROOT_CID=$(add_tree "$WORK/home-lo" "$TREE" /ip4/127.0.0.1/tcp/0)
fi
# (a) loopback, one source
if want lo-nginx-http || want lo-nginx-https; then
  start_nginx "" 127.0.0.1 $(free_ports 2)
  for p in http https; do
    want "lo-nginx-$p" || continue
    for ((r = 1; r <= RUNS; r++)); do run_http "lo-nginx-$p" "$r" "" lo tree "$MANIFEST" "$p"; done
  done
  stop_nginx
fi
if want lo-shoal; then
  for ((r = 1; r <= RUNS; r++)); do run_lo_shoal lo-shoal "$r" "$WORK/home-lo" "$ROOT_CID" "$MANIFEST" "$TREE"; done
fi
# (d) small files, loopback
if want small-nginx-http || want small-nginx-https; then
  start_nginx "" 127.0.0.1 $(free_ports 2)
  for p in http https; do
    want "small-nginx-$p" || continue
    for ((r = 1; r <= RUNS; r++)); do run_http "small-nginx-$p" "$r" "" lo small "$SMANIFEST" "$p"; done
  done
  stop_nginx
fi
if want small-shoal; then
  log "shoal add -r --nocopy $STREE"
  SMALL_CID=$(add_tree "$WORK/home-small" "$STREE" /ip4/127.0.0.1/tcp/0)
  for ((r = 1; r <= RUNS; r++)); do run_lo_shoal small-shoal "$r" "$WORK/home-small" "$SMALL_CID" "$SMANIFEST" "$STREE"; done
  rm -rf "$WORK/home-small"
fi
# (e) time to first byte
want_any ttfb && run_ttfb
# (b), (f) namespaces
if want ns-nginx-http || want ns-nginx-https || ((NS_SHOAL)); then
  "$NETNS" up "$SEEDERS" "$RATE" >&2
  NETNS_UP=1
  log "link check: curl from sw-f to python http.server in the seeders"
  read -r _ single < <("$NETNS" check | grep '^single')
  par=$("$NETNS" check | awk '/^parallel/ { print $3 }')
  echo "{\"single_mbit\": $single, \"parallel_mbit\": $par, \"seeders\": $SEEDERS, \"rate_mbit\": $RATE}" >"$WORK/link.json"
  log "link: one seeder $single Mbit/s of payload, $SEEDERS at once $par Mbit/s (limit $RATE each, on the wire)"
fi
if want ns-nginx-http || want ns-nginx-https; then
  start_nginx sw-h "$NET.100" 80 443
  for p in http https; do
    want "ns-nginx-$p" || continue
    for ((r = 1; r <= RUNS; r++)); do run_http "ns-nginx-$p" "$r" sw-f eth0 tree "$MANIFEST" "$p"; done
  done
  stop_nginx
fi
if ((NS_SHOAL)); then
  for ((k = 1; k <= SEEDERS; k++)); do
    log "shoal add -r --nocopy $TREE (seeder $k)"
    c=$(add_tree "$WORK/home-s$k" "$TREE" "/ip4/$NET.$((10 + k))/tcp/$PORT")
    [[ -z $ROOT_CID || $c == "$ROOT_CID" ]] || die "seeder $k got root $c, not $ROOT_CID"
    ROOT_CID=$c
  done
  walls=()
  for ((r = 1; r <= RUNS; r++)); do
    run_ns_shoal ns-shoal "$r"
    walls+=("$FETCH_WALL")
  done
  # the fault runs' time limit comes from the clean runs (failed ones too: they fail late)
  ((${#walls[@]})) && CLEAN_WALL=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  for f in kill liar stop; do
    want "fault-$f" || continue
    run_ns_shoal "fault-$f" 1 "$f"
  done
fi

# --- report ------------------------------------------------------------------------------------
rc=0
TREE_FILES=$TREE_FILES TREE_BYTES=$TREE_BYTES PARAMS=$PARAMS SEEDERS=$SEEDERS RATE=$RATE RUNS=$RUNS \
CONNS=$CONNS NPROC=$(nproc) CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo -dirty) \
SHOAL_DESC=$SHOAL_DESC LIAR_DESC=$LIAR_DESC NGINX_DESC="$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')" \
CURL_DESC="curl $(curl --version | awk 'NR == 1 { print $2 }')" ROOT_CID=$ROOT_CID \
LINK_FILE="$WORK/link.json" \
python3 "$HERE/report.py" "$WORK/runs.jsonl" "$WORK/results.json" $( ((JSON)) && echo --json) || rc=$?
exit "$rc"
