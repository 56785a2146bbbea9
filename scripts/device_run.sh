#!/bin/bash
# Build libflash on the GPU machine, run the CUDA forward checks and the side-by-side benchmark.
# Usage: scripts/device_run.sh [all|check|sanitize|bench|quick|tune|tune90] [extra args for peers.py]
# Writes under $OUT (default ./device-out): build.log, check.log/.json, sanitize.log, peers.{json,md,png}.
# Prints a short table last.
set -uo pipefail
MODE=${1:-all}
shift || true
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PYTHONUNBUFFERED=1
ARCH=${FLASH_CUDA_ARCHS:-}
if [ -z "$ARCH" ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
  ARCH=$cc; [ "$cc" = "90" ] && ARCH=90a
fi
HD=${FLASH_HEAD_DIMS:-32;64;96;128;192;256}
if [ "$MODE" = tune90 ]; then
  # TUNE90="D:CONS:BN:ST:OV:PP:PS:DY:RP:RC ..." -- Hopper forward tile candidates (hopper/fwd_sm90_config.h), one
  # build each (that head dim only, in parallel), then libflash-only timings (bf16), then SDPA once per dim.
  SEQ=${TUNE_SEQLENS:-1024,4096,16384}
  i=0; pids=""
  for v in $TUNE90; do
    IFS=: read -r d co bn st ov pp ps dy rp rc <<< "$v"
    fl="-DFLASH_SM90_TUNE_D=$d -DFLASH_SM90_TUNE_CONS=$co -DFLASH_SM90_TUNE_BN=$bn -DFLASH_SM90_TUNE_ST=$st"
    fl="$fl -DFLASH_SM90_TUNE_OV=$ov -DFLASH_SM90_TUNE_PP=$pp -DFLASH_SM90_TUNE_PS=$ps -DFLASH_SM90_TUNE_DY=$dy -DFLASH_SM90_TUNE_RP=$rp -DFLASH_SM90_TUNE_RC=$rc -Xptxas=-v"
    ( cmake -S . -B build-t90-$i -G Ninja -DFLASH_CUDA=ON -DFLASH_CUDA_ARCHS=90a "-DFLASH_HEAD_DIMS=$d" \
        "-DCMAKE_CUDA_FLAGS=$fl" > /dev/null && cmake --build build-t90-$i -j8 ) > "/tmp/t90-build-$i.log" 2>&1 &
    pids="$pids $!"; i=$((i+1))
  done
  wait $pids
  i=0; dims=""
  for v in $TUNE90; do
    d=${v%%:*}
    regs=$(grep -A2 "fwd_sm90_kernel" /tmp/t90-build-$i.log | grep -oE "Used [0-9]+ registers|[0-9]+ bytes spill stores" | sort | uniq -c | tr '\n' ' ')
    echo "== $v  $regs" | tee -a "$OUT/tune.log"
    python3 bench/peers.py --lib build-t90-$i/libflash.so --out /tmp/t90-$i --no-peers --dtypes bf16 --hdims $d \
      --seqlens $SEQ --tag "$v" 2>&1 | grep '^{' >> "$OUT/tune.log"
    case " $dims " in *" $d:"*) ;; *) dims="$dims $d:$i";; esac
    i=$((i+1))
  done
  for di in $dims; do
    python3 bench/peers.py --lib build-t90-${di##*:}/libflash.so --out /tmp/t90-base --dtypes bf16 --hdims ${di%%:*} \
      --seqlens $SEQ --tag base 2>&1 | grep '^{' >> "$OUT/tune.log" || true
  done
  python3 - "$OUT/tune.log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
base = {(r["hdim"], r["causal"], r["seqlen"]): r for r in rows if r["tag"] == "base"}
print("| variant | causal | seqlen | libflash | FA2 | cuDNN | /cuDNN |")
for r in rows:
    if r["tag"] == "base": continue
    b = base.get((r["hdim"], r["causal"], r["seqlen"]), {})
    t, c = r.get("libflash_tflops", float("nan")), b.get("sdpa_cudnn_tflops") or float("nan")
    print(f"| {r['tag']} | {int(r['causal'])} | {r['seqlen']} | {t:.1f} | {b.get('sdpa_flash_tflops') or float('nan'):.1f} | {c:.1f} | {t / c:.2f} |")
PY
  exit 0
fi
if [ "$MODE" = tune ]; then
  # TUNE="D:BM:BN:W:ST:CTA ..." -- one build per candidate row of fwd_config.h (its head dim only), built in
  # parallel, then libflash-only timings (bf16) per candidate and one SDPA baseline per head dim.
  SEQ=${TUNE_SEQLENS:-2048,16384}
  i=0; pids=""
  for v in $TUNE; do
    IFS=: read -r d bm bn w st cta extra <<< "$v"
    fl="-DFLASH_TUNE_D=$d -DFLASH_TUNE_BM=$bm -DFLASH_TUNE_BN=$bn -DFLASH_TUNE_W=$w -DFLASH_TUNE_ST=$st -DFLASH_TUNE_CTA=$cta -Xptxas=-v"
    [ -n "$extra" ] && fl="$fl -D$extra"
    ( cmake -S . -B build-tune-$i -G Ninja -DFLASH_CUDA=ON "-DFLASH_CUDA_ARCHS=$ARCH" "-DFLASH_HEAD_DIMS=$d" \
        "-DCMAKE_CUDA_FLAGS=$fl" > /dev/null && cmake --build build-tune-$i -j4 ) > "/tmp/tune-build-$i.log" 2>&1 &
    pids="$pids $!"; i=$((i+1))
  done
  wait $pids
  i=0; dims=""
  for v in $TUNE; do
    IFS=: read -r d bm bn w st cta extra <<< "$v"
    regs=$(grep -A2 "fwd_kernel.*Lb0EEEvNS0" /tmp/tune-build-$i.log | grep -oE "Used [0-9]+ registers|[0-9]+ bytes spill stores" | head -2 | tr '\n' ' ')
    echo "== $v  $regs" | tee -a "$OUT/tune.log"
    if [ -n "${TUNE_SASS:-}" ]; then
      cuobjdump -sass build-tune-$i/libflash.so > /tmp/sass-$i.txt 2>/dev/null
      python3 - /tmp/sass-$i.txt <<'PY' | tee -a "$OUT/tune.log"
import re, sys
cur, stats = None, {}
for line in open(sys.argv[1]):
    m = re.search(r"Function : (\S+)", line)
    if m:
        cur = m.group(1); stats[cur] = {"HMMA": 0, "LDL": 0, "STL": 0, "LDSM": 0, "MUFU": 0, "n": 0}; continue
    if cur is None: continue
    for k in ("HMMA", "LDL", "STL", "LDSM", "MUFU"):
        if re.search(r"\b" + k + r"\b", line): stats[cur][k] += 1
    if re.match(r"\s+/\*[0-9a-f]{4}\*/", line): stats[cur]["n"] += 1
for f, st in stats.items():
    if "fwd_kernel" in f and "Lb0EEEv" in f:
        print("   sass", f[-60:], st)
PY
    fi
    python3 bench/peers.py --lib build-tune-$i/libflash.so --out /tmp/tune-$i --no-peers --dtypes bf16 --hdims $d \
      --seqlens $SEQ --tag "$v" 2>&1 | grep '^{' >> "$OUT/tune.log"
    case " $dims " in *" $d:"*) ;; *) dims="$dims $d:$i";; esac
    i=$((i+1))
  done
  for di in $dims; do
    d=${di%%:*}
    python3 bench/peers.py --lib build-tune-${di##*:}/libflash.so --out /tmp/tune-base --dtypes bf16 --hdims $d --seqlens $SEQ \
      --tag base 2>&1 | grep '^{' >> "$OUT/tune.log" || true
  done
  python3 - "$OUT/tune.log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
base = {(r["hdim"], r["causal"], r["seqlen"]): r.get("sdpa_flash_tflops") for r in rows if r["tag"] == "base"}
print("| variant | causal | seqlen | libflash | FA2 | ratio |")
for r in rows:
    if r["tag"] == "base": continue
    b = base.get((r["hdim"], r["causal"], r["seqlen"]))
    t = r.get("libflash_tflops", float("nan"))
    print(f"| {r['tag']} | {int(r['causal'])} | {r['seqlen']} | {t:.1f} | {b or float('nan'):.1f} | {t / b if b else float('nan'):.2f} |")
PY
  exit 0
fi
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv
  echo "arch=$ARCH head_dims=$HD"
  t0=$(date +%s)
  cmake -S . -B build-dev -G Ninja -DFLASH_CUDA=ON "-DFLASH_CUDA_ARCHS=$ARCH" "-DFLASH_HEAD_DIMS=$HD" \
    -DCMAKE_CUDA_FLAGS="-Xptxas=-v" && cmake --build build-dev -j"$(nproc)"
  rc=$?
  echo "build rc=$rc in $(( $(date +%s) - t0 )) s"
} > "$OUT/build.log" 2>&1
grep -E "build rc" "$OUT/build.log"
if ! grep -q "build rc=0" "$OUT/build.log"; then tail -40 "$OUT/build.log"; exit 1; fi
grep -E "spill stores" "$OUT/build.log" | grep -v " 0 bytes spill stores" | head -5
export LIBFLASH=$ROOT/build-dev/libflash.so
CHECK_RC=skip; SAN_RC=skip
if [ "$MODE" = all ] || [ "$MODE" = check ] || [ "$MODE" = quick ]; then
  Q=""; [ "$MODE" = quick ] && Q="--quick"
  # PTX wrapper unit tests (libflash/cuda/primitives) against host loops of their layout contracts.
  nvcc -std=c++17 -O2 "-gencode=arch=compute_${ARCH},code=sm_${ARCH}" -Ilibflash bench/gpu/test_primitives.cu \
    -o /tmp/test_primitives > "$OUT/check.log" 2>&1 && /tmp/test_primitives >> "$OUT/check.log" 2>&1
  echo "primitives rc=$?" | tee -a "$OUT/check.log"
  if [ "$ARCH" = 90a ]; then
    # sm90 wrappers (TMA, mbarrier, wgmma SS/RS with 128-byte swizzle) used by libflash/cuda/hopper.
    nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -Ilibflash bench/gpu/test_primitives_sm90.cu \
      -o /tmp/test_primitives_sm90 >> "$OUT/check.log" 2>&1 && /tmp/test_primitives_sm90 >> "$OUT/check.log" 2>&1
    echo "primitives sm90 rc=$?" | tee -a "$OUT/check.log"
  fi
  python3 bench/gpu/check_fwd.py $Q --json "$OUT/check.json" >> "$OUT/check.log" 2>&1
  CHECK_RC=$?
  grep -E "^FAIL" "$OUT/check.log" | head -30
