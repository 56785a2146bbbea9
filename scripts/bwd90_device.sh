#!/bin/bash
# The Hopper backward's device run (issue 6, hopper/bwd_sm90*), one call: build, primitive tests, checks,
# sanitizer, benchmarks. Every step under `timeout`; logs under $OUT.
# Usage (on the GPU machine, repo root): scripts/bwd90_device.sh [steps]   steps: any of
#   build     cmake + ninja (90a, DIMS), ptxas report of the bwd kernels -> $OUT/build.log
#   prim      bench/gpu/test_primitives_sm90.cu (TMA, wgmma SS/RS, trans-A) -> $OUT/check.log
#   check     check_bwd.py --dims 64,128 (asserts cuda.sm90.bwd / cuda.sm80.bwd per case) -> $OUT/check.log
#   sm80      FLASH_SM90=0 check_bwd.py --quick (the fallback path) -> $OUT/check.log
#   sanitize  compute-sanitizer memcheck on SAN_CASES (sm90 kernel) -> $OUT/sanitize.log
#   quick     bench_bwd.py at QUICK_SEQLENS (libflash + SDPA flash/cuDNN) -> $OUT/quick.log
#   prof      bench/gpu/prof_bwd.py: per-kernel times of flash_bwd and SDPA-flash's backward -> $OUT/prof.log
#   variants  libflash-only timings per VARIANTS entry (env knobs of hopper/bwd_sm90.cu) -> $OUT/variants.log
#   bench     bench/peers.py --bwd (bf16, d64/128, causal 0/1, seqlen 512..16k) -> $OUT/peers_bwd.{json,md,png}
# Env: OUT (default ./device-out), DIMS (default 64;128), BUDGET_MS (bench, default 100).
set -uo pipefail
STEPS=${*:-build prim check sanitize quick}
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
DIMS=${DIMS:-64;128}
LIB=$PWD/build90/libflash.so
has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

if has build; then
  {
    stamp build
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader
    t0=$(date +%s)
    timeout 300 cmake -S . -B build90 -G Ninja -DFLASH_CUDA=ON -DFLASH_CUDA_ARCHS=90a "-DFLASH_HEAD_DIMS=$DIMS" \
      -DCMAKE_CUDA_FLAGS="-Xptxas=-v" > /dev/null && timeout 300 cmake --build build90 -j16
    echo "build rc=$? in $(( $(date +%s) - t0 )) s"
  } > "$OUT/build.log" 2>&1
  grep -E "build rc" "$OUT/build.log"
  grep -q "build rc=0" "$OUT/build.log" || { grep -E "error" "$OUT/build.log" | head -20; tail -20 "$OUT/build.log"; exit 1; }
  echo "== ptxas, sm90 backward kernels" | tee -a "$OUT/build.log"
  grep -A2 "Function properties for .*bwd_sm90_kernel" "$OUT/build.log" | grep -oE "Bwd90CfgILi[0-9]+EEELb[01]ELb[01]|[0-9]+ bytes stack frame|[0-9]+ bytes spill stores|Used [0-9]+ registers" \
    | paste - - - - | sort | uniq -c | tee -a "$OUT/build.log"
  grep -iE "C7508|warning.*setmaxnreg" "$OUT/build.log" | head -3
fi
if has prim; then
  stamp prim | tee -a "$OUT/check.log"
  timeout 120 nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -Ilibflash bench/gpu/test_primitives_sm90.cu \
    -o /tmp/test_primitives_sm90 >> "$OUT/check.log" 2>&1 && timeout 60 /tmp/test_primitives_sm90 >> "$OUT/check.log" 2>&1
  echo "primitives sm90 rc=$?" | tee -a "$OUT/check.log"
  grep -E "trans-A|FAIL" "$OUT/check.log" | head -12
fi
if has check; then
  stamp "check d64,d128" | tee -a "$OUT/check.log"
  timeout ${CHECK_TIMEOUT:-240} python3 bench/gpu/check_bwd.py --lib "$LIB" --dims 64,128 --det-reps 3 --json "$OUT/check_bwd.json" >> "$OUT/check.log" 2>&1
  echo "check dims 64,128 rc=$?" | tee -a "$OUT/check.log"
  grep -E "^FAIL" "$OUT/check.log" | head -25
  grep -cE "^PASS.*cuda.sm90.bwd" "$OUT/check.log" | sed 's/^/PASS on cuda.sm90.bwd: /'
