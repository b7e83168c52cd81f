#!/usr/bin/env bash
# Fan-out deliveries per second over herald's channel transports (WebSocket, SSE, long polling,
# short polling; Socket.IO too) at 1,000 and 10,000 subscribers, with herald's SSE next to
# nginx + nchan's EventSource (Debian's libnginx-mod-nchan) in the same run.
#
#   bench/run-fanout.sh                                  # everything, about 8 minutes on 2 cores
#   HERALD_BIN=build/herald bench/run-fanout.sh
#   RATES="1000:50" FAN_SECS=5 ROUNDS=1 SIO=0 bench/run-fanout.sh      # quick look, ~1.5 min
#
# Needs scripts/setup.sh bench (nginx, libnginx-mod-nchan). Starts herald (--store memory by
# default, like nchan's memory store) or nginx (bench/nchan/nginx.conf rendered into a temp
# directory: NGINX_WORKERS worker processes, default 1 as herald has one event loop) fresh for
# every run, on a free loopback port, and reads its RSS. For each "N:R" in RATES, each round,
# one bench/fanload run per row: N subscribers of one transport, then PUBLISHERS keep-alive connections
# POST R messages/s ({"seq":K,"t":T,"pad":...}, MSG_SIZE bytes) for FAN_WARMUP + FAN_SECS
# seconds, FAN_DRAIN seconds at most for late deliveries. Rows: herald ws, sse, then nchan sse
# (same generator, channel name, rates), herald lp, poll (POLL_INTERVAL), and with SIO=1 herald's
# chat app over Socket.IO (wsload sio-fanout, as in run-sio.sh). fanload counts every delivery
# (lost, duplicates), times publish -> receive on one clock, reads the server's CPU (user +
# system, nginx master + workers) over the measured seconds and its RSS at their end; the
# server is stopped (by PID) after each run.
# Prints figures, never passes or fails on them. Only processes this script started are
# stopped, by PID. Output: stderr shows progress and every run; stdout (and
# bench/build/last-run-fanout.txt) the table and RESULT lines.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
RATES=${RATES:-"1000:50 10000:5"} # subscribers:messages per second
TRANSPORTS=${TRANSPORTS:-"ws sse lp poll"}
NCHAN=${NCHAN:-1}
NGINX_WORKERS=${NGINX_WORKERS:-1}
SIO=${SIO:-1}
FAN_SECS=${FAN_SECS:-10}
FAN_WARMUP=${FAN_WARMUP:-1}
FAN_DRAIN=${FAN_DRAIN:-5}
ROUNDS=${ROUNDS:-2}
MSG_SIZE=${MSG_SIZE:-100}
PUBLISHERS=${PUBLISHERS:-16}
POLL_INTERVAL=${POLL_INTERVAL:-1}
STORE=${STORE:-memory}
PAUSE=${PAUSE:-2} # seconds between runs: the server closes the last run's connections
OUT=$BENCH/build/last-run-fanout.txt

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

build_tools
FANLOAD=$BENCH/build/fanload
WSLOAD=$BENCH/build/wsload
build_herald

if [[ "$NCHAN" == 1 ]]; then
  NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
  NCHAN_MODULE=
  for m in /usr/lib/nginx/modules/ngx_nchan_module.so /usr/share/nginx/modules/ngx_nchan_module.so; do
    [[ -f "$m" ]] && { NCHAN_MODULE=$m; break; }
  done
  if [[ ! -x "$NGINX_BIN" || -z "$NCHAN_MODULE" ]]; then
    log "nginx or the nchan module is missing: run scripts/setup.sh bench (or NCHAN=0 for herald alone)"
    exit 2
  fi
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
max_n=0
for spec in $RATES; do ((${spec%%:*} > max_n)) && max_n=${spec%%:*}; done
if ((NOFILE < max_n + PUBLISHERS + 100)); then
  log "warning: ulimit -n is $NOFILE, below $max_n subscribers + publishers; lower RATES"
