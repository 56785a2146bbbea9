#!/bin/bash
# The L2-section rule over the causal grid in one device call (bench/NOTES.md steps 57-58): tuning builds of the rule's
# macros (tile_order.h) timed against the tree's sections (shipped since session 40: the rule with equal sections, the
# small ones up to 1536 keys) in one process, causal 512-16k at d64 / d128 / d256, then check_fwd's L2-section cases
# on each variant's build (outputs are also compared between builds by ab_interleave, maxdiff_vs_first in the jsonl,
# which should read 0: the order moves no bits). Hopper path only: the mma.sync path keeps 32 MB sections (fwd.cu passes
# rule = false), so these variants are the same order there (time it with FLASH_SM90=0 and MAX_MB variants).
# Usage (device machine): OUT=dir [VARIANTS="name=flags|..."] [SEQLENS=...] [ROUNDS=2] scripts/l2_rule_ab.sh  (~6 min)
set -u
cd "$(dirname "$0")/.."
export OUT=${OUT:-$PWD/device-out}; mkdir -p "$OUT"
# '|'-separated NAME=FLAGS: the order before session 40 (32 MB sections, unequal), the rule with small sections at
# every length, and the rule with unequal sections
OLD="-DFLASH_L2_SECTION_MB=32 -DFLASH_L2_SECTION_WAVES=0 -DFLASH_L2_SECTION_EQUAL=0 -DFLASH_L2_SECTION_SHORT_SK=0"
VARIANTS=${VARIANTS:-"old=$OLD|rule_eq=-DFLASH_L2_SECTION_SHORT_SK=0|short=-DFLASH_L2_SECTION_EQUAL=0"}
SEQLENS=${SEQLENS:-512,1024,2048,4096,8192,16384}; ROUNDS=${ROUNDS:-2}
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
IFS='|' read -r -a vars <<< "$VARIANTS"
DIMS="64;128;256" JOBS=4 AB_ARGS="--dtypes bf16 --hdims 64,128,256 --seqlens $SEQLENS --causal 1 --rounds $ROUNDS --rep 25" \
  timeout 420 scripts/ab_tune.sh "${vars[@]}" > "$OUT/ab.txt" 2>&1
cat "$OUT/ab.txt"
for v in "${vars[@]}"; do
  n=${v%%=*}
  timeout 40 python3 -u bench/gpu/check_fwd.py --lib "$PWD/build-ab-$n/libflash.so" --only "l2 sections" > "$OUT/check_$n.log" 2>&1
  echo "check_fwd l2 sections ($n) rc=$? $(grep -E 'passed in' "$OUT/check_$n.log" | tail -1)"; grep -E "^FAIL" "$OUT/check_$n.log" | head -3
done
scripts/device_out_pack.sh ab.txt ab_tune.txt ab_tune.jsonl gpu.txt