fi
if has sm80; then
  stamp "FLASH_SM90=0 check --quick" | tee -a "$OUT/check.log"
  FLASH_SM90=0 timeout 120 python3 bench/gpu/check_bwd.py --lib "$LIB" --quick --det-reps 2 >> "$OUT/check.log" 2>&1
  echo "check FLASH_SM90=0 rc=$?" | tee -a "$OUT/check.log"
fi
if has sanitize; then
  SAN_CASES=${SAN_CASES:-"bf16 sq17 sk17 d64 causal1,bf16 sq113 sk203 d64 causal0,bf16 sq113 sk203 d128 causal1,fp16 sq203 sk113 d128 causal0,gqa h6 hk2 d128,mqa h6 hk1 d64,local d128,empty rows local d64,dv48 d64,many tiles b3 h40 hk20 d128 causal0,many tiles b3 h40 hk20 d64 causal1"}
  {
    stamp "memcheck: $SAN_CASES"
    timeout 240 compute-sanitizer --tool memcheck --kernel-name kns=bwd_sm90 --print-limit 20 \
      python3 bench/gpu/check_bwd.py --lib "$LIB" --sanitize --only "$SAN_CASES" 2>&1 | tail -30
  } > "$OUT/sanitize.log" 2>&1
  grep -E "ERROR SUMMARY|passed in|^FAIL" "$OUT/sanitize.log"
fi
if has quick; then
  stamp quick | tee "$OUT/quick.log"
  timeout 240 python3 bench/gpu/bench_bwd.py --lib "$LIB" --seqlens ${QUICK_SEQLENS:-1024,4096,16384} --budget-ms 60 \
    --out /tmp/quick --stem quick 2>&1 | grep -vE '^\{' >> "$OUT/quick.log"
  grep -E "^\| (64|128)" "$OUT/quick.log"
  if [ -n "${QUICK_BULK:-1}" ]; then
    stamp "quick, FLASH_BWD90_DQ=bulk (libflash only)" | tee -a "$OUT/quick.log"
    FLASH_BWD90_DQ=bulk timeout 200 python3 bench/gpu/bench_bwd.py --lib "$LIB" --no-peers --seqlens ${QUICK_SEQLENS:-1024,4096,16384} \
      --budget-ms 60 --out /tmp/quick-bulk --stem quick 2>&1 | grep -vE '^\{' >> "$OUT/quick.log"
    grep -E "^\| (64|128)" "$OUT/quick.log" | tail -12 | cut -d'|' -f2-6
  fi
fi
if has prof; then
  stamp prof | tee "$OUT/prof.log"
  timeout 120 python3 bench/gpu/prof_bwd.py --lib "$LIB" ${PROF_CELLS:+--cells $PROF_CELLS} >> "$OUT/prof.log" 2>&1
  cat "$OUT/prof.log"
fi
if has variants; then
  # VARIANTS="ENV=VAL[,ENV=VAL...] ..." (bwd_sm90.cu knobs): libflash-only timings at VAR_SEQLENS per variant
  stamp variants | tee "$OUT/variants.log"
  for v in ${VARIANTS:-FLASH_BWD90_PERSIST=0 FLASH_BWD90_GROUP=1}; do
    echo "-- $v" >> "$OUT/variants.log"
    env ${v//,/ } timeout 150 python3 bench/gpu/bench_bwd.py --lib "$LIB" --no-peers --seqlens ${VAR_SEQLENS:-1024,2048,4096,16384} \
      --budget-ms 40 --out /tmp/var --stem var 2>&1 | grep -E "^\| (64|128)" | cut -d'|' -f2-5 >> "$OUT/variants.log"
  done
  cat "$OUT/variants.log"
fi
if has bench; then
  stamp bench
  timeout 500 python3 bench/peers.py --bwd --lib "$LIB" --out "$OUT" --budget-ms ${BUDGET_MS:-100} > /tmp/peers_bwd.log 2>&1 \
    || tail -20 /tmp/peers_bwd.log
  [ -f "$OUT/peers_bwd.md" ] && cat "$OUT/peers_bwd.md"
fi
stamp done
