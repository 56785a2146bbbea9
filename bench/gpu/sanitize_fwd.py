#!/usr/bin/env python3
"""libflash forward calls only, no reference: the workload for compute-sanitizer racecheck/synccheck, whose
racecheck cannot run the torch reference's cuBLAS GEMMs ("failed to handle a hardware exception").
Shapes cover every Hopper configuration (d64 3-consumer persistent, d96 / d128 ping-pong, d192 / dv128, causal, local, softcap,
GQA unpacked and packed, O staged through the Q slot or its own buffer, varlen with skipped tiles, split-KV, several L2 sections, the tail split) and run on whatever path the GPU takes. Exit 0 when every
call returned OK.
Usage: compute-sanitizer --tool racecheck --kernel-name kns=fwd_sm90 python3 bench/gpu/sanitize_fwd.py [--lib L] [--dims 128]
"""
import argparse
import itertools
import os

import torch

# Decode-shaped calls would otherwise run on the KV-cache decode kernel (fwd.cu decode_route); this script is about
# the forward kernels. Read once by the library, so set before it is loaded.
os.environ.setdefault("FLASH_FWD_DECODE", "0")

from flashlib import FwdCall, Lib

SHAPES = [  # (d, b, h, hk, seqs_q, seqs_k, causal, window, softcap, dtype)
    (64, 2, 8, 8, [700], [700], False, (-1, -1), 0.0, torch.bfloat16),
    (64, 2, 4, 2, [300], [500], True, (-1, -1), 0.0, torch.float16),
    (128, 2, 8, 2, [600], [900], False, (-1, -1), 0.0, torch.bfloat16),
    (128, 2, 4, 4, [513], [513], True, (-1, -1), 30.0, torch.bfloat16),
    (192, 1, 4, 4, [300], [700], False, (50, 20), 0.0, torch.float16),
    (192, 2, 16, 4, [600], [600], True, (-1, -1), 0.0, torch.bfloat16),  # d192 causal: persistent dynamic, tiles > SMs
    (96, 2, 8, 8, [600], [900], False, (-1, -1), 0.0, torch.bfloat16),  # d96: half-used column block, TMA O
    (96, 2, 4, 2, [513], [513], True, (-1, -1), 30.0, torch.float16),
    (256, 1, 4, 1, [257], [257], True, (-1, -1), 0.0, torch.bfloat16),
    # d256's short rows stage O in a buffer the two consumer warpgroups take in turn, tile after tile (tma_o 2); its
    # causal long row (block_n 80, one CTA per tile, the first tile partial)
    (256, 3, 16, 8, [600], [700], False, (-1, -1), 0.0, torch.bfloat16),
    (256, 2, 16, 4, [900], [1000], True, (-1, -1), 0.0, torch.float16),
    (256, 1, 4, 2, [2000], [4200], True, (-1, -1), 0.0, torch.bfloat16),
    (128, 0, 8, 4, [700, 1, 333], [900, 64, 2000], False, (-1, -1), 0.0, torch.bfloat16),
    (128, 4, 16, 4, [700], [900], True, (-1, -1), 0.0, torch.bfloat16),  # several causal tiles per CTA
    (64, 4, 16, 8, [1000], [1000], True, (-1, -1), 0.0, torch.bfloat16),
    (64, 4, 16, 16, [900], [900], False, (-1, -1), 0.0, torch.float16),
    (64, 1, 8, 8, [2100], [2100], True, (-1, -1), 0.0, torch.bfloat16),  # d64's long-sequence row
    (64, 1, 8, 4, [2100], [2100], False, (-1, -1), 0.0, torch.float16),
    (128, 2, 16, 2, [5], [900], True, (-1, -1), 0.0, torch.bfloat16),  # GQA packed: 8 heads x 5 rows per tile
    (256, 2, 12, 2, [40], [500], False, (64, 8), 0.0, torch.float16),  # packed, group 6: 126 of 128 rows
    (64, 0, 16, 2, [3, 17, 1], [200, 1000, 64], True, (-1, -1), 0.0, torch.bfloat16),  # packed varlen
    # masked tiles in several L2 sections (tile_order.h): one CTA per tile, and the persistent dynamic row
    (128, 1, 5, 5, [200], [16384], True, (-1, -1), 0.0, torch.bfloat16),  # 4 + 1 pairs
    (64, 9, 8, 8, [200], [2000], True, (-1, -1), 0.0, torch.float16),  # 65 + 7 pairs
    # split-KV (the 11th field: num_splits), fp32 partials then the combine
    (128, 1, 8, 8, [1], [5000], False, (-1, -1), 0.0, torch.bfloat16, 12),
    (64, 2, 16, 2, [9], [3000], True, (-1, -1), 0.0, torch.float16, 5),  # packed, 3-consumer row
    (256, 0, 4, 2, [1, 30, 7], [1500, 300, 2600], True, (-1, -1), 0.0, torch.bfloat16, 4),  # varlen, empty splits
    # tail split (hopper/fwd_sm90.cu choose_tail): the main grid, key-range pieces on every SM as programmatic
    # dependents, the tail combine
    (128, 1, 140, 140, [200], [2100], False, (-1, -1), 0.0, torch.bfloat16),  # 16 tail tiles, a partial m block
    (64, 2, 45, 45, [500], [3000], False, (-1, -1), 0.0, torch.float16),  # the 3-consumer row, 6 tail tiles
    # the narrow-V kernel (MLA's d 192 / dv 128; the 12th field: dv): persistent, causal, split
    (192, 2, 8, 2, [600], [900], False, (-1, -1), 0.0, torch.bfloat16, 1, 128),
    (192, 4, 16, 4, [700], [900], True, (-1, -1), 0.0, torch.float16, 1, 128),
    (192, 1, 8, 8, [1], [5000], False, (-1, -1), 0.0, torch.bfloat16, 6, 128),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    ap.add_argument("--dims", help="comma-separated head dims to run (a build with fewer head dims)")
    args = ap.parse_args()
    lib = Lib(args.lib)
    dev = torch.device("cuda")
    shapes = [s for s in SHAPES if not args.dims or str(s[0]) in args.dims.split(",")]
    for d, b, h, hk, sq, sk, causal, window, softcap, dt, *rest in shapes:
        ns = rest[0] if rest else 1
        dv = rest[1] if len(rest) > 1 else d
        torch.manual_seed(d + h)
        if b == 0:  # varlen
            cq = torch.tensor([0, *itertools.accumulate(sq)], dtype=torch.int32, device=dev)
            ck = torch.tensor([0, *itertools.accumulate(sk)], dtype=torch.int32, device=dev)
            q = torch.randn(sum(sq), h, d, device=dev, dtype=dt)
            k = torch.randn(sum(sk), hk, d, device=dev, dtype=dt)
            v = torch.randn(sum(sk), hk, dv, device=dev, dtype=dt)
            call = FwdCall(lib, q=q, k=k, v=v, causal=causal, window=window, softcap=softcap, cu_seqlens_q=cq,
                           cu_seqlens_k=ck, max_seqlen_q=max(sq), max_seqlen_k=max(sk), num_splits=ns)
        else:
            q = torch.randn(b, sq[0], h, d, device=dev, dtype=dt)
            k = torch.randn(b, sk[0], hk, d, device=dev, dtype=dt)
            v = torch.randn(b, sk[0], hk, dv, device=dev, dtype=dt)
            call = FwdCall(lib, q=q, k=k, v=v, causal=causal, window=window, softcap=softcap, num_splits=ns)
        call()
        torch.cuda.synchronize()
        print(f"ok d{d} dv{dv} b{b} h{h}/{hk} {sq}x{sk} causal={causal} window={window} softcap={softcap} [{lib.last_kernel()}]",
              flush=True)
        assert torch.isfinite(call.o.float()).all(), "non-finite output"
    print(f"{len(shapes)} calls OK")


if __name__ == "__main__":
    main()
