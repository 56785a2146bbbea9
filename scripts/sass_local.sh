#!/bin/bash
# The SASS of Hopper kernels on this machine, without the GPU machine's cuobjdump: one generated instantiation file
# compiled to an sm_90a cubin with the library build's CUDA flags (as scripts/spill_report.sh does), then disassembled
# by nvdisasm. The one Debian 12 ships (non-free nvidia-cuda-toolkit, CUDA 11.8; --install fetches it into .tools/)
# reads only the ELF header of cubins from before CUDA 12.8 (OS ABI 0x33 version 7, the arch in e_flags as
# 0xNN00NN), so the header of a copy is rewritten to that form; the sections and the sm_90 encoding are the same, and
# the 11.8 disassembler decodes the sm_90a instructions the kernels use (HGMMA, SYNCS, UTMALDG, USETMAXREG, STSM).
# Usage: scripts/sass_local.sh [--install] [--waits | --check] FILE [NVCC_FLAGS...]   (--install alone: fetch only)
#   FILE: a file name in libflash/cuda/hopper/generated/ (or a path to a .cu file); NVCC_FLAGS: A/B switches
#   (-DFLASH_SM90_AHEAD=0). Prints the SASS, or with --waits per kernel the wgmma skeleton: each group of HGMMAs
#   (S = Q K^T or P V), each wait (WARPGROUP.DEPBAR) and named barrier sync, with how many MUFU.EX2 / FMNMX / FSEL
#   ran since the previous wait -- where ptxas placed a wait relative to a softmax (bench/NOTES.md step 59).
#   --check: one line per kernel, "CFG loop_sites=N loop_hoisted=H ahead_sites=A ahead_hoisted=B" (CFG: the
#   Sm90Cfg and kernel template arguments of the mangled name). A loop site is the overlapped key loop's issue of
#   S(j) and P V(j-1) followed by wait<1>; an ahead site two blocks' S GEMMs followed by wait<1>. Either is hoisted
#   when no exponential (MUFU.EX2) lies between that wait and the next one, i.e. ptxas moved the later wait above
#   the softmax that was meant to run under the GEMM still in flight. (Address order, not control flow: the
#   kernels lay these sequences out straight.)
# Env NVDISASM: the disassembler (default .tools/nvdisasm, then nvdisasm in PATH).
set -uo pipefail
cd "$(dirname "$0")/.."
install=0 waits=0 check=0
while [ $# -gt 0 ]; do
  case $1 in
    --install) install=1; shift;;
    --waits) waits=1; shift;;
    --check) waits=1; check=1; shift;;
    *) break;;
  esac
done
if [ "$install" = 1 ] && [ ! -x .tools/nvdisasm ]; then
  # Debian's non-free component carries the toolkit; only its nvdisasm is kept (no dependencies installed).
  if ! apt-cache policy nvidia-cuda-toolkit 2> /dev/null | grep -q 'Candidate: [0-9]'; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/libflash-nonfree.sources && apt-get update -qq || exit 2
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq nvidia-cuda-toolkit 2> /dev/null && dpkg-deb -x nvidia-cuda-toolkit_*.deb x) || exit 2
  mkdir -p .tools && cp "$tmp/x/usr/bin/nvdisasm" .tools/nvdisasm && rm -rf "$tmp" || exit 2
