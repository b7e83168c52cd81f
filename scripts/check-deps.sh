#!/usr/bin/env bash
# check-deps.sh - every system header herald's C code includes must come from a Debian package
# that scripts/setup.sh installs, so that a fresh Debian 12 can build what CI builds.
#
# A header found only because a package happened to be on the machine (uthash.h from
# uthash-dev, once) builds here and fails there. For each translation unit of the three builds
# (herald with its unit tests and examples; the fuzz targets with clang; bench/), the compiler
# itself lists the headers it opens (-M on the command of compile_commands.json), so a header
# is checked where it is really found, libc's and the compiler's own included. Every
# `#include <...>` of src/, include/, tests/unit/, fuzz/, examples/ and bench/ that no unit
# opened (a header no .c includes) is resolved on its own. `dpkg -S` names each file's package,
# which must be one that setup.sh lists for that build or one they depend on (apt-cache
# depends --recurse): gcc's own headers come with gcc (libgcc-12-dev), clang's with clang,
# and libc6-dev and linux-libc-dev because a listed package depends on libc-dev (gcc only
# recommends it, and setup.sh installs without recommends). The package lists are read from
# setup.sh (--list); nothing is repeated here.
#
# Exit 0 when every header is accounted for; else one line per header that is not, naming the
# header, who needs it, its package and the list of setup.sh it belongs in, and exit 1.
#
# SETUP_SH names another copy of setup.sh to read the lists from (scripts/test.sh checks this
# script itself with a copy that lacks a package).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
setup=${SETUP_SH:-scripts/setup.sh}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

die() {
    echo "check-deps: $*" >&2
    exit 1
}

for tool in cmake dpkg apt-cache node gcc clang; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (run scripts/setup.sh test)"
done

