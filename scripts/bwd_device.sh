#!/bin/bash
# The backward's device run (issue 6), one call: build, checks, sanitizers, peer benchmark, tile tuning.
# Usage (on the GPU machine, repo root): scripts/bwd_device.sh [steps]   steps: any of
#   build check small sanitize bench tune full   (default: all of them, in that order)
#   check    check_bwd.py at head dims 96,192 (the dims no run had covered)
#   small    FLASH_SMEM_LIMIT_BYTES=101376 (sm86/89/120's 99 KB): check_bwd.py at 96,128,192,256 on the small tiles,
#            then FLASH_SMEM_LIMIT_BYTES=65536: every one of them refused with FLASH_ERROR_UNSUPPORTED
#   sanitize compute-sanitizer memcheck + racecheck (libflash's bwd kernels only) on check_bwd.py --sanitize
#            (d59/64/128, causal, GQA, local, dropout, softcap, varlen, deterministic), large and small tiles
#   bench    bench/peers.py --bwd (bf16, d64/128, causal 0/1, seqlen 512..16k)
#   tune     TUNE="d:bm:bn:w:qs:sdp:kv:q ..." (bwd_config.h FLASH_BWD_TUNE_*): one build per row (its head dim
#            only), libflash-only timings at TUNE_SEQLENS next to the main build's
#   diag     racecheck kernel by kernel (DIAG_KERNELS) and unfiltered memcheck on DIAG_CASES
#   full     check_bwd.py, the whole grid (large tiles; FULL_ARGS appended, e.g. "--dims 64,128")
# Env: OUT (default ./device-out), FLASH_CUDA_ARCHS (default 90a), DIMS (default 64;96;128;192;256),
#      SMALL_DIMS (default 64,96,128,192,256).
set -uo pipefail
STEPS=${*:-build check small sanitize bench tune full}
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
ARCH=${FLASH_CUDA_ARCHS:-90a}
DIMS=${DIMS:-64;96;128;192;256}
LIB=$PWD/build-bwd/libflash.so
has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

if has build; then
  {
    stamp build
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader
    t0=$(date +%s)
    i=0; pids=""
    if has tune; then
      for v in ${TUNE:-}; do
        IFS=: read -r d bm bn w qs sdp kv q <<< "$v"
        fl="-DFLASH_BWD_TUNE_D=$d -DFLASH_BWD_TUNE_BM=$bm -DFLASH_BWD_TUNE_BN=$bn -DFLASH_BWD_TUNE_W=$w"
        fl="$fl -DFLASH_BWD_TUNE_QS=$qs -DFLASH_BWD_TUNE_SDP=$sdp -DFLASH_BWD_TUNE_KV=$kv -DFLASH_BWD_TUNE_Q=$q -Xptxas=-v"
        ( cmake -S . -B build-tune-$i -G Ninja -DFLASH_CUDA=ON "-DFLASH_CUDA_ARCHS=$ARCH" "-DFLASH_HEAD_DIMS=$d" \
            "-DCMAKE_CUDA_FLAGS=$fl" > /dev/null && cmake --build build-tune-$i -j8 ) > /tmp/tune-build-$i.log 2>&1 &
        pids="$pids $!"; i=$((i+1))
      done
    fi
    cmake -S . -B build-bwd -G Ninja -DFLASH_CUDA=ON "-DFLASH_CUDA_ARCHS=$ARCH" "-DFLASH_HEAD_DIMS=$DIMS" \
      -DCMAKE_CUDA_FLAGS="-Xptxas=-v" > /dev/null && cmake --build build-bwd -j16
    echo "build rc=$? in $(( $(date +%s) - t0 )) s"
    [ -n "$pids" ] && wait $pids
    echo "tune builds done in $(( $(date +%s) - t0 )) s"
  } > "$OUT/build.log" 2>&1
  grep -E "build rc|tune builds" "$OUT/build.log"
  grep -q "build rc=0" "$OUT/build.log" || { tail -30 "$OUT/build.log"; exit 1; }
  # resource report of the backward kernels (registers / spills), main build
  grep -A2 "Function properties for .*bwd" "$OUT/build.log" | grep -oE "(bwd_dq_kernel|bwd_kernel)[^ ]*|Used [0-9]+ registers|[0-9]+ bytes spill stores" \
    | paste - - - | sort | uniq -c | sort -rn | head -60 > /tmp/ptxas_bwd.txt
  { echo "== ptxas, backward kernels (count, kernel, spill, registers)"; cat /tmp/ptxas_bwd.txt; } >> "$OUT/build.log"
fi

if has check; then
  stamp "check d96,d192" | tee -a "$OUT/check.log"
  python3 bench/gpu/check_bwd.py --lib "$LIB" --dims 96,192 --det-reps 5 >> "$OUT/check.log" 2>&1
  echo "check dims 96,192 rc=$?" | tee -a "$OUT/check.log"
