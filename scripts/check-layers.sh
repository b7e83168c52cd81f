#!/usr/bin/env bash
# check-layers.sh - the include graph of src/ follows the layers: a file includes headers of its
# own folder or of folders below it, never above, and the folder graph has no cycle.
#
# Layers, bottom to top (README "Architecture"). include/herald.h is the public C API, which
# Socket.IO implements and the apps and the composition root use.
# Prints the folder graph (one "from -> to" line per arrow) and every offending include;
# exits 1 if there is one. Usage: scripts/check-layers.sh [TREE] (default: this checkout). The CMake build enforces the same order (one library per layer).
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

layers=(core auth net http ws store hub chan eio sio app server)
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done
api_rank=${rank[sio]}

bad=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT

for dir in src/*/; do
    from=$(basename "$dir")
    if [ -z "${rank[$from]+x}" ]; then
        echo "check-layers: src/$from/ is not a layer (add it to scripts/check-layers.sh and the README)"
        bad=1
        continue
    fi
    for f in "$dir"*.[ch]; do
        [ -e "$f" ] || continue
        while IFS=: read -r line inc; do
            case $inc in
            ../*)
                echo "check-layers: $f:$line: \"$inc\" climbs out of its folder; name the layer (\"hub/hub.h\")"
                bad=1
                ;;
            */*)
                to=${inc%%/*}
                if [ -z "${rank[$to]+x}" ]; then
                    echo "check-layers: $f:$line: \"$inc\" is not in a layer"
                    bad=1
                elif [ ! -e "src/$inc" ]; then
                    echo "check-layers: $f:$line: \"$inc\" does not exist"
                    bad=1
                elif [ "${rank[$to]}" -gt "${rank[$from]}" ]; then
                    echo "check-layers: $f:$line: $from includes $inc: an upward arrow ($from is below $to)"
                    bad=1
                fi
                [ "$to" != "$from" ] && echo "$from $to" >>"$edges"
                ;;
            herald.h)
                if [ "${rank[$from]}" -lt "$api_rank" ]; then
                    echo "check-layers: $f:$line: $from includes the public API herald.h (only sio and above may)"
                    bad=1
                fi
                ;;
            llhttp.h)
                [ "$from" = http ] || { echo "check-layers: $f:$line: only http/ includes llhttp.h"; bad=1; }
                ;;
            *)
                if [ ! -e "$dir$inc" ]; then
                    echo "check-layers: $f:$line: \"$inc\" is not in src/$from/"
                    bad=1
                fi
                ;;
            esac
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
                 while read -r inc; do
                     printf '%s:%s\n' "$(grep -n -m1 -F "\"$inc\"" "$f" | cut -d: -f1)" "$inc"
                 done)
    done
done

echo "folder graph (from -> to):"
sort -u "$edges" | while read -r a b; do echo "  $a -> $b"; done
# tsort reports a loop among the folders, if any (an upward arrow always makes one here)
if ! sort -u "$edges" | tsort >/dev/null 2>"$edges.err"; then
    echo "check-layers: the folder graph has a cycle:"
    sed 's/^/  /' "$edges.err"
    bad=1
elif [ -s "$edges.err" ]; then
    echo "check-layers: the folder graph has a cycle:"
    sed 's/^/  /' "$edges.err"
    bad=1
fi
rm -f "$edges.err"

if [ "$bad" -ne 0 ]; then
    echo "check-layers: FAILED"
    exit 1
fi
echo "check-layers: ok (${#layers[@]} layers, no upward include, no cycle)"
