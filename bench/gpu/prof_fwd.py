#!/usr/bin/env python3
"""One forward cell at a time, for profilers: libflash (through flashlib), SDPA cuDNN or SDPA flash (FA2) on the
peer grid's shapes (bf16, 16k tokens, hidden 2048). Without --ncu it prints each implementation's kernels with
their device times (torch.profiler); with --ncu it runs --warm calls and then exactly one more, so that
`ncu --launch-skip` can pick the timed launch. Usage:
  prof_fwd.py [--lib PATH] [--cells 128:1:512,...] [--impls libflash,cudnn,flash] [--reps 10]
  ncu -k regex:... --launch-skip 3 --launch-count 1 prof_fwd.py --ncu --impls cudnn --cells 128:1:512"""
import argparse
import collections
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import FwdCall, Lib  # noqa: E402

BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}


def make_call(impl, lib, d, causal, s):
    b, h = max(1, 16384 // s), 2048 // d
    q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    if impl == "libflash":
        return FwdCall(lib, q=q, k=k, v=v, lse=torch.empty(b, h, s, device="cuda", dtype=torch.float32), causal=causal)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def call():
        with sdpa_kernel([BACKENDS[impl]]):
            return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
    return call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    ap.add_argument("--cells", default="128:1:512,128:1:1024,128:0:1024")
    ap.add_argument("--impls", default="libflash,cudnn,flash")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--ncu", action="store_true")
    args = ap.parse_args()
    impls = args.impls.split(",")
    lib = Lib(args.lib) if "libflash" in impls else None
    for cell in args.cells.split(","):
        d, causal, s = (int(x) for x in cell.split(":"))
        flops = 4 * (16384 // s) * (2048 // d) * s * s * d / (2 if causal else 1)
        for impl in impls:
            call = make_call(impl, lib, d, bool(causal), s)
            for _ in range(args.warm):
                call()
            torch.cuda.synchronize()
            if args.ncu:
                call()
                torch.cuda.synchronize()
                continue
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(args.reps):
                    call()
                torch.cuda.synchronize()
            acc = collections.defaultdict(float)
            for e in prof.events():
                if e.device_type == torch.autograd.DeviceType.CUDA:
                    t = getattr(e, "device_time", None)
                    acc[e.name[:110]] += (e.cuda_time if t is None else t) / args.reps
            tot = sum(acc.values())
            extra = f" [{lib.last_kernel()}]" if impl == "libflash" else ""
            print(f"d{d} causal{causal} s{s} {impl}{extra}: {tot:.1f} us, {flops / tot / 1e6:.1f} TFLOP/s")
            for name, us in sorted(acc.items(), key=lambda kv: -kv[1])[:4]:
                print(f"    {us:9.1f} us  {name}")


if __name__ == "__main__":
    main()
