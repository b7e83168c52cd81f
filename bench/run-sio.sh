#!/usr/bin/env bash
# Socket.IO fan-out: herald's default app (the tutorial's chat) against the tutorial's own
# server.js on Node `socket.io` 4.8 (bench/peers/sio-chat.cjs), measured in the same run.
#
#   bench/run-sio.sh                                # everything, about 5 minutes on 2 cores
#   HERALD_BIN=build/herald bench/run-sio.sh
#   N_IDLE=2000 FANOUT="100:50 1000:50" ROUNDS=1 FAN_SECS=5 bench/run-sio.sh   # quick look
#
# Both servers do the same work: herald runs with --recovery-window 0 (connection state
# recovery off, as in the Node server, so a broadcast is 42["message",{...}] with no offset).
# Memory: VmRSS before and SETTLE seconds after N_IDLE idle Socket.IO clients have connected
# (Engine.IO open, "40" / "40{...}", pings answered) -> bytes per idle client.
# Fan-out: for each "N:R" in FANOUT, N subscribers + 1 publisher emitting R "message" events/s
# of MSG_SIZE bytes, which the server broadcasts to everyone (io.emit); FAN_WARMUP s then
# FAN_SECS s measured, ROUNDS times, alternating herald and Node. wsload counts every delivery,
# checks each client's sequence, times publish -> subscriber, and reads the server's CPU time
# (/proc/PID/stat) over the measured seconds. Prints figures, never passes or fails on them.
# Only processes this script started are stopped, by PID.
# Output: stderr shows progress and every run; stdout (and bench/build/last-run-sio.txt) the tables.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
N_IDLE=${N_IDLE:-10000}
FANOUT=${FANOUT:-"100:50 1000:50 5000:10"} # subscribers:events per second
MSG_SIZE=${MSG_SIZE:-100}   # bytes of the Socket.IO packet 42["message",{...}]
FAN_SECS=${FAN_SECS:-10}
FAN_WARMUP=${FAN_WARMUP:-1}
FAN_DRAIN=${FAN_DRAIN:-5}   # seconds to wait for late deliveries after publishing stops
ROUNDS=${ROUNDS:-3}
SETTLE=${SETTLE:-2}
OUT=$BENCH/build/last-run-sio.txt

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

build_tools
WSLOAD=$BENCH/build/wsload
build_herald

if [[ ! -d "$BENCH/peers/node_modules/socket.io" || ! -d "$BENCH/peers/node_modules/express" ]]; then
  log "installing the peers' dependencies (npm ci in bench/peers) ..."
  (cd "$BENCH/peers" && npm ci --no-audit --no-fund >/dev/null)
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < N_IDLE + 100)); then
  log "warning: ulimit -n is $(ulimit -n), below $N_IDLE idle clients; lower N_IDLE"
fi

declare -A R PID PORT
SERVERS=(herald node)

idle_test() {
  local name=$1 f=$TMP/$1.idle
  measure_idle "$name" "$f" 1300 "$WSLOAD" sio-idle --port "${PORT[$name]}" -n "$N_IDLE" --hold 120 --connect-timeout 120
  R[$name,connect_s]=$(sed -n 's/^connect time \([0-9.]*\) s/\1/p' "$f" | head -1)
  log "  $name: RSS ${R[$name,rss_before]} kB before, ${R[$name,rss_after]} kB with ${R[$name,connected]} idle Socket.IO clients -> ${R[$name,idle]} B/client"
}

# fanout_test NAME N RATE: one run of wsload sio-fanout against NAME.
fanout_test() {
  local name=$1 n=$2 rate=$3 pid=${PID[$1]} port=${PORT[$1]} f=$TMP/$1.fan$2
  local k=$name,$n
  timeout $((FAN_SECS + FAN_WARMUP + FAN_DRAIN + 150)) "$WSLOAD" sio-fanout --port "$port" -n "$n" --rate "$rate" \
    -s "$MSG_SIZE" -t "$FAN_SECS" --warmup "$FAN_WARMUP" --drain "$FAN_DRAIN" --server-pid "$pid" \
    --connect-timeout 120 </dev/null >"$f" 2>&1 || true
  grep -E '^  ' "$f" | sed "s/^  /  $name N=$n: /" >&2
  grep -q '^RESULT' "$f" || { log "  $name N=$n: no result"; cat "$f" >&2; R[$k,runs]="${R[$k,runs]:-}${R[$k,runs]:+ }FAILED"; return 0; }
  local dps exp del lost p50 p99 cpu gaps errs failed dropped
  dps=$(field deliveries_per_s "$f") exp=$(field expected "$f") del=$(field delivered "$f")
  lost=$(field lost "$f") p50=$(field p50_us "$f") p99=$(field p99_us "$f")
  cpu=$(field cpu_us_per_delivery "$f") gaps=$(field gaps "$f") errs=$(field errors "$f")
  failed=$(field failed "$f") dropped=$(field dropped "$f")
  R[$k,exp]=$((${R[$k,exp]:-0} + exp))
  R[$k,del]=$((${R[$k,del]:-0} + del))
  R[$k,lost]=$((${R[$k,lost]:-0} + lost))
  R[$k,bad]=$((${R[$k,bad]:-0} + gaps + errs + failed + dropped))
  R[$k,runs]="${R[$k,runs]:-}${R[$k,runs]:+ }$dps/s,p99=$(awk -v u="$p99" 'BEGIN { printf "%.1fms", u / 1000 }'),cpu=$cpu"
  keep "$k,dps" "$dps" gt
  keep "$k,cpu" "$cpu" lt
  keep_latency "$k" "$p50" "$p99"
}

