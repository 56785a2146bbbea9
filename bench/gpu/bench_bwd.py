#!/usr/bin/env python3
"""Backward benchmark (issue 6), one process: libflash flash_bwd vs PyTorch SDPA FLASH_ATTENTION (FA2 kernels)
and CUDNN_ATTENTION backward. Grid as the forward peers: bf16, 16,384 tokens (b = 16384 / s), hidden 2048
(h = 2048 / d), hdim 64/128, causal off/on, seqlen 512..16k. Per cell: backward of libflash (atomic dQ and
deterministic = 1), SDPA flash, SDPA cuDNN; forward + backward of each; max |dQ, dK, dV| of libflash against
SDPA flash (so a call that computes nothing cannot pass unseen).

FLOPs: backward 2.5 x forward, forward = 4 b h s^2 d (halved when causal); fwd+bwd = 3.5 x forward.
Timing: time_ms() below: CUDA events around every call, median over repetitions (warm-up first; ~`budget_ms`
of calls per measurement, at least 10). The SDPA backward is timed as torch.autograd.grad over a retained graph
(what a training step runs); libflash's as flash_bwd (D preprocessing, dQ workspace memset, main kernel, dQ
conversion). No L2 flush: the inputs (>= 160 MB at 16k tokens) do not fit the 50 MB L2.

Run through `bench/peers.py --bwd` (peers_bwd.{json,md,png}) or alone:
  bench_bwd.py [--out DIR] [--seqlens 512,...] [--hdims 64,128] [--causal 0,1] [--lib PATH]
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_bwd import BwdLib, fill_bwd_params  # noqa: E402
from flashlib import FwdCall  # noqa: E402
from plot_grid import plot_tflops  # noqa: E402


def time_ms(fn, budget_ms=150.0, min_reps=10, max_reps=500, warmup=3):
    """Median wall time (ms) of fn() on the current stream, from one CUDA event pair per call."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    fn()
    e.record()
    torch.cuda.synchronize()
    est = max(s.elapsed_time(e), 1e-3)
    reps = int(min(max_reps, max(min_reps, budget_ms / est)))
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in ev:
        a.record()
        fn()
        b.record()
    torch.cuda.synchronize()
    t = sorted(a.elapsed_time(b) for a, b in ev)
    return t[len(t) // 2]


def bench_cell(lib, d, causal, s, budget_ms, peers=True):
    dev = torch.device("cuda")
    b, h = max(1, 16384 // s), 2048 // d
    dt = torch.bfloat16
    torch.manual_seed(0)
    q, k, v, dout = (torch.randn(b, s, h, d, device=dev, dtype=dt) for _ in range(4))
    fwd = FwdCall(lib, q=q, k=k, v=v, lse=torch.empty(b, h, s, device=dev, dtype=torch.float32), causal=causal)
    fwd()
    fp, o = fwd.p, fwd.o
    stream = lambda: torch.cuda.current_stream().cuda_stream  # noqa: E731
    dq, dk, dv = (torch.full_like(q, float("nan")) for _ in range(3))
    fwd_flops = 4 * b * h * s * s * d / (2 if causal else 1)
    row = {"dtype": "bf16", "hdim": d, "causal": causal, "seqlen": s, "batch": b, "heads": h,
           "bwd_flops": 2.5 * fwd_flops, "fwdbwd_flops": 3.5 * fwd_flops}
    bws = {}
    for det in (False, True):
        bp = fill_bwd_params(lib, fp, dout=dout, dq=dq, dk=dk, dv=dv, deterministic=det)
        n = lib.bwd_workspace_size(bp)
        buf = torch.empty(max(n, 1), dtype=torch.uint8, device=dev)
        bws[det] = (bp, buf, n)
        fn = lambda bp=bp, buf=buf, n=n: lib.bwd_checked(bp, buf.data_ptr(), n, stream())  # noqa: E731
        row["libflash_det_ms" if det else "libflash_ms"] = time_ms(fn, budget_ms)
    bp, buf, n = bws[False]

    def lib_fwdbwd():
        fwd()
        lib.bwd_checked(bp, buf.data_ptr(), n, stream())

    row["libflash_fwdbwd_ms"] = time_ms(lib_fwdbwd, budget_ms)
    lib_fwdbwd()
    torch.cuda.synchronize()
    # SDPA peers on [b, h, s, d] views of the same [b, s, h, d] data (no copies, as peers.py's forward)
    qt, kt, vt = (x.detach().transpose(1, 2).requires_grad_() for x in (q, k, v))
    dot = dout.transpose(1, 2)
    for name, be in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
        if not peers:
            break
        try:
            with sdpa_kernel([be]):
                out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                grads = torch.autograd.grad(out, (qt, kt, vt), dot, retain_graph=True)
                if name == "sdpa_flash":  # libflash against FA2: a sanity figure, not the correctness check
                    row["maxdiff_vs_sdpa_flash"] = max((x.transpose(1, 2).float() - y.float()).abs().max().item()
                                                       for x, y in zip(grads, (dq, dk, dv)))
                del grads
                row[f"{name}_ms"] = time_ms(lambda: torch.autograd.grad(out, (qt, kt, vt), dot, retain_graph=True),
                                            budget_ms)

                def fb():
                    o2 = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                    torch.autograd.grad(o2, (qt, kt, vt), dot)

                row[f"{name}_fwdbwd_ms"] = time_ms(fb, budget_ms)
                del out
        except Exception as e:  # a backend this torch / GPU lacks
            row[f"{name}_error"] = repr(e)[:200]
    for key in ("libflash", "libflash_det", "sdpa_flash", "sdpa_cudnn"):
        if f"{key}_ms" in row:
            row[f"{key}_tflops"] = row["bwd_flops"] / row[f"{key}_ms"] / 1e9
        if f"{key}_fwdbwd_ms" in row:
            row[f"{key}_fwdbwd_tflops"] = row["fwdbwd_flops"] / row[f"{key}_fwdbwd_ms"] / 1e9
    row["det_cost_pct"] = 100.0 * (row["libflash_det_ms"] / row["libflash_ms"] - 1.0)
    for peer in ("sdpa_flash", "sdpa_cudnn"):
        if f"{peer}_ms" in row:
            row[f"speedup_vs_{peer}"] = row[f"{peer}_ms"] / row["libflash_ms"]
        if f"{peer}_fwdbwd_ms" in row:
            row[f"fwdbwd_speedup_vs_{peer}"] = row[f"{peer}_fwdbwd_ms"] / row["libflash_fwdbwd_ms"]
    del q, k, v, dout, o, dq, dk, dv, qt, kt, vt, bws, buf, fwd
    torch.cuda.empty_cache()
    return row


def fmt(r, k, p=1):
    return f"{r[k]:.{p}f}" if r.get(k) is not None else "-"


def write_outputs(out_dir, stem, meta, rows):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    md = [f"Backward, bf16, 16k tokens, hidden 2048 — GPU: {meta['gpu']}; {meta['date']}; torch {meta['torch']}, "
          f"cuDNN {meta['cudnn']}; timing: {meta['timing']}", "", f"`{meta['command']}`", "",
          "TFLOP/s (backward = 2.5 × forward FLOPs, fwd+bwd = 3.5 ×; causal halves both). Ratios > 1: libflash faster.",
          "",
          "| hdim | causal | seqlen | libflash | det=1 (cost) | SDPA-flash (FA2) | SDPA-cuDNN | vs FA2 | vs cuDNN | "
          "fwd+bwd libflash / FA2 / cuDNN | fwd+bwd vs FA2 | max diff vs FA2 |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['hdim']} | {int(r['causal'])} | {r['seqlen']} | {fmt(r, 'libflash_tflops')} | "
                  f"{fmt(r, 'libflash_det_tflops')} ({fmt(r, 'det_cost_pct', 0)}%) | {fmt(r, 'sdpa_flash_tflops')} | "
                  f"{fmt(r, 'sdpa_cudnn_tflops')} | {fmt(r, 'speedup_vs_sdpa_flash', 2)} | "
                  f"{fmt(r, 'speedup_vs_sdpa_cudnn', 2)} | {fmt(r, 'libflash_fwdbwd_tflops')} / "
                  f"{fmt(r, 'sdpa_flash_fwdbwd_tflops')} / {fmt(r, 'sdpa_cudnn_fwdbwd_tflops')} | "
                  f"{fmt(r, 'fwdbwd_speedup_vs_sdpa_flash', 2)} | {fmt(r, 'maxdiff_vs_sdpa_flash', 3)} |")
    with open(os.path.join(out_dir, stem + ".md"), "w") as f:
        f.write("\n".join(md) + "\n")
    plot_tflops(rows, lambda r: (r["hdim"], r["causal"]), lambda k: f"bf16 d{k[0]} {'causal' if k[1] else 'non-causal'}",
                (("libflash_tflops", "libflash", "-"), ("libflash_det_tflops", "libflash det=1", "--"),
                 ("sdpa_flash_tflops", "SDPA-flash (FA2)", "-"), ("sdpa_cudnn_tflops", "SDPA-cuDNN", "-")),
                "backward TFLOP/s", f"backward, 16k tokens, hidden 2048 — {meta['gpu']}",
                os.path.join(out_dir, stem + ".png"), height=3.2)
    return md


def run(args, lib=None):
    lib = lib or BwdLib(args.lib)
    seqlens = [int(x) for x in args.seqlens.split(",")]
    rows = []
    gpu = torch.cuda.get_device_name()
    meta = {"gpu": gpu, "date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z",
            "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "command": " ".join(sys.argv),
            "build_info": lib.build_info(),
            "timing": "median of per-call CUDA-event times (bench/gpu/bench_bwd.py time_ms)"}
    try:
        meta["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit",
                                             "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    except Exception:
        pass
    t0 = time.time()
    for hd in [int(x) for x in args.hdims.split(",")]:
        for causal in [bool(int(x)) for x in args.causal.split(",")]:
            for s in seqlens:
                r = bench_cell(lib, hd, causal, s, args.budget_ms, peers=not args.no_peers)
                r["tag"] = args.tag
                rows.append(r)
                print(json.dumps(r), flush=True)
    meta["seconds"] = time.time() - t0
    md = write_outputs(args.out, args.stem, meta, rows)
    print("\n".join(md))
    return rows


def add_args(ap):
    ap.add_argument("--seqlens", default="512,1024,2048,4096,8192,16384")
    ap.add_argument("--hdims", default="64,128")
    ap.add_argument("--causal", default="0,1")
    ap.add_argument("--budget-ms", type=float, default=150.0, help="time spent per measurement")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--lib")
    ap.add_argument("--no-peers", action="store_true", help="time libflash only")
    ap.add_argument("--tag", default="")
    ap.add_argument("--stem", default="bwd")
    add_args(ap)
    run(ap.parse_args())


if __name__ == "__main__":
    main()
