#!/usr/bin/env python3
"""libflash forward + backward calls only, no reference: the workload for compute-sanitizer racecheck /
synccheck on the backward kernels (racecheck cannot run the torch reference's cuBLAS GEMMs: "failed to handle
a hardware exception"). Shapes cover both backward paths: the Hopper kernel where it is eligible (d64/d128,
causal, local, GQA, odd lengths, more tiles than SMs,
varlen) and the mma.sync kernel for the rest (dropout,
deterministic, softcap, ALiBi, d256, MLA's 192 / 128 on the narrow-V kernel); the path taken is printed.
Exit 0 when every call returned OK and the gradients are finite.
Usage: compute-sanitizer --tool racecheck --kernel-name kns=bwd python3 bench/gpu/sanitize_bwd.py [--lib L]
"""
import argparse
import itertools
import json

import torch

from flashlib import BwdLib, fill_bwd_params, fill_params

SHAPES = [  # (d or (d, dv), b, h, hk, seqs_q, seqs_k, causal, window, softcap, dropout, deterministic, alibi, dtype)
    (64, 2, 4, 4, [300], [300], False, (-1, -1), 0.0, 0.0, False, False, torch.bfloat16),
    (64, 1, 4, 2, [113], [203], True, (-1, -1), 0.0, 0.0, False, False, torch.float16),
    (128, 2, 4, 1, [257], [257], True, (-1, -1), 0.0, 0.0, False, False, torch.bfloat16),
    (128, 1, 4, 4, [200], [333], False, (40, 10), 0.0, 0.0, False, False, torch.float16),
    (128, 3, 40, 20, [129], [129], False, (-1, -1), 0.0, 0.0, False, False, torch.bfloat16),  # > 132 tiles
    (128, 1, 2, 2, [17], [1], False, (-1, -1), 0.0, 0.0, False, False, torch.bfloat16),
    (64, 1, 4, 4, [150], [150], True, (-1, -1), 0.0, 0.17, False, False, torch.bfloat16),
    (128, 2, 4, 2, [130], [130], False, (-1, -1), 0.0, 0.0, True, False, torch.float16),
    (128, 1, 4, 4, [100], [120], True, (-1, -1), 30.0, 0.0, False, True, torch.bfloat16),
    (256, 1, 2, 2, [90], [90], True, (-1, -1), 0.0, 0.0, False, False, torch.bfloat16),
    (128, 0, 4, 2, [70, 1, 190], [90, 33, 200], True, (-1, -1), 0.0, 0.0, False, False, torch.bfloat16),
    # varlen d64 with empty sequences (sq = 0, sk = 0), one-row and multi-block ones, the last key box ending
    # exactly at the tensor's end
    (64, 0, 6, 2, [1, 17, 0, 203, 1030, 9, 77], [17, 1, 5, 300, 1023, 0, 250], False, (37, 11), 0.0, 0.0, False,
     False, torch.float16),
    # MLA's 192 / 128: the narrow-V main kernel (GQA, causal, odd lengths) and its deterministic dQ kernel
    ((192, 128), 2, 4, 2, [203], [317], True, (-1, -1), 0.0, 0.0, False, False, torch.bfloat16),
    ((192, 128), 1, 2, 2, [130], [97], False, (-1, -1), 0.0, 0.17, True, False, torch.float16),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    lib = BwdLib(ap.parse_args().lib)
    dev = torch.device("cuda")
    stream = torch.cuda.current_stream().cuda_stream
    dims = json.loads(lib.build_info()).get("cuda_head_dims", [])
    ran = 0
    for d, b, h, hk, sq, sk, causal, window, softcap, drop, det, alibi, dt in SHAPES:
        d, dv_ = d if isinstance(d, tuple) else (d, d)
        if dims and d > max(dims):
            print(f"skip d{d}: not in this build's head dims {dims}")
            continue
        ran += 1
        torch.manual_seed(d + h + len(sq))
        kw = dict(causal=causal, window=window, softcap=softcap, dropout_p=drop, seed=7, offset=3, num_splits=1)
        if alibi:
            kw["alibi"] = torch.rand(h, device=dev, dtype=torch.float32)
        if b == 0:  # varlen
            cq = torch.tensor([0, *itertools.accumulate(sq)], dtype=torch.int32, device=dev)
            ck = torch.tensor([0, *itertools.accumulate(sk)], dtype=torch.int32, device=dev)
            shp_q, shp_k, shp_v, shp_o = (sum(sq), h, d), (sum(sk), hk, d), (sum(sk), hk, dv_), (sum(sq), h, dv_)
            lse = torch.empty(h, sum(sq), device=dev, dtype=torch.float32)
            kw.update(cu_seqlens_q=cq, cu_seqlens_k=ck, max_seqlen_q=max(sq), max_seqlen_k=max(sk))
        else:
            shp_q, shp_k = (b, sq[0], h, d), (b, sk[0], hk, d)
            shp_v, shp_o = (b, sk[0], hk, dv_), (b, sq[0], h, dv_)
            lse = torch.empty(b, h, sq[0], device=dev, dtype=torch.float32)
        q, k, v, dout = (torch.randn(s, device=dev, dtype=dt) for s in (shp_q, shp_k, shp_v, shp_o))
        o = torch.empty_like(dout)
        fp = fill_params(lib, q=q, k=k, v=v, o=o, lse=lse, **kw)
        ws_n = lib.workspace_size(fp)
        ws = torch.empty(max(ws_n, 1), dtype=torch.uint8, device=dev)
        lib.fwd(fp, ws.data_ptr(), ws_n, stream)
        fwd_kernel = lib.last_kernel()
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        bp = fill_bwd_params(lib, fp, dout=dout, dq=dq, dk=dk, dv=dv, deterministic=det)
        bws_n = lib.bwd_workspace_size(bp)
        bws = torch.empty(max(bws_n, 1), dtype=torch.uint8, device=dev)
        lib.bwd_checked(bp, bws.data_ptr(), bws_n, stream)
        torch.cuda.synchronize()
        print(f"ok d{d} dv{dv_} b{b} h{h}/{hk} {sq}x{sk} causal={causal} window={window} softcap={softcap} "
              f"dropout={drop} det={det} alibi={alibi} [{fwd_kernel} / {lib.last_kernel()}]", flush=True)
        for name, g in (("dq", dq), ("dk", dk), ("dv", dv)):
            assert torch.isfinite(g.float()).all(), f"non-finite {name}"
    print(f"{ran} forward+backward calls OK")


if __name__ == "__main__":
    main()
