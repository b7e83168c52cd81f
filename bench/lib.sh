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
