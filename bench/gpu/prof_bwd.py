#!/usr/bin/env python3
"""Per-kernel times of one flash_bwd call (torch.profiler / CUPTI), next to SDPA-flash's backward kernels:
where the backward's time goes (preprocessing, memset, main kernel, dQ conversion). bf16, 16k tokens, hidden
2048 (the bench_bwd.py grid). Usage: prof_bwd.py [--lib PATH] [--cells 64:1:1024,128:0:4096] [--reps 10]"""
import argparse
import collections
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_bwd import BwdLib, fill_bwd_params  # noqa: E402
from flashlib import FwdCall  # noqa: E402


def table(prof, reps):
    acc = collections.defaultdict(float)
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            t = getattr(e, "device_time", None)
            acc[e.name[:70]] += (e.cuda_time if t is None else t) / reps
    tot = sum(acc.values())
    for name, us in sorted(acc.items(), key=lambda kv: -kv[1])[:8]:
        print(f"    {us:9.1f} us  {100 * us / tot:5.1f}%  {name}")
    print(f"    {tot:9.1f} us  total")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    ap.add_argument("--cells", default="64:1:1024,64:0:1024,128:1:1024,128:0:4096")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    lib = BwdLib(args.lib)
    dev = torch.device("cuda")
    for cell in args.cells.split(","):
        d, causal, s = (int(x) for x in cell.split(":"))
        causal = bool(causal)
        b, h = max(1, 16384 // s), 2048 // d
        q, k, v, dout = (torch.randn(b, s, h, d, device=dev, dtype=torch.bfloat16) for _ in range(4))
        fwd = FwdCall(lib, q=q, k=k, v=v, lse=torch.empty(b, h, s, device=dev, dtype=torch.float32), causal=causal)
        fwd()
        fp, o, st = fwd.p, fwd.o, fwd.stream
        dq, dk, dv = (torch.empty_like(q) for _ in range(3))
        bp = fill_bwd_params(lib, fp, dout=dout, dq=dq, dk=dk, dv=dv, deterministic=False)
        n = lib.bwd_workspace_size(bp)
        buf = torch.empty(max(n, 1), dtype=torch.uint8, device=dev)
        for _ in range(3):
            lib.bwd_checked(bp, buf.data_ptr(), n, st)
        torch.cuda.synchronize()
        print(f"d{d} causal{int(causal)} s{s} (b{b} h{h}) libflash [{lib.last_kernel()}]")
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(args.reps):
                lib.bwd_checked(bp, buf.data_ptr(), n, st)
            torch.cuda.synchronize()
        table(prof, args.reps)
        qt, kt, vt = (x.detach().transpose(1, 2).requires_grad_() for x in (q, k, v))
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
            g = lambda: torch.autograd.grad(out, (qt, kt, vt), dout.transpose(1, 2), retain_graph=True)  # noqa: E731
            for _ in range(3):
                g()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(args.reps):
                    g()
                torch.cuda.synchronize()
        print("  SDPA-flash backward")
        table(prof, args.reps)
        del q, k, v, dout, o, dq, dk, dv, buf, fwd, out, qt, kt, vt
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
