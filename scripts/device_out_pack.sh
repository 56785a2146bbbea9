#!/bin/bash
# Keeps $OUT within what a device call returns (8 files at most, 2 folders down): when more than 8 regular files lie
# under $OUT, every file but the named keepers (paths relative to $OUT) moves into $OUT/bundle.tgz. Call it last.
# Usage: OUT=dir scripts/device_out_pack.sh [keeper ...]     (at most 7 keepers: the bundle is the 8th file)
set -euo pipefail
OUT=${OUT:?set OUT}
[ "$#" -le 7 ] || { echo "device_out_pack: $# keepers, 7 at most" >&2; exit 2; }
cd "$OUT"
n=$(find . -type f | wc -l)
[ "$n" -le 8 ] && exit 0
list=$(mktemp)
find . -type f ! -name bundle.tgz | sed 's|^\./||' | sort > "$list"
for k in "$@"; do grep -vxF -- "$k" "$list" > "$list.1" || true; mv "$list.1" "$list"; done
tar -czf bundle.tgz -T "$list"
xargs -d '\n' rm -f < "$list"
find . -mindepth 1 -type d -empty -delete
echo "device_out_pack: $(wc -l < "$list") files into bundle.tgz, kept: ${*:-none}"
rm -f "$list"
