#!/usr/bin/env bash
# The install and the Debian package, checked from a build directory (default build):
#   1. cmake --install into a temporary prefix; examples/chat.c and examples/features.c built
#      against that copy through pkg-config alone; the chat example, run from /, greets a
#      Socket.IO client; the installed herald, run from / without flags, serves its installed
#      pages and keeps its store under the prefix.
#   2. cpack -G DEB; the .deb's files and Depends; dpkg -i; /usr/bin/herald started from / as
#      its systemd unit starts it (the unit's ExecStart, as the herald user, STATE_DIRECTORY
#      set; on a free loopback port), then the chat page and a publish/poll round trip; stopped
#      by PID (exit 0); dpkg --purge leaves no file, user or data behind.
# Part 2 needs root (CI runs as root on Debian 12) and a machine where herald is not
# installed: an existing herald package or /usr/bin/herald is never replaced or removed (the
# part is skipped, saying why).
# Prints "ok: ..." or "FAIL: ..." per check and last "install: N passed, M failed"; exits 1 if
# any failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${1:-build}
[ -x "$build/herald" ] || { echo "install: no $build/herald: build first"; exit 1; }
build=$(cd "$build" && pwd)

passed=0
failed=0
tmp=$(mktemp -d)
pids=()
deb_installed=0
user_existed=1
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    if [ "$deb_installed" = 1 ]; then
        dpkg --purge herald >/dev/null 2>&1
        if [ "$user_existed" = 0 ]; then
            userdel herald 2>/dev/null
            groupdel herald 2>/dev/null
        fi
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' TERM INT # so that cleanup runs (kills what it started, purges the package)

ok() {
    echo "ok: $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
check() { # check DESCRIPTION COMMAND...: ok if the command succeeds
    local what=$1
    shift
    if "$@" >"$tmp/out" 2>&1; then ok "$what"; else
        sed 's/^/    /' "$tmp/out" | tail -20
        fail "$what"
    fi
}

# start LOG CMD...: runs CMD from / in the background, waits (15 s at most) for herald's
# "listening on http://HOST:PORT" line; sets $pid and $port, or returns 1
start() {
    local log=$1
    shift
    (cd / && exec "$@") >"$log" 2>&1 &
    pid=$!
    pids+=("$pid")
    port=
    for _ in $(seq 150); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/^/    /' "$log" | tail -20
    return 1
}

# stop: SIGTERM, then the exit status must be 0 within 10 s
stop() {
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "    still running 10 s after SIGTERM"
        return 1
    fi
    wait "$pid"
}

get() { curl -sS --max-time 10 "$@"; }

# A Socket.IO v5 client over Engine.IO polling: the handshake, CONNECT to "/", then the next
# poll must hold the CONNECT answer and the chat example's greeting (examples/chat.c).
sio_greeting() {
    local base="http://127.0.0.1:$1/socket.io/?EIO=4&transport=polling" open sid answer
    open=$(get "$base") || return 1
    sid=$(printf '%s' "$open" | sed -n 's/^0{"sid":"\([^"]*\)".*/\1/p')
    [ -n "$sid" ] || { echo "    handshake: $open"; return 1; }
    [ "$(get -d 40 -H 'Content-Type: text/plain;charset=UTF-8' "$base&sid=$sid")" = ok ] || return 1
    answer=$(get "$base&sid=$sid") || return 1
    # CONNECT's answer, then the greeting (its last argument the recovery offset)
    case "$answer" in
    '40{"sid":'*'42["message",{"type":"init","message":"欢迎连接"}'*) return 0 ;;
    esac
    echo "    after CONNECT: $answer"
    return 1
}

# the page the chat app serves at / is the installed index.html, byte for byte
page_is() { # page_is PORT FILE
    get -o "$tmp/page" "http://127.0.0.1:$1/" && cmp "$tmp/page" "$2" &&
        get -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/vendor/socket.io.min.js" | grep -qx 200
}

admin_page_is() { # admin_page_is PORT FILE: the Admin UI's page at /admin/
    get -o "$tmp/admin" "http://127.0.0.1:$1/admin/" && cmp "$tmp/admin" "$2"
}

