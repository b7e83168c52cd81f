#!/usr/bin/env bash
# Every test herald has: the check that every system header comes from a package setup.sh
# installs (scripts/check-deps.sh), unit and end-to-end tests on a -Werror build, the same
# again under AddressSanitizer + UBSan, then each libFuzzer target for FUZZ_SECONDS (default 60).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test || exit 1

jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${FUZZ_SECONDS:-60}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Run ctest for a build directory and add its counts to the totals.
run_ctest() {
    local dir=$1
    ctest --test-dir "$dir" --output-on-failure 2>&1 | tee "$log"
    local total fails
    total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
    fails=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
    if [ -z "$total" ]; then
        echo "test: no ctest summary for $dir"
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + total - fails))
    failed=$((failed + fails))
}

build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DHERALD_WERROR=ON -DHERALD_TESTS=ON -DHERALD_E2E=ON "$@" >"$log" 2>&1 || { cat "$log"; return 1; }
    cmake --build "$dir" -j"$jobs" >"$log" 2>&1 || { cat "$log"; return 1; }
}

# first, so that a header found only because its package happened to be on this machine fails
# here rather than on a fresh Debian 12
echo "== every system header comes from a package scripts/setup.sh installs"
if scripts/check-deps.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
# and the check does catch a missing package: setup.sh without uthash-dev must fail on uthash.h
echo "== check-deps.sh names uthash.h and uthash-dev when setup.sh lacks uthash-dev"
sed 's/ uthash-dev\b//g' scripts/setup.sh >"$log.setup"
if grep -q uthash-dev "$log.setup"; then
    echo "test: could not take uthash-dev out of a copy of scripts/setup.sh"
    failed=$((failed + 1))
elif SETUP_SH=$log.setup scripts/check-deps.sh >"$log" 2>&1; then
    cat "$log"
    echo "test: check-deps.sh passed although setup.sh no longer installs uthash-dev"
    failed=$((failed + 1))
elif grep -q 'uthash\.h .*uthash-dev, which scripts/setup.sh does not install' "$log"; then
    grep uthash "$log"
    passed=$((passed + 1))
else
    cat "$log"
    echo "test: check-deps.sh failed without naming uthash.h and uthash-dev"
    failed=$((failed + 1))
fi
rm -f "$log.setup"

echo "== the include graph follows the layers (no upward include, no folder cycle)"
if scripts/check-layers.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "== check-layers.sh refuses an upward include (hub including sio)"
tree=$(mktemp -d)
cp -r src include "$tree"/
sed -i '0,/^#include "/s//#include "sio\/sio.h"\n#include "/' "$tree/src/hub/hub.c"
if scripts/check-layers.sh "$tree" >"$log" 2>&1; then
    cat "$log"
    echo "test: check-layers.sh passed a tree where hub/hub.c includes sio/sio.h"
    failed=$((failed + 1))
elif grep -q 'hub includes sio/sio.h: an upward arrow' "$log" && grep -q 'cycle' "$log"; then
    grep -E 'upward|cycle' "$log" | head -3
    passed=$((passed + 1))
else
    cat "$log"
    echo "test: check-layers.sh failed without naming the upward include and the cycle"
    failed=$((failed + 1))
fi
rm -rf "$tree"

echo "== clang-format: every C file as .clang-format says"
if clang-format --dry-run -Werror src/*/*.[ch] include/*.h tests/unit/*.[ch] fuzz/*.c bench/*.[ch] examples/*.c; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

echo "== build (gcc, -Werror) + unit and end-to-end tests"
if build build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
    run_ctest build
    # the same build installed, the examples built on the installed copy, and the .deb installed,
    # run and purged (scripts/test-install.sh); each of its checks counts
    echo "== install: cmake --install, the examples through pkg-config, cpack -G DEB, dpkg -i"
    timeout 900 scripts/test-install.sh build 2>&1 | tee "$log"
    counts=$(sed -n 's/^install: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1)
    if [ -n "$counts" ]; then
        passed=$((passed + ${counts% *}))
        failed=$((failed + ${counts#* }))
    else
        echo "test: scripts/test-install.sh ended without its summary (timed out?)"
        failed=$((failed + 1))
    fi
else
    failed=$((failed + 1))
fi

echo "== AddressSanitizer + UBSan build + unit and end-to-end tests"
if build build-asan -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=ON; then
    # a small quarantine keeps freed memory from counting as growth in the memory-bound tests
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=8 UBSAN_OPTIONS=print_stacktrace=1 run_ctest build-asan
else
    failed=$((failed + 1))
fi

echo "== libFuzzer targets, ${fuzz_seconds}s each"
if CC=clang build build-fuzz -DCMAKE_BUILD_TYPE=Debug -DHERALD_FUZZ=ON -DHERALD_TESTS=OFF -DHERALD_E2E=OFF; then
    for f in build-fuzz/fuzz_*; do
        name=${f##*/fuzz_}
        corpus=$(mktemp -d)
        dict=fuzz/$name.dict
        args=(-max_total_time="$fuzz_seconds" -print_final_stats=1 -artifact_prefix=build-fuzz/)
        [ -f "$dict" ] && args+=(-dict="$dict")
        if "$f" "${args[@]}" "$corpus" "fuzz/corpus/$name" >"$log" 2>&1; then
            echo "fuzz $name: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs)"
            passed=$((passed + 1))
        else
            tail -40 "$log"
            echo "fuzz $name: FAILED (artifact in build-fuzz/)"
            failed=$((failed + 1))
        fi
        rm -rf "$corpus"
    done
else
    failed=$((failed + 1))
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
