#!/usr/bin/env python3
"""Times flash_bwd on one packed varlen batch (libflash only; the kernel path is whatever the build and env pick:
run once as is and once with FLASH_SM90=0 to compare the Hopper and mma.sync backwards). Prints one line per
(d, causal): median ms of one flash_bwd call (preprocessing and dQ conversion included), TFLOP/s counted as
FlashAttention does (2.5 x the forward's 4 * s_q * s_k * d * h per sequence, half of it causal), lib.last_kernel().
Usage: python3 bench/gpu/time_varlen_bwd.py [--lib L] [--tokens 16384] [--h 16]
"""
import argparse
import itertools

import numpy as np
import torch

from flashlib import BwdLib, FwdCall, fill_bwd_params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--h", type=int, default=16)
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    lib = BwdLib(a.lib)
    dev = torch.device("cuda")
    stream = torch.cuda.current_stream().cuda_stream
    rng = np.random.default_rng(0)
    # lengths 128..4096 (a typical packed pretraining batch), filled up to `tokens`
    seqs, tot = [], 0
    while tot < a.tokens:
        s = int(min(rng.integers(128, 4097), a.tokens - tot))
        seqs.append(s)
        tot += s
    cu = torch.tensor([0, *itertools.accumulate(seqs)], dtype=torch.int32, device=dev)
    h = a.h
    for d in (64, 128):
        for causal in (False, True):
            torch.manual_seed(0)
            q, k, v = (torch.randn(tot, h, d, device=dev, dtype=torch.bfloat16) for _ in range(3))
            dout = torch.randn_like(q)
            lse = torch.empty(h, tot, device=dev, dtype=torch.float32)
            fwd = FwdCall(lib, q=q, k=k, v=v, lse=lse, causal=causal, cu_seqlens_q=cu, cu_seqlens_k=cu,
                          max_seqlen_q=max(seqs), max_seqlen_k=max(seqs), stream=stream)
            fwd()
            fp = fwd.p
            dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
            bp = fill_bwd_params(lib, fp, dout=dout, dq=dq, dk=dk, dv=dv)
            bws_n = lib.bwd_workspace_size(bp)
            bws = torch.empty(max(bws_n, 1), dtype=torch.uint8, device=dev)
            for _ in range(3):
                lib.bwd_checked(bp, bws.data_ptr(), bws_n, stream)
            times = []
            for _ in range(a.reps):
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                lib.bwd_checked(bp, bws.data_ptr(), bws_n, stream)
                e1.record()
                torch.cuda.synchronize()
                times.append(e0.elapsed_time(e1))
            ms = float(np.median(times))
            pairs = sum(s * s / (2 if causal else 1) for s in seqs)
            tflops = 2.5 * 4 * pairs * d * h / (ms * 1e-3) / 1e12
            print(f"varlen bwd bf16 d{d} causal={int(causal)} h{h} {len(seqs)} seqs {tot} tokens: {ms:.3f} ms "
                  f"{tflops:.0f} TFLOP/s [{lib.last_kernel()}]", flush=True)


if __name__ == "__main__":
    main()
