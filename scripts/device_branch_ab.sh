#!/bin/bash
# A kernel branch's first GPU call in one run: the working tree (the branch) beside the trees of other refs.
# The device machine gets the working tree but no git history, so other refs travel as source tarballs.
#
# Here:       scripts/device_branch_ab.sh prep REF [REF...]   writes .device/<ref>.tar.xz (CMakeLists, include,
#             libflash: ~150 KB each; `/` in a ref becomes `-`); then check out the branch and call the device with
#             carry [".device"] and `scripts/device_branch_ab.sh run REF [REF...]`.
# On the GPU: scripts/device_branch_ab.sh run REF [REF...]   builds the tree with every head dim and the ptxas report
#             (build-all/), each REF's tree with DIMS (build-<ref>/), then check_fwd on the tree, the A/B (the
#             first REF as the reference column, `tree` for the branch), compute-sanitizer memcheck and racecheck of
#             the sm90 forward on the tree. Logs under $OUT.
# Env (run): DIMS (default "64;128;256"), TREE_DIMS (default: every head dim; check_fwd fails the cases of the others),
#            AB_ARGS (default: bf16 + fp16, d64/128/256, 512-16k, both masks, 3 rounds), FWD_SAN_DIMS (default
#            64,128,256), SKIP_CHECK=1, SKIP_AB=1, SKIP_SAN=1 (a second call on the warm machine finds the build
#            directories and rebuilds nothing, so the steps can be spread over calls).
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}; shift || true
[ $# -gt 0 ] || { echo "usage: $0 prep|run REF [REF...]" >&2; exit 2; }
name() { echo "${1//\//-}"; }

if [ "$mode" = prep ]; then
  mkdir -p .device
  for r in "$@"; do
    git archive "$r" CMakeLists.txt include libflash | xz -1 > ".device/$(name "$r").tar.xz" || exit 1
    echo ".device/$(name "$r").tar.xz <- $(git rev-parse --short "$r")"
  done
  exit 0
fi
[ "$mode" = run ] || { echo "usage: $0 prep|run REF [REF...]" >&2; exit 2; }

OUT=${OUT:-$PWD/device-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
date -u +"start %FT%TZ"; nvidia-smi --query-gpu=name,power.limit,driver_version --format=csv,noheader
DIMS=${DIMS:-64;128;256}
B="-DFLASH_CUDA=ON -DFLASH_CUDA_ARCHS=90a"
( cmake -S . -B build-all -G Ninja $B ${TREE_DIMS:+"-DFLASH_HEAD_DIMS=$TREE_DIMS"} -DCMAKE_CUDA_FLAGS=-Xptxas=-v > /dev/null &&
  timeout 300 cmake --build build-all -j10 ) > "$OUT/build_tree.log" 2>&1 &
libs=""
for r in "$@"; do
  n=$(name "$r"); mkdir -p "/tmp/src-$n" && xz -dc ".device/$n.tar.xz" | tar xf - -C "/tmp/src-$n" || exit 1
  ( cmake -S "/tmp/src-$n" -B "build-$n" -G Ninja $B "-DFLASH_HEAD_DIMS=$DIMS" > /dev/null &&
    timeout 300 cmake --build "build-$n" -j$(( 6 / $# > 1 ? 6 / $# : 1 )) ) > "/tmp/build-$n.log" 2>&1 &
  libs="$libs${libs:+,}$n=$PWD/build-$n/libflash.so"
done
wait; echo "built at $(el) s"; tail -qn1 "$OUT/build_tree.log" /tmp/build-*.log
echo "tree: kernels with spills (all families):"
grep -hE "spill stores" "$OUT/build_tree.log" | grep -v " 0 bytes spill stores" | sort | uniq -c | sort -rn | head
# Count ptxas's spill warnings, which name their function: a parallel build interleaves the "Compiling entry
# function" lines of several files, so pairing a spill line with the entry line above it misattributes kernels.
echo "fwd_sm90 kernels with spills: $(grep -E "Registers are spilled to local memory in function '[^']*fwd_sm90_kernel" \
  "$OUT/build_tree.log" | sort -u | wc -l)"
grep -oE "\(C75[0-9]+\)[^']*'[^']*'" "$OUT/build_tree.log" | sort | uniq -c | head -3
xz -9 "$OUT/build_tree.log"
TREE=$PWD/build-all/libflash.so
if [ -z "${SKIP_CHECK:-}" ]; then
  timeout 200 python3 bench/gpu/check_fwd.py --lib "$TREE" --json "$OUT/check_fwd_tree.json" > "$OUT/check_fwd_tree.log" 2>&1
  echo "check_fwd tree rc=$? $(grep -E 'passed in' "$OUT/check_fwd_tree.log" | tail -1) at $(el) s"
  grep -E "^FAIL" "$OUT/check_fwd_tree.log" | head -8
fi
if [ -z "${SKIP_AB:-}" ]; then
  AB_ARGS=${AB_ARGS:---dtypes bf16,fp16 --hdims 64,128,256 --seqlens 512,1024,2048,16384 --causal 1,0 --rounds 3 --rep 25}
  echo "A/B at $(el) s: $AB_ARGS"
  timeout 300 python3 bench/gpu/ab_interleave.py --libs "$libs,tree=$TREE" $AB_ARGS --json "$OUT/ab.jsonl" 2>&1 |
    grep -E "^\|" | head -60
fi
[ -n "${SKIP_SAN:-}" ] || echo "sanitizers at $(el) s"
[ -n "${SKIP_SAN:-}" ] || for tool in memcheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool --kernel-name kns=fwd_sm90 --print-limit 5 \
    python3 bench/gpu/sanitize_fwd.py --lib "$TREE" --dims "${FWD_SAN_DIMS:-64,128,256}" 2>&1 | grep -vE "^ok " | tail -2
done
date -u +"end %T at $(el) s"
