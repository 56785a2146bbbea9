#!/usr/bin/env python3
"""Host-side cost of one flash_fwd_kvcache call (the C library alone, through ctypes): median enqueue time of
flash_fwd_kvcache_workspace_size and of flash_fwd_kvcache (append 1 token + attend, bf16 d128 h32/hk8, b=1,
sk=8k), next to a bare CUDA launch (torch.cuda._sleep) as the floor. The GPU is kept busy by a long sleep
kernel so the enqueues never wait for it. Usage: decode_host.py [--n N]"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import KVLib, kv_params  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=300)
a = ap.parse_args()
dev, dt = torch.device("cuda"), torch.bfloat16
lib = KVLib()
b, sk, H, HK, D = 1, 8192, 32, 8, 128
q = torch.randn(b, 1, H, D, device=dev, dtype=dt)
o = torch.empty_like(q)
kc = torch.randn(b, sk + 1, HK, D, device=dev, dtype=dt)
vc = torch.randn_like(kc)
kn = torch.randn(b, 1, HK, D, device=dev, dtype=dt)
vn = torch.randn_like(kn)
cs = torch.full((b,), sk - 1, dtype=torch.int32, device=dev)
p = kv_params(lib, q=q, k_cache=kc, v_cache=vc, o=o, lse=None, cache_seqlens=cs, knew=kn, vnew=vn)
wsn = lib.kv_workspace_size(p)
ws = torch.empty(max(wsn, 1), dtype=torch.uint8, device=dev)
stream = torch.cuda.current_stream().cuda_stream


def med(fn):
    ts = []
    for i in range(a.n):
        if i % 50 == 0:
            torch.cuda.synchronize()
            torch.cuda._sleep(50_000_000)  # ~tens of ms of GPU time: the queue never drains while we time
        t0 = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t0)
    torch.cuda.synchronize()
    ts.sort()
    return ts[len(ts) // 2] / 1e3


empty = med(lambda: None)
sleep = med(lambda: torch.cuda._sleep(1))
size = med(lambda: lib.kv_workspace_size(p))
run = med(lambda: lib.fwd_kvcache(p, ws.data_ptr(), wsn, stream))
p.num_splits = 1
run1 = med(lambda: lib.fwd_kvcache(p, ws.data_ptr(), wsn, stream))
print(f"python call floor {empty:.1f} us; torch.cuda._sleep launch {sleep:.1f} us; "
      f"flash_fwd_kvcache_workspace_size {size:.1f} us; flash_fwd_kvcache (append + attention + combine) {run:.1f} us; "
      f"with num_splits=1 (append + attention) {run1:.1f} us")
