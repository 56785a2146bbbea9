#!/usr/bin/env python3
"""Decode bandwidth of libflash's flash_fwd_kvcache vs the device copy bandwidth and PyTorch SDPA.

bf16, d 128, 32 q heads over 8 KV heads, one query token per sequence (cache full: cache_seqlens = sk),
(b, sk) in {(1,8k),(1,32k),(1,128k),(8,8k),(32,4k),(64,16k)}; libflash contiguous and paged (page 16 and
256, pages shuffled); SDPA with the cuDNN and flash backends (enable_gqa=True, K/V [b, hk, sk, d]) in the
same process. Bandwidth = bytes of K and V read / time. Every timed call is preceded by an L2 flush outside
the timed events, so the cache never serves K/V from L2:
  --flush dirty  (default; what triton's do_bench and ../shared/anchors do) writes 256 MiB: the L2 is then
                 full of dirty lines, and the timed kernel pays for writing them back (~50 MB) as it reads;
  --flush clean  reads 256 MiB (a sum): the L2 holds clean lines, the timed kernel reads K/V only;
  --flush none   no flush (K/V partly L2-resident for the small shapes).
Copy bandwidth = (read + write bytes) / time of a 2 GiB device-to-device copy. "read bound" per shape = the
time of a sum over a buffer of the same bytes as K+V, under the same flush: the fastest a kernel that only
reads those bytes could be in that setting.
--sweep: libflash contiguous at explicit num_splits (SWEEP list) for the b=1 shapes as well.
Usage: bench_decode.py [--out DIR] [--iters N] [--lib PATH] [--flush dirty|clean|none] [--sweep] [--tag T]
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import KVLib, kv_params  # noqa: E402

SHAPES = [(1, 8192), (1, 32768), (1, 131072), (8, 8192), (32, 4096), (64, 16384)]
H, HK, D = 32, 8, 128


SWEEP = [8, 16, 24, 32, 33, 48, 64, 66, 96, 128, 132, 256]


class Flush:
    def __init__(self, mode, dev):
        self.mode = mode
        self.buf = torch.empty(256 << 20, dtype=torch.uint8, device=dev) if mode != "none" else None
        self.acc = torch.empty((), dtype=torch.float32, device=dev)
        if self.buf is not None:
            self.buf.zero_()
            self.view = self.buf.view(torch.float32)

    def __call__(self):
        if self.mode == "dirty":
            self.buf.zero_()
        elif self.mode == "clean":
            torch.sum(self.view, dim=0, dtype=torch.float32, out=self.acc)


def timed(fn, iters, flush):
    """Median and mean GPU time (s) of fn over iters calls, each after an untimed L2 flush."""
    for _ in range(3):
        fn()
    ts = []
    s = torch.cuda.current_stream()
    for _ in range(iters):
        flush()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(s)
        fn()
        e1.record(s)
        ts.append((e0, e1))
    torch.cuda.synchronize()
    ms = sorted(a.elapsed_time(b) for a, b in ts)
    return ms[len(ms) // 2] * 1e-3, sum(ms) / len(ms) * 1e-3


def copy_bw(flush):
    n = 1 << 30  # 1 GiB each way
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    a.fill_(1)
    t, _ = timed(lambda: b.copy_(a), 20, flush)
    return 2 * n / t


def read_bw(flush):
    n = 1 << 30  # 1 GiB of bf16 summed (read-only traffic)
    a = torch.ones(n // 2, dtype=torch.bfloat16, device="cuda")
    t, _ = timed(lambda: torch.sum(a, dtype=torch.float32), 20, flush)
    return n / t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--lib")
    ap.add_argument("--flush", choices=("dirty", "clean", "none"), default="dirty")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    lib = KVLib(args.lib)
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(0)
    flush = Flush(args.flush, dev)
    cbw = copy_bw(flush)
    try:
        rbw = read_bw(flush)
    except Exception as e:  # noqa: BLE001 -- the copy figure is the reference; the read figure is extra
        print(f"read bandwidth probe failed: {e!r}", flush=True)
        rbw = float("nan")
    print(f"device {props.name}  SMs {props.multi_processor_count}  copy bandwidth {cbw / 1e12:.3f} TB/s  "
          f"read (torch.sum) {rbw / 1e12:.3f} TB/s", flush=True)
    rows = []
    stream = torch.cuda.current_stream().cuda_stream
    dt = torch.bfloat16
    for (b, sk) in SHAPES:
        torch.manual_seed(0)
        kv_bytes = 2 * b * sk * HK * D * 2
        q = torch.randn(b, 1, H, D, device=dev, dtype=dt)
        o = torch.empty(b, 1, H, D, device=dev, dtype=dt)
        cs = torch.full((b,), sk, dtype=torch.int32, device=dev)
        row = {"b": b, "sk": sk, "kv_bytes": kv_bytes}
        rb = torch.ones(kv_bytes // 2, dtype=torch.bfloat16, device=dev)
        racc = torch.empty((), dtype=torch.float32, device=dev)
        t, _ = timed(lambda: torch.sum(rb, dim=0, dtype=torch.float32, out=racc), args.iters, flush)
        row["read_bound_us"] = t * 1e6
        del rb
        for layout in ("contig", "page16", "page256"):
            try:
                if layout == "contig":
                    kc = torch.randn(b, sk, HK, D, device=dev, dtype=dt)
                    vc = torch.randn(b, sk, HK, D, device=dev, dtype=dt)
                    bt = None
                else:
                    page = int(layout[4:])
                    nb = sk // page
                    kc = torch.randn(b * nb, page, HK, D, device=dev, dtype=dt)
                    vc = torch.randn(b * nb, page, HK, D, device=dev, dtype=dt)
                    bt = torch.randperm(b * nb, device=dev).to(torch.int32).view(b, nb).contiguous()
                p = kv_params(lib, q=q, k_cache=kc, v_cache=vc, o=o, lse=None, cache_seqlens=cs, block_table=bt)
                wsn = lib.kv_workspace_size(p)
                ws = torch.empty(max(wsn, 1), dtype=torch.uint8, device=dev)
                fn = lambda: lib.fwd_kvcache(p, ws.data_ptr(), wsn, stream)
                t, tmean = timed(fn, args.iters, flush)
                row[f"libflash_{layout}_us"] = t * 1e6
                row[f"libflash_{layout}_tbs"] = kv_bytes / t / 1e12
                row[f"libflash_{layout}_splits_ws"] = wsn
                if layout == "contig" and args.sweep and b == 1:
                    for ns in SWEEP:
                        p.num_splits = ns
                        wn = lib.kv_workspace_size(p)
                        w2 = torch.empty(max(wn, 1), dtype=torch.uint8, device=dev)
                        t, _ = timed(lambda: lib.fwd_kvcache(p, w2.data_ptr(), wn, stream), args.iters, flush)
                        row[f"sweep_{ns}_us"] = t * 1e6
                    p.num_splits = 0
                del kc, vc
            except Exception as e:  # noqa: BLE001
                row[f"libflash_{layout}_error"] = repr(e)
        # SDPA: K/V [b, hk, sk, d]
        ks = torch.randn(b, HK, sk, D, device=dev, dtype=dt)
        vs = torch.randn(b, HK, sk, D, device=dev, dtype=dt)
        qs = q.transpose(1, 2).contiguous()
        from torch.nn.attention import SDPBackend, sdpa_kernel
        for name, be in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
            try:
                def fn(be=be):
                    with sdpa_kernel(be):
                        return F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=True)
                t, _ = timed(fn, args.iters, flush)
                row[f"sdpa_{name}_us"] = t * 1e6
                row[f"sdpa_{name}_tbs"] = kv_bytes / t / 1e12
            except Exception as e:  # noqa: BLE001
                row[f"sdpa_{name}_error"] = repr(e).splitlines()[0][:200]
        del ks, vs
        row["copy_tbs"] = cbw / 1e12
        row["read_tbs"] = rbw / 1e12
        rows.append(row)
        print(json.dumps(row), flush=True)
        torch.cuda.empty_cache()

    info = {"device": props.name, "sms": props.multi_processor_count, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "flush": args.flush,
            "torch": torch.__version__, "copy_tbs": cbw / 1e12, "read_tbs": rbw / 1e12, "build": lib.build_info(), "rows": rows,
            "command": " ".join(sys.argv)}
    os.makedirs(args.out, exist_ok=True)
    stem = f"bench_decode{args.tag}"
    with open(os.path.join(args.out, stem + ".json"), "w") as f:
        json.dump(info, f, indent=1)
    f2 = lambda r, k: f"{r[k]:.2f}" if k in r else "-"
    f0 = lambda r, k: f"{r[k]:.1f}" if k in r else "-"
    lines = [f"# Decode bandwidth, {props.name}, bf16 d128 h32/hk8 sq1 ({info['date']}, L2 flush: {args.flush})", "",
             f"copy bandwidth (read+write) {cbw / 1e12:.3f} TB/s, read bandwidth (torch.sum) {rbw / 1e12:.3f} TB/s", "",
             "| b | sk | read bound us | contig TB/s (us) | %copy | %read | %bound | page16 TB/s | page256 TB/s | cuDNN TB/s (us) | flash TB/s | vs cuDNN |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pct = f"{100 * r['libflash_contig_tbs'] / r['copy_tbs']:.0f}%" if "libflash_contig_tbs" in r else "-"
        pr = f"{100 * r['libflash_contig_tbs'] / r['read_tbs']:.0f}%" if "libflash_contig_tbs" in r else "-"
        vs = (f"{r['sdpa_cudnn_us'] / r['libflash_contig_us']:.2f}x"
              if "sdpa_cudnn_us" in r and "libflash_contig_us" in r else "-")
        pb = f"{100 * r['read_bound_us'] / r['libflash_contig_us']:.0f}%" if "libflash_contig_us" in r else "-"
        lines.append(f"| {r['b']} | {r['sk']} | {r['read_bound_us']:.1f} | {f2(r, 'libflash_contig_tbs')} ({f0(r, 'libflash_contig_us')}) | {pct} | {pr} | {pb} | "
                     f"{f2(r, 'libflash_page16_tbs')} | {f2(r, 'libflash_page256_tbs')} | {f2(r, 'sdpa_cudnn_tbs')} "
                     f"({f0(r, 'sdpa_cudnn_us')}) | {f2(r, 'sdpa_flash_tbs')} | {vs} |")
    sw = [r for r in rows if any(k.startswith("sweep_") for k in r)]
    if sw:
        lines += ["", "num_splits sweep, libflash contiguous (us):", "",
                  "| b | sk | heuristic | " + " | ".join(str(n) for n in SWEEP) + " |",
                  "|---|---|---|" + "---|" * len(SWEEP)]
        for r in sw:
            lines.append(f"| {r['b']} | {r['sk']} | {f0(r, 'libflash_contig_us')} | " +
                         " | ".join(f0(r, f"sweep_{n}_us") for n in SWEEP) + " |")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, stem + ".md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