# The packages each kind of build may take headers from: those setup.sh installs for it and
# everything they depend on (alternatives included: apt takes one of them).
closure() {
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null | grep -v '^[ <]' | sed 's/:.*//' | sort -u
}
for mode in build test bench; do
    mapfile -t pkgs < <(bash "$setup" --list "$mode") || die "$setup --list $mode failed"
    [ ${#pkgs[@]} -gt 0 ] || die "$setup --list $mode printed no package"
    printf '%s\n' "${pkgs[@]}" >"$tmp/listed.$mode"
    closure "${pkgs[@]}" >"$tmp/allowed.$mode"
    [ -s "$tmp/allowed.$mode" ] || die "apt-cache depends found none of: ${pkgs[*]}"
done

# Compilation databases of the three builds, configured in scratch directories.
configure() {
    local dir=$1
    shift
    if ! cmake "$@" -B "$dir" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$dir.log" 2>&1; then
        cat "$dir.log" >&2
        die "cmake $* failed"
    fi
}
configure "$tmp/main" -S . -DHERALD_TESTS=ON -DHERALD_E2E=OFF
CC=clang configure "$tmp/fuzz" -S . -DHERALD_FUZZ=ON -DHERALD_TESTS=OFF -DHERALD_E2E=OFF
configure "$tmp/bench" -S bench

# One line per translation unit: the build kind (whose package list applies), the directory,
# the source, and the compile command without its -o (the unit tests and fuzz drivers are
# test code; everything in the fuzz build is compiled by clang, a test package).
for db in main fuzz bench; do
    node -e '
        const [file, db, root] = process.argv.slice(1);
        for (const e of JSON.parse(require("fs").readFileSync(file, "utf8"))) {
            const f = e.file.startsWith(root + "/") ? e.file.slice(root.length + 1) : e.file;
            const kind = db === "main" ? (f.startsWith("tests/") ? "test" : "build") : db === "fuzz" ? "test" : "bench";
            console.log([kind, e.directory, f, e.command.replace(/ -o \S+/, "")].join("\t"));
        }' "$tmp/$db/compile_commands.json" "$db" "$root" || die "cannot read $tmp/$db/compile_commands.json"
done >"$tmp/units"
[ "$(wc -l <"$tmp/units")" -gt 3 ] || die "no translation units found"

# kind <TAB> unit <TAB> header path, for every file outside the tree a unit opens
n=0
while IFS=$'\t' read -r kind dir file cmd; do
    n=$((n + 1))
    if ! (cd "$dir" && sh -c "$cmd -M -MF '$tmp/dep.$n'") 2>"$tmp/err"; then
        cat "$tmp/err" >&2
        die "the compiler could not read $file"
    fi
    # the make rule, one path a line (\134 is the backslash that continues its lines)
    tr -s ' \134' '\n' <"$tmp/dep.$n" | grep '^/' | grep -v -e "^$root/" -e "^$tmp/" |
        sed "s|^|$kind\t$file\t|"
done <"$tmp/units" | sort -u >"$tmp/opened"

# `#include <...>` lines that no unit opened: resolve each alone, with the main build's flags.
includes=$(grep -rhoE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<[^>]+>' \
    src include tests/unit fuzz examples bench --include='*.c' --include='*.h' |
    sed -E 's/.*<([^>]+)>.*/\1/' | sort -u)
llhttp_include=$(sed -n 's/^LLHTTP_INCLUDE_DIR:[A-Z]*=//p' "$tmp/main/CMakeCache.txt")
opened_ends_with() { awk -F'\t' -v s="/$1" 'substr($3, length($3) - length(s) + 1) == s { f = 1 } END { exit !f }' "$tmp/opened"; }
unfound=0
for h in $includes; do
    opened_ends_with "$h" && continue
    if printf '#include <%s>\n' "$h" |
        gcc -D_GNU_SOURCE -isystem "$llhttp_include" -Iinclude -Isrc -M -MF "$tmp/one" -x c - 2>/dev/null; then
        tr -s ' \134' '\n' <"$tmp/one" | grep '^/' | awk -v s="/$h" 'substr($0, length($0) - length(s) + 1) == s' |
            head -1 | sed "s|^|build\t(#include <$h>)\t|" >>"$tmp/opened"
    else
        echo "check-deps: <$h> is included, but the compiler finds it nowhere"
        unfound=$((unfound + 1))
    fi
done

# Which packages each file belongs to (path <TAB> package, one line per package), from one
# dpkg-query call. dpkg knows a file under the name its package ships: a path the compiler
# reached through a symlink (/lib -> usr/lib) is tried again resolved and with /usr toggled.
owners() {
    dpkg-query -S "$@" 2>/dev/null | grep -v '^diversion' |
        awk '{ i = index($0, ": "); pk = substr($0, 1, i - 1); p = substr($0, i + 2);
               gsub(/ /, "", pk); n = split(pk, a, ","); for (k = 1; k <= n; k++) { sub(/:.*/, "", a[k]); print p "\t" a[k] } }'
}
cut -f3 "$tmp/opened" | sort -u >"$tmp/paths"
mapfile -t paths <"$tmp/paths"
owners "${paths[@]}" >"$tmp/owners"
while read -r p; do
    awk -F'\t' -v p="$p" '$1 == p { f = 1 } END { exit !f }' "$tmp/owners" && continue
    for alt in "$(realpath -m "$p")" "${p#/usr}" "/usr$p"; do
        [ "$alt" = "$p" ] && continue
        if owners "$alt" | awk -F'\t' -v a="$alt" '$1 == a' | cut -f2 | sed "s|^|$p\t|" | grep . >>"$tmp/owners"; then
            break
        fi
    done
done <"$tmp/paths"

# For each header, the strictest build that needs it (build before test and bench), and the
# packages that build may take it from.
awk -F'\t' '{ r = $1 == "build" ? 0 : $1 == "test" ? 1 : 2; print r "\t" $0 }' "$tmp/opened" |
    sort -t$'\t' -k4,4 -k1,1n | awk -F'\t' '$4 != last { last = $4; print $2 "\t" $3 "\t" $4 }' >"$tmp/needed"

# ", #include <uthash.h> in src/hub/hub.h, ...": the lines of the tree that name a header
included_by() {
    local h where
    for h in $includes; do
        case $1 in */"$h") ;; *) continue ;; esac
        where=$(grep -rlE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<$h>" src include tests/unit fuzz examples bench \
            --include='*.c' --include='*.h' | sort | head -3 | paste -sd, - | sed 's/,/, /g')
        [ -n "$where" ] && printf ', #include <%s> in %s' "$h" "$where"
    done
}
bad=0
list_name() { case $1 in build) echo build_pkgs ;; test) echo test_pkgs ;; bench) echo bench_pkgs ;; esac; }
while IFS=$'\t' read -r kind unit path; do
    mapfile -t pk < <(awk -F'\t' -v p="$path" '$1 == p { print $2 }' "$tmp/owners")
    if [ ${#pk[@]} -eq 0 ]; then
        echo "check-deps: $path (needed by $unit) belongs to no Debian package: install it from one and list that in scripts/setup.sh"
        bad=$((bad + 1))
        continue
    fi
    ok=0
    for p in "${pk[@]}"; do grep -qxF "$p" "$tmp/allowed.$kind" && ok=1; done
    [ $ok = 1 ] && continue
    echo "check-deps: $path (needed by $unit$(included_by "$path")) is in Debian package ${pk[*]}, which scripts/setup.sh does not install: add it to $(list_name "$kind")"
    bad=$((bad + 1))
done <"$tmp/needed"

bad=$((bad + unfound))
if [ "$bad" -gt 0 ]; then
    echo "check-deps: FAILED: $bad header(s) not from packages scripts/setup.sh installs"
    exit 1
fi
echo "check-deps: ok: $(wc -l <"$tmp/needed") system headers and sources of $(wc -l <"$tmp/units") translation units, all from packages scripts/setup.sh installs"
