#!/bin/bash
# A/B of one source file on the GPU machine, same process conditions: build A = the tree as it is, build B = the
# tree with AB_FILE replaced by AB_COPY; then bench/peers.py on A (with SDPA peers), B (libflash only), A again
# (drift check), bf16. Prints per cell A, B, A', B/A. Usage: AB_FILE=path AB_COPY=path [HDIMS=64,128,256]
# [SEQ=1024,...] [DIMS="64;128;256"] scripts/ab_fwd.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}; mkdir -p "$OUT"
HDIMS=${HDIMS:-64,128,256}; SEQ=${SEQ:-1024,2048,4096,16384}; DIMS=${DIMS:-64;128;256}
rm -rf /tmp/ab-b && mkdir -p /tmp/ab-b && git ls-files -co --exclude-standard | tar cf - -T - | tar xf - -C /tmp/ab-b
cp "$AB_COPY" "/tmp/ab-b/$AB_FILE"
for v in a b; do
  src=$PWD; [ $v = b ] && src=/tmp/ab-b
  ( cmake -S $src -B /tmp/build-ab-$v -G Ninja -DFLASH_CUDA=ON -DFLASH_CUDA_ARCHS=90a "-DFLASH_HEAD_DIMS=$DIMS" > /dev/null &&
    cmake --build /tmp/build-ab-$v -j8 ) > "$OUT/build-$v.log" 2>&1 &
done
wait; tail -1 "$OUT/build-a.log" "$OUT/build-b.log"
python3 bench/peers.py --lib /tmp/build-ab-a/libflash.so --out /tmp/ab-a --dtypes bf16 --hdims $HDIMS --seqlens $SEQ --tag A 2>&1 | grep '^{' > "$OUT/ab.log"
python3 bench/peers.py --lib /tmp/build-ab-b/libflash.so --out /tmp/ab-b1 --no-peers --dtypes bf16 --hdims $HDIMS --seqlens $SEQ --tag B 2>&1 | grep '^{' >> "$OUT/ab.log"
python3 bench/peers.py --lib /tmp/build-ab-a/libflash.so --out /tmp/ab-a2 --no-peers --dtypes bf16 --hdims $HDIMS --seqlens $SEQ --tag A2 2>&1 | grep '^{' >> "$OUT/ab.log"
python3 - "$OUT/ab.log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
t = {}
for r in rows: t.setdefault((r["hdim"], r["causal"], r["seqlen"]), {})[r["tag"]] = r
print("| hdim | causal | seqlen | A | B | A again | B/A | cuDNN | A/cuDNN | B/cuDNN |")
for k in sorted(t):
    a, b, a2 = (t[k].get(x, {}).get("libflash_tflops", float("nan")) for x in ("A", "B", "A2"))
    c = t[k].get("A", {}).get("sdpa_cudnn_tflops") or float("nan")
    print(f"| {k[0]} | {int(k[1])} | {k[2]} | {a:.1f} | {b:.1f} | {a2:.1f} | {b / ((a + a2) / 2):.3f} | {c:.1f} | {a / c:.2f} | {b / c:.2f} |")
PY
