#!/usr/bin/env python3
"""Split-KV on the Hopper forward, in ONE process on one GPU: decode-like flash_fwd calls (few query rows, a
small batch x heads grid, long keys) where one CTA per (m block, head) leaves most SMs idle. Per shape, timed
in alternating rounds (triton do_bench medians):
  split    this build, num_splits = 0 (heuristic): the Hopper kernel splits the keys, packed (FA3's decode path)
  nosplit  this build, num_splits = 1: the Hopper kernel, one tile per (m block, head)
  base     --base build (e.g. main before Hopper split-KV), num_splits = 0: there these calls went to the
           mma.sync kernel's split-KV
  kvcache  this build's flash_fwd_kvcache on the same K/V as a dense cache (cache_seqlens = sk): the decode kernel,
           which flash_fwd itself takes for up to 32 packed query rows at d <= 128 (the script sets
           FLASH_FWD_DECODE=0 so that the columns above time the forward kernels)
and SDPA with the cuDNN and FA2 backends (K/V expanded to every query head for GQA, what SDPA callers do).
Time in microseconds; GB/s = the K and V bytes one call must read / time (these shapes are bandwidth-bound).
--sweep instead times this build at num_splits 0 (the heuristic) and 2..128 on every shape (the heuristic's check).
Usage: bench_splitkv.py --lib build/libflash.so [--base main/libflash.so] [--rounds 3] [--rep 40] [--out DIR] [--sweep]
"""
import argparse
import os
import sys

import torch

# Decode-shaped calls would otherwise run on the KV-cache decode kernel (fwd.cu decode_route); this script is about
# the forward kernels. Read once by the library, so set before it is loaded.
os.environ.setdefault("FLASH_FWD_DECODE", "0")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import alternating_rounds, bench_us, collect, decode_inputs, sdpa_peers_us, table  # noqa: E402
from flashlib import FwdCall, KVLib, kv_params  # noqa: E402

# (batch, query heads, K/V heads, head dim, seqlen_q, seqlen_k, causal)
SHAPES = [
    (1, 16, 16, 128, 1, 16384, False), (2, 32, 32, 128, 1, 8192, False), (1, 8, 8, 64, 1, 32768, False),
    (2, 16, 16, 256, 1, 8192, False), (1, 32, 8, 128, 1, 16384, False), (4, 32, 8, 128, 1, 8192, False),
    (1, 64, 8, 128, 4, 32768, True), (2, 32, 4, 64, 16, 16384, True), (1, 16, 16, 128, 128, 16384, True),
]


def run_shape(libs, a, shape):
    b, h, hk, d, sq, sk, causal = shape
    q, k, v = decode_inputs(shape)
    stream = torch.cuda.current_stream().cuda_stream
    lib = libs["lib"]
    fns, kernel = {}, {}
    fns["split"] = FwdCall(lib, q=q, k=k, v=v, causal=causal, stream=stream, num_splits=0)
    fns["nosplit"] = FwdCall(lib, q=q, k=k, v=v, causal=causal, stream=stream, num_splits=1)
    if "base" in libs:
        fns["base"] = FwdCall(libs["base"], q=q, k=k, v=v, causal=causal, stream=stream, num_splits=0)
    o_kv = torch.empty_like(q)
    seqlens = torch.full((b,), sk, dtype=torch.int32, device="cuda")
    pkv = kv_params(lib, q=q, k_cache=k, v_cache=v, o=o_kv, lse=None, cache_seqlens=seqlens, causal=causal)
    ws_n = lib.kv_workspace_size(pkv)
    ws = torch.empty(max(ws_n, 1), dtype=torch.uint8, device="cuda")
    fns["kvcache"] = lambda: lib.fwd_kvcache(pkv, ws.data_ptr(), ws_n, stream)
    for n, f in fns.items():
        f()
        kernel[n] = (libs["base"] if n == "base" else lib).last_kernel()
    torch.cuda.synchronize()
    ref = fns["nosplit"].o.float()
    diff = {n: (x.float() - ref).abs().max().item()
            for n, x in (("split", fns["split"].o), ("kvcache", o_kv), *((("base", fns["base"].o),) if "base" in fns else ()))}
    us, med = alternating_rounds(fns, a.rounds, a.rep)
    peers = sdpa_peers_us(q, k, v, causal, a.rep)
    kv_bytes = 2 * b * sk * hk * d * 2
    return {"b": b, "h": h, "hk": hk, "d": d, "sq": sq, "sk": sk, "causal": causal, "us": us, "median_us": med,
            "peer_us": peers, "gbps": {n: kv_bytes / t / 1e3 for n, t in med.items()}, "kernel": kernel,
            "maxdiff_vs_nosplit": diff}


