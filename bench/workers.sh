#!/usr/bin/env bash
# bench/workers.sh: herald with --workers 1 against --workers 2 on the same machine, same run.
#
#   bench/workers.sh                            # about 4 minutes on 2 cores
#   ROUNDS=1 SECS=3 bench/workers.sh            # quick look
#
# Fan-out of one channel to N (5000) subscribers, closed loop with W (WINDOWS: 8 32) messages in
# flight, MSG_SIZE (64) bytes, for each transport in TRANSPORTS ("ws sse"): ws publishes over one
# more WebSocket, sse over POST /pub/{ch}. Rounds alternate 1 and 2 workers. Nothing is pinned:
# herald may use both cores, and so does the load generator (fanload, one thread), which
# competes with herald's second worker for them. On a 2-core machine this measures what a
# second worker buys while the generator takes its share of the same cores, not what two
# cores of its own would give: see docs/performance.md. Prints every run to stderr and a table
# (medians) to stdout and bench/build/last-workers.txt. Only processes it started are stopped.
#
# Knobs: N, ROUNDS (3), SECS (10), WARMUP (1), DRAIN (5), WINDOWS, MSG_SIZE, TRANSPORTS, STORE
# (sqlite), HERALD_BIN, SKIP_SETUP=1 (build nothing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
N=${N:-5000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
WARMUP=${WARMUP:-1}
DRAIN=${DRAIN:-5}
WINDOWS=${WINDOWS:-"8 32"}
MSG_SIZE=${MSG_SIZE:-64}
TRANSPORTS=${TRANSPORTS:-"ws sse"}
STORE=${STORE:-sqlite}
OUT=$BENCH/build/last-workers.txt

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

if [[ "${SKIP_SETUP:-0}" != 1 ]]; then
  build_tools
  build_herald
fi
HERALD_BIN=${HERALD_BIN:-$ROOT/build-release/herald}
FANLOAD=$BENCH/build/fanload
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

declare -A R
run() {
  local tr=$1 w=$2 win=$3 round=$4 f=$TMP/run.$1.$2.$3.$4 data
  data=$(mktemp -d "$TMP/data.XXXXXX")
  start_server "herald$w" "$HERALD_BIN" --host 127.0.0.1 --port 0 --quiet --max-connections-per-ip 0 --max-msg-rate 0 --max-lp-per-ip 0 --publish-rate 0 \
    --recovery-window 0 --data "$data" --store "$STORE" --workers "$w" || return 0
  sleep 0.5
  local pub=http
  [[ "$tr" == ws ]] && pub=ws
  timeout -k 5 $((WARMUP + SECS + DRAIN + 200)) "$FANLOAD" --transport "$tr" --pub "$pub" --port "$SERVER_PORT" \
    -n "$N" -s "$MSG_SIZE" -t "$SECS" --warmup "$WARMUP" --drain "$DRAIN" --server-pid "$SERVER_PID" \
    --window "$win" </dev/null >"$f" 2>&1 || true
  stop_pid "$SERVER_PID"
  rm -rf "$data"
  if grep -q '^RESULT' "$f"; then
    local dps cpu lost scpu
    dps=$(field deliveries_per_s "$f") cpu=$(field cpu_us_per_delivery "$f") lost=$(field lost "$f")
    scpu=$(field server_cpu_s "$f")
    log "  $tr workers=$w W=$win round $round: $dps deliveries/s, $cpu us CPU/delivery, server" \
      "$(awk -v c="$scpu" -v s="$SECS" 'BEGIN { printf "%.0f", 100 * c / s }')% of a core, lost $lost"
    R[$tr,$w,$win]="${R[$tr,$w,$win]:-} $dps"
    R[$tr,$w,$win,cpu]="${R[$tr,$w,$win,cpu]:-} $cpu"
    R[$tr,$w,$win,srv]="${R[$tr,$w,$win,srv]:-} $(awk -v c="$scpu" -v s="$SECS" 'BEGIN { printf "%.0f", 100 * c / s }')"
    R[$tr,$w,$win,lost]=$((${R[$tr,$w,$win,lost]:-0} + ${lost:-0}))
  else
    log "  $tr workers=$w W=$win round $round: no result"
    sed 's/^/    /' "$f" >&2
  fi
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

log "$(machine_line)"
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round of $ROUNDS"
  for tr in $TRANSPORTS; do
    for win in $WINDOWS; do
      for w in 1 2; do run "$tr" "$w" "$win" "$round"; done
    done
  done
done

{
  echo "herald --workers 1 vs 2: $(machine_line)"
  echo "$N subscribers, $MSG_SIZE-byte messages, --store $STORE, nothing pinned (the load generator shares the cores); medians of $ROUNDS rounds"
  printf '%-5s %-4s %18s %18s %8s %14s %14s %12s\n' transport W "deliveries/s w=1" "deliveries/s w=2" "2 / 1" "CPU us/del w=1" "CPU us/del w=2" "lost (1 / 2)"
  for tr in $TRANSPORTS; do
    for win in $WINDOWS; do
      d1=$(median <<<"${R[$tr,1,$win]:-}") d2=$(median <<<"${R[$tr,2,$win]:-}")
      c1=$(median <<<"${R[$tr,1,$win,cpu]:-}") c2=$(median <<<"${R[$tr,2,$win,cpu]:-}")
      printf '%-5s %-4s %18s %18s %8s %14s %14s %12s\n' "$tr" "$win" "$d1" "$d2" "$(ratio "$d2" "$d1")" "$c1" "$c2" \
        "${R[$tr,1,$win,lost]:-NA} / ${R[$tr,2,$win,lost]:-NA}"
      echo "      rounds w=1:${R[$tr,1,$win]:-} (server % of a core:${R[$tr,1,$win,srv]:-}); w=2:${R[$tr,2,$win]:-} (server %:${R[$tr,2,$win,srv]:-})"
    done
  done
} | tee "$OUT"
