#!/usr/bin/env bash
# Install what herald needs on Debian 12, skipping what is already there.
#   scripts/setup.sh build   compilers and libraries to build and run herald, and the browser
#                            libraries of its pages (npm, served from public/vendor/) and the
#                            Socket.IO Admin UI (npm, served at /admin/ when enabled)
#   scripts/setup.sh test    also the test tools (cmocka, clang for fuzzing, clang-format, valgrind, promtool, the sqlite3
#                            shell that writes the damaged databases of the tests, dpkg-dev
#                            for cpack -G DEB, node
#                            and the npm packages of the end-to-end tests)
#   scripts/setup.sh bench   also the peers the benchmarks run beside herald: nginx with
#                            Debian's nchan module (bench/run-fanout.sh, bench/compare)
#   scripts/setup.sh --list MODE   print the Debian packages MODE installs, one a line, and
#                            install nothing (scripts/check-deps.sh reads the lists from here)
set -euo pipefail
list=0
if [ "${1:-}" = --list ]; then
    list=1
    shift
fi
mode=${1:-build}
cd "$(dirname "$0")/.."

build_pkgs=(gcc make cmake pkg-config libuv1-dev node-llhttp libssl-dev libjansson-dev libsqlite3-dev uthash-dev libc6-dev liburing-dev libjwt-dev)
# dpkg-dev: cpack -G DEB computes the package's Depends with its dpkg-shlibdeps (the install
# test, scripts/test-install.sh); prometheus: for promtool, which parses and lints GET /metrics
# in tests/e2e/metrics.test.mjs (the Prometheus service the package sets up is not used)
test_pkgs=(libcmocka-dev clang clang-format libclang-rt-14-dev valgrind curl chromium fonts-wqy-microhei sqlite3
           python3-socketio python3-requests python3-websocket dpkg-dev prometheus)
# bench/run-fanout.sh starts its own nginx (a config in a temp dir, loopback, a free port); the
# system nginx service the package sets up is not used
bench_pkgs=(nginx libnginx-mod-nchan)

want=("${build_pkgs[@]}")
[ "$mode" = test ] && want+=("${test_pkgs[@]}")
case "$mode" in
    bench) want+=("${bench_pkgs[@]}") ;;
esac
if [ "$list" = 1 ]; then
    printf '%s\n' "${want[@]}"
    exit 0
fi
command -v node >/dev/null 2>&1 || want+=(nodejs)
command -v npm >/dev/null 2>&1 || want+=(npm)

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    # Packages that come with a service (prometheus, nginx) must not start it: herald's scripts
    # run their own copies on loopback. Where no policy says so already (Docker images have
    # one), a policy refusing every start stands for the install, then goes.
    policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# scripts/setup.sh: no service starts while it installs\nexit 101\n' |
            $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
        trap '$SUDO rm -f "$policy"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$policy" ]; then $SUDO rm -f "$policy"; trap - EXIT; fi
fi

# the browser libraries herald's pages use, from npm (pinned by web/package-lock.json), copied
# into public/vendor/ where herald serves them: the pages fetch nothing from a CDN; and the
# Socket.IO Admin UI's static build, which herald serves from web/node_modules at /admin/
# (--admin-password, --admin-ui-dir)
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
mkdir -p public/vendor
for f in socket.io.min.js socket.io.min.js.map; do
    cmp -s "web/node_modules/socket.io-client/dist/$f" "public/vendor/$f" ||
        cp "web/node_modules/socket.io-client/dist/$f" "public/vendor/$f"
done

if [ "$mode" = test ]; then
    # the end-to-end tests' clients, pinned by package-lock.json
    if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]; then
        (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
echo "setup: $mode dependencies present"
