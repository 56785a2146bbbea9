#!/bin/bash
# The integration run after a merge (GPU machine, one call): one build of every head dim, the primitive tests,
# every correctness script (forward, backward incl. deterministic repeats, KV cache), compute-sanitizer
# (memcheck, racecheck, synccheck) on the libflash-only workloads, and the GPU-gated bun suites.
# Usage: OUT=dir scripts/verify_device.sh [steps]  steps: build prim check sanitize bun (default: all)
# Files under $OUT past the 8 a device call returns go into $OUT/bundle.tgz (scripts/device_out_pack.sh).
set -uo pipefail
STEPS=${*:-build prim check sanitize bun}
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
export LIBFLASH=$PWD/build-all/libflash.so
if has build; then
  t0=$(date +%s)
  { cmake -S . -B build-all -G Ninja -DFLASH_CUDA=ON -DFLASH_CUDA_ARCHS=90a -DCMAKE_CUDA_FLAGS=-Xptxas=-v > /dev/null &&
    timeout 400 cmake --build build-all -j16; } > "$OUT/build.log" 2>&1
  echo "build rc=$? in $(( $(date +%s) - t0 )) s"
  grep -E "spill stores" "$OUT/build.log" | grep -v " 0 bytes spill" | sort | uniq -c | sort -rn | head -5
  # C7518 and friends: ptxas serialized every wgmma of a kernel (a 20-30% loss, bench/NOTES.md step 10)
  grep -oE "\(C75[0-9]+\)[^']*'[^']*'" "$OUT/build.log" | sort | uniq -c | head -5
fi
if has prim; then
  { nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -Ilibflash bench/gpu/test_primitives.cu -o /tmp/tp &&
    timeout 60 /tmp/tp; echo "primitives rc=$?"
    nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -Ilibflash bench/gpu/test_primitives_sm90.cu -o /tmp/tp90 &&
    timeout 60 /tmp/tp90; echo "primitives sm90 rc=$?"; } > "$OUT/prim.log" 2>&1
  grep -E "rc=" "$OUT/prim.log"
  # a test kernel whose wgmmas ptxas serialized would still pass, but no longer tests the overlap it names
  grep -oE "\(C75[0-9]+\)[^']*'[^']*'" "$OUT/prim.log" | sort | uniq -c | head -5
fi
if has check; then
  for c in "check_fwd.py" "check_bwd.py --det-reps 20" "check_kvcache.py"; do
    name=${c%%.py*}
    timeout 300 python3 bench/gpu/$c --json "$OUT/$name.json" > "/tmp/$name.log" 2>&1
    echo "$name rc=$? $(grep -E 'passed in' /tmp/$name.log | tail -1)"; grep -E "^FAIL" "/tmp/$name.log" | head -5
  done
  # the decode-shaped cases once more on the forward kernels (the run above sends them to the decode kernel)
  FLASH_FWD_DECODE=0 timeout 300 python3 bench/gpu/check_fwd.py --json "$OUT/check_fwd_nodecode.json" > /tmp/check_fwd_nodecode.log 2>&1
  echo "check_fwd FLASH_FWD_DECODE=0 rc=$? $(grep -E 'passed in' /tmp/check_fwd_nodecode.log | tail -1)"
  grep -E "^FAIL" /tmp/check_fwd_nodecode.log | head -5
  # every case on the sm80 kernel (the Hopper path off), as on sm80-class GPUs
  FLASH_SM90=0 timeout 300 python3 bench/gpu/check_fwd.py --json "$OUT/check_fwd_sm80.json" > /tmp/check_fwd_sm80.log 2>&1
  echo "check_fwd FLASH_SM90=0 rc=$? $(grep -E 'passed in' /tmp/check_fwd_sm80.log | tail -1)"
  grep -E "^FAIL" /tmp/check_fwd_sm80.log | head -5
