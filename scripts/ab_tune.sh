#!/bin/bash
# Same-process A/B of tuning builds on the GPU machine (the way a few-percent kernel change is judged, bench/NOTES.md
# "Hopper forward" step 8): "base" = the tree as it is, plus one build per argument NAME=FLAGS (FLAGS go into
# CMAKE_CUDA_FLAGS: the FLASH_TUNE_* / FLASH_SM90_TUNE_* rows of fwd_config.h / hopper/fwd_sm90_config.h), all for
# DIMS, built side by side (scripts/sm90_tune_flags.py prints a Hopper table row's flags, with overrides); then
# bench/gpu/ab_interleave.py over them (AB_ARGS passed through; FLASH_SM90=0 in the environment times the mma.sync
# path). Writes $OUT/ab_tune.{txt,jsonl} and the build logs.
# Example (mma.sync d128 row with full_load on):
#   T="-DFLASH_TUNE_D=128 -DFLASH_TUNE_BM=128 -DFLASH_TUNE_BN=64 -DFLASH_TUNE_W=4 -DFLASH_TUNE_ST=1 -DFLASH_TUNE_CTA=2 \
#      -DFLASH_TUNE_LAZY=1 -DFLASH_TUNE_CHAINS=1"
#   FLASH_SM90=0 OUT=/tmp/o DIMS=128 AB_ARGS="--hdims 128 --seqlens 1024,2048,16384 --causal 0,1 --peer flash" \
#     scripts/ab_tune.sh "same=$T -DFLASH_TUNE_FULL=0" "full=$T -DFLASH_TUNE_FULL=1"
set -uo pipefail
OUT=$(mkdir -p "${OUT:-$PWD/device-out}" && cd "${OUT:-$PWD/device-out}" && pwd) || exit 1 # absolute before the cd
cd "$(dirname "$0")/.."
rm -f "$OUT/ab_tune.jsonl" # ab_interleave appends
DIMS=${DIMS:-64;128;256}; ARCH=${ARCH:-90a}; JOBS=${JOBS:-6}
build() { # name flags
  { cmake -S . -B "build-ab-$1" -G Ninja -DFLASH_CUDA=ON "-DFLASH_CUDA_ARCHS=$ARCH" "-DFLASH_HEAD_DIMS=$DIMS" \
      "-DCMAKE_CUDA_FLAGS=$2 -Xptxas=-v" > /dev/null && timeout 500 cmake --build "build-ab-$1" -j"$JOBS"; } > "$OUT/build-$1.log" 2>&1
  echo "build $1 rc=$? (nonzero spill lines: $(grep 'spill stores' "$OUT/build-$1.log" | grep -vc ' 0 bytes spill'))"
}
for v in "$@"; do
  case "${v%%=*}" in base | "$v") echo "variant '$v': expected NAME=FLAGS with NAME other than base" >&2; exit 2;; esac
  # an empty FLAGS is usually a $(scripts/sm90_tune_flags.py ...) that failed: it would time the base build twice
  [ -n "${v#*=}" ] || { echo "variant '$v': no flags" >&2; exit 2; }
done
libs="base=$PWD/build-ab-base/libflash.so"
build base "" & pids=$!
for v in "$@"; do
  build "${v%%=*}" "${v#*=}" & pids="$pids $!"
  libs="$libs,${v%%=*}=$PWD/build-ab-${v%%=*}/libflash.so"
done
wait $pids
for l in ${libs//,/ }; do [ -f "${l#*=}" ] || { echo "no ${l#*=}: see $OUT/build-${l%%=*}.log" >&2; exit 1; }; done
# BUILD_ONLY=1: stop here (checks run on the builds before the timing, as in a merge's confirming call)
[ -n "${BUILD_ONLY:-}" ] && { echo "libs: $libs"; exit 0; }
# shellcheck disable=SC2086  # AB_ARGS is a list of options
python3 bench/gpu/ab_interleave.py --libs "$libs" ${AB_ARGS:-} --json "$OUT/ab_tune.jsonl" > "$OUT/ab_tune.txt" 2>&1
echo "ab_interleave rc=$?"; grep "^|" "$OUT/ab_tune.txt"
