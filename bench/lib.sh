#!/usr/bin/env bash
# lib.sh - what the benchmark scripts share: building the tools and herald, starting servers and
# stopping only the processes they started (by PID), reading RSS and the load generators' RESULT
# lines, folding rounds into figures. Source it after set -euo pipefail, with ROOT (the checkout)
# and BENCH (bench/) set.

log() { printf '%s\n' "$*" >&2; }

# The scripts' own HERALD_* knobs (HERALD_BIN, HERALD_MEMORY, HERALD_WORKERS, ...) are not
# herald's options (which it also reads from HERALD_* variables): none reaches the servers'
# environment; every server gets its options as flags.
while read -r v; do
  [[ "$v" == HERALD_* ]] && export -n "$v"
done < <(compgen -e)

# ---------- building: always, so that a stale binary never measures old code ----------

# build_tools: wsload and fanload (Release) into bench/build.
build_tools() {
  cmake -S "$BENCH" -B "$BENCH/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BENCH/build" >/dev/null
}

# build_herald: unless HERALD_BIN is given, sets it to build-release/herald, built in Release
# without tests; exits if HERALD_BIN is not an executable.
build_herald() {
  if [[ -z "${HERALD_BIN:-}" ]]; then
    HERALD_BIN=$ROOT/build-release/herald
    log "building herald (Release) in build-release/ ..."
    cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release -DHERALD_TESTS=OFF -DHERALD_E2E=OFF >/dev/null
    cmake --build "$ROOT/build-release" -j"$(nproc)" >/dev/null
  fi
  [[ -x "$HERALD_BIN" ]] || { log "herald binary not found: $HERALD_BIN"; exit 2; }
}

# machine_line: CPUs, RAM, kernel and load average, for a table's header.
machine_line() {
  echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
    "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, kernel $(uname -r)," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
}

# ---------- process bookkeeping: only what we started, by PID ----------
STARTED=()
TMP=$(mktemp -d)
cleanup() {
  for pid in "${STARTED[@]:-}"; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED[@]:-}"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME CMD...: sets SERVER_PID and SERVER_PORT once "listening on http://H:P" is printed.
start_server() {
  local name=$1
  shift
  : >"$TMP/$name.log" # exists before the server's shell opens it: the polling sed reads it at once
  "$@" >>"$TMP/$name.log" 2>&1 </dev/null &
  SERVER_PID=$!
  STARTED+=("$SERVER_PID")
  local i
  for ((i = 0; i < 150; i++)); do
    SERVER_PORT=$(sed -n 's#.*listening on http://[^ ]*:\([0-9][0-9]*\).*#\1#p' "$TMP/$name.log" | head -1)
    [[ -n "$SERVER_PORT" ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "$name did not start:"
  cat "$TMP/$name.log" >&2
  return 1
}

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# field KEY FILE: value of KEY=... on the RESULT line
field() { sed -n "s/^RESULT .*\b$1=\([^ ]*\).*/\1/p" "$2" | tail -1; }

# CPU time (user + system) a process has used so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a / b }'; }

# ---------- rounds: R[KEY] figures kept over the rounds of a run ----------

# keep KEY VALUE lt|gt: R[KEY] = VALUE if R[KEY] is unset or VALUE is lower (lt) / higher (gt);
# an empty, NA or negative (unreadable) VALUE is passed over.
keep() {
  local cur=${R[$1]:-}
  [[ -z "$2" || "$2" == NA || "$2" == -* ]] && return 0
  if [[ -z "$cur" ]] || awk -v a="$2" -v b="$cur" -v op="$3" 'BEGIN { exit !(op == "lt" ? a < b : a > b) }'; then
    R[$1]=$2
  fi
}

# keep_latency KEY P50 P99: the round with the lowest p99 (a noisy neighbour only ever adds to
# it) into R[KEY,p50] and R[KEY,p99].
keep_latency() {
  if [[ -z "${R[$1,p99]:-}" ]] || awk -v a="$3" -v b="${R[$1,p99]}" 'BEGIN { exit !(a < b) }'; then
    R[$1,p99]=$3 R[$1,p50]=$2
  fi
}

# rounds ROW SPECS WHAT: " N=n [R[ROW,n,runs]] WHAT R[ROW,n,bad];" for each n of the N:R SPECS:
# every round's figures and the count of problems, for the lines under a table.
rounds() {
  local spec n out=
  for spec in $2; do
    n=${spec%%:*}
    out+=" N=$n [${R[$1,$n,runs]:-}] $3 ${R[$1,$n,bad]:-NA};"
  done
  printf '%s' "$out"
}

# measure_idle NAME FILE STEPS CMD...: the RSS of server NAME (PID[NAME]) before, and SETTLE s
# after, CMD (a wsload idle mode, output to FILE) reports "connected N" (waiting STEPS x 0.1 s at
# most); sets R[NAME,rss_before], R[NAME,rss_after], R[NAME,connected], R[NAME,idle] (bytes each).
measure_idle() {
  local name=$1 f=$2 steps=$3
  shift 3
  local pid=${PID[$name]} before after connected wpid i
  before=$(rss_kb "$pid")
  "$@" </dev/null >"$f" 2>&1 &
  wpid=$!
  STARTED+=("$wpid")
  for ((i = 0; i < steps; i++)); do
    grep -q '^connected ' "$f" && break
    kill -0 "$wpid" 2>/dev/null || break
    sleep 0.1
  done
  sleep "$SETTLE"
  after=$(rss_kb "$pid")
  stop_pid "$wpid"
  sed "s/^/  $name idle: /" "$f" >&2
  connected=$(field connected "$f")
  connected=${connected:-0}
  R[$name,rss_before]=$before
  R[$name,rss_after]=$after
  R[$name,connected]=$connected
  if ((connected > 0)); then
    R[$name,idle]=$(((after - before) * 1024 / connected))
  else
    R[$name,idle]=NA
  fi
}
