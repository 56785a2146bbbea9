#!/usr/bin/env python3
"""Is a dtype gap a clock gap? Runs one peer-grid cell back to back for --seconds per (dtype, implementation)
while nvidia-smi samples the SM clock and board power every 50 ms, and prints per run the TFLOP/s (CUDA events
over the whole loop) beside the median clock and power. On the session-24 grid libflash's fp16 cells ran ~4%
below its bf16 ones where SDPA cuDNN's did not (bench/NOTES.md "Hopper forward" step 41): if fp16's clock is that
much lower, the tensor cores' power (fp16's longer mantissas toggle more bits) sets the gap, not the code.
Usage: clock_probe.py --lib build/libflash.so [--cells 128:0:16384,256:0:16384] [--seconds 4] [--impls ours,cudnn]"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import FwdCall, Lib  # noqa: E402


def sampled(fn, seconds):
    """Runs fn back to back for `seconds` under nvidia-smi sampling; returns (ms per call, clocks MHz, watts)."""
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits",
                            "-lms", "50"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # nvidia-smi's first samples come late; the loop below must lie inside the sampled window
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    n, t0 = 0, time.time()
    start.record()
    while time.time() - t0 < seconds:
        for _ in range(20):
            fn()
        n += 20
        torch.cuda.synchronize()  # keeps the host inside the window the GPU is busy in
    end.record()
    torch.cuda.synchronize()
    smi.terminate()
    out, _ = smi.communicate()
    rows = [r.split(",") for r in out.strip().splitlines()]
    # Samples of the busy window only: the first ones (before the loop) and the last (after it) show idle clocks.
    busy = [(float(c), float(w)) for c, w in rows[6:-2]] if len(rows) > 10 else [(float(c), float(w)) for c, w in rows]
    return (start.elapsed_time(end) / n, statistics.median(c for c, _ in busy), statistics.median(w for _, w in busy))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    ap.add_argument("--cells", default="128:0:16384,256:0:16384")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--impls", default="ours,cudnn")
    a = ap.parse_args()
    lib = Lib(a.lib)
    print("| cell | dtype | impl | TFLOP/s | SM MHz (median) | W (median) |")
    print("|---|---|---|---|---|---|")
    for cell in a.cells.split(","):
        d, causal, s = (int(x) for x in cell.split(":"))
        b, h = 16384 // s, 2048 // d
        flops = 4 * b * h * s * s * d / (2 if causal else 1)
        for dt in (torch.bfloat16, torch.float16):
            q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=dt) for _ in range(3))
            impls = {}
            if "ours" in a.impls:
                impls["ours"] = FwdCall(lib, q=q, k=k, v=v, causal=bool(causal))
            if "cudnn" in a.impls:
                qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))

                def cudnn(qt=qt, kt=kt, vt=vt):
                    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                        torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=bool(causal))
                impls["cudnn"] = cudnn
            for name, fn in impls.items():
                for _ in range(5):
                    fn()
                ms, mhz, w = sampled(fn, a.seconds)
                print(f"| d{d} c{causal} s{s} | {str(dt)[6:]} | {name} | {flops / ms / 1e9:.1f} | {mhz:.0f} | {w:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
