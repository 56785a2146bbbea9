#!/usr/bin/env python3
"""Where a Hopper forward tile's time goes: runs one peer-grid cell on a -DFLASH_SM90_TRACE build (clock64 at fixed
points of each warpgroup's first 32 tiles, hopper/fwd_sm90_kernel.cuh) and prints median cycles per phase.
Usage: trace_fwd.py --lib build-trace/libflash.so [--cells 128:0:512,128:1:512]"""
import argparse, os, statistics, sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import FwdCall, Lib  # noqa: E402

PH = [("Q wait", 0, 1), ("first K wait", 1, 2), ("first S GEMM", 2, 3), ("first softmax", 3, 4),
      ("key loop (nt-1 blocks)", 4, 5), ("last P V", 5, 6), ("epilogue", 6, 7)]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


ap = argparse.ArgumentParser()
ap.add_argument("--lib")
ap.add_argument("--cells", default="128:0:512,128:0:1024,128:1:512,128:0:16384")
a = ap.parse_args()
lib = Lib(a.lib)
for cell in a.cells.split(","):
    d, causal, s = (int(x) for x in cell.split(":"))
    b, h = 16384 // s, 2048 // d
    q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    call = FwdCall(lib, q=q, k=k, v=v, causal=bool(causal))
    for _ in range(3):
        call()
    torch.cuda.synchronize()
    f = "/tmp/trace.bin"
    os.environ["FLASH_SM90_TRACE_FILE"] = f
    call()
    torch.cuda.synchronize()
    del os.environ["FLASH_SM90_TRACE_FILE"]
    t = np.fromfile(f, dtype=np.int64).reshape(-1, 3, 32, 16)
    ctas = t.shape[0]
    print(f"== d{d} causal{causal} s{s}: {ctas} CTAs, [{lib.last_kernel()}]")
    for role in (1, 2):
        ph = {name: [] for name, _, _ in PH}
        first = {name: [] for name, _, _ in PH}
        gap, period, total, per_block = [], [], [], []
        for c in range(ctas):
            ev = t[c, role]
            nt_used = int((ev[:, 0] != 0).sum())
            for i in range(nt_used):
                e = ev[i]
                if not (e[7] and e[0]):
                    continue
                dst = first if i == 0 else ph
                for name, x, y in PH:
                    if e[x] and e[y]:
                        dst[name].append(e[y] - e[x])
                total.append(e[7] - e[0])
                if i + 1 < nt_used and ev[i + 1, 0]:
                    gap.append(ev[i + 1, 0] - e[7])
                    period.append(ev[i + 1, 0] - e[0])
        print(f"  consumer {role - 1}: tiles traced {len(total)}; median cycles per phase (first tile of a CTA in brackets)")
        for name, _, _ in PH:
            print(f"    {name:24s} {med(ph[name]):9.0f}   [{med(first[name]):9.0f}]")
        print(f"    {'fetch -> next tile':24s} {med(gap):9.0f}")
        print(f"    {'tile total / period':24s} {med(total):9.0f} / {med(period):9.0f}")
    pr = t[:, 0]
    qw = [e[9] - e[8] for c in pr for e in c if e[8] and e[9]]
    kv = [e[10] - e[9] for c in pr for e in c if e[9] and e[10]]
    print(f"  producer: Q slot wait {med(qw):.0f}, K/V issue span {med(kv):.0f}")
    del q, k, v, call
