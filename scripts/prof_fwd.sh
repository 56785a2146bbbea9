#!/bin/bash
# Forward profile on the GPU machine, ours next to the peers: per-kernel device times (torch.profiler) and, per
# (implementation, cell), one ncu report of the timed launch (launch config, speed of light, occupancy, warp
# states, pipes, per-SM active cycles min/avg/max for the tail). Usage:
#   OUT=dir [DIMS="64;128"] [CELLS=128:1:512,...] [IMPLS=libflash,cudnn,flash] [MMA_CELLS=64:1:2048] scripts/prof_fwd.sh
# MMA_CELLS: cells also profiled on the mma.sync path (FLASH_SM90=0) and SDPA flash (issue 4's comparison).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}; mkdir -p "$OUT"
DIMS=${DIMS:-64;128}; CELLS=${CELLS:-128:1:512,128:1:1024,128:0:1024}; IMPLS=${IMPLS:-libflash,cudnn}
MMA_CELLS=${MMA_CELLS:-}
LIB=${LIB:-}
if [ -z "$LIB" ]; then
  { cmake -S . -B /tmp/build-prof -G Ninja -DFLASH_CUDA=ON -DFLASH_CUDA_ARCHS=90a "-DFLASH_HEAD_DIMS=$DIMS" > /dev/null &&
    timeout 300 cmake --build /tmp/build-prof -j16; } > "$OUT/prof_build.log" 2>&1 || { tail -20 "$OUT/prof_build.log"; exit 1; }
  LIB=/tmp/build-prof/libflash.so
fi
export LIBFLASH=$LIB PYTHONUNBUFFERED=1
{
  timeout 120 python3 bench/gpu/prof_fwd.py --cells "$CELLS" --impls "$IMPLS"
  [ -n "$MMA_CELLS" ] && FLASH_SM90=0 timeout 120 python3 bench/gpu/prof_fwd.py --cells "$MMA_CELLS" --impls libflash,flash
} > "$OUT/prof_times.txt" 2>&1
cat "$OUT/prof_times.txt"
# DRAM bytes and the L2 hit rate: whether a short causal cell re-reads K/V from DRAM (bench/NOTES.md, L2 sections)
M=sm__cycles_active.min,sm__cycles_active.avg,sm__cycles_active.max,sm__cycles_elapsed.max,gpu__time_duration.sum,\
dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sector_hit_rate.pct
one() { # env impl cell tag
  echo "=================== $4: $2 $3"
  env $1 timeout 180 ncu -k "regex:fwd|fprop|sdpa|fmha|attn" --launch-skip 3 --launch-count 1 \
    --section LaunchStats --section Occupancy --section SpeedOfLight --section WarpStateStats \
    --section ComputeWorkloadAnalysis --section SchedulerStats --metrics $M \
    python3 bench/gpu/prof_fwd.py --ncu --impls "$2" --cells "$3" 2>&1 | grep -vE "^==PROF==|^ *$|----"
}
{
  for c in ${CELLS//,/ }; do for i in ${IMPLS//,/ }; do one X=1 "$i" "$c" sm90; done; done
  for c in ${MMA_CELLS//,/ }; do one FLASH_SM90=0 libflash "$c" mma; one X=1 flash "$c" fa2; done
} > "$OUT/prof_ncu.txt" 2>&1
grep -E "^====|Duration|Grid Size|Block Size|Registers Per|Dynamic Shared|Waves Per|Compute \(SM\) Throughput|sm__cycles_active|dram__bytes|lts__t_sector_hit" "$OUT/prof_ncu.txt"