# POST /pub then GET /poll: the message comes back with its id
round_trip() { # round_trip PORT
    local pub poll
    pub=$(get -H 'Content-Type: application/json' -d '{"text":"installed"}' \
        "http://127.0.0.1:$1/pub/install-test") || return 1
    printf '%s' "$pub" | grep -q '"id":1' || { echo "    publish: $pub"; return 1; }
    poll=$(get "http://127.0.0.1:$1/poll/install-test?since=0") || return 1
    printf '%s' "$poll" | grep -q '"messages":\[{"id":1,.*"data":{"text":"installed"}' ||
        { echo "    poll: $poll"; return 1; }
}

echo "== cmake --install into a temporary prefix"
prefix=$tmp/prefix
if cmake --install "$build" --prefix "$prefix" >"$tmp/out" 2>&1; then
    ok "cmake --install --prefix"
else
    cat "$tmp/out"
    fail "cmake --install --prefix"
fi
missing=
for f in bin/herald lib/libherald.a include/herald.h lib/pkgconfig/herald.pc \
    share/herald/public/index.html share/herald/public/vendor/socket.io.min.js \
    share/man/man1/herald.1 lib/systemd/system/herald.service; do
    [ -f "$prefix/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then ok "the installed files are in place"; else fail "not installed:$missing"; fi
check "the unit starts the installed binary" grep -qx "ExecStart=$prefix/bin/herald --port 3000" \
    "$prefix/lib/systemd/system/herald.service"
# README shows the unit: the same settings as packaging/herald.service.in (comments aside)
unit_settings() { grep -v -e '^#' -e '^$' | sed 's|@HERALD_BINDIR@|/usr/bin|'; }
check "README's unit is packaging/herald.service.in" cmp \
    <(sed -n '/^```ini$/,/^```$/p' README.md | sed '1d;$d' | unit_settings) \
    <(unit_settings <packaging/herald.service.in)
check "the man page is of this version ($("$prefix/bin/herald" --version))" \
    grep -q "^\.TH HERALD 1 .* \"$("$prefix/bin/herald" --version)\"" "$prefix/share/man/man1/herald.1"
if command -v groff >/dev/null; then
    check "the man page renders without warnings" \
        sh -c "groff -man -Tutf8 -ww '$prefix/share/man/man1/herald.1' 2>&1 >/dev/null | (! grep .)"
fi

echo "== the examples build against the installed library through pkg-config"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
for e in chat features; do
    # shellcheck disable=SC2046 # pkg-config's words are separate arguments
    check "examples/$e.c builds with cc \$(pkg-config --cflags --libs herald)" \
        cc -std=c17 -Wall -Wextra -Wno-unused-parameter -Werror -o "$tmp/$e" "examples/$e.c" \
        $(pkg-config --cflags --libs herald)
done
if [ -x "$tmp/chat" ] && start "$tmp/chat.log" "$tmp/chat" --host 127.0.0.1 --port 0 --store memory; then
    check "the chat example greets a Socket.IO client" sio_greeting "$port"
    check "the chat example stops cleanly on SIGTERM" stop
else
    fail "the chat example runs"
fi

echo "== the installed herald runs from / without flags for its pages or data"
if start "$tmp/herald.log" "$prefix/bin/herald" --host 127.0.0.1 --port 0; then
    check "it serves the installed pages" page_is "$port" "$prefix/share/herald/public/index.html"
    check "publish and poll" round_trip "$port"
    check "it stops cleanly on SIGTERM" stop
    check "its store is PREFIX/var/lib/herald/herald.db" test -f "$prefix/var/lib/herald/herald.db"
else
    fail "the installed herald runs"
fi
if start "$tmp/herald-admin.log" env HERALD_ADMIN_PASSWORD=installed-admin-pw \
    "$prefix/bin/herald" --host 127.0.0.1 --port 0; then
    check "with an admin password it serves the installed Admin UI at /admin/" \
        admin_page_is "$port" "$prefix/share/herald/admin-ui/index.html"
    check "and stops cleanly" stop
else
    fail "the installed herald runs with the Admin UI"
fi

# a user who may not write PREFIX/var/lib/herald (root made it above, 0700) keeps the store in
# their own ~/.local/state/herald
if [ "$(id -u)" = 0 ] && getent passwd nobody >/dev/null && getent group nogroup >/dev/null; then
    chmod 755 "$tmp"
    mkdir -p "$tmp/home"
    chown nobody:nogroup "$tmp/home"
    if start "$tmp/user.log" env -i PATH=/usr/bin:/bin HOME="$tmp/home" \
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$prefix/bin/herald" --host 127.0.0.1 --port 0; then
        check "run by another user: publish and poll" round_trip "$port"
        check "run by another user: it stops cleanly" stop
        check "run by another user: its store is ~/.local/state/herald/herald.db" \
            test -f "$tmp/home/.local/state/herald/herald.db"
    else
        fail "the installed herald runs as another user"
    fi
fi

echo "== cpack -G DEB, dpkg -i, the service as its unit starts it, dpkg --purge"
skip=
if [ "$(id -u)" != 0 ]; then
    skip="not root"
elif dpkg-query -W -f='${Status}' herald 2>/dev/null | grep -q 'ok installed'; then
    skip="a herald package is installed on this machine already (left alone)"
elif [ -e /usr/bin/herald ] || [ -e /usr/share/herald ]; then
    skip="/usr/bin/herald or /usr/share/herald exists already (left alone)"
fi
if (cd "$build" && cpack -G DEB -B "$tmp/pkg") >"$tmp/out" 2>&1; then
    ok "cpack -G DEB"
else
    cat "$tmp/out"
    fail "cpack -G DEB"
fi
debs=("$tmp"/pkg/herald_*_"$(dpkg --print-architecture)".deb)
deb=${debs[0]}
if [ -f "$deb" ]; then
    ok "the package is ${deb##*/}"
    dpkg-deb -f "$deb" Depends >"$tmp/depends"
    check "Depends names the libraries (dpkg-shlibdeps) and adduser: $(cat "$tmp/depends")" \
        sh -c "grep -q libuv1 '$tmp/depends' && grep -q libsqlite3 '$tmp/depends' && grep -q adduser '$tmp/depends'"
    dpkg-deb -c "$deb" | awk '{print $NF}' >"$tmp/contents"
    missing=
    for f in ./usr/bin/herald ./usr/share/herald/public/index.html ./usr/lib/systemd/system/herald.service \
        ./usr/share/man/man1/herald.1 ./usr/include/herald.h ./usr/lib/libherald.a ./usr/lib/pkgconfig/herald.pc; do
        grep -qx "$f" "$tmp/contents" || missing="$missing $f"
    done
    if [ -z "$missing" ]; then ok "the package holds the installed files"; else fail "not in the package:$missing"; fi
else
    fail "no herald_*.deb in $tmp/pkg"
    skip=${skip:-"no package"}
fi

if [ -n "$skip" ]; then
    echo "skip: dpkg -i and the installed service: $skip"
else
    getent passwd herald >/dev/null || user_existed=0
    deb_installed=1
    if dpkg -i "$deb" >"$tmp/out" 2>&1; then ok "dpkg -i ${deb##*/}"; else
        cat "$tmp/out"
        fail "dpkg -i"
    fi
    check "the postinst made the herald user" getent passwd herald
    check "and /var/lib/herald, owned by it" sh -c '[ "$(stat -c %U /var/lib/herald)" = herald ]'
    if command -v systemd-analyze >/dev/null; then
        check "systemd-analyze verify herald.service" systemd-analyze verify /usr/lib/systemd/system/herald.service
    fi
    # as systemd would: the unit's command line, its user, its StateDirectory=; on a free
    # loopback port (later flags win over the unit's)
    exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/herald.service)
    read -r -a cmd <<<"$exec_start"
    if start "$tmp/service.log" env -i PATH=/usr/bin:/bin STATE_DIRECTORY=/var/lib/herald \
        setpriv --reuid=herald --regid=herald --init-groups -- "${cmd[@]}" --host 127.0.0.1 --port 0; then
        check "the installed service serves /usr/share/herald/public" page_is "$port" /usr/share/herald/public/index.html
        check "publish and poll on the installed service" round_trip "$port"
        check "the installed service stops cleanly on SIGTERM" stop
        check "its store is /var/lib/herald/herald.db, the herald user's" \
            sh -c '[ "$(stat -c %U /var/lib/herald/herald.db)" = herald ]'
    else
        fail "the installed service runs"
    fi
    if dpkg --purge herald >"$tmp/out" 2>&1; then ok "dpkg --purge herald"; else
        cat "$tmp/out"
        fail "dpkg --purge herald"
    fi
    deb_installed=0
    check "the purge leaves no /usr/bin/herald, /usr/share/herald or /var/lib/herald" \
        sh -c '! [ -e /usr/bin/herald ] && ! [ -e /usr/share/herald ] && ! [ -e /var/lib/herald ]'
    if [ "$user_existed" = 0 ]; then # the package keeps its user on purge, as Debian's do
        userdel herald 2>/dev/null
        groupdel herald 2>/dev/null
    fi
fi

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
