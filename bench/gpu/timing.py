"""Timing shared by the side-by-side decode benchmarks (bench_packgqa.py, bench_splitkv.py): triton do_bench
medians in microseconds, implementations timed in alternating rounds (A B C, then C B A, ...) so a drift of the
GPU's clocks hits them alike, and the SDPA peers on the same query and (expanded) K/V."""
import statistics

import triton
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def bench_us(fn, rep):
    return triton.testing.do_bench(fn, warmup=10, rep=rep, return_mode="median") * 1e3


def alternating_rounds(fns, rounds, rep):
    """{name: [us per round]} and {name: median us} for a dict of callables."""
    us = {n: [] for n in fns}
    for r in range(rounds):
        for n in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            us[n].append(bench_us(fns[n], rep))
    return us, {n: statistics.median(x) for n, x in us.items()}


def sdpa_peers_us(q, k, v, causal, rep):
    """SDPA cuDNN and FA2 on q [b, sq, h, d] and k, v [b, sk, hk, d] (repeated to every query head, what SDPA
    callers do for GQA). SDPA's is_causal is top-left aligned and the fused backends refuse an explicit
    bottom-right mask, so a causal call with sq != sk times the non-causal one (the decode shapes here have
    sq << sk: at most a few % more (query, key) pairs). NaN where a backend refuses the shape."""
    group = q.shape[2] // k.shape[2]
    qt = q.transpose(1, 2)
    kt, vt = (x.repeat_interleave(group, dim=2).transpose(1, 2) for x in (k, v))
    out = {}
    for name, be in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("fa2", SDPBackend.FLASH_ATTENTION)):
        def f(be=be):
            with sdpa_kernel(be):
                return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal and q.shape[1] == k.shape[1])
        try:
            out[name] = bench_us(f, rep)
        except Exception:  # the backend refuses the shape
            out[name] = float("nan")
    return out


def collect(shapes, run, out, stem):
    """Runs run(shape) for every shape (printing each row as JSON), writes {meta, rows} to out/stem.json and
    returns rows, meta and the first lines of the markdown table (the GPU, date, versions and command)."""
    import datetime
    import json
    import os
    import sys
    rows = []
    for shape in shapes:
        row = run(shape)
        print(json.dumps(row), flush=True)
        rows.append(row)
    meta = {"gpu": torch.cuda.get_device_name(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "command": " ".join(sys.argv)}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, stem + ".json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return rows, meta, [f"{meta['gpu']}; {meta['date']}; torch {meta['torch']}, cuDNN {meta['cudnn']}; `{meta['command']}`", ""]


def table(title_lines, head, body):
    return title_lines + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
        ["| " + " | ".join(cells) + " |" for cells in body]


def decode_inputs(shape, dtype=torch.bfloat16):
    """Seeded q [b, sq, h, d] and k, v [b, sk, hk, d] of a (b, h, hk, d, sq, sk, causal) shape."""
    b, h, hk, d, sq, sk, _ = shape
    torch.manual_seed(0)
    q = torch.randn(b, sq, h, d, device="cuda", dtype=dtype)
    k, v = (torch.randn(b, sk, hk, d, device="cuda", dtype=dtype) for _ in range(2))
    return q, k, v