fi
if has small; then
  stamp "small tiles (FLASH_SMEM_LIMIT_BYTES=101376)" | tee -a "$OUT/check.log"
  FLASH_SMEM_LIMIT_BYTES=101376 python3 bench/gpu/check_bwd.py --lib "$LIB" --dims ${SMALL_DIMS:-64,96,128,192,256} \
    --det-reps 5 >> "$OUT/check.log" 2>&1
  echo "check small tiles rc=$?" | tee -a "$OUT/check.log"
  FLASH_SMEM_LIMIT_BYTES=65536 python3 bench/gpu/check_bwd.py --lib "$LIB" --expect-unsupported ${SMALL_DIMS:-64,96,128,192,256} \
    >> "$OUT/check.log" 2>&1
  echo "check unsupported under a 64 KB cap rc=$?" | tee -a "$OUT/check.log"
fi
if has sanitize; then
  {
    for tool in memcheck racecheck; do
      for cap in 0 101376; do
        stamp "$tool FLASH_SMEM_LIMIT_BYTES=$cap"
        FLASH_SMEM_LIMIT_BYTES=$cap compute-sanitizer --tool $tool --kernel-name kns=bwd --print-limit 20 \
          python3 bench/gpu/check_bwd.py --lib "$LIB" --sanitize 2>&1 | grep -vE "^PASS" | tail -30
      done
    done
  } > "$OUT/sanitize.log" 2>&1
  grep -E "^== |ERROR SUMMARY|RACECHECK SUMMARY|passed in" "$OUT/sanitize.log"
fi
if has diag; then
  # racecheck one case, one kernel family at a time (run 3 saw a hardware exception under racecheck in "varlen d64")
  {
    for k in ${DIAG_KERNELS:-bwd_dot bwd_kernel bwd_convert fwd_kernel}; do
      stamp "racecheck kns=$k: ${DIAG_CASES:-varlen d64}"
      compute-sanitizer --tool racecheck --kernel-name kns=$k --print-limit 10 \
        python3 bench/gpu/check_bwd.py --lib "$LIB" --sanitize --only "${DIAG_CASES:-varlen d64}" 2>&1 | tail -12
    done
    stamp "memcheck, every kernel: ${DIAG_CASES:-varlen d64}"
    compute-sanitizer --tool memcheck --print-limit 10 \
      python3 bench/gpu/check_bwd.py --lib "$LIB" --sanitize --only "${DIAG_CASES:-varlen d64}" 2>&1 | tail -12
  } >> "$OUT/sanitize.log" 2>&1
  grep -E "^== |ERROR SUMMARY|RACECHECK SUMMARY|passed in|Internal" "$OUT/sanitize.log" | tail -20
fi
if has bench; then
  stamp bench
  python3 bench/peers.py --bwd --lib "$LIB" --out "$OUT" --budget-ms ${BUDGET_MS:-120} > "$OUT/peers_bwd.log" 2>&1 \
    || tail -20 "$OUT/peers_bwd.log"
  rm -f "$OUT/peers_bwd.log"
fi
if has tune && [ -n "${TUNE:-}" ]; then
  stamp tune | tee "$OUT/tune.log"
  SEQ=${TUNE_SEQLENS:-2048,16384}
  i=0
  for v in $TUNE; do
    d=${v%%:*}
    grep -A2 "Function properties for .*bwd_kernel.*Li${d}E" /tmp/tune-build-$i.log | grep -oE "Used [0-9]+ registers|[0-9]+ bytes spill stores" \
      | paste - - | head -4 | sed "s/^/  $v ptxas: /" >> "$OUT/tune.log"
    python3 bench/gpu/bench_bwd.py --lib build-tune-$i/libflash.so --no-peers --hdims $d --seqlens $SEQ \
      --tag "$v" --out /tmp/tune-$i --budget-ms 100 2>&1 | grep '^{' >> "$OUT/tune.log"
    python3 bench/gpu/bench_bwd.py --lib "$LIB" --no-peers --hdims $d --seqlens $SEQ \
      --tag "base$d" --out /tmp/tune-b$i --budget-ms 100 2>&1 | grep '^{' >> "$OUT/tune.log"
    i=$((i+1))
  done
  {
  python3 - "$OUT/tune.log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
base = {(r["hdim"], r["causal"], r["seqlen"]): r for r in rows if r["tag"].startswith("base")}
print("| variant | causal | seqlen | libflash TF | base TF | ratio | det TF | base det TF |")
for r in rows:
    if r["tag"].startswith("base"): continue
    b = base.get((r["hdim"], r["causal"], r["seqlen"]), {})
    print(f"| {r['tag']} | {int(r['causal'])} | {r['seqlen']} | {r['libflash_tflops']:.1f} | {b.get('libflash_tflops', 0):.1f} | "
          f"{r['libflash_tflops'] / b.get('libflash_tflops', float('nan')):.3f} | {r['libflash_det_tflops']:.1f} | {b.get('libflash_det_tflops', 0):.1f} |")
PY
  } 2>&1 | tee -a "$OUT/tune.log"
fi
if has full; then
  stamp "full grid" | tee -a "$OUT/check.log"
  python3 bench/gpu/check_bwd.py --lib "$LIB" --det-reps 20 --json "$OUT/check_bwd.json" ${FULL_ARGS:-} >> "$OUT/check.log" 2>&1
  echo "check full grid rc=$?" | tee -a "$OUT/check.log"
fi
stamp done
grep -E "^FAIL" "$OUT/check.log" 2>/dev/null | head -20
grep -E "passed in| rc=" "$OUT/check.log" 2>/dev/null
[ -f "$OUT/peers_bwd.md" ] && cat "$OUT/peers_bwd.md"
exit 0