fi
[ $# -gt 0 ] || [ "$install" = 0 ] || exit 0 # --install alone: fetch the disassembler only
f=${1:?usage: $0 [--install] [--waits | --check] FILE [NVCC_FLAGS...]}
shift
[ -f "$f" ] || f=libflash/cuda/hopper/generated/$f
[ -f "$f" ] || { echo "no such file: $f" >&2; exit 2; }
dis=${NVDISASM:-}
[ -n "$dis" ] || { [ -x .tools/nvdisasm ] && dis=.tools/nvdisasm; }
[ -n "$dis" ] || dis=$(command -v nvdisasm) || { echo "nvdisasm not found: run with --install" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
defs="-DFLASH_BUILDING_LIBRARY -DFLASH_WITH_CUDA -DFLASH_WITH_CUDA_KERNELS -DFLASH_HAS_SM90A"
for d in 32 64 96 128 192 256; do defs="$defs -DFLASH_HDIM_$d"; done
nvcc -std=c++17 -O3 --use_fast_math --expt-relaxed-constexpr -gencode=arch=compute_90a,code=sm_90a -cubin $defs "$@" \
  -Iinclude -Ilibflash "$f" -o "$tmp/k.cubin" > "$tmp/nvcc.log" 2>&1 || { cat "$tmp/nvcc.log" >&2; exit 2; }
python3 - "$tmp/k.cubin" << 'EOF' || exit 2
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
assert b[:4] == b'\x7fELF' and struct.unpack_from('<H', b, 18)[0] == 190, 'not a CUDA cubin'
sm = struct.unpack_from('<I', b, 48)[0] >> 8 & 0xff  # CUDA 12.8+ e_flags: the arch in bits 8-15
assert sm == 90, 'expected an sm_90a cubin, e_flags 0x%x' % struct.unpack_from('<I', b, 48)[0]
b[7], b[8] = 0x33, 7
struct.pack_into('<I', b, 20, 118)
struct.pack_into('<I', b, 48, sm << 16 | 0x500 | sm)
open(sys.argv[1], 'wb').write(b)
EOF
"$dis" -c "$tmp/k.cubin" > "$tmp/k.sass" || exit 2
if [ "$waits" = 0 ]; then cat "$tmp/k.sass"; exit 0; fi
awk '
  function flush_group() { if (ng) { printf "  %s x%d\n", gk, ng; ng = 0 } }
  /^\.text\./ { flush_group(); name = $0; sub(/^\.text\./, "", name); sub(/:$/, "", name); print name; mu = mx = fs = 0; next }
  /^ +\/\*[0-9a-f]+\*\// {
    line = $0; sub(/^ +\/\*[0-9a-f]+\*\/ +/, "", line); op = line; sub(/^@!?U?P[0-9T] +/, "", op); split(op, a, " "); o = a[1]
    if (o ~ /^HGMMA/) { k = line ~ /tnspB/ ? "HGMMA P V" : "HGMMA S"; if (ng && k != gk) flush_group(); gk = k; ng++; next }
    if (o ~ /^(WARPGROUP\.DEPBAR|BAR\.SYNC|MUFU\.EX2|FMNMX|FSEL|STL|LDL)/) flush_group() # other instructions join a group
    if (o ~ /^WARPGROUP\.DEPBAR/) { w = line; sub(/ *;.*/, "", w); printf "  %s  (since the last wait: MUFU.EX2 %d, FMNMX %d, FSEL %d)\n", w, mu, mx, fs; mu = mx = fs = 0 }
    else if (o ~ /^BAR\.SYNC/) print "  BAR.SYNC"
    else if (o ~ /^MUFU\.EX2/) mu++
    else if (o ~ /^FMNMX/) mx++
    else if (o ~ /^FSEL/) fs++
    else if (o ~ /^(STL|LDL)/) print "  local memory: " line
  }
  END { flush_group() }' "$tmp/k.sass" > "$tmp/k.waits"
[ "$check" = 1 ] || { cat "$tmp/k.waits"; exit 0; }
awk '
  function report() {
    if (name == "") return
    ls = lh = as = ah = 0; smin = 0
    for (i = 1; i <= n; ++i) if (kind[i] == "S" && (smin == 0 || cnt[i] < smin)) smin = cnt[i]
    for (i = 1; i <= n; ++i) {
      if (kind[i] != "W1") continue
      site = ""
      if (i > 2 && kind[i - 1] == "PV" && kind[i - 2] == "S") site = "loop"
      else if (i > 1 && kind[i - 1] == "S" && cnt[i - 1] >= 2 * smin) site = "ahead"
      if (site == "") continue
      for (j = i + 1; j <= n && kind[j] != "W0" && kind[j] != "W1"; ++j) {}
      hoisted = j > n || mufu[j] == 0
      if (site == "loop") { ls++; lh += hoisted } else { as++; ah += hoisted }
    }
    printf "%s loop_sites=%d loop_hoisted=%d ahead_sites=%d ahead_hoisted=%d\n", name, ls, lh, as, ah
  }
  /^[^ ]/ { report(); name = $0; sub(/.*Sm90CfgILi/, "", name); sub(/EEEvNS.*/, "", name); n = 0; next }
  /HGMMA S x/ { kind[++n] = "S"; cnt[n] = substr($3, 2) + 0; next }
  /HGMMA P V x/ { kind[++n] = "PV"; next }
  /WARPGROUP.DEPBAR/ { m = $0; sub(/.*MUFU.EX2 /, "", m); sub(/,.*/, "", m); kind[++n] = ($0 ~ /0x1 / ? "W1" : "W0"); mufu[n] = m + 0; next }
  /BAR.SYNC/ { kind[++n] = "B"; next }
  END { report() }' "$tmp/k.waits"
