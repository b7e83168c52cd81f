#!/usr/bin/env bash
# Benchmark herald against a peer (Node.js `ws`) in the same run and print the figures side by side.
#
#   bench/run.sh                      # everything, about 3 minutes
#   HERALD_BIN=build/herald bench/run.sh
#   N_IDLE=5000 ECHO_SECS=5 ROUNDS=1 bench/run.sh
#
# Starts herald and the peer on free loopback ports. Memory: for each server, read VmRSS, open
# N_IDLE idle WebSockets to /echo with wsload, read VmRSS again, report (after - before) / N as
# bytes per idle connection. Throughput: wsload echo (ECHO_CONNS connections, ECHO_WINDOW messages
# in flight each) with 16-byte and 4 KiB text messages for ECHO_SECS seconds, ROUNDS times,
# alternating herald and peer so that a noisy neighbour hurts both; the best round is reported,
# plus the server's CPU time per echoed message (from /proc/PID/stat). Prints figures, never
# passes or fails on them. Only processes this script started are stopped, by PID.
# Output: stderr shows progress and every run; stdout (and bench/build/last-run.txt) the table.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
N_IDLE=${N_IDLE:-10000}
ECHO_CONNS=${ECHO_CONNS:-50}
ECHO_WINDOW=${ECHO_WINDOW:-8}
ECHO_SECS=${ECHO_SECS:-10}
ECHO_WARMUP=${ECHO_WARMUP:-1}
ROUNDS=${ROUNDS:-3}   # echo runs per server and size, interleaved herald/peer; the best is reported
SETTLE=${SETTLE:-2} # seconds to let a server settle before each RSS reading
OUT=$BENCH/build/last-run.txt

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

build_tools
WSLOAD=$BENCH/build/wsload
build_herald

if [[ ! -d "$BENCH/peers/node_modules/ws" ]]; then
  log "installing the peer's dependencies (npm ci in bench/peers) ..."
  (cd "$BENCH/peers" && npm ci --no-audit --no-fund >/dev/null)
fi

# Each server and wsload raise their own soft limit to the hard one; do it here too for both.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < N_IDLE + 100)); then
  log "warning: ulimit -n is $(ulimit -n), below $N_IDLE idle connections; lower N_IDLE"
fi

declare -A R   # R[server,metric]: figures for the table
declare -A PID  # PID[server], PORT[server]
declare -A PORT
SERVERS=(herald ws)

idle_test() {
  local name=$1
  # hold the idle connections until RSS is read, then SIGTERM wsload (it closes them)
  measure_idle "$name" "$TMP/$name.idle" 600 "$WSLOAD" idle --port "${PORT[$name]}" --path /echo -n "$N_IDLE" --hold 120
  log "  $name: RSS ${R[$name,rss_before]} kB before, ${R[$name,rss_after]} kB with ${R[$name,connected]} idle WebSockets -> ${R[$name,idle]} B/conn"
}

# echo_test NAME SIZE: one run; keeps the best msg/s over the rounds (noise only ever slows a run down).
echo_test() {
  local name=$1 size=$2 pid=${PID[$1]} port=${PORT[$1]} f=$TMP/$1.echo$2
  local t0 t1 mps total cpu_us
  t0=$(cpu_ticks "$pid")
  "$WSLOAD" echo --port "$port" --path /echo -c "$ECHO_CONNS" -w "$ECHO_WINDOW" -s "$size" \
    -t "$ECHO_SECS" --warmup "$ECHO_WARMUP" </dev/null >"$f" 2>&1 || true
  t1=$(cpu_ticks "$pid")
  mps=$(field msgs_per_s "$f")
  total=$(field total_msgs "$f")
  cpu_us=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="${total:-0}" 'BEGIN { if (n > 0) printf "%.2f", d / hz * 1e6 / n; else print "NA" }')
  log "  $name echo $size B: $(grep -E 'messages echoed|round trip|^  errors' "$f" | tr -s ' ' | tr '\n' ';') server CPU ${cpu_us} us/msg"
  R[$name,all$size]="${R[$name,all$size]:-}${R[$name,all$size]:+ }${mps:-NA}"
  local e
  e=$(field errors "$f")
  R[$name,err$size]=$((${R[$name,err$size]:-0} + ${e:-1}))
  if [[ -n "$mps" ]] && awk -v a="$mps" -v b="${R[$name,mps$size]:-0}" 'BEGIN { exit !(a > b) }'; then
    R[$name,mps$size]=$mps
    R[$name,mbs$size]=$(field mb_per_s "$f")
    R[$name,p50_$size]=$(field p50_us "$f")
    R[$name,p99_$size]=$(field p99_us "$f")
  fi
  # CPU per message: keep the lowest (least disturbed) round.
  if [[ $cpu_us != NA ]] && awk -v a="$cpu_us" -v b="${R[$name,cpu$size]:-1e18}" 'BEGIN { exit !(a < b) }'; then
    R[$name,cpu$size]=$cpu_us
  fi
}

