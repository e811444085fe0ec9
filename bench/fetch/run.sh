#!/usr/bin/env bash
# Benchmark a whole-tree fetch between two shoal daemons against nginx serving
# the same tree over HTTP and HTTPS to 16 parallel keep-alive connections, all
# in the same run, from the same memory state.  See README.md.
set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [--files N] [--total-bytes B] [--seed S] [--work DIR] [--shoal PATH]
          [--runs N] [--conns N] [--only LIST] [--timeout S] [--json] [--keep]
  --files N        files in the generated tree (default 20000; env SHOAL_BENCH_FILES)
  --total-bytes B  bytes in the generated pool (default N * 215000, i.e. 4.3e9 at
                   20000 files; env SHOAL_BENCH_TOTAL_BYTES)
  --seed S         generator seed (default 1; env SHOAL_BENCH_SEED)
  --work DIR       work dir (default /tmp/shoal-bench-fetch; env SHOAL_BENCH_WORK);
                   WORK/tree is kept and reused
  --shoal PATH     shoal binary (default \$SHOAL_BIN, else target/release/shoal; never built here)
  --runs N         runs per contender; the table shows the median (default 3; env SHOAL_BENCH_RUNS)
  --conns N        parallel HTTP connections for the nginx clients (default 16)
  --only LIST      comma-separated contenders to run (default all): nginx-http,
                   nginx-https, shoal-auto, shoal-bitswap (builds with get --exchange),
                   shoal-get (builds without), shoal-pin; opt-in: shoal-sync (--exchange sync)
  --timeout S      give up on one fetch after S seconds (default 3600)
  --json           print the figures as JSON instead of the table (WORK/results.json
                   is written either way)
  --keep           keep WORK/home-* and the last outputs afterwards
EOF
}

FILES=${SHOAL_BENCH_FILES:-20000} TOTAL=${SHOAL_BENCH_TOTAL_BYTES:-} SEED=${SHOAL_BENCH_SEED:-1}
WORK=${SHOAL_BENCH_WORK:-/tmp/shoal-bench-fetch} SHOAL=${SHOAL_BIN:-} RUNS=${SHOAL_BENCH_RUNS:-3}
CONNS=16 ONLY="" JSON=0 KEEP=0 LIMIT=3600
while (($#)); do
  case $1 in
    --files) FILES=$2; shift 2 ;;
    --total-bytes) TOTAL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --shoal) SHOAL=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --timeout) LIMIT=$2; shift 2 ;;
    --json) JSON=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $FILES =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ && $CONNS =~ ^[1-9][0-9]*$ && $LIMIT =~ ^[1-9][0-9]*$ ]] \
  || { usage >&2; exit 2; }

