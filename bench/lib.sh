#!/usr/bin/env bash
# lib.sh - what the benchmark scripts share: starting servers and stopping only the processes
# they started (by PID), reading RSS and wsload's RESULT lines. Source it after set -euo pipefail.

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
  "$@" >"$TMP/$name.log" 2>&1 </dev/null &
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
