#!/usr/bin/env python3
"""A/B/C... of several libflash builds in ONE process (bench/NOTES.md "Hopper forward" step 8): the fair way to
judge a kernel change of a few percent (a cell moves +-5% between runs on the lent machines; inside one process
and one cell ~1%). The builds are loaded side by side (ctypes, separate handles); per cell each is timed in
rounds (A B .. then reversed, repeated), each timing a triton do_bench median; the SDPA peer (--peer: cuDNN or
FA2) once per cell. Grid as bench/peers.py (16k tokens, hidden 2048). Prints one JSON line per cell (also
appended to --json) and a table of medians; the first build is the reference.
Usage: ab_interleave.py --libs A=path,B=path [--dtypes bf16,fp16] [--hdims 64,128] [--seqlens 1024,16384]
       [--causal 0,1] [--rounds 4] [--rep 60] [--peer cudnn|flash] [--json out.jsonl] [--bwd] [--dv 128]
Set FLASH_SM90=0 to time the mma.sync forward on Hopper (read once per library).
--bwd: the backward instead: each build's flash_bwd (atomic dQ) on its own forward's O and LSE, TFLOP/s at
2.5 x the forward's FLOPs; the peer is SDPA's backward (torch.autograd.grad on a retained graph).
--dv: V / O head dim other than the head dim (MLA's 192 / 128); FLOPs 2 * b * h * s^2 * (d + dv) (/2 causal), FA3's;
the backward's 2 * b * h * s^2 * (3 d + 2 dv) (/2 causal: S, dS K, dS^T Q over d; dO V^T, P^T dO over dv).
"""
import argparse
import json
import os
import statistics
import sys

import torch
import triton
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import BwdLib, FwdCall, Lib, fill_bwd_params  # noqa: E402


def bench(a, fn):
    return triton.testing.do_bench(fn, warmup=10, rep=a.rep, return_mode="median")


def rounds(a, fns, names, flops):
    """TFLOP/s of every build per round; the order reverses every other round, so drift hits all alike."""
    tf = {n: [] for n in names}
    for r in range(a.rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            tf[n].append(flops / bench(a, fns[n]) / 1e9)
    return tf


def cell(libs, a, dn, hd, causal, s):
    """Times every build and the peer on one grid cell; returns the cell's row."""
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16}[dn]
    b, h = 16384 // s, 2048 // hd
    torch.manual_seed(0)
    dv = a.dv or hd
    q, k = (torch.randn(b, s, h, hd, device="cuda", dtype=dt) for _ in range(2))
    v = torch.randn(b, s, h, dv, device="cuda", dtype=dt)
    lse = torch.empty(b, h, s, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    names = [n for n, _ in libs]
    fns, kernel = {}, {}
    for name, lib in libs:
        fns[name] = FwdCall(lib, q=q, k=k, v=v, o=torch.empty_like(v), lse=lse, causal=causal, stream=stream)
        fns[name]()
        kernel[name] = lib.last_kernel()
    torch.cuda.synchronize()
    diff = {n: (fns[n].o.float() - fns[names[0]].o.float()).abs().max().item() for n in names[1:]}
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def peer():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION if a.peer == "cudnn" else SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)

    flops = 2 * b * h * s * s * (hd + dv) / (2 if causal else 1)
    tf = rounds(a, fns, names, flops)
    try:
        peer_tf = flops / bench(a, peer) / 1e9
    except Exception:  # the backend refuses the shape: the row says nan
        peer_tf = float("nan")
    return {"dtype": dn, "hdim": hd, "dv": dv, "causal": causal, "seqlen": s, "peer": a.peer, "peer_tflops": peer_tf,
            "tflops": tf, "maxdiff_vs_first": diff, "kernel": kernel}


