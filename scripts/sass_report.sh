#!/bin/bash
# What the GPU runs, read from the built library's SASS (needs cuobjdump: the GPU machine has it, this 2-core machine
# does not): per kernel family, how many kernels issue HGMMA (wgmma) or HMMA (mma.sync), and every kernel that
# touches local memory (LDL / STL: spills or a stack array). Issue 7 asks for HGMMA and no local memory in the Hopper
# kernels; ptxas's report (scripts/spill_report.sh) says the same before the link, this reads the linked library.
# Usage: scripts/sass_report.sh LIB [FAMILY_REGEX]   (default family: fwd_sm90|bwd_sm90)
# Slow: cuobjdump dumps every kernel of the library (~2.5 min per call for a build of every head dim on the H100
# machine), so call it once per regex that covers what you need.
# Prints "family kernels=N hgmma=H hmma=M local=L" per family, then up to 20 kernels with local memory; exit 1 when
# a kernel of the families has local memory or an sm90 kernel has no HGMMA.
set -uo pipefail
lib=${1:?usage: $0 LIB [FAMILY_REGEX]}
fam=${2:-fwd_sm90|bwd_sm90}
command -v cuobjdump > /dev/null || { echo "cuobjdump not found" >&2; exit 2; }
cuobjdump -sass "$lib" | awk -v fam="$fam" '
  # One "Function : <mangled>" header per kernel; instructions follow until the next header.
  /Function : / { name = $NF; fn = ""; if (match(name, fam)) { fn = substr(name, RSTART, RLENGTH); n[fn]++; id = name } next }
  fn == "" { next }
  /HGMMA/ { if (!(id in hg)) { hg[id] = 1; H[fn]++ } }
  /HMMA/ && !/HGMMA/ { if (!(id in hm)) { hm[id] = 1; M[fn]++ } }
  /[^A-Z](LDL|STL)[. ]/ { if (!(id in lc)) { lc[id] = 1; L[fn]++; bad[++nb] = id } }
  END {
    rc = 0
    for (f in n) {
      printf "%s kernels=%d hgmma=%d hmma=%d local=%d\n", f, n[f], H[f] + 0, M[f] + 0, L[f] + 0
      if (L[f] > 0 || (f ~ /sm90/ && H[f] != n[f])) rc = 1
    }
    for (i = 1; i <= nb && i <= 20; ++i) print "local memory: " bad[i]
    exit rc
  }'
