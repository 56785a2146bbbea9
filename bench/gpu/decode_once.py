#!/usr/bin/env python3
"""One decode call each of libflash (contiguous, heuristic splits) and SDPA cuDNN at (b, sk), bf16 d128 h32/hk8,
for profilers (ncu / nsys): the kernels of interest run exactly `--reps` times after one warm-up.
Usage: decode_once.py B SK [--reps N] [--splits N]"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import KVLib, kv_params  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("b", type=int)
ap.add_argument("sk", type=int)
ap.add_argument("--reps", type=int, default=1)
ap.add_argument("--splits", type=int, default=0)
a = ap.parse_args()
H, HK, D = 32, 8, 128
dev, dt = torch.device("cuda"), torch.bfloat16
lib = KVLib()
q = torch.randn(a.b, 1, H, D, device=dev, dtype=dt)
o = torch.empty_like(q)
kc = torch.randn(a.b, a.sk, HK, D, device=dev, dtype=dt)
vc = torch.randn_like(kc)
cs = torch.full((a.b,), a.sk, dtype=torch.int32, device=dev)
p = kv_params(lib, q=q, k_cache=kc, v_cache=vc, o=o, lse=None, cache_seqlens=cs, num_splits=a.splits)
wsn = lib.kv_workspace_size(p)
ws = torch.empty(max(wsn, 1), dtype=torch.uint8, device=dev)
stream = torch.cuda.current_stream().cuda_stream
qs = q.transpose(1, 2).contiguous()
ks, vs = kc.transpose(1, 2).contiguous(), vc.transpose(1, 2).contiguous()
for i in range(a.reps + 1):
    lib.fwd_kvcache(p, ws.data_ptr(), wsn, stream)
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=True)
torch.cuda.synchronize()
print("workspace", wsn, "ok")