SWEEP = (0, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def sweep(lib, shape):
    """Microseconds per num_splits value (0 = the heuristic) on one shape."""
    b, h, hk, d, sq, sk, causal = shape
    q, k, v = decode_inputs(shape)
    res = {}
    for ns in SWEEP:
        f = FwdCall(lib, q=q, k=k, v=v, causal=causal, num_splits=ns)
        f()
        res[ns] = bench_us(f, 25)
    best = min(res, key=res.get)
    print(f"{shape} heur {res[0]:.1f} best ns={best} {res[best]:.1f} | " + " ".join(f"{n}:{t:.0f}" for n, t in res.items()),
          flush=True)


def plot(rows, meta, path):
    """Grouped bars: microseconds per shape and implementation (optional: needs matplotlib on the GPU machine)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        series = [("split", "libflash (sm90 split)"), ("base", "libflash before (sm80 split)"),
                  ("kvcache", "libflash kvcache decode"), ("cudnn", "SDPA cuDNN"), ("fa2", "SDPA flash (FA2)")]
        val = lambda r, k: r["median_us"].get(k, r["peer_us"].get(k, float("nan")))
        series = [(k, n) for k, n in series if any(val(r, k) == val(r, k) for r in rows)]
        fig, ax = plt.subplots(figsize=(1.3 * len(rows) + 2, 4))
        w = 0.8 / len(series)
        for i, (k, n) in enumerate(series):
            ax.bar([x + i * w for x in range(len(rows))], [val(r, k) for r in rows], w, label=n)
        ax.set_xticks([x + 0.4 - w / 2 for x in range(len(rows))])
        ax.set_xticklabels([f"b{r['b']} h{r['h']}/{r['hk']}\nd{r['d']} {r['sq']}x{r['sk']}{' c' if r['causal'] else ''}"
                            for r in rows], fontsize=7)
        ax.set_ylabel("us (lower is better)")
        ax.legend(fontsize=7)
        ax.set_title(f"flash_fwd decode-like shapes, {meta['gpu']}, {meta['date'][:10]}", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
    except Exception as e:
        print("plot skipped:", e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--base", help="a second build timed with num_splits = 0 (e.g. main)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rep", type=float, default=40.0, help="ms per do_bench timing")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--sweep", action="store_true")
    a = ap.parse_args()
    libs = {"lib": KVLib(a.lib)}
    if a.sweep:
        for shape in SHAPES + [(8, 32, 8, 128, 1, 4096, False), (1, 32, 32, 128, 1, 4096, False)]:
            sweep(libs["lib"], shape)
        return
    if a.base:
        libs["base"] = KVLib(a.base)
    rows, meta, title = collect(SHAPES, lambda shape: run_shape(libs, a, shape), a.out, "splitkv")
    base = "base" in rows[0]["median_us"]
    head = ["b", "h/hk", "d", "sq", "sk", "causal", "split us", "GB/s", "kernel", "nosplit us"] + \
           (["base us", "base kernel"] if base else []) + ["kvcache us", "cuDNN us", "FA2 us"]
    body = []
    for r in rows:
        m = r["median_us"]
        cells = [str(r["b"]), f"{r['h']}/{r['hk']}", str(r["d"]), str(r["sq"]), str(r["sk"]), str(int(r["causal"])),
                 f"{m['split']:.1f}", f"{r['gbps']['split']:.0f}", r["kernel"]["split"], f"{m['nosplit']:.1f}"]
        if base:
            cells += [f"{m['base']:.1f}", r["kernel"]["base"]]
        body.append(cells + [f"{m['kvcache']:.1f}", f"{r['peer_us']['cudnn']:.1f}", f"{r['peer_us']['fa2']:.1f}"])
    lines = table(title, head, body)
    with open(os.path.join(a.out, "splitkv.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot(rows, meta, os.path.join(a.out, "splitkv.png"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
