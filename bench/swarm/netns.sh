#!/usr/bin/env bash
# A swarm topology in network namespaces for bench/swarm: one follower, N rate-limited
# seeders and one rate-limited HTTP host on a private bridge.  See README.md.
#
#   netns.sh up N R [H]   N seeders (sw-s1..sw-sN) whose uplink is limited to R Mbit/s,
#                         the follower sw-f (unlimited) and the HTTP host sw-h (uplink
#                         limited to H Mbit/s, default R)
#   netns.sh down         remove every namespace this script created (idempotent); processes
#                         still running inside them are killed first (by pid, from ip netns pids)
#   netns.sh status       namespaces, addresses, qdiscs, byte counters, processes
#   netns.sh check [MB]   measure: one curl sw-f <- sw-s1, then one curl from every seeder
#                         at once (python3 -m http.server in each seeder); prints Mbit/s
#
# Layout (nothing is created in, or changed on, the root namespace's interfaces or routes):
#   namespace sw-br: bridge "br0" with one port per node (veth "p-<node>")
#   namespace sw-f : eth0 10.77.0.1/24          follower, no limit
#   namespace sw-sK: eth0 10.77.0.(10+K)/24     seeder K, egress (its uplink) HTB at R Mbit/s
#   namespace sw-h : eth0 10.77.0.100/24        HTTP host (nginx), egress HTB at H Mbit/s
# Every namespace has lo up (daemon APIs bind 127.0.0.1 inside their namespace).
#
# Latency is NOT emulated: this kernel has no sch_netem, so the round trip is the veth
# and bridge's (tens of microseconds).  Only bandwidth is shaped; HTB queues up to its
# default limit, which adds queueing delay under load, as a real bottleneck would.
set -Eeuo pipefail

PREFIX=sw
NET=10.77.0
STATE=/run/shoal-bench-swarm.netns # what `up` created: "N R H"

