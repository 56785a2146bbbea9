#!/usr/bin/env python3
"""Side-by-side forward benchmark on one GPU, in one process: libflash (ctypes on torch data_ptr()) vs
PyTorch SDPA with the FLASH_ATTENTION backend (FlashAttention-2 kernels) and the CUDNN_ATTENTION backend.

Grid (FlashAttention-3 paper): bf16 and fp16, 16,384 tokens (batch = 16384 / seqlen), hidden 2048
(heads = 2048 / hdim), hdim 64/128/256, causal off/on, seqlen 512..16k. Timing: triton.testing.do_bench
median (L2 flushed before each call), in --rounds rounds per cell with the order of the three implementations
rotated each round (so none always runs first, after the inputs' allocation, or last, after the others have
heated the GPU at its power cap); a cell's figure is the median over its rounds, the rounds' figures are kept in
the JSON. FLOPs = 4 * b * h * s * s * d (/2 causal). Writes peers.json, peers.md and peers.png to --out.
Usage: peers.py --out DIR [--lib build/libflash.so] [--quick] [--dtypes bf16,fp16] [--hdims 64,128,256]
       [--rounds 3] [--rep 100]
       peers.py --render DIR/peers.json --out DIR2   (peers.md / peers.png again from saved rows, no GPU)

--bwd: the backward instead (bench/gpu/bench_bwd.py, issue 6): libflash flash_bwd (and deterministic = 1) vs SDPA
FLASH_ATTENTION and CUDNN_ATTENTION backward, and forward + backward together, bf16, hdim 64/128 (--hdims),
causal off/on, seqlen 512..16k, TFLOP/s with 2.5x forward FLOPs; medians of CUDA-event timings. Writes
peers_bwd.{json,md,png} to --out.
  peers.py --bwd --out DIR [--lib PATH] [--hdims 64,128] [--seqlens ...] [--causal 0,1] [--budget-ms 150]
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
from statistics import median

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu"))
from plot_grid import plot_tflops  # noqa: E402

# torch, triton and the library load only when measuring (--render runs where neither is installed).


def bench(fn, rep=100):
    import triton
    return triton.testing.do_bench(fn, warmup=25, rep=rep, return_mode="median")


def rotated(todo, r):
    """Round r's order: the list rotated by r, so over len(todo) rounds each implementation takes each place."""
    k = r % len(todo)
    return todo[k:] + todo[:k]


def time_rounds(row, live, rounds, timer):
    """Times each (name, fn) of live in `rounds` rounds, round r in rotated(live, r) order, with timer(fn) -> ms.
    Into row: name_ms_rounds (every round's figure) and name_ms (their median); for an implementation whose timing
    raised, name_error instead of name_ms (it is not timed again; the rounds before it stay in name_ms_rounds)."""
    for r in range(max(1, rounds)):
        for name, fn in rotated(live, r):
            if name + "_error" in row:
                continue
            try:
                row.setdefault(name + "_ms_rounds", []).append(timer(fn))
            except Exception as e:
                row[name + "_error"] = repr(e)[:200]
    for name, _ in live:
        if name + "_error" not in row:
            row[name + "_ms"] = median(row[name + "_ms_rounds"])


