#!/usr/bin/env python3
"""Backward benchmark (issue 6), one process: libflash flash_bwd vs PyTorch SDPA FLASH_ATTENTION and
CUDNN_ATTENTION backward, bf16, hdim 64/128, causal off/on, seqlen 512..16k at 16k tokens (b = 16384/s,
h = 2048/d). FLOPs = 2.5 * 4 b h s^2 d (/2 causal); medians of triton.testing.do_bench. Also the cost of
deterministic = 1. Writes bwd.json and bwd.md to --out.
Usage: bench_bwd.py [--out DIR] [--seqlens 512,1024,...] [--dims 64,128] [--lib PATH]
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from triton.testing import do_bench

from check_bwd import BwdLib, fill_bwd_params
from flashlib import fill_params


def tflops(flops, ms):
    return flops / (ms * 1e-3) / 1e12 if ms and ms > 0 else None


def bench_cell(lib, d, causal, s, rep, warmup):
    dev = torch.device("cuda")
    b, h = max(1, 16384 // s), 2048 // d
    dt = torch.bfloat16
    torch.manual_seed(0)
    q = torch.randn(b, s, h, d, device=dev, dtype=dt)
    k = torch.randn(b, s, h, d, device=dev, dtype=dt)
    v = torch.randn(b, s, h, d, device=dev, dtype=dt)
    dout = torch.randn(b, s, h, d, device=dev, dtype=dt)
    o = torch.empty_like(q)
    lse = torch.empty(b, h, s, device=dev, dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    fp = fill_params(lib, q=q, k=k, v=v, o=o, lse=lse, causal=causal)
    ws_n = lib.workspace_size(fp)
    ws = torch.empty(max(ws_n, 1), dtype=torch.uint8, device=dev)
    lib.fwd(fp, ws.data_ptr(), ws_n, stream)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    row = {"d": d, "causal": causal, "seqlen": s, "b": b, "h": h}
    flops = 2.5 * 4 * b * h * s * s * d / (2 if causal else 1)
    row["flops"] = flops
    for det in (False, True):
        bp = fill_bwd_params(lib, fp, dout=dout, dq=dq, dk=dk, dv=dv, deterministic=det)
        n = lib.bwd_workspace_size(bp)
        bws = torch.empty(max(n, 1), dtype=torch.uint8, device=dev)
        fn = lambda: lib.bwd_checked(bp, bws.data_ptr(), n, torch.cuda.current_stream().cuda_stream)
        ms = do_bench(fn, warmup=warmup, rep=rep)
        row["libflash_det_ms" if det else "libflash_ms"] = ms
        del bws
    # fwd + bwd together (libflash)
    bp = fill_bwd_params(lib, fp, dout=dout, dq=dq, dk=dk, dv=dv)
    n = lib.bwd_workspace_size(bp)
    bws = torch.empty(max(n, 1), dtype=torch.uint8, device=dev)

    def fwdbwd():
        st = torch.cuda.current_stream().cuda_stream
        lib.fwd(fp, ws.data_ptr(), ws_n, st)
        lib.bwd_checked(bp, bws.data_ptr(), n, st)

    row["libflash_fwdbwd_ms"] = do_bench(fwdbwd, warmup=warmup, rep=rep)
    del bws
    # SDPA peers ([b, h, s, d] layout)
    qt, kt, vt = (x.transpose(1, 2).contiguous().requires_grad_() for x in (q, k, v))
    dot = dout.transpose(1, 2).contiguous()
    for name, be in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel([be]):
                out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                fn = lambda: torch.autograd.grad(out, (qt, kt, vt), dot, retain_graph=True)
                row[f"{name}_ms"] = do_bench(fn, warmup=warmup, rep=rep)

                def fb():
                    o2 = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                    torch.autograd.grad(o2, (qt, kt, vt), dot)

                row[f"{name}_fwdbwd_ms"] = do_bench(fb, warmup=warmup, rep=rep)
        except Exception as e:  # a backend this torch / GPU lacks
            row[f"{name}_ms"] = None
            row[f"{name}_error"] = repr(e)[:200]
    for key in ("libflash", "libflash_det", "sdpa_flash", "sdpa_cudnn"):
        row[f"{key}_tflops"] = tflops(flops, row.get(f"{key}_ms"))
    row["det_cost_pct"] = 100.0 * (row["libflash_det_ms"] / row["libflash_ms"] - 1.0)
    row["vs_sdpa_flash"] = (row["sdpa_flash_ms"] / row["libflash_ms"]) if row.get("sdpa_flash_ms") else None
    row["vs_sdpa_cudnn"] = (row["sdpa_cudnn_ms"] / row["libflash_ms"]) if row.get("sdpa_cudnn_ms") else None
    del q, k, v, dout, o, dq, dk, dv, qt, kt, vt
    torch.cuda.empty_cache()
    return row


def fmt(x, p=1):
    return "-" if x is None else f"{x:.{p}f}"


def write_out(args, lib, dev_name, rows, t0):
    meta = {"device": dev_name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "build": lib.build_info(), "seconds": time.time() - t0}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bwd.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = [f"Backward, bf16, 16k tokens, {dev_name}, torch {torch.__version__}, {meta['date']}", "",
             "| d | causal | seqlen | libflash TFLOP/s | det TFLOP/s (cost) | SDPA flash | SDPA cuDNN | "
             "vs flash | vs cuDNN | fwd+bwd ms libflash / flash / cuDNN |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['d']} | {int(r['causal'])} | {r['seqlen']} | {fmt(r['libflash_tflops'])} | "
                     f"{fmt(r['libflash_det_tflops'])} ({fmt(r['det_cost_pct'], 0)}%) | {fmt(r['sdpa_flash_tflops'])} | "
                     f"{fmt(r['sdpa_cudnn_tflops'])} | {fmt(r['vs_sdpa_flash'], 2)}x | {fmt(r['vs_sdpa_cudnn'], 2)}x | "
                     f"{fmt(r.get('libflash_fwdbwd_ms'), 2)} / {fmt(r.get('sdpa_flash_fwdbwd_ms'), 2)} / "
                     f"{fmt(r.get('sdpa_cudnn_fwdbwd_ms'), 2)} |")
    with open(os.path.join(args.out, "bwd.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--seqlens", default="512,1024,2048,4096,8192,16384")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--rep", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--lib")
    args = ap.parse_args()
    lib = BwdLib(args.lib)
    dev_name = torch.cuda.get_device_name()
    rows = []
    t0 = time.time()
    for d in [int(x) for x in args.dims.split(",")]:
        for causal in (False, True):
            for s in [int(x) for x in args.seqlens.split(",")]:
                r = bench_cell(lib, d, causal, s, args.rep, args.warmup)
                rows.append(r)
                print(f"d{d} causal{int(causal)} s{s}: libflash {fmt(r['libflash_tflops'])} det "
                      f"{fmt(r['libflash_det_tflops'])} sdpa-flash {fmt(r['sdpa_flash_tflops'])} cudnn "
                      f"{fmt(r['sdpa_cudnn_tflops'])} TFLOP/s", flush=True)
                lines = write_out(args, lib, dev_name, rows, t0)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