die() { echo "netns.sh: error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
[[ $(id -u) == 0 ]] || die "needs root (ip netns, tc)"
command -v ip >/dev/null && command -v tc >/dev/null || die "ip/tc missing: apt-get install iproute2"

ours() { # every namespace of ours that exists
  ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^$PREFIX-(br|f|h|s[0-9]+)$" || true
}

down() {
  local ns p pids
  for ns in $(ours); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    if [[ -n $pids ]]; then
      for _ in $(seq 50); do
        [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break
        sleep 0.1
      done
      for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
    fi
  done
  # deleting a namespace deletes its veth ends, and with them their peers
  for ns in $(ours); do ip netns del "$ns" 2>/dev/null || true; done
  rm -f "$STATE"
}

shape() { # NS RATE_MBIT: HTB on eth0's egress of NS
  local ns=$1 r=$2
  # burst/cburst: ~1 ms at the rate but at least 64 KiB, so GSO super-packets (veth
  # offloads stay on) pass without stalling the token bucket
  local burst=$((r * 1000000 / 8 / 1000)); ((burst < 65536)) && burst=65536
  ip netns exec "$ns" tc qdisc replace dev eth0 root handle 1: htb default 10 r2q 1000
  ip netns exec "$ns" tc class replace dev eth0 parent 1: classid 1:10 htb \
    rate "${r}mbit" ceil "${r}mbit" burst "$burst" cburst "$burst"
}

node() { # NAME ADDR [RATE]: namespace PREFIX-NAME, veth to the bridge
  local ns=$PREFIX-$1 addr=$2 rate=${3:-}
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # created inside the bridge namespace, the other end moved straight into ns:
  # the root namespace never holds either end
  ip -n "$PREFIX-br" link add "p-$1" type veth peer name eth0 netns "$ns"
  ip -n "$PREFIX-br" link set "p-$1" master br0 up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  [[ -z $rate ]] || shape "$ns" "$rate"
}

reach() { # ADDR: sw-f gets an answer (RST counts) from ADDR within 5 s
  ip netns exec "$PREFIX-f" python3 - "$1" <<'PY'
import socket, sys, time
end = time.time() + 5
while time.time() < end:
    try:
        socket.create_connection((sys.argv[1], 9), timeout=0.5).close()
        sys.exit(0)
    except ConnectionRefusedError:
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

up() {
  local n=$1 r=$2 h=${3:-$2} k
  [[ $n =~ ^[1-9][0-9]?$ && $n -le 80 ]] || die "N must be 1..80"
  [[ $r =~ ^[1-9][0-9]*$ && $h =~ ^[1-9][0-9]*$ ]] || die "R and H are whole Mbit/s"
  [[ -z $(ours) ]] && log "creating" || { log "removing the previous topology first"; down; }
  trap 'echo "netns.sh: up interrupted, removing what it made" >&2; down; exit 1' ERR INT TERM
  ip netns add "$PREFIX-br"
  ip -n "$PREFIX-br" link set lo up
  ip -n "$PREFIX-br" link add br0 type bridge
  ip -n "$PREFIX-br" link set br0 up
  node f "$NET.1"
  for ((k = 1; k <= n; k++)); do node "s$k" "$NET.$((10 + k))" "$r"; done
  node h "$NET.100" "$h"
  # wait until the follower reaches every node (no ping here: a TCP connect to a closed
  # port answered by RST proves the path; the bridge has no STP, links come up async)
  local a
  for a in $(seq 11 $((10 + n))) 100; do
    reach "$NET.$a" || die "sw-f cannot reach $NET.$a"
  done
  mkdir -p "$(dirname "$STATE")"
  echo "$n $r $h" >"$STATE"
  trap - ERR INT TERM
  log "up: follower sw-f $NET.1 (unlimited), seeders sw-s1..sw-s$n $NET.11..$NET.$((10 + n)) at $r Mbit/s, http host sw-h $NET.100 at $h Mbit/s"
}

status() {
  local ns
  [[ -f $STATE ]] && echo "state: N R H = $(cat "$STATE")" || echo "state: none"
  for ns in $(ours | sort -V); do
    echo "--- $ns"
    ip -n "$ns" -br addr show | grep -v '^lo ' || true
    [[ $ns == "$PREFIX-br" ]] && continue
    ip netns exec "$ns" tc -s class show dev eth0 2>/dev/null | sed -n '1,3p'
    echo "rx_bytes $(ip netns exec "$ns" cat /sys/class/net/eth0/statistics/rx_bytes)" \
      "tx_bytes $(ip netns exec "$ns" cat /sys/class/net/eth0/statistics/tx_bytes)"
    echo "pids: $(ip netns pids "$ns" | tr '\n' ' ')"
  done
}

check() { # MB per transfer: prints "single MBIT" and "parallel K MBIT"
  local mb=${1:-0} n r k port=18080 f cpids=()
  [[ -f $STATE ]] || die "not up"
  read -r n r _ <"$STATE"
  ((mb > 0)) || mb=$((r * 3 / 8 + 1)) # ~3 s at R
  CHECK_DIR=$(mktemp -d /tmp/shoal-netns-check.XXXXXX) CHECK_PIDS=()
  local dir=$CHECK_DIR
  # incompressible file; the same one served by every seeder
  head -c "$((mb << 20))" /dev/urandom >"$dir/blob"
  stop_servers() {
    local p
    for p in "${CHECK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$CHECK_DIR"
  }
  trap stop_servers EXIT
  for ((k = 1; k <= n; k++)); do
    ip netns exec "$PREFIX-s$k" python3 -m http.server "$port" --bind "$NET.$((10 + k))" \
      --directory "$dir" >/dev/null 2>&1 &
    CHECK_PIDS+=($!)
  done
  for ((k = 1; k <= n; k++)); do
    for f in $(seq 100); do
      ip netns exec "$PREFIX-f" curl -sf -o /dev/null "http://$NET.$((10 + k)):$port/" && break
      sleep 0.1
    done
  done
  local single
  single=$(ip netns exec "$PREFIX-f" curl -sf -o /dev/null -w '%{speed_download}' "http://$NET.11:$port/blob")
  echo "single $(awk -v b="$single" 'BEGIN { printf "%.1f", b * 8 / 1e6 }')"
  local t0 t1
  t0=$EPOCHREALTIME
  for ((k = 1; k <= n; k++)); do
    ip netns exec "$PREFIX-f" curl -sf -o /dev/null "http://$NET.$((10 + k)):$port/blob" &
    cpids+=($!)
  done
  for f in "${cpids[@]}"; do wait "$f" || die "a parallel curl failed"; done
  t1=$EPOCHREALTIME
  echo "parallel $n $(awk -v a="$t0" -v b="$t1" -v m="$mb" -v n="$n" 'BEGIN { printf "%.1f", n * m * 1048576 * 8 / (b - a) / 1e6 }')"
}

case ${1:-} in
  up) (($# >= 3)) || die "usage: netns.sh up N R [H]"; up "$2" "$3" "${4:-}" ;;
  down) down ;;
  status) status ;;
  check) check "${2:-0}" ;;
  *) echo "usage: netns.sh up N R [H] | down | status | check [MB]" >&2; exit 2 ;;
esac
