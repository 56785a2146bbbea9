#!/usr/bin/env python3
"""Error against float32 at the peer benchmark's shapes (16k tokens, hidden 2048), for libflash and for
PyTorch's SDPA flash (FA2) and cuDNN backends: FlashAttention's rule (max|out - ref32| over the plain
same-dtype error) on shapes with many key blocks, which check_fwd's small cases do not reach. The reference
is computed per (batch, head) chunk in float32 from the same 16-bit inputs.
Usage: LIBFLASH=path python3 precision_peers.py [--seqlens 1024,4096] [--hdims 64,128,256] [--dtypes bf16,fp16]
Prints one JSON line per cell: err (libflash), err_fa2, err_cudnn, err_plain (the same math in the dtype),
ratio = err / err_plain (FA's test passes at <= 2).
"""
import argparse
import json
import math

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from flashlib import FwdCall, Lib


def ref_and_plain(q, k, v, causal, scale):
    """[b, s, h, d] inputs -> (float32 reference, plain same-dtype result), chunked over heads."""
    b, s, h, _ = q.shape
    ref = torch.empty(q.shape[:-1] + (v.shape[-1],), device=q.device, dtype=torch.float32)
    plain = torch.empty_like(ref, dtype=q.dtype)
    mask = torch.ones(s, s, device=q.device, dtype=torch.bool).tril() if causal else None
    step = max(1, (1 << 28) // (s * s))  # heads per chunk: <= 2^28 scores
    for bi in range(b):
        for h0 in range(0, h, step):
            hs = slice(h0, min(h, h0 + step))
            for dt, dst in ((torch.float32, ref), (q.dtype, plain)):
                qq, kk, vv = (t[bi, :, hs].transpose(0, 1).to(dt) for t in (q, k, v))
                sc = (qq @ kk.transpose(1, 2)) * scale
                if mask is not None:
                    sc = sc.masked_fill(~mask, float("-inf"))
                dst[bi, :, hs] = (sc.float().softmax(-1).to(dt) @ vv).transpose(0, 1).to(dst.dtype)
    return ref, plain


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seqlens", default="1024,4096")
    ap.add_argument("--hdims", default="64,128,256")
    ap.add_argument("--dtypes", default="bf16,fp16")
    a = ap.parse_args()
    lib = Lib()
    dev = torch.device("cuda")
    dts = {"bf16": torch.bfloat16, "fp16": torch.float16}
    for dn in a.dtypes.split(","):
        for hd in map(int, a.hdims.split(",")):
            for s in map(int, a.seqlens.split(",")):
                for causal in (False, True):
                    torch.manual_seed(0)
                    h, b = 2048 // hd, 16384 // s
                    q, k, v = (torch.randn(b, s, h, hd, device=dev, dtype=dts[dn]) for _ in range(3))
                    scale = 1.0 / math.sqrt(hd)
                    o = torch.full_like(q, float("nan"))
                    FwdCall(lib, q=q, k=k, v=v, o=o, causal=causal, scale=scale)()
                    kernel = lib.last_kernel()
                    ref, plain = ref_and_plain(q, k, v, causal, scale)
                    row = {"dtype": dn, "hdim": hd, "seqlen": s, "causal": causal, "kernel": kernel}
                    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
                    for name, be in (("fa2", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                        try:
                            with sdpa_kernel(be):
                                out = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal,
                                                                                       scale=scale)
                            row[f"err_{name}"] = (out.transpose(1, 2).float() - ref).abs().max().item()
                        except RuntimeError as e:
                            row[f"err_{name}"] = None
                            row[f"why_{name}"] = str(e)[:80]
                    row["err"] = (o.float() - ref).abs().max().item()
                    row["err_plain"] = (plain.float() - ref).abs().max().item()
                    row["ratio"] = row["err"] / max(row["err_plain"], 1e-12)
                    row["ratio_fa2"] = (row["err_fa2"] or float("nan")) / max(row["err_plain"], 1e-12)
                    print(json.dumps(row), flush=True)
                    del q, k, v, o, ref, plain
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
