#!/bin/bash
# The L2-section question in one device call (bench/NOTES.md "Next on this path", L2 sections): tuning builds of
# FLASH_L2_SECTION_MB (tile_order.h; shipped 32) timed against the base in one process at causal 512-2k, then ncu's
# DRAM bytes and L2 hit rate of the D:causal:512 cell for the base, the 16 MB build and cuDNN, which say whether
# the cell re-reads K/V from DRAM (unique bytes at 16k tokens x 2048 hidden: 134 MB of K/V + 134 MB of Q / O).
# Usage (device machine): OUT=dir [D=64] [SECTIONS="8 16 48"] [ROUNDS=4] scripts/l2_section_ab.sh   (~6 min at d64)
set -u
cd "$(dirname "$0")/.."
export OUT=${OUT:-$PWD/device-out}; mkdir -p "$OUT"
D=${D:-64}; SECTIONS=${SECTIONS:-8 16 48}; ROUNDS=${ROUNDS:-4}
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
vars=(); for m in $SECTIONS; do vars+=("m$m=-DFLASH_L2_SECTION_MB=$m"); done
DIMS=$D JOBS=4 AB_ARGS="--dtypes bf16,fp16 --hdims $D --seqlens 512,1024,2048 --causal 1 --rounds $ROUNDS --rep 30" \
  timeout 290 scripts/ab_tune.sh "${vars[@]}" > "$OUT/ab.txt" 2>&1
cat "$OUT/ab.txt"
prof() { # name lib impls
  OUT=$OUT/prof_$1 LIB=$2 CELLS=$D:1:512 IMPLS=$3 timeout 65 scripts/prof_fwd.sh > "$OUT/prof_$1.txt" 2>&1
  echo "== prof $1"; grep -E "Duration|dram__bytes|lts__t_sector_hit" "$OUT/prof_$1.txt"
}
prof base "$PWD/build-ab-base/libflash.so" libflash
[ -f build-ab-m16/libflash.so ] && prof m16 "$PWD/build-ab-m16/libflash.so" libflash
prof cudnn "$PWD/build-ab-base/libflash.so" cudnn
scripts/device_out_pack.sh ab.txt ab_tune.txt ab_tune.jsonl prof_base.txt prof_m16.txt prof_cudnn.txt gpu.txt
