#!/usr/bin/env bash
# Publish throughput of the channel stores, side by side in one run: herald with --store memory
# and with --store sqlite (WAL, synchronous=FULL, group commit), the same load (bench/pubload.mjs:
# CONC keep-alive clients POSTing to /pub/{ch} for SECS seconds), ROUNDS rounds alternating.
# A publish is answered only once its message is committed, so this is acknowledged-durable
# publishes per second. Prints figures, never passes or fails on them.
#   bench/run-pub.sh            CONC=64 SECS=5 ROUNDS=3 bench/run-pub.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
CONC=${CONC:-64}
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

build_herald

declare -A BEST
for ((r = 1; r <= ROUNDS; r++)); do
  for store in memory sqlite; do
    data=$(mktemp -d "$TMP/data.XXXX")
    start_server "herald-$store-$r" "$HERALD_BIN" --host 127.0.0.1 --port 0 --max-connections-per-ip 0 --max-msg-rate 0 --max-lp-per-ip 0 --publish-rate 0 --workers 1 --quiet --store "$store" --data "$data"
    node "$BENCH/pubload.mjs" "http://127.0.0.1:$SERVER_PORT" bench "$CONC" "$SECS" >"$TMP/pub-$store-$r.txt"
    stop_pid "$SERVER_PID"
    per_s=$(field per_s "$TMP/pub-$store-$r.txt")
    log "round $r $store: $(grep RESULT "$TMP/pub-$store-$r.txt")"
    if [[ -z "${BEST[$store]:-}" ]] || ((per_s > ${BEST[$store]%% *})); then
      BEST[$store]="$per_s $(field p50_ms "$TMP/pub-$store-$r.txt") $(field p99_ms "$TMP/pub-$store-$r.txt")"
    fi
  done
done

read -r m_s m_50 m_99 <<<"${BEST[memory]}"
read -r s_s s_50 s_99 <<<"${BEST[sqlite]}"
printf '\nherald publish throughput, %s clients, %ss, best of %s rounds (%s, %s cores)\n' "$CONC" "$SECS" "$ROUNDS" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)"
printf '%-8s | %12s | %8s | %8s\n' store 'publishes/s' 'p50 ms' 'p99 ms'
printf '%-8s | %12s | %8s | %8s\n' memory "$m_s" "$m_50" "$m_99" sqlite "$s_s" "$s_50" "$s_99"
awk -v a="$s_s" -v b="$m_s" 'BEGIN { printf "sqlite/memory throughput: %.2f\n", a / b }'