fi

declare -A R PID PORT
ROWS=()
for t in $TRANSPORTS; do
  ROWS+=("herald-$t")
  if [[ "$t" == sse && "$NCHAN" == 1 ]]; then ROWS+=("nchan-sse"); fi
done
if [[ "$SIO" == 1 ]]; then ROWS+=("herald-sio"); fi

label() {
  case $1 in
  herald-ws) echo "herald ws" ;;
  herald-sse) echo "herald sse" ;;
  nchan-sse) echo "nchan sse" ;;
  herald-lp) echo "herald long-poll" ;;
  herald-poll) echo "herald poll ${POLL_INTERVAL}s" ;;
  herald-sio) echo "herald socket.io" ;;
  *) echo "$1" ;;
  esac
}

# record ROW N FILE: fold one run's RESULT line into R[ROW,N,...]
record() {
  local row=$1 n=$2 f=$3 k="$1,$2"
  local dps off exp lost dups p50 p99 cpu scpu ccpu rss bad
  dps=$(field deliveries_per_s "$f") off=$(field offered_per_s "$f") exp=$(field expected "$f")
  lost=$(field lost "$f") dups=$(field dups "$f")
  p50=$(field p50_us "$f") p99=$(field p99_us "$f") cpu=$(field cpu_us_per_delivery "$f")
  scpu=$(field server_cpu_s "$f") ccpu=$(field client_cpu_s "$f") rss=$(field server_rss_kb "$f")
  local e fl dr g
  e=$(field errors "$f") fl=$(field failed "$f") dr=$(field dropped "$f") g=$(field gaps "$f")
  bad=$((${e:-0} + ${fl:-0} + ${dr:-0} + ${g:-0}))
  R[$k,exp]=$((${R[$k,exp]:-0} + exp))
  R[$k,lost]=$((${R[$k,lost]:-0} + lost))
  R[$k,dups]=$((${R[$k,dups]:-0} + ${dups:-0}))
  R[$k,bad]=$((${R[$k,bad]:-0} + bad))
  R[$k,off]=${off:-${R[$k,off]:-NA}}
  R[$k,runs]="${R[$k,runs]:-}${R[$k,runs]:+ }$dps/s,p99=$(awk -v u="$p99" 'BEGIN { printf "%.0fms", u / 1000 }'),cpu=$cpu"
  keep "$k,dps" "$dps" gt
  keep "$k,cpu" "$cpu" lt
  keep "$k,scpu" "$(awk -v s="$scpu" -v t="$FAN_SECS" 'BEGIN { if (s < 0) print "NA"; else printf "%.0f", 100 * s / t }')" lt
  keep "$k,ccpu" "$(awk -v s="$ccpu" -v t="$FAN_SECS" 'BEGIN { printf "%.0f", 100 * s / t }')" lt
  if [[ -n "$rss" && "$rss" != -1 ]]; then
    R[$k,rss]=$rss R[$k,rss0]=$RSS0
    R[$k,per_sub]=$(((rss - RSS0) * 1024 / n))
  fi
  keep_latency "$k" "$p50" "$p99"
}