fi
if has sanitize; then
  {
    for tool in memcheck racecheck synccheck; do
      echo "== $tool bwd"; timeout 300 compute-sanitizer --tool $tool --kernel-name kns=bwd --print-limit 10 \
        python3 bench/gpu/sanitize_bwd.py 2>&1 | grep -vE "^ok " | tail -6
    done
    echo "== racecheck fwd_sm90"; timeout 200 compute-sanitizer --tool racecheck --kernel-name kns=fwd_sm90 \
      --print-limit 10 python3 bench/gpu/sanitize_fwd.py 2>&1 | grep -vE "^ok " | tail -4
    # synccheck: the Hopper forward's named barriers (ping-pong, epilogue) and the mma.sync kernels' __syncthreads
    echo "== synccheck fwd_sm90"; timeout 200 compute-sanitizer --tool synccheck --kernel-name kns=fwd_sm90 \
      --print-limit 10 python3 bench/gpu/sanitize_fwd.py 2>&1 | grep -vE "^ok " | tail -4
    echo "== synccheck fwd_kernel (FLASH_SM90=0)"; FLASH_SM90=0 timeout 200 compute-sanitizer --tool synccheck \
      --kernel-name kns=fwd_kernel --print-limit 10 python3 bench/gpu/sanitize_fwd.py 2>&1 | grep -vE "^ok " | tail -4
    # the same calls on the mma.sync kernels (the Hopper path off): their cp.async ring and barriers
    echo "== racecheck fwd_kernel (FLASH_SM90=0)"; FLASH_SM90=0 timeout 200 compute-sanitizer --tool racecheck \
      --kernel-name kns=fwd_kernel --print-limit 10 python3 bench/gpu/sanitize_fwd.py 2>&1 | grep -vE "^ok " | tail -4
    # memcheck on the forward kernels and the split-KV combine (their global stores: partials, packed rows)
    echo "== memcheck fwd"; timeout 200 compute-sanitizer --tool memcheck --kernel-name kns=fwd \
      --print-limit 10 python3 bench/gpu/sanitize_fwd.py 2>&1 | grep -vE "^ok " | tail -4
  } > "$OUT/sanitize.log" 2>&1
  grep -E "^==|ERROR SUMMARY|RACECHECK SUMMARY|calls OK|Error|error" "$OUT/sanitize.log" | head -40
fi
if has bun; then
  xz -dc .device/bun.xz > /tmp/bun && chmod +x /tmp/bun
  FLASH_LIBRARY_PATH=$LIBFLASH timeout 300 /tmp/bun test test/gpu_fwd.test.ts test/gpu_bwd.test.ts \
    test/gpu_kvcache.test.ts test/paged.test.ts test/last_kernel.test.ts test/kvcache_seqlens_number.test.ts > "$OUT/bun.log" 2>&1
  echo "bun rc=$?"; grep -E "^ *[0-9]+ (pass|fail)|^\(fail\)" "$OUT/bun.log" | head -8
  FLASH_FWD_DECODE=0 FLASH_LIBRARY_PATH=$LIBFLASH timeout 200 /tmp/bun test test/gpu_fwd.test.ts > "$OUT/bun_nodecode.log" 2>&1
  echo "bun gpu_fwd FLASH_FWD_DECODE=0 rc=$?"; grep -E "^ *[0-9]+ (pass|fail)|^\(fail\)" "$OUT/bun_nodecode.log" | head -4
  # The API fuzz on device buffers, with the device index arrays read and checked (FLASH_CHECK_INDICES=1) and without.
  for ci in 1 0; do
    FLASH_CHECK_INDICES=$ci FLASH_LIBRARY_PATH=$LIBFLASH timeout 200 /tmp/bun test test/gpu_api_fuzz.test.ts > "$OUT/bun_fuzz$ci.log" 2>&1
    echo "bun gpu_api_fuzz FLASH_CHECK_INDICES=$ci rc=$?"; grep -E "^ *[0-9]+ (pass|fail)|^\(fail\)" "$OUT/bun_fuzz$ci.log" | head -4
  done
  FLASH_LIBRARY_PATH=$LIBFLASH timeout 120 /tmp/bun bench/backward_example.ts > "$OUT/bwd_example.log" 2>&1
  echo "backward example rc=$?"; tail -2 "$OUT/bwd_example.log"
fi
# a device call returns 8 files at most: past that, all but these go into $OUT/bundle.tgz (VERIFY_PACK=0: leave them)
if [ "${VERIFY_PACK:-1}" = 1 ]; then
  OUT=$OUT bash scripts/device_out_pack.sh build.log prim.log check_fwd.json sanitize.log bun.log
fi
