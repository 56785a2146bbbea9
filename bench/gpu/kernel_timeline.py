#!/usr/bin/env python3
"""Device timeline of flash_fwd calls (torch.profiler / CUPTI): per build and grid cell, `--iters` calls back to
back, then for each kernel of a call its start relative to the call's first kernel and its duration (medians
over the calls), and the span from the first kernel's start to the last one's end. Shows where a multi-launch
path (the Hopper tail split: main grid, pieces, combine) spends its time and whether the launches overlap.
Usage: kernel_timeline.py --libs A=path[,B=path] [--dtype bf16] [--hdims 128] [--seqlens 4096] [--causal 0]
"""
import argparse
import os
import re
import statistics
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import FwdCall, Lib  # noqa: E402


def short(name):
    if "fwd_tail_combine" in name:
        return "tail_combine"
    if "fwd_combine" in name:
        return "combine"
    if "fwd_sm90_kernel" in name:  # the last template arguments are kPack, kSplit (demangled or mangled)
        split = re.search(r"(true|1), (true|1)>\(", name) or name.endswith("Lb1ELb1EEEvNS1_10Sm90ParamsE")
        return "sm90_split" if split else "sm90"
    return name[:40]


def timeline(call, iters):
    """Per kernel of one call: (name, start, duration, end) in us relative to the call's first kernel start
    (medians over the calls), and the median span of a call."""
    for _ in range(3):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            call()
        torch.cuda.synchronize()
    ev = sorted((e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
                 and "emset" not in e.name), key=lambda e: e.time_range.start)
    n = len(ev) // iters
    calls = [ev[i * n:(i + 1) * n] for i in range(iters)]
    rows = []
    for j in range(n):
        t0 = [c[0].time_range.start for c in calls]
        st = statistics.median(c[j].time_range.start - a for c, a in zip(calls, t0))
        du = statistics.median(c[j].time_range.end - c[j].time_range.start for c in calls)
        en = statistics.median(c[j].time_range.end - a for c, a in zip(calls, t0))
        rows.append((short(calls[0][j].name), st, du, en))
    span = statistics.median(max(e.time_range.end for e in c) - c[0].time_range.start for c in calls)
    return rows, span


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libs", required=True)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--hdims", default="128")
    ap.add_argument("--seqlens", default="4096")
    ap.add_argument("--causal", default="0")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    libs = [(n, Lib(p)) for n, p in (x.split("=", 1) for x in args.libs.split(","))]
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    for hd in map(int, args.hdims.split(",")):
        for s in map(int, args.seqlens.split(",")):
            for causal in map(int, args.causal.split(",")):
                b, h = 16384 // s, 2048 // hd
                torch.manual_seed(0)
                q, k, v = (torch.randn(b, s, h, hd, device="cuda", dtype=dt) for _ in range(3))
                lse = torch.empty(b, h, s, device="cuda", dtype=torch.float32)
                for name, lib in libs:
                    call = FwdCall(lib, q=q, k=k, v=v, lse=lse, causal=bool(causal))
                    rows, span = timeline(call, args.iters)
                    parts = "  ".join(f"{nm} {st:.1f}-{en:.1f} ({du:.1f})" for nm, st, du, en in rows)
                    print(f"{args.dtype} d{hd} s{s} causal{causal} {name}: span {span:.1f} us | {parts}", flush=True)


if __name__ == "__main__":
    main()