# fan_run ROW N RATE ROUND: one fanload run (wsload sio-fanout for herald-sio)
fan_run() {
  local row=$1 n=$2 rate=$3 round=$4 server=${1%%-*} tr=${1#*-}
  local f=$TMP/$row.$n.$round limit=$((FAN_SECS + FAN_WARMUP + FAN_DRAIN + 200))
  "start_$server"
  sleep 0.5
  local pids=${PID[$server]} p
  [[ "$server" == nchan ]] && pids="$pids,$(pgrep -P "${PID[nchan]}" | paste -sd, -)"
  RSS0=0
  for p in ${pids//,/ }; do RSS0=$((RSS0 + $(rss_kb "$p"))); done
  if [[ "$tr" == sio ]]; then
    # wsload reads CPU but not memory: sample RSS halfway through the measured seconds
    timeout -k 5 "$limit" "$WSLOAD" sio-fanout --port "${PORT[herald]}" -n "$n" --rate "$rate" -s "$MSG_SIZE" \
      -t "$FAN_SECS" --warmup "$FAN_WARMUP" --drain "$FAN_DRAIN" --server-pid "${PID[herald]}" \
      --connect-timeout 120 </dev/null >"$f" 2>&1 &
    local wpid=$! i rss=-1
    STARTED+=("$wpid")
    for ((i = 0; i < 1500; i++)); do
      grep -q '^connected ' "$f" && break
      kill -0 "$wpid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$wpid" 2>/dev/null; then
      sleep "$(awk -v w="$FAN_WARMUP" -v s="$FAN_SECS" 'BEGIN { print 1 + w + s / 2 }')"
      rss=$(rss_kb "${PID[herald]}")
    fi
    wait "$wpid" || true
    # same keys as fanload's RESULT line
    sed -i -e "/^RESULT/ s/\$/ server_rss_kb=$rss offered_per_s=$(awk -v n="$n" -v r="$rate" 'BEGIN { printf "%.0f", (n + 1) * r }') dups=0/" "$f"
  else
    timeout -k 5 "$limit" "$FANLOAD" --transport "$tr" --port "${PORT[$server]}" -n "$n" --rate "$rate" \
      -t "$FAN_SECS" -s "$MSG_SIZE" --channel "fan-$tr-$n-r$round" --publishers "$PUBLISHERS" \
      --warmup "$FAN_WARMUP" --drain "$FAN_DRAIN" --poll-interval "$POLL_INTERVAL" --server-pid "$pids" \
      </dev/null >"$f" 2>&1 || true
  fi
  grep -E '^(  |fanout |sio-fanout:|subscribed |connected |failed )' "$f" | sed -E "s/^ {0,2}/  $(label "$row") N=$n: /" >&2 || true
  if ! grep -q '^RESULT' "$f"; then
    log "  $(label "$row") N=$n: no result"
    cat "$f" >&2
    R[$row,$n,runs]="${R[$row,$n,runs]:-}${R[$row,$n,runs]:+ }FAILED"
  else
    record "$row" "$n" "$f"
  fi
  stop_pid "${PID[$server]}"
  if [[ "$server" == nchan && -s "$ND/error.log" ]]; then
    log "  nginx error.log:"
    sed 's/^/    /' "$ND/error.log" >&2
  fi
}

{
  echo "herald fan-out benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  machine_line
  echo "herald: $("$HERALD_BIN" --version 2>&1 | head -1) ($HERALD_BIN --store $STORE --recovery-window 0)"
  if [[ "$NCHAN" == 1 ]]; then
    echo "nchan: nginx $(dpkg-query -W -f='${Version}' nginx 2>/dev/null || "$NGINX_BIN" -v 2>&1)," \
      "libnginx-mod-nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')," \
      "worker_processes $NGINX_WORKERS, memory store (bench/nchan/nginx.conf)"
  fi
  echo "load: fanload / wsload on the same machine (loopback); $PUBLISHERS publisher connections, ${MSG_SIZE}-byte" \
    "messages; ${FAN_SECS}s measured after ${FAN_WARMUP}s warm-up, drain ≤ ${FAN_DRAIN}s; $ROUNDS round(s); short" \
    "poll every ${POLL_INTERVAL}s"
} >"$TMP/header"
cat "$TMP/header" >&2

# ---------- servers: started fresh for each run ----------
herald_args=(--workers 1 --host 127.0.0.1 --port 0 --public "$ROOT/public" --quiet --recovery-window 0 --store "$STORE")
start_herald() {
  local args=("${herald_args[@]}")
  if [[ "$STORE" == sqlite ]]; then
    rm -rf "$TMP/data"
    args+=(--data "$TMP/data")
  fi
  start_server herald "$HERALD_BIN" "${args[@]}" --max-connections-per-ip 0 --max-msg-rate 0 --max-lp-per-ip 0 --publish-rate 0
  PID[herald]=$SERVER_PID PORT[herald]=$SERVER_PORT
}

ND=$TMP/nginx
start_nchan() {
  local i up=0
  rm -rf "$ND"
  mkdir -p "$ND"
  PORT[nchan]=$("$FANLOAD" free-port)
  sed -e "s#@MODULE@#$NCHAN_MODULE#" -e "s#@WORKERS@#$NGINX_WORKERS#" -e "s#@CONNS@#$((NOFILE - 64))#" \
    -e "s#@PREFIX@#$ND#g" -e "s#@PORT@#${PORT[nchan]}#" "$BENCH/nchan/nginx.conf" >"$ND/nginx.conf"
  "$NGINX_BIN" -p "$ND/" -c "$ND/nginx.conf" -e "$ND/error.log" </dev/null >"$TMP/nginx.log" 2>&1 &
  PID[nchan]=$!
  STARTED+=("${PID[nchan]}")
  for ((i = 0; i < 100; i++)); do
    kill -0 "${PID[nchan]}" 2>/dev/null || break
    if (exec 3<>"/dev/tcp/127.0.0.1/${PORT[nchan]}") 2>/dev/null; then up=1; break; fi
    sleep 0.1
  done
  if ((!up)); then
    log "nginx did not start:"
    cat "$TMP/nginx.log" "$ND/error.log" >&2 2>/dev/null || true
    exit 1
  fi
}

# ---------- runs ----------
t_begin=$(date +%s)
for ((round = 1; round <= ROUNDS; round++)); do
  for spec in $RATES; do
    n=${spec%%:*} rate=${spec##*:}
    log "== round $round: $n subscribers, $rate msg/s"
    for row in "${ROWS[@]}"; do
      fan_run "$row" "$n" "$rate" "$round"
      sleep "$PAUSE"
    done
  done
done
t_end=$(date +%s)

# ---------- table ----------
ms() { awk -v u="$1" 'BEGIN { if (u == "" || u == "NA") print "NA"; else if (u >= 100000) printf "%.0f", u / 1000; else printf "%.1f", u / 1000 }'; }
mb() { awk -v k="$1" 'BEGIN { if (k == "" || k == "NA" || k < 0) print "NA"; else printf "%.1f", k / 1024 }'; }

{
  echo ""
  cat "$TMP/header"
  echo "runs took $((t_end - t_begin)) s"
  echo ""
  fmt='%6s | %5s | %-17s | %12s | %8s | %19s | %4s | %8s | %8s | %9s | %7s | %12s | %6s | %7s\n'
  printf "$fmt" N "msg/s" "server / transport" "deliveries/s" "offered" "lost / expected" dups "p50 ms" "p99 ms" "CPU us/dl" "srv CPU" "RSS MB" "B/sub" "gen CPU"
  printf '%s\n' "-------+-------+-------------------+--------------+----------+---------------------+------+----------+----------+-----------+---------+--------------+--------+--------"
  for spec in $RATES; do
    n=${spec%%:*} rate=${spec##*:}
    for row in "${ROWS[@]}"; do
      k=$row,$n
      printf "$fmt" "$n" "$rate" "$(label "$row")" "${R[$k,dps]:-NA}" "${R[$k,off]:-NA}" "${R[$k,lost]:-NA} / ${R[$k,exp]:-NA}" \
        "${R[$k,dups]:-NA}" "$(ms "${R[$k,p50]:-}")" "$(ms "${R[$k,p99]:-}")" "${R[$k,cpu]:-NA}" \
        "${R[$k,scpu]:-NA}%" "$(mb "${R[$k,rss0]:-}") > $(mb "${R[$k,rss]:-}")" "${R[$k,per_sub]:-NA}" "${R[$k,ccpu]:-NA}%"
      if [[ "$row" == nchan-sse ]]; then
        h=herald-sse,$n
        printf "$fmt" "$n" "$rate" "herald/nchan sse" "$(ratio "${R[$h,dps]:-}" "${R[$k,dps]:-}")" "" "" "" \
          "$(ratio "${R[$h,p50]:-}" "${R[$k,p50]:-}")" "$(ratio "${R[$h,p99]:-}" "${R[$k,p99]:-}")" \
          "$(ratio "${R[$h,cpu]:-}" "${R[$k,cpu]:-}")" "$(ratio "${R[$h,scpu]:-}" "${R[$k,scpu]:-}")" \
          "$(ratio "${R[$h,rss]:-}" "${R[$k,rss]:-}")" "$(ratio "${R[$h,per_sub]:-}" "${R[$k,per_sub]:-}")" ""
      fi
    done
  done
  echo "(deliveries/s: best round, arrivals in the measured seconds; offered: msg/s x subscribers (socket.io: the"
  echo " sender gets its own copy, N + 1); lost: published in the measured seconds x subscribers, not received within"
  echo " ${FAN_DRAIN}s after publishing stopped, summed over rounds; p50/p99: from the time a message was due to be published"
  echo " to its arrival, round with the lowest p99; CPU us/dl: server user+system CPU over the measured seconds /"
  echo " deliveries, lowest round; srv CPU / gen CPU: the server's and the load generator's CPU in % of one core over"
  echo " the measured seconds, lowest round; RSS: VmRSS of the fresh server > at the end of the measured seconds"
  echo " with the N subscribers connected (nginx: master + workers summed; socket.io: halfway through), last round;"
  echo " B/sub: the growth / N. Ratios herald/nchan: < 1 is better for herald except deliveries/s)"
  for row in "${ROWS[@]}"; do
    echo "$(label "$row"):$(rounds "$row" "$RATES" errors/failed/dropped/gaps)"
  done
  echo ""
  for spec in $RATES; do
    n=${spec%%:*} rate=${spec##*:}
    for row in "${ROWS[@]}"; do
      k=$row,$n
      echo "RESULT bench=fanout server=${row%%-*} transport=${row#*-} subs=$n rate=$rate deliveries_per_s=${R[$k,dps]:-NA}" \
        "offered_per_s=${R[$k,off]:-NA} lost=${R[$k,lost]:-NA} expected=${R[$k,exp]:-NA} dups=${R[$k,dups]:-NA}" \
        "p50_ms=$(ms "${R[$k,p50]:-}") p99_ms=$(ms "${R[$k,p99]:-}") cpu_us_per_delivery=${R[$k,cpu]:-NA}" \
        "server_cpu_pct=${R[$k,scpu]:-NA} rss_fresh_kb=${R[$k,rss0]:-NA} rss_kb=${R[$k,rss]:-NA}" \
        "rss_bytes_per_sub=${R[$k,per_sub]:-NA} gen_cpu_pct=${R[$k,ccpu]:-NA} problems=${R[$k,bad]:-NA}"
    done
    if [[ "$NCHAN" == 1 && " $TRANSPORTS " == *" sse "* ]]; then
      h=herald-sse,$n c=nchan-sse,$n
      echo "RESULT bench=fanout compare=herald/nchan transport=sse subs=$n rate=$rate" \
        "deliveries_per_s=$(ratio "${R[$h,dps]:-}" "${R[$c,dps]:-}") p50=$(ratio "${R[$h,p50]:-}" "${R[$c,p50]:-}")" \
        "p99=$(ratio "${R[$h,p99]:-}" "${R[$c,p99]:-}") cpu_us_per_delivery=$(ratio "${R[$h,cpu]:-}" "${R[$c,cpu]:-}")" \
        "rss=$(ratio "${R[$h,rss]:-}" "${R[$c,rss]:-}") rss_bytes_per_sub=$(ratio "${R[$h,per_sub]:-}" "${R[$c,per_sub]:-}")"
    fi
  done
} | tee "$OUT"