def cell_bwd(libs, a, dn, hd, causal, s):
    """--bwd: times every build's backward and the peer's on one grid cell; returns the cell's row."""
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16}[dn]
    b, h = 16384 // s, 2048 // hd
    dv = a.dv or hd
    torch.manual_seed(0)
    q, k = (torch.randn(b, s, h, hd, device="cuda", dtype=dt) for _ in range(2))
    v, dout = (torch.randn(b, s, h, dv, device="cuda", dtype=dt) for _ in range(2))
    stream = torch.cuda.current_stream().cuda_stream
    names = [n for n, _ in libs]
    fns, kernel, grads = {}, {}, {}
    for name, lib in libs:
        fwd = FwdCall(lib, q=q, k=k, v=v, lse=torch.empty(b, h, s, device="cuda", dtype=torch.float32),
                      causal=causal, stream=stream)
        fwd()
        dq, dk, dvg = (torch.full_like(x, float("nan")) for x in (q, k, v))
        bp = fill_bwd_params(lib, fwd.p, dout=dout, dq=dq, dk=dk, dv=dvg)
        n = lib.bwd_workspace_size(bp)
        ws = torch.empty(max(n, 1), dtype=torch.uint8, device="cuda")
        # fwd stays referenced: bp points at its O and LSE
        fns[name] = lambda lib=lib, bp=bp, ws=ws, n=n, fwd=fwd: lib.bwd_checked(bp, ws.data_ptr(), n, stream)
        fns[name]()
        kernel[name] = lib.last_kernel()
        grads[name] = (dq, dk, dvg)
    torch.cuda.synchronize()
    diff = {n: max((x.float() - y.float()).abs().max().item() for x, y in zip(grads[n], grads[names[0]]))
            for n in names[1:]}
    qt, kt, vt = (x.transpose(1, 2).detach().requires_grad_() for x in (q, k, v))
    backend = SDPBackend.CUDNN_ATTENTION if a.peer == "cudnn" else SDPBackend.FLASH_ATTENTION
    try:
        with sdpa_kernel(backend):
            out = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
        gout = dout.transpose(1, 2)

        def peer():
            return torch.autograd.grad(out, (qt, kt, vt), gout, retain_graph=True)
    except Exception:  # the backend refuses the shape: the row says nan
        peer = None

    # QK^T, dQ = dS K, dK = dS^T Q over d; dP = dO V^T, dV = P^T dO over dv (2.5 x 4 b h s^2 d when dv = d)
    flops = 2 * b * h * s * s * (3 * hd + 2 * dv) / (2 if causal else 1)
    tf = rounds(a, fns, names, flops)
    peer_tf = flops / bench(a, peer) / 1e9 if peer else float("nan")
    return {"dtype": dn, "hdim": hd, "dv": dv, "causal": causal, "seqlen": s, "peer": a.peer, "peer_tflops": peer_tf,
            "tflops": tf, "maxdiff_vs_first": diff, "kernel": kernel, "bwd": True}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libs", required=True)
    ap.add_argument("--dtypes", "--dtype", default="bf16")
    ap.add_argument("--hdims", default="128")
    ap.add_argument("--seqlens", default="1024,4096,16384")
    ap.add_argument("--causal", default="0,1")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--rep", type=float, default=60.0, help="ms per do_bench timing")
    ap.add_argument("--peer", default="cudnn", choices=["cudnn", "flash"], help="SDPA backend timed beside (flash = FA2)")
    ap.add_argument("--json", help="append the rows to this JSON-lines file")
    ap.add_argument("--bwd", action="store_true", help="time flash_bwd instead of flash_fwd")
    ap.add_argument("--dv", type=int, default=0, help="V / O head dim (default: the head dim)")
    a = ap.parse_args()
    kind = BwdLib if a.bwd else Lib
    libs = [(kv.split("=", 1)[0], kind(kv.split("=", 1)[1])) for kv in a.libs.split(",")]
    names = [n for n, _ in libs]
    out = open(a.json, "a") if a.json else None
    table = []
    for dn in a.dtypes.split(","):
        for hd in [int(x) for x in a.hdims.split(",")]:
            for causal in [bool(int(x)) for x in a.causal.split(",")]:
                for s in [int(x) for x in a.seqlens.split(",")]:
                    row = (cell_bwd if a.bwd else cell)(libs, a, dn, hd, causal, s)
                    print(json.dumps(row), flush=True)
                    if out:
                        out.write(json.dumps(row) + "\n")
                        out.flush()
                    table.append(row)
    head = ["dtype", "hdim", "causal", "seqlen"] + [f"{n} med (min-max)" for n in names] + \
        [f"{n}/{names[0]}" for n in names[1:]] + [a.peer, f"{names[0]}/{a.peer}", "kernel"]
    print("| " + " | ".join(head) + " |")
    for r in table:
        med = {n: statistics.median(r["tflops"][n]) for n in names}
        cells = [r["dtype"], str(r["hdim"]), str(int(r["causal"])), str(r["seqlen"])]
        cells += [f"{med[n]:.1f} ({min(r['tflops'][n]):.0f}-{max(r['tflops'][n]):.0f})" for n in names]
        cells += [f"{med[n] / med[names[0]]:.3f}" for n in names[1:]]
        cells += [f"{r['peer_tflops']:.1f}", f"{med[names[0]] / r['peer_tflops']:.2f}",
                  "/".join(sorted(set(r["kernel"].values())))]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
