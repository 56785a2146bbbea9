#!/usr/bin/env python3
"""Interleaved A/B/C... forward timing in ONE process (bench/NOTES.md "Hopper forward" step 8): several libflash
builds loaded side by side (ctypes, separate handles), for each cell the variants timed in rounds
(A B C .. then reversed, repeated), each timing a triton do_bench median; the SDPA peer (--peer: cuDNN or FA2) once per cell.
Grid as bench/peers.py (16k tokens, hidden 2048). Prints one JSON line per cell and a table of medians.
Usage: ab_interleave.py --libs A=path,B=path [--hdims 64,128] [--seqlens 1024,16384] [--causal 0,1] [--rounds 4]
       [--dtype bf16] [--peer cudnn|flash]
"""
import argparse, json, os, statistics, sys
import torch, triton
from torch.nn.attention import SDPBackend, sdpa_kernel
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import FwdCall, Lib  # noqa: E402


def bench(fn):
    return triton.testing.do_bench(fn, warmup=10, rep=60, return_mode="median")


ap = argparse.ArgumentParser()
ap.add_argument("--libs", required=True)
ap.add_argument("--hdims", default="128")
ap.add_argument("--seqlens", default="1024,4096,16384")
ap.add_argument("--causal", default="0,1")
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--dtype", default="bf16")
ap.add_argument("--peer", default="cudnn", choices=["cudnn", "flash"], help="SDPA backend timed beside (flash = FA2)")
a = ap.parse_args()
libs = [(kv.split("=")[0], Lib(kv.split("=")[1])) for kv in a.libs.split(",")]
dt = {"bf16": torch.bfloat16, "fp16": torch.float16}[a.dtype]
dev = torch.device("cuda")
table = []
for hd in [int(x) for x in a.hdims.split(",")]:
    for causal in [bool(int(x)) for x in a.causal.split(",")]:
        for s in [int(x) for x in a.seqlens.split(",")]:
            b, h = 16384 // s, 2048 // hd
            torch.manual_seed(0)
            q, k, v = (torch.randn(b, s, h, hd, device=dev, dtype=dt) for _ in range(3))
            lse = torch.empty(b, h, s, device=dev, dtype=torch.float32)
            stream = torch.cuda.current_stream().cuda_stream
            fns, outs = {}, {}
            for name, lib in libs:
                fns[name] = FwdCall(lib, q=q, k=k, v=v, lse=lse, causal=causal, stream=stream)
                fns[name]()
                outs[name] = fns[name].o
            torch.cuda.synchronize()
            names = [n for n, _ in libs]
            diff = {n: (outs[n].float() - outs[names[0]].float()).abs().max().item() for n in names[1:]}
            qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

            def cud():
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION if a.peer == "cudnn" else SDPBackend.FLASH_ATTENTION):
                    return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
            flops = 4 * b * h * s * s * hd / (2 if causal else 1)
            tf = {n: [] for n in names}
            for r in range(a.rounds):
                order = names if r % 2 == 0 else names[::-1]
                for n in order:
                    tf[n].append(flops / bench(fns[n]) / 1e9)
            try:
                c = flops / bench(cud) / 1e9
            except Exception:
                c = float("nan")
            row = {"hdim": hd, "causal": causal, "seqlen": s, "peer": a.peer, "peer_tflops": c, "tflops": tf, "maxdiff_vs_first": diff}
            print(json.dumps(row), flush=True)
            table.append(row)
            del q, k, v, lse, outs, fns
names = [n for n, _ in libs]
print("| hdim | causal | seqlen | " + " | ".join(f"{n} med (min-max)" for n in names) + " | " +
      " | ".join(f"{n}/{names[0]}" for n in names[1:]) + f" | {a.peer} | {names[0]}/{a.peer} |")
for r in table:
    med = {n: statistics.median(r["tflops"][n]) for n in names}
    cells = [f"{med[n]:.1f} ({min(r['tflops'][n]):.0f}-{max(r['tflops'][n]):.0f})" for n in names]
    rat = [f"{med[n] / med[names[0]]:.3f}" for n in names[1:]]
    print(f"| {r['hdim']} | {int(r['causal'])} | {r['seqlen']} | " + " | ".join(cells) + " | " + " | ".join(rat) +
          f" | {r['peer_tflops']:.1f} | {med[names[0]] / r['peer_tflops']:.2f} |")