def write_outputs(out, meta, rows, write_json=True):
    """peers.json (unless re-rendering), peers.md and peers.png under out."""
    os.makedirs(out, exist_ok=True)
    if write_json:
        with open(os.path.join(out, "peers.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    gpu = meta["gpu"]
    md = [f"GPU: {gpu}; {meta['date']}; torch {meta['torch']}, cuDNN {meta['cudnn']}; `{meta['command']}`", "",
          "| dtype | hdim | causal | seqlen | libflash TFLOP/s | SDPA-flash (FA2) | SDPA-cuDNN | libflash / FA2 | "
          "libflash / cuDNN | max diff |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    ratio = lambda r, k: f"{r['libflash_tflops'] / r[k]:.2f}" if "libflash_tflops" in r and k in r else "-"
    fmt = lambda r, k: f"{r[k]:.1f}" if k in r else "err"
    for r in rows:
        md.append(f"| {r['dtype']} | {r['hdim']} | {int(r['causal'])} | {r['seqlen']} | {fmt(r, 'libflash_tflops')} | "
                  f"{fmt(r, 'sdpa_flash_tflops')} | {fmt(r, 'sdpa_cudnn_tflops')} | "
                  f"{ratio(r, 'sdpa_flash_tflops')} | {ratio(r, 'sdpa_cudnn_tflops')} | "
                  f"{r.get('maxdiff_vs_sdpa_flash', float('nan')):.3g} |")
    with open(os.path.join(out, "peers.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    plot_tflops(rows, lambda r: (r["dtype"], r["hdim"], r["causal"]),
                lambda k: f"{k[0]} d{k[1]} {'causal' if k[2] else 'non-causal'}",
                (("libflash_tflops", "libflash", "-"), ("sdpa_flash_tflops", "SDPA-flash (FA2)", "-"),
                 ("sdpa_cudnn_tflops", "SDPA-cuDNN", "-")),
                "TFLOP/s", f"forward, 16k tokens, hidden 2048 — {gpu}", os.path.join(out, "peers.png"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--lib")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dtypes", default="bf16,fp16")
    ap.add_argument("--hdims", default="64,128,256")
    ap.add_argument("--seqlens", default="512,1024,2048,4096,8192,16384")
    ap.add_argument("--causal", default="0,1")
    ap.add_argument("--no-peers", action="store_true", help="time libflash only")
    ap.add_argument("--tag", default="", help="label stored in every row (tuning runs)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per cell, the order rotated each round")
    ap.add_argument("--rep", type=float, default=100.0, help="do_bench's timed milliseconds per measurement")
    ap.add_argument("--bwd", action="store_true", help="the backward benchmark (bench/gpu/bench_bwd.py)")
    ap.add_argument("--budget-ms", type=float, default=150.0, help="--bwd: time spent per measurement")
    ap.add_argument("--stem", default="peers_bwd", help="--bwd: output file stem")
    ap.add_argument("--render", metavar="PEERS_JSON", help="only rewrite peers.md / peers.png from a saved peers.json")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        write_outputs(args.out, saved["meta"], saved["rows"], write_json=False)
        return
    if args.bwd:
        import bench_bwd
        if args.hdims == "64,128,256":
            args.hdims = "64,128"
        if args.quick:
            args.seqlens = "1024,4096,16384"
        bench_bwd.run(args)
        return
    import torch
    import triton
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from flashlib import FwdCall, Lib
    lib = Lib(args.lib)
    dev = torch.device("cuda")
    dts = {"bf16": torch.bfloat16, "fp16": torch.float16}
    seqlens = [int(x) for x in args.seqlens.split(",")]
    if args.quick:
        seqlens = [1024, 4096, 16384]
    rows = []
    for dn in args.dtypes.split(","):
        dt = dts[dn]
        for hd in [int(x) for x in args.hdims.split(",")]:
            for causal in [bool(int(x)) for x in args.causal.split(",")]:
                for s in seqlens:
                    b, h = 16384 // s, 2048 // hd
                    torch.manual_seed(0)
                    q = torch.randn(b, s, h, hd, device=dev, dtype=dt)
                    k = torch.randn(b, s, h, hd, device=dev, dtype=dt)
                    v = torch.randn(b, s, h, hd, device=dev, dtype=dt)
                    lse = torch.empty(b, h, s, device=dev, dtype=torch.float32)
                    f_lib = FwdCall(lib, q=q, k=k, v=v, lse=lse, causal=causal)
                    o = f_lib.o
                    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

                    def f_sdpa(backend):
                        def f():
                            with sdpa_kernel(backend):
                                return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                        return f
                    flops = 4 * b * h * s * s * hd / (2 if causal else 1)
                    row = {"tag": args.tag, "dtype": dn, "hdim": hd, "causal": causal, "seqlen": s, "batch": b, "heads": h}
                    f_lib()
                    torch.cuda.synchronize()
                    ref = None
                    todo = [("libflash", f_lib)]
                    if not args.no_peers:
                        todo += [("sdpa_flash", f_sdpa(SDPBackend.FLASH_ATTENTION)),
                                 ("sdpa_cudnn", f_sdpa(SDPBackend.CUDNN_ATTENTION))]
                    for name, fn in todo:  # outputs first (the check below), outside the timed rounds
                        if name != "libflash":
                            try:
                                out = fn()
                                if name == "sdpa_flash":
                                    ref = out
                            except Exception as e:  # a backend may refuse a shape
                                row[name + "_error"] = repr(e)[:200]
                    time_rounds(row, [(n, fn) for n, fn in todo if n + "_error" not in row], args.rounds,
                                lambda fn: bench(fn, args.rep))
                    for name, _ in todo:
                        if name + "_ms" in row:
                            row[name + "_tflops"] = flops / row[name + "_ms"] / 1e9
                    if ref is not None:
                        row["maxdiff_vs_sdpa_flash"] = (o.float() - ref.transpose(1, 2).float()).abs().max().item()
                    if "sdpa_flash_tflops" in row and "libflash_tflops" in row:
                        row["speedup_vs_fa2"] = row["libflash_tflops"] / row["sdpa_flash_tflops"]
                    if "sdpa_cudnn_tflops" in row and "libflash_tflops" in row:
                        row["speedup_vs_cudnn"] = row["libflash_tflops"] / row["sdpa_cudnn_tflops"]
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    del q, k, v, o, lse, f_lib
    gpu = torch.cuda.get_device_name()
    meta = {"gpu": gpu, "date": datetime.datetime.utcnow().isoformat() + "Z", "torch": torch.__version__,
            "cudnn": torch.backends.cudnn.version(), "triton": triton.__version__, "command": " ".join(sys.argv),
            "build_info": lib.build_info()}
    try:
        meta["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit",
                                             "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    except Exception:
        pass
    write_outputs(args.out, meta, rows)


if __name__ == "__main__":
    main()
