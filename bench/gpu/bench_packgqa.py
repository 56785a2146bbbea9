#!/usr/bin/env python3
"""GQA packing on the Hopper forward (params.pack_gqa), in ONE process on one GPU: short query lengths against
long keys (decode-like steps, speculative-decoding verification, chunked prefill), where a block_m tile of one
query head is mostly empty rows. Per shape, timed in alternating rounds (triton do_bench medians):
  nopack  pack_gqa = -1, num_splits = 1   the Hopper kernel, one query head per tile
  auto    pack_gqa =  0, num_splits = 1   the Hopper kernel, the host's heuristic (packs these shapes)
  default pack_gqa =  0, num_splits = 0   what a caller gets without options (the split heuristic may send
                                          few-tile shapes to the mma.sync kernel's split-KV instead)
and SDPA with the cuDNN and FA2 backends on K/V expanded to every query head (what SDPA callers do for GQA).
Time in microseconds; TFLOP/s with the visible (query, key) pairs of the bottom-right causal mask.
Usage: bench_packgqa.py --lib build/libflash.so [--rounds 3] [--rep 40] [--out DIR]
"""
import argparse
import os
import sys

import torch

# Decode-shaped calls would otherwise run on the KV-cache decode kernel (fwd.cu decode_route); this script is about
# the forward kernels. Read once by the library, so set before it is loaded.
os.environ.setdefault("FLASH_FWD_DECODE", "0")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import alternating_rounds, collect, decode_inputs, sdpa_peers_us, table  # noqa: E402
from flashlib import FwdCall, Lib  # noqa: E402

# (batch, query heads, K/V heads, head dim, seqlen_q, seqlen_k, causal)
SHAPES = [(8, 32, hk, d, sq, 8192, c) for (hk, d) in ((8, 128), (4, 64), (4, 128)) for sq in (1, 16, 64)
          for c in (False, True)] + [(32, 32, 8, 128, sq, 2048, False) for sq in (1, 16, 64)]


def pairs(sq, sk, causal):
    """Visible (query, key) pairs of one head: bottom-right causal keeps key j <= i + sk - sq."""
    if not causal:
        return sq * sk
    return sum(max(0, min(sk, i + sk - sq + 1)) for i in range(sq))


def run_shape(lib, a, shape):
    b, h, hk, d, sq, sk, causal = shape
    q, k, v = decode_inputs(shape)
    stream = torch.cuda.current_stream().cuda_stream
    variants = {"nopack": dict(pack_gqa=-1, num_splits=1), "auto": dict(pack_gqa=0, num_splits=1),
                "default": dict(pack_gqa=0, num_splits=0)}
    fns, kernel = {}, {}
    for name, kw in variants.items():
        fns[name] = FwdCall(lib, q=q, k=k, v=v, causal=causal, stream=stream, **kw)
        fns[name]()
        kernel[name] = lib.last_kernel()
    torch.cuda.synchronize()
    diff = max((fns[n].o.float() - fns["nopack"].o.float()).abs().max().item() for n in ("auto", "default"))
    us, med = alternating_rounds(fns, a.rounds, a.rep)
    peers = sdpa_peers_us(q, k, v, causal, a.rep)
    flops = 4 * b * h * pairs(sq, sk, causal) * d
    return {"b": b, "h": h, "hk": hk, "d": d, "sq": sq, "sk": sk, "causal": causal, "us": us, "median_us": med,
            "peer_us": peers, "tflops": {n: flops / t / 1e6 for n, t in med.items()}, "kernel": kernel,
            "maxdiff_vs_nopack": diff}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rep", type=float, default=40.0, help="ms per do_bench timing")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    a = ap.parse_args()
    lib = Lib(a.lib)
    rows, meta, title = collect(SHAPES, lambda shape: run_shape(lib, a, shape), a.out, "packgqa")
    head = ["b", "h/hk", "d", "sq", "sk", "causal", "nopack us", "auto us", "auto/nopack speedup", "default us",
            "kernel (auto / default)", "cuDNN us", "FA2 us", "auto TFLOP/s"]
    body = []
    for r in rows:
        m = r["median_us"]
        body.append([
            str(r["b"]), f"{r['h']}/{r['hk']}", str(r["d"]), str(r["sq"]), str(r["sk"]), str(int(r["causal"])),
            f"{m['nopack']:.1f}", f"{m['auto']:.1f}", f"{m['nopack'] / m['auto']:.2f}", f"{m['default']:.1f}",
            f"{r['kernel']['auto']} / {r['kernel']['default']}", f"{r['peer_us']['cudnn']:.1f}",
            f"{r['peer_us']['fa2']:.1f}", f"{r['tflops']['auto']:.0f}"])
    lines = table(title, head, body)
    with open(os.path.join(a.out, "packgqa.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
