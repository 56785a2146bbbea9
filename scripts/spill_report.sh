#!/bin/bash
# The Hopper kernels' resource report without a GPU: every generated instantiation file of one family compiled to
# an sm_90a cubin with the library build's CUDA flags, ptxas -v parsed per kernel. ptxas output depends only on
# the source and the nvcc version, so this is the report the GPU build prints (bench/NOTES.md, "Resource report").
# Usage: scripts/spill_report.sh [--family fwd_sm90|bwd_sm90] [--dtype bf16|fp16|all] [-j N]
# Prints one line per kernel with spills ("file  template-args  stores  loads", bytes), one per kernel whose wgmmas
# ptxas serialized ("file  template-args  C75xx": a C7514 / C7515 warning, a 20-30% loss, bench/NOTES.md steps 10 and
# 59), then the summary line "kernels=N spilling=M serialized=K". Exit 2 when a file does not compile. Env
# EXTRA_DEFS: more nvcc flags, e.g. an A/B switch (EXTRA_DEFS=-DFLASH_SM90_SPEC=2).
set -uo pipefail
cd "$(dirname "$0")/.."
family=fwd_sm90 dtype=all jobs=$(nproc)
while [ $# -gt 0 ]; do
  case $1 in
    --family) family=${2:?--family needs a value}; shift 2;;
    --dtype) dtype=${2:?--dtype needs a value}; shift 2;;
    -j) jobs=${2:?-j needs a value}; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
command -v nvcc > /dev/null || { echo "nvcc not found" >&2; exit 2; }
pat="^${family}_"; [ "$dtype" = all ] || pat="^${family}_${dtype}_"
dir=libflash/cuda/hopper/generated
files=$(ls $dir | grep -E "$pat" | grep -E '\.cu$')
[ -n "$files" ] || { echo "no files match $pat in $dir" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Every head dim's switch: a file compiles only its own instantiation, the defines just keep it from being pruned.
defs="-DFLASH_BUILDING_LIBRARY -DFLASH_WITH_CUDA -DFLASH_WITH_CUDA_KERNELS -DFLASH_HAS_SM90A"
for d in 32 64 96 128 192 256; do defs="$defs -DFLASH_HDIM_$d"; done
defs="$defs ${EXTRA_DEFS:-}"
export tmp defs dir
compile() {
  local f=$1
  if ! nvcc -std=c++17 -O3 --use_fast_math -lineinfo --expt-relaxed-constexpr -gencode=arch=compute_90a,code=sm_90a \
      -cubin -Xptxas=-v $defs -Iinclude -Ilibflash "$dir/$f" -o "$tmp/$f.cubin" > "$tmp/$f.log" 2>&1; then
    echo "COMPILE-ERROR $f"; return
  fi
  # ptxas prints "Compiling entry function '<mangled>'" then "N bytes stack frame, S bytes spill stores, L bytes
  # spill loads". The kernel is named by one token: the forward's Sm90Cfg arguments (the readable part), else the
  # whole mangled name.
  awk -v f="$f" '/Compiling entry function/ { k = $0; sub(/^[^'"'"']*'"'"'/, "", k); sub(/'"'"'.*/, "", k)
                                              if (k ~ /Sm90CfgILi/) { sub(/.*Sm90CfgILi/, "", k); sub(/EEEvNS.*/, "", k) } }
                 /spill stores/ { print "KERNEL", f, k, $5, $9 }
                 /\(C75[0-9]+\)/ { c = $0; sub(/^[^(]*\(/, "", c); sub(/\).*/, "", c)
                                   w = $0; sub(/.*function '"'"'/, "", w); sub(/'"'"'.*/, "", w)
                                   if (w ~ /Sm90CfgILi/) { sub(/.*Sm90CfgILi/, "", w); sub(/EEEvNS.*/, "", w) }
                                   print "SERIALIZED", f, w, c }' "$tmp/$f.log"
}
export -f compile
echo "$files" | xargs -P "$jobs" -I{} bash -c 'compile {}' > "$tmp/all.txt"
if grep -q '^COMPILE-ERROR' "$tmp/all.txt"; then
  grep '^COMPILE-ERROR' "$tmp/all.txt" >&2; exit 2
fi
awk '$1 == "KERNEL" && ($4 != "0" || $5 != "0") { print $2, $3, $4, $5 }' "$tmp/all.txt" | sort
awk '$1 == "SERIALIZED" { print $2, $3, $4 }' "$tmp/all.txt" | sort -u
awk '$1 == "KERNEL" { n++; if ($4 != "0" || $5 != "0") s++ } $1 == "SERIALIZED" { w[$2 " " $3] = 1 }
     END { printf "kernels=%d spilling=%d serialized=%d\n", n, s, length(w) }' "$tmp/all.txt"
