#!/bin/bash
# Decode diagnostics on the GPU machine (issue 5): build (d128), bench_decode.py under the three L2 flush modes
# (+ num_splits sweep), and ncu kernel durations / DRAM bytes for libflash and cuDNN at b=1.
# Usage: OUT=dir scripts/decode_diag.sh [build] [abfast] [check] [sanitize] [bench] [bun] [host] [ncu] [ncufull]   (env: DIMS, FLUSHES, SWEEP, NCU_SHAPES)
set -uo pipefail
STEPS=${*:-build bench ncu}
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
DIMS=${DIMS:-128}
if has build; then
  t0=$(date +%s)
  { cmake -S . -B build-kv -G Ninja -DFLASH_CUDA=ON -DFLASH_CUDA_ARCHS=90a "-DFLASH_HEAD_DIMS=$DIMS" \
      -DCMAKE_CUDA_FLAGS=-Xptxas=-v > /dev/null && timeout 300 cmake --build build-kv -j16; } > "$OUT/build.log" 2>&1
  echo "build rc=$? in $(( $(date +%s) - t0 )) s"
  grep -A2 "Function properties for .*kv_" "$OUT/build.log" | grep -E "registers|spill" | sort | uniq -c | head
fi
if has abfast; then
  # A/B: the general K/V copy loop only (FLASH_KV_NO_FAST_COPY) against build-kv, clean flush, alternating
  { cmake -S . -B build-kv-nf -G Ninja -DFLASH_CUDA=ON -DFLASH_CUDA_ARCHS=90a "-DFLASH_HEAD_DIMS=$DIMS" \
      -DCMAKE_CUDA_FLAGS=-DFLASH_KV_NO_FAST_COPY > /dev/null && timeout 300 cmake --build build-kv-nf -j16; } > "$OUT/build-nf.log" 2>&1
  echo "build no-fast rc=$?"
  for v in build-kv build-kv-nf build-kv build-kv-nf; do
    timeout 200 python3 bench/gpu/bench_decode.py --lib $v/libflash.so --out /tmp/abf-$v --flush clean > /tmp/abf.log 2>&1
    echo "== $v (b | sk | contig TB/s (us) | page16 | page256 | cuDNN)"; grep -E "^\| [0-9]" /tmp/abf.log | cut -d'|' -f2,3,5,9,10,11
  done
fi
export LIBFLASH=$PWD/build-kv/libflash.so
if has check; then
  timeout 240 python3 bench/gpu/check_kvcache.py --json "$OUT/check_kvcache.json" > "$OUT/check.log" 2>&1
  echo "check rc=$?"; tail -3 "$OUT/check.log"
fi
if has sanitize; then
  timeout 240 compute-sanitizer --tool memcheck python3 bench/gpu/check_kvcache.py --sanitize > "$OUT/sanitize.log" 2>&1
  echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|pass|fail" "$OUT/sanitize.log" | tail -3
fi
if has bench; then
  for fl in ${FLUSHES:-clean dirty}; do
    timeout 200 python3 bench/gpu/bench_decode.py --out "$OUT" --flush $fl --tag "_$fl" ${SWEEP:+--sweep} > "$OUT/bench_$fl.log" 2>&1
    echo "bench $fl rc=$?"; sed -n '/^# Decode/,$p' "$OUT/bench_$fl.log"
  done
fi
if has bun; then
  # the decode-step latency from Bun (host overhead included) and the GPU kvcache suites of the TS binding
  xz -dc .device/bun.xz > /tmp/bun && chmod +x /tmp/bun
  FLASH_LIBRARY_PATH=$LIBFLASH timeout 120 /tmp/bun bench/decode.bench.ts --out "$OUT/decode_bench_bun.json" > "$OUT/bun.log" 2>&1
  echo "bun decode.bench rc=$?"; sed -n '/decode step/,$p' "$OUT/bun.log"
  FLASH_LIBRARY_PATH=$LIBFLASH timeout 120 /tmp/bun test test/gpu_kvcache.test.ts test/paged.test.ts >> "$OUT/bun.log" 2>&1
  echo "bun gpu kvcache tests rc=$?"; grep -E " pass$| fail$|^ *[0-9]+ (pass|fail)" "$OUT/bun.log" | tail -4
fi
if has host; then
  timeout 100 python3 bench/gpu/decode_host.py > "$OUT/host.log" 2>&1; echo "host rc=$?"; tail -2 "$OUT/host.log"
fi
if has ncufull; then
  # full ncu sections (speed of light, memory, warp stalls, occupancy) for libflash's and cuDNN's decode kernels
  for bs in ${NCU_SHAPES:-8:8192}; do
    b=${bs%%:*}; sk=${bs##*:}
    timeout 300 ncu --clock-control none --cache-control all -k regex:"kv_attn|fprop" --section SpeedOfLight \
      --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats \
      --section SchedulerStats python3 bench/gpu/decode_once.py $b $sk --reps 1 > "$OUT/ncufull_${b}_${sk}.log" 2>&1
    echo "ncufull $b $sk rc=$?"
    grep -E "^  [a-zA-Z_].*\(|Duration|DRAM Throughput|Memory Throughput|L2 Cache Throughput|Achieved Occupancy|Stall|Issued Warp|No Eligible|Active Warps Per|Registers Per|Block Limit|Mem Busy|Max Bandwidth|Eligible Warps" \
      "$OUT/ncufull_${b}_${sk}.log" | sed 's/  */ /g' | cut -c1-150 | head -70
  done
fi
if has ncu; then
  for bs in ${NCU_SHAPES:-1:32768 1:8192}; do
    b=${bs%%:*}; sk=${bs##*:}
    timeout 200 ncu --clock-control none --cache-control all --metrics \
      gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,launch__occupancy_limit_shared_mem,sm__warps_active.avg.pct_of_peak_sustained_active \
      python3 bench/gpu/decode_once.py $b $sk --reps 2 > "$OUT/ncu_${b}_${sk}.log" 2>&1
    echo "ncu $b $sk rc=$?"
    grep -E "^  [a-zA-Z_].*\(|gpu__time|dram__bytes|dram__through|grid_size|warps_active" "$OUT/ncu_${b}_${sk}.log" | sed 's/  */ /g' | tail -40
  done
fi