die() { echo "run.sh: error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel)
GEN="$ROOT/../shared/tools/gen_repo.py"
[[ -f $GEN ]] || die "generator not found at $GEN"
SHOAL=${SHOAL:-$ROOT/target/release/shoal}
[[ -x $SHOAL ]] || die "shoal binary not executable: $SHOAL (build it: cargo build --release -p shoal-cli)"
SHOAL=$(cd "$(dirname "$SHOAL")" && pwd)/$(basename "$SHOAL")
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
# run a private copy, so a rebuild of target/release during the run cannot mix builds
SHOAL_ORIG=$SHOAL SHOAL="$WORK/shoal.bin"
cp "$SHOAL_ORIG" "$SHOAL.tmp" && mv -f "$SHOAL.tmp" "$SHOAL"
TREE="$WORK/tree"
MANIFEST="$WORK/tree.manifest"
HOME_A="$WORK/home-A" HOME_B="$WORK/home-B"
NGX="$WORK/nginx"
TCK=$(getconf CLK_TCK)
IS_ROOT=0; [[ $(id -u) == 0 ]] && IS_ROOT=1
rm -f "$WORK"/{runs.jsonl,results.json,time.*,log.*,stats.*} # stale outputs

# --- tools: nginx, curl, openssl, GNU time (Debian packages) ---------------------
NGINX=$(command -v nginx || true); [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
missing=()
[[ -n $NGINX ]] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
  ((IS_ROOT)) || die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  if ! apt-get install -y -qq "${missing[@]}" >&2; then
    # nginx-light is gone from newer Debian releases: fall back to nginx
    apt-get install -y -qq "${missing[@]/nginx-light/nginx}" >&2 || die "apt-get install failed"
  fi
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
[[ -x $NGINX ]] || die "nginx not found after install"

# --- bookkeeping: processes we started, stopped on exit ----------------------------
NGINX_PID="" A_PID="" B_PID=""
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
cleanup() {
  stop_pid "$B_PID"; B_PID=""
  stop_pid "$A_PID"; A_PID=""
  stop_pid "$NGINX_PID" QUIT; NGINX_PID=""
  ((KEEP)) || rm -rf "$WORK"/out.* "$HOME_A" "$HOME_B" "$WORK/shoal.bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tree: regenerate unless the marker records the same parameters ---------------
[[ -n $TOTAL ]] || TOTAL=$((FILES * 215000))
TOTAL_INT=$(awk -v b="$TOTAL" 'BEGIN { printf "%.0f", b }')
PARAMS="files=$FILES total-bytes=$TOTAL_INT seed=$SEED gen=$(sha256sum "$GEN" | cut -c1-16)"
MARKER="$WORK/tree.params" # beside the tree, written last (after the manifest)
if [[ -d $TREE && -f $MARKER && -f $MANIFEST && $(cat "$MARKER") == "$PARAMS" ]]; then
  log "reusing $TREE ($PARAMS)"
else
  log "generating $TREE ($PARAMS)"
  rm -rf "$TREE" "$MARKER" "$MANIFEST"
  python3 "$GEN" generate --files "$FILES" --total-bytes "$TOTAL_INT" --seed "$SEED" \
    --out "$TREE" --jobs "$(nproc)" >&2
  log "hashing $TREE into $MANIFEST"
  python3 "$HERE/manifest.py" make "$TREE" "$MANIFEST"
  echo "$PARAMS" >"$MARKER"
fi
TREE_FILES=$(wc -l <"$MANIFEST")
TREE_BYTES=$(awk -F'\t' '{ s += $2 } END { printf "%.0f", s }' "$MANIFEST")
# each run writes at most the tree twice (B's store + the output), deleted after it
NEED=$((2 * TREE_BYTES + (1 << 30)))
AVAIL=$(df -B1 --output=avail "$WORK" | tail -1)
((AVAIL > NEED)) || die "need $NEED bytes free in $WORK, have $AVAIL"

# --- measuring helpers ---------------------------------------------------------------
cpu_ticks() { # PID...: utime+stime summed (clock ticks)
  local p s t=0 f
  for p; do
    read -r s <"/proc/$p/stat"
    s=${s##*) }
    read -ra f <<<"$s"
    t=$((t + f[11] + f[12])) # fields 14 and 15 of /proc/PID/stat
  done
  echo "$t"
}
status_kib() { # FIELD PID...: /proc/PID/status FIELD (kB) summed over PIDs
  local k=$1 p t=0 v; shift
  for p; do
    v=$(awk -v k="$k:" '$1 == k { print $2 }' "/proc/$p/status")
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
secs() { awk -v a="$1" -v b="$2" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }'; }
record() { # KEY VALUE ... -> one JSON object per line in WORK/runs.jsonl
  python3 -c 'import json, sys; a = sys.argv[1:]; print(json.dumps(dict(zip(a[::2], a[1::2]))))' \
    "$@" >>"$WORK/runs.jsonl"
}
# Every run starts from the same memory state: earlier outputs deleted and
# written back, the page cache dropped (as root; skipped otherwise), then only
# the source tree (and shoal A's store) read back in, so servers read warm data.
warm() {
  sync
  sleep 3
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  sleep 1
  find "$TREE" "$@" -type f -print0 | xargs -0 cat >/dev/null
}
failed() { # RC LOG: why a bounded command failed
  if (($1 == 124)); then echo "timed out after $LIMIT s"; else
    echo "exited $1: $(tail -c 400 "$2" | tr '\n' ' ')"; fi
}
verify() { # DIR -> prints a one-line verdict, fails when DIR differs from the tree
  python3 "$HERE/manifest.py" check "$MANIFEST" "$1"
}

want() { [[ -z $ONLY || ,$ONLY, == *,$1,* ]]; }
for n in ${ONLY//,/ }; do
  [[ $n =~ ^(nginx-http|nginx-https|shoal-auto|shoal-bitswap|shoal-sync|shoal-get|shoal-pin)$ ]] \
    || die "unknown contender in --only: $n"
done

# --- nginx -----------------------------------------------------------------------------
free_ports() { # N distinct free TCP ports on 127.0.0.1
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

start_nginx() {
  read -r HTTP_PORT HTTPS_PORT < <(free_ports 2)
  rm -rf "$NGX"
  mkdir -p "$NGX/tmp"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -keyout "$NGX/key.pem" -out "$NGX/cert.pem" -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 2>"$NGX/openssl.log" || die "openssl: $(cat "$NGX/openssl.log")"
  local user=""; ((IS_ROOT)) && user="user root;" # workers must read WORK wherever it is
  cat >"$NGX/nginx.conf" <<EOF
# written by bench/fetch/run.sh
$user
worker_processes auto;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  types { }
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  server {
    listen 127.0.0.1:$HTTP_PORT;
    root $TREE;
    location = /nginx_status { stub_status; }
  }
  server {
    listen 127.0.0.1:$HTTPS_PORT ssl;
    root $TREE;
    ssl_certificate $NGX/cert.pem;
    ssl_certificate_key $NGX/key.pem;
    ssl_protocols TLSv1.3;
  }
}
EOF
  "$NGINX" -t -q -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" >"$NGX/test.log" 2>&1 \
    || die "nginx -t failed: $(tail -3 "$NGX/test.log")"
  "$NGINX" -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" >"$NGX/stdout.log" 2>&1 &
  NGINX_PID=$!
  local i
  for ((i = 0; i < 300; i++)); do
    curl -sf "http://127.0.0.1:$HTTP_PORT/nginx_status" -o /dev/null && break
    alive "$NGINX_PID" || die "nginx exited: $(tail -3 "$NGX/error.log")"
    sleep 0.05
  done
  ((i < 300)) || die "nginx did not answer on 127.0.0.1:$HTTP_PORT"
  curl -sf --cacert "$NGX/cert.pem" "https://127.0.0.1:$HTTPS_PORT/$(cut -f3 "$MANIFEST" | head -1)" \
    -o /dev/null || die "nginx HTTPS does not answer on 127.0.0.1:$HTTPS_PORT"
  NGINX_DESC="$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), worker_processes auto ($(nproc)), sendfile, keep-alive, HTTPS: TLS 1.3 only, ECDSA P-256 self-signed; 127.0.0.1:$HTTP_PORT/$HTTPS_PORT"
  log "nginx up (pid $NGINX_PID): http://127.0.0.1:$HTTP_PORT https://127.0.0.1:$HTTPS_PORT"
}
nginx_pids() { echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true); }
nginx_counts() { # -> "accepted-connections requests" (stub_status; this request included)
  curl -sf "http://127.0.0.1:$HTTP_PORT/nginx_status" | awk 'NR == 3 { print $1, $3 }'
}

CLIENT_DESC="curl $(curl --version | awk 'NR == 1 { print $2 }'): one process, --parallel --parallel-max $CONNS over HTTP/1.1 keep-alive, writing every file to WORK/out.* (same disk)"
run_nginx() { # NAME PROTO RUN
  local name=$1 proto=$2 i=$3 out="$WORK/out.$1" cfg="$NGX/curl-$2.cfg" tf="$WORK/time.$1"
  local base="http://127.0.0.1:$HTTP_PORT" tls=()
  [[ $proto == https ]] && base="https://127.0.0.1:$HTTPS_PORT" tls=(--cacert "$NGX/cert.pem")
  [[ -f $cfg ]] || python3 "$HERE/manifest.py" curl "$MANIFEST" "$base" "$out" >"$cfg"
  rm -rf "$out"
  log "$name ($i/$RUNS): warming, then $TREE_FILES files over $CONNS connections"
  warm
  local pids p; pids=$(nginx_pids)
  if ((IS_ROOT)); then for p in $pids; do echo 5 >"/proc/$p/clear_refs"; done; fi # reset VmHWM
  local n0 n1 c0 c1 rc=0 err="" verdict a0 r0 a1 r1
  n0=$(nginx_counts); c0=$(cpu_ticks $pids)
  /usr/bin/time -f '%e %U %S %M' -o "$tf" timeout --foreground -k 10 "$LIMIT" curl --http1.1 --parallel --parallel-immediate \
    --parallel-max "$CONNS" --fail --silent --show-error --create-dirs "${tls[@]}" \
    -K "$cfg" >"$WORK/log.$name" 2>&1 || rc=$?
  c1=$(cpu_ticks $pids); n1=$(nginx_counts)
  local wall u s m; read -r wall u s m < <(tail -1 "$tf")
  if ((rc)); then
    err="curl $(failed "$rc" "$WORK/log.$name")"
  elif ! verdict=$(verify "$out"); then
    err="output differs from the tree: $verdict"
  fi
  [[ -n $err ]] && log "$name: $err"
  read -r a0 r0 <<<"$n0"; read -r a1 r1 <<<"$n1"
  record contender "$name" run "$i" ok "$([[ -z $err ]] && echo 1 || echo 0)" error "$err" \
    wall_s "$wall" server_cpu_s "$(secs "$c0" "$c1")" \
    client_cpu_s "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" \
    server_rss_kib "$(status_kib VmHWM $pids)" client_rss_kib "$m" \
    conns "$((a1 - a0 - 1))" requests "$((r1 - r0 - 1))"
  rm -rf "$out"
}

# --- shoal -----------------------------------------------------------------------------
sh_a() { SHOAL_HOME=$HOME_A "$SHOAL" "$@"; }
sh_b() { SHOAL_HOME=$HOME_B "$SHOAL" "$@"; }
new_home() { # DIR: empty SHOAL_HOME whose config keeps the node to loopback
  rm -rf "$1"
  mkdir -p "$1"
  # no mDNS (multicast on the LAN) and no bootstrap peers: only the peer we connect
  printf '[network]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\nbootstrap = []\nmdns = false\n' >"$1/config.toml"
}
START_MS=""
start_daemon() { # HOME VAR: spawn a daemon, set VAR to its pid and START_MS to the
  # milliseconds from spawn until `shoal id` (the CLI, through the API) answers
  local home=$1 var=$2 t0 i pid
  rm -f "$home/api" "$home/api.token"
  t0=$EPOCHREALTIME
  SHOAL_HOME=$home "$SHOAL" daemon --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --gateway 127.0.0.1:0 \
    >"$home/daemon.log" 2>&1 &
  pid=$!
  printf -v "$var" %s "$pid"
  for ((i = 0; i < 3000; i++)); do
    SHOAL_HOME=$home "$SHOAL" id >/dev/null 2>&1 && break
    alive "$pid" || { cat "$home/daemon.log" >&2; die "daemon ($home) exited"; }
    sleep 0.01
  done
  ((i < 3000)) || die "daemon ($home) did not answer within 30 s"
  START_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
}

EXCHANGE=0 STATS=0 # what this build has: get --exchange, shoal stats
[[ $("$SHOAL" get --help 2>&1 || true) == *--exchange* ]] && EXCHANGE=1
[[ $'\n'$("$SHOAL" --help 2>&1 || true) =~ $'\n'\ +stats\  ]] && STATS=1
# default rows for this build, or exactly the shoal rows --only names
if ((EXCHANGE)); then SHOAL_ROWS=(shoal-auto shoal-bitswap shoal-pin); else SHOAL_ROWS=(shoal-get shoal-pin); fi
if [[ -n $ONLY ]]; then
  SHOAL_ROWS=()
  for n in shoal-auto shoal-bitswap shoal-sync shoal-get shoal-pin; do
    want "$n" || continue
    [[ $n == shoal-get || $n == shoal-pin ]] || ((EXCHANGE)) \
      || die "$n needs a shoal whose get has --exchange; $SHOAL has not (use shoal-get)"
    SHOAL_ROWS+=("$n")
  done
fi
SHOAL_DESC="$SHOAL_ORIG ($("$SHOAL" --version), built $(date -u -r "$SHOAL_ORIG" '+%F %H:%M UTC'), sha256 $(sha256sum "$SHOAL" | cut -c1-12); get --exchange: $( ((EXCHANGE)) && echo yes || echo 'no: bitswap only'))"

ROOT_CID="" ADD_S=""
setup_a() { # add the tree to A's store in place (--nocopy): only the index is written
  new_home "$HOME_A"
  log "shoal add -r --nocopy $TREE (store $HOME_A)"
  local t0=$EPOCHREALTIME
  sh_a add -r -Q --nocopy "$TREE" >"$WORK/log.add" 2>&1 || die "shoal add failed: $(tail -5 "$WORK/log.add")"
  ADD_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  ROOT_CID=$(tail -1 "$WORK/log.add" | tr -d '[:space:]')
  [[ $ROOT_CID =~ ^(baf|Qm)[A-Za-z0-9]+$ ]] || die "shoal add printed no CID: $(tail -c 300 "$WORK/log.add")"
}

run_shoal() { # NAME RUN
  local name=$1 i=$2 out="$WORK/out.$1" tf="$WORK/time.$1" cmd
  case $name in
    shoal-auto) cmd=(get "$ROOT_CID" -o "$out" --exchange auto) ;;
    shoal-bitswap) cmd=(get "$ROOT_CID" -o "$out" --exchange bitswap) ;;
    shoal-sync) cmd=(get "$ROOT_CID" -o "$out" --exchange sync) ;;
    shoal-get) cmd=(get "$ROOT_CID" -o "$out") ;;
    shoal-pin) cmd=(pin add "$ROOT_CID") ;;
  esac
  rm -rf "$out"
  new_home "$HOME_B"
  log "$name ($i/$RUNS): warming, then shoal ${cmd[*]}"
  warm "$HOME_A"
  local start_a start_b idle_a idle_b addr
  start_daemon "$HOME_A" A_PID; start_a=$START_MS
  start_daemon "$HOME_B" B_PID; start_b=$START_MS
  sleep 2
  idle_a=$(status_kib VmRSS "$A_PID"); idle_b=$(status_kib VmRSS "$B_PID")
  addr=$(sh_a id --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["addrs"][0])')
  sh_b connect "$addr" >"$WORK/log.connect" 2>&1 || die "shoal connect $addr failed: $(cat "$WORK/log.connect")"
  local a0 a1 b0 b1 rc=0 err="" verdict writeout=""
  a0=$(cpu_ticks "$A_PID"); b0=$(cpu_ticks "$B_PID")
  /usr/bin/time -f '%e %U %S %M' -o "$tf" timeout --foreground -k 10 "$LIMIT" env SHOAL_HOME="$HOME_B" "$SHOAL" "${cmd[@]}" \
    >"$WORK/log.$name" 2>&1 || rc=$?
  a1=$(cpu_ticks "$A_PID"); b1=$(cpu_ticks "$B_PID")
  local hwm_a hwm_b wall u s m
  hwm_a=$(status_kib VmHWM "$A_PID"); hwm_b=$(status_kib VmHWM "$B_PID")
  read -r wall u s m < <(tail -1 "$tf")
  local stats="$WORK/stats.$name.$i.json" # B's exchange counters, if the build has them
  ((STATS)) && sh_b stats --json >"$stats" 2>/dev/null || rm -f "$stats"
  if ((rc)); then
    err="shoal ${cmd[0]} $(failed "$rc" "$WORK/log.$name")"
  elif [[ $name == shoal-pin ]]; then
    # the store-only fetch: check it by writing the files out of B's store
    local t0=$EPOCHREALTIME
    timeout --foreground -k 10 "$LIMIT" env SHOAL_HOME="$HOME_B" "$SHOAL" get "$ROOT_CID" -o "$out" \
      >"$WORK/log.$name.get" 2>&1 || rc=$?
    if ((rc)); then
      err="shoal get after pin add $(failed "$rc" "$WORK/log.$name.get")"
    else
      writeout=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    fi
  fi
  stop_pid "$B_PID"; B_PID=""
  stop_pid "$A_PID"; A_PID=""
  if [[ -z $err ]] && ! verdict=$(verify "$out"); then
    err="output differs from the tree: $verdict"
  fi
  [[ -n $err ]] && log "$name: $err"
  record contender "$name" run "$i" ok "$([[ -z $err ]] && echo 1 || echo 0)" error "$err" \
    wall_s "$wall" server_cpu_s "$(secs "$a0" "$a1")" \
    client_cpu_s "$(awk -v x="$(secs "$b0" "$b1")" -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", x + u + s }')" \
    server_rss_kib "$hwm_a" client_rss_kib "$hwm_b" start_ms_a "$start_a" start_ms_b "$start_b" \
    idle_rss_kib_a "$idle_a" idle_rss_kib_b "$idle_b" writeout_s "$writeout" \
    stats_file "$([[ -f $stats ]] && echo "$stats")"
  rm -rf "$out" "$HOME_B"
}