fi
if { [ "$MODE" = all ] || [ "$MODE" = check ]; } && [ -f .device/bun.xz ]; then
  # bun test of the TS binding on the GPU (test/gpu_fwd.test.ts); needs `carry: [".device"]`.
  xz -dc .device/bun.xz > /tmp/bun && chmod +x /tmp/bun
  FLASH_LIBRARY_PATH=$LIBFLASH /tmp/bun test test/gpu_fwd.test.ts >> "$OUT/check.log" 2>&1
  echo "bun gpu_fwd rc=$?" | tee -a "$OUT/check.log"
fi
if [ "$MODE" = all ] || [ "$MODE" = sanitize ]; then
  {
    for tool in memcheck racecheck; do
      echo "== $tool"
      compute-sanitizer --tool $tool --print-limit 20 \
        python3 bench/gpu/check_fwd.py --quick --sanitize 2>&1 | grep -vE "^(PASS)" | tail -40
    done
  } > "$OUT/sanitize.log" 2>&1
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Error|error" "$OUT/sanitize.log" | head -10
  SAN_RC=done
fi
if [ "$MODE" = all ] || [ "$MODE" = bench ]; then
  python3 bench/peers.py --out "$OUT" "$@" > "$OUT/peers.log" 2>&1 || tail -20 "$OUT/peers.log"
fi
echo "== summary (checks rc=$CHECK_RC, sanitize=$SAN_RC)"
[ -f "$OUT/check.log" ] && grep -E "passed in|primitives rc|primitives sm90 rc|bun gpu_fwd rc| pass$| fail$" "$OUT/check.log"
[ -f "$OUT/peers.md" ] && cat "$OUT/peers.md"
exit 0