{
  echo "herald benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  machine_line
  echo "herald: $HERALD_BIN; peer: node $(node --version), ws $(node -p "require('$BENCH/peers/node_modules/ws/package.json').version")"
  echo "load: wsload on the same machine (loopback); idle: $N_IDLE WebSockets on /echo;" \
    "echo: $ECHO_CONNS conns x $ECHO_WINDOW in flight, text messages, ${ECHO_SECS}s after ${ECHO_WARMUP}s warm-up," \
    "best of $ROUNDS interleaved rounds"
} >"$TMP/header"
cat "$TMP/header" >&2

log ""
start_server herald "$HERALD_BIN" --host 127.0.0.1 --port 0 --max-connections-per-ip 0 --max-msg-rate 0 --max-lp-per-ip 0 --publish-rate 0 --workers 1 --public "$ROOT/public"
PID[herald]=$SERVER_PID PORT[herald]=$SERVER_PORT
start_server ws node "$BENCH/peers/ws-echo.mjs" --host 127.0.0.1 --port 0
PID[ws]=$SERVER_PID PORT[ws]=$SERVER_PORT
log "herald pid ${PID[herald]} port ${PORT[herald]}; node ws pid ${PID[ws]} port ${PORT[ws]}"
sleep "$SETTLE"

log "== idle WebSockets (both servers fresh)"
for s in "${SERVERS[@]}"; do
  idle_test "$s"
  sleep 1
done

log "== echo"
for ((round = 1; round <= ROUNDS; round++)); do
  for size in 16 4096; do
    for s in "${SERVERS[@]}"; do
      echo_test "$s" "$size"
      sleep 1
    done
  done
done
for s in "${SERVERS[@]}"; do
  R[$s,rss_end]=$(rss_kb "${PID[$s]}")
  stop_pid "${PID[$s]}"
done


{
  echo ""
  cat "$TMP/header"
  echo ""
  fmt='%-13s | %13s | %15s | %16s | %15s | %17s | %14s\n'
  printf "$fmt" server "bytes/idle-ws" "echo msg/s 16B" "echo msg/s 4KiB" "echo MB/s 4KiB" "CPU us/msg 16B/4K" "p99 ms 16B/4K"
  printf '%s\n' "--------------+---------------+-----------------+------------------+-----------------+-------------------+---------------"
  ms() { awk -v u="$1" 'BEGIN { if (u == "" || u == "NA") print "NA"; else printf "%.1f", u / 1000 }'; }
  for s in "${SERVERS[@]}"; do
    label=$s
    [[ $s == ws ]] && label="node ws 8.23"
    printf "$fmt" "$label" "${R[$s,idle]}" "${R[$s,mps16]:-NA}" "${R[$s,mps4096]:-NA}" "${R[$s,mbs4096]:-NA}" \
      "${R[$s,cpu16]:-NA}/${R[$s,cpu4096]:-NA}" "$(ms "${R[$s,p99_16]:-}")/$(ms "${R[$s,p99_4096]:-}")"
  done
  printf "$fmt" "herald/peer" "$(ratio "${R[herald,idle]}" "${R[ws,idle]}")" \
    "$(ratio "${R[herald,mps16]:-}" "${R[ws,mps16]:-}")" "$(ratio "${R[herald,mps4096]:-}" "${R[ws,mps4096]:-}")" \
    "$(ratio "${R[herald,mbs4096]:-}" "${R[ws,mbs4096]:-}")" \
    "$(ratio "${R[herald,cpu16]:-}" "${R[ws,cpu16]:-}")/$(ratio "${R[herald,cpu4096]:-}" "${R[ws,cpu4096]:-}")" \
    "$(ratio "${R[herald,p99_16]:-}" "${R[ws,p99_16]:-}")/$(ratio "${R[herald,p99_4096]:-}" "${R[ws,p99_4096]:-}")"
  echo "(bytes/idle-ws, CPU us/msg and p99: lower is better; msg/s and MB/s: higher is better."
  echo " msg/s, MB/s and p99 from the best of $ROUNDS rounds; CPU us/msg = server CPU time / messages echoed, lowest round)"
  for s in "${SERVERS[@]}"; do
    echo "$s: RSS ${R[$s,rss_before]} kB fresh, ${R[$s,rss_after]} kB with ${R[$s,connected]} idle WebSockets," \
      "${R[$s,rss_end]} kB at the end; msg/s per round 16B [${R[$s,all16]:-}] 4KiB [${R[$s,all4096]:-}];" \
      "echo errors ${R[$s,err16]:-NA}/${R[$s,err4096]:-NA}"
  done
} | tee "$OUT"