# --- the runs --------------------------------------------------------------------------
NGINX_DESC="(not run)"
if want nginx-http || want nginx-https; then
  start_nginx
  for n in http https; do
    want "nginx-$n" || continue
    for ((r = 1; r <= RUNS; r++)); do run_nginx "nginx-$n" "$n" "$r"; done
  done
  stop_pid "$NGINX_PID" QUIT; NGINX_PID=""
fi
if ((${#SHOAL_ROWS[@]})); then
  setup_a
  for n in "${SHOAL_ROWS[@]}"; do
    for ((r = 1; r <= RUNS; r++)); do run_shoal "$n" "$r"; done
  done
fi

# --- report (table or JSON on stdout, WORK/results.json) ---------------------------------
rc=0
TREE_FILES=$TREE_FILES TREE_BYTES=$TREE_BYTES PARAMS=$PARAMS NPROC=$(nproc) RUNS=$RUNS \
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo -dirty) \
SHOAL_DESC=$SHOAL_DESC NGINX_DESC=$NGINX_DESC CLIENT_DESC=$CLIENT_DESC ROOT_CID=$ROOT_CID ADD_S=$ADD_S \
python3 "$HERE/report.py" "$WORK/runs.jsonl" "$WORK/results.json" $( ((JSON)) && echo --json) || rc=$?
exit "$rc"