{
  echo "herald Socket.IO fan-out benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  machine_line
  echo "herald: $HERALD_BIN --recovery-window 0 (app chat); peer: node $(node --version)," \
    "socket.io $(node -p "require('$BENCH/peers/node_modules/socket.io/package.json').version")," \
    "express $(node -p "require('$BENCH/peers/node_modules/express/package.json').version") (bench/peers/sio-chat.cjs)"
  echo "load: wsload on the same machine (loopback), Socket.IO over WebSocket; idle: $N_IDLE clients;" \
    "fan-out: N subscribers + 1 publisher, ${MSG_SIZE}-byte packets, ${FAN_SECS}s after ${FAN_WARMUP}s warm-up," \
    "$ROUNDS interleaved rounds"
} >"$TMP/header"
cat "$TMP/header" >&2

log ""
start_server herald "$HERALD_BIN" --host 127.0.0.1 --port 0 --max-connections-per-ip 0 --max-msg-rate 0 --max-lp-per-ip 0 --publish-rate 0 --workers 1 --public "$ROOT/public" --recovery-window 0 --quiet
PID[herald]=$SERVER_PID PORT[herald]=$SERVER_PORT
start_server node node "$BENCH/peers/sio-chat.cjs" --host 127.0.0.1 --port 0 --public "$ROOT/public" --quiet
PID[node]=$SERVER_PID PORT[node]=$SERVER_PORT
log "herald pid ${PID[herald]} port ${PORT[herald]}; node socket.io pid ${PID[node]} port ${PORT[node]}"
sleep "$SETTLE"

log "== idle Socket.IO clients (both servers fresh)"
for s in "${SERVERS[@]}"; do
  idle_test "$s"
  sleep 1
done

log "== fan-out"
for ((round = 1; round <= ROUNDS; round++)); do
  for spec in $FANOUT; do
    n=${spec%%:*} rate=${spec##*:}
    for s in "${SERVERS[@]}"; do
      fanout_test "$s" "$n" "$rate"
      sleep 1
    done
  done
done
for s in "${SERVERS[@]}"; do
  R[$s,rss_end]=$(rss_kb "${PID[$s]}")
  stop_pid "${PID[$s]}"
done

ms() { awk -v u="$1" 'BEGIN { if (u == "" || u == "NA") print "NA"; else printf "%.1f", u / 1000 }'; }
label() { [[ $1 == node ]] && echo "node socket.io" || echo "$1"; }

{
  echo ""
  cat "$TMP/header"
  echo ""
  fmt='%-15s | %17s | %13s | %18s | %14s\n'
  printf "$fmt" server "bytes/idle-client" "RSS fresh kB" "RSS with N kB" "connect N (s)"
  printf '%s\n' "----------------+-------------------+---------------+--------------------+---------------"
  for s in "${SERVERS[@]}"; do
    printf "$fmt" "$(label "$s")" "${R[$s,idle]}" "${R[$s,rss_before]}" "${R[$s,rss_after]} (${R[$s,connected]})" "${R[$s,connect_s]:-NA}"
  done
  printf "$fmt" "herald/node" "$(ratio "${R[herald,idle]}" "${R[node,idle]}")" \
    "$(ratio "${R[herald,rss_before]}" "${R[node,rss_before]}")" "$(ratio "${R[herald,rss_after]}" "${R[node,rss_after]}")" \
    "$(ratio "${R[herald,connect_s]:-}" "${R[node,connect_s]:-}")"
  echo ""
  fmt='%6s | %6s | %-15s | %12s | %21s | %8s | %8s | %15s\n'
  printf "$fmt" N "msg/s" server "deliveries/s" "lost / expected" "p50 ms" "p99 ms" "CPU us/delivery"
  printf '%s\n' "-------+--------+-----------------+--------------+-----------------------+----------+----------+----------------"
  for spec in $FANOUT; do
    n=${spec%%:*} rate=${spec##*:}
    for s in "${SERVERS[@]}"; do
      k=$s,$n
      printf "$fmt" "$n" "$rate" "$(label "$s")" "${R[$k,dps]:-NA}" "${R[$k,lost]:-NA} / ${R[$k,exp]:-NA}" \
        "$(ms "${R[$k,p50]:-}")" "$(ms "${R[$k,p99]:-}")" "${R[$k,cpu]:-NA}"
    done
    printf "$fmt" "$n" "$rate" "herald/node" "$(ratio "${R[herald,$n,dps]:-}" "${R[node,$n,dps]:-}")" "" \
      "$(ratio "${R[herald,$n,p50]:-}" "${R[node,$n,p50]:-}")" "$(ratio "${R[herald,$n,p99]:-}" "${R[node,$n,p99]:-}")" \
      "$(ratio "${R[herald,$n,cpu]:-}" "${R[node,$n,cpu]:-}")"
  done
  echo "(deliveries/s: best round, every broadcast arrival in the measured seconds; lost: events published in the"
  echo " measured seconds x subscribers, not delivered within ${FAN_DRAIN}s after publishing stopped, summed over rounds;"
  echo " p50/p99: publish -> subscriber latency of the round with the lowest p99; CPU us/delivery: server user+system"
  echo " CPU over the measured seconds / deliveries, lowest round. Lower is better except deliveries/s)"
  for s in "${SERVERS[@]}"; do
    echo "$(label "$s"): RSS ${R[$s,rss_end]} kB at the end;$(rounds "$s" "$FANOUT" "sequence errors/gaps/failed/dropped")"
  done
} | tee "$OUT"
