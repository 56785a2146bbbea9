#!/usr/bin/env python3
"""GPU correctness harness for libflash's CUDA backward (issue 6; run on the device machine).

For every case: random q, k, v, dO; libflash's own forward gives O and the LSE; dQ/dK/dV/softmax_d are
poisoned with NaN, flash_bwd runs through ctypes on torch data_ptr(), then FlashAttention's rule against
PyTorch autograd of a float32 reference:
    max|g - g_ref32| <= 3 * max|g_pt - g_ref32| + atol,   g_pt = autograd of the same math in the input dtype,
for g in dQ, dK, dV (atol 2e-4 · max(1, max|g_ref32|)); softmax_d against rowsum(dO * O); every valid element
written. Dropout uses the forward's mask (numpy Philox of check_fwd.py). Also: no NaN for seqlen 1, 2, 5, 17
with large inputs (FA's bwd_overflow), deterministic = 1 bitwise over repeats at b = 60 (FA's race-condition
shape), agreement with the CPU backend on small cases.
Usage: check_bwd.py [--quick] [--sanitize] [--dims 96,192] [--json OUT.json] [--lib PATH]
       FLASH_SMEM_LIMIT_BYTES=101376 check_bwd.py --dims 64,96,128,192,256   (the 99 KB tiles of sm86/89/120)
       FLASH_SMEM_LIMIT_BYTES=65536 check_bwd.py --expect-unsupported 64,96,128,192,256
--dims runs the grid (shapes x causal, features, overflow, deterministic) at those head dims only.
--expect-unsupported: every listed head dim must fail with FLASH_ERROR_UNSUPPORTED naming the smem cap and the
small tile (bwd_config.h kBwdTilesSmall), which shows that the knob is read and the small class is chosen.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

# BwdLib and fill_bwd_params are imported from here by bench_bwd.py too.
from flashlib import (BwdLib, Case, attn_ref, dropout_keep, fa_rule, fill_bwd_params, fill_params, record,
                      rp_keep_of, run_checked, seed_case, write_results)


# Set in main(): an sm_90 GPU, a build with sm_90a kernels, FLASH_SM90 not 0, no FLASH_SMEM_LIMIT_BYTES cap.
HOPPER = False
HEAD_DIMS = []


def expected_kernel(c):
    """The backward path a case must take (hopper/bwd_sm90.cu's routing rules)."""
    kw = c.kw
    d = kw["d"]
    dv = kw.get("dv") or d
    dim = next((x for x in sorted(HEAD_DIMS) if x >= max(d, dv)), 0)
    # varlen (cu_seqlens_q / cu_seqlens_k) runs on the Hopper path too; seqused / leftpad would not (none here)
    sm90 = (HOPPER and dim in (64, 128) and not kw.get("dropout") and not kw.get("alibi")
            and not kw.get("softcap") and not kw.get("deterministic") and d % 8 == 0 and dv % 8 == 0)
    if sm90:
        return "cuda.sm90.bwd"
    # MLA's 192 / 128 (and any d, dv <= 128 on the d192 kernel) runs with V 128 wide (bwd_config.h bwd_dim_v)
    return "cuda.sm80.bwd.dv128" if dim == 192 and dv <= 128 else "cuda.sm80.bwd"


def make_inputs(c, dev):
    kw = dict(c.kw)
    dtype = kw["dtype"]
    b, h, hk, d = kw["b"], kw["h"], kw["hk"], kw["d"]
    dv = kw.get("dv") or d
    seqs_q, seqs_k = kw["seqs_q"], kw["seqs_k"]
    varlen = kw.get("varlen", False)
    amp = kw.get("amp", 1.0)
    gen = seed_case(c.name)
    if varlen:
        cq = [0] + [int(x) for x in np.cumsum(seqs_q)]
        ck = [0] + [int(x) for x in np.cumsum(seqs_k)]
        shq, shk = (cq[-1],), (ck[-1],)
    else:
        cq = ck = None
        shq, shk = (b, seqs_q[0]), (b, seqs_k[0])
    t = dict(
        q=(torch.randn(*shq, h, d, device=dev) * amp).to(dtype),
        k=(torch.randn(*shk, hk, d, device=dev) * amp).to(dtype),
        v=(torch.randn(*shk, hk, dv, device=dev) * amp).to(dtype),
        dout=torch.randn(*shq, h, dv, device=dev).to(dtype),
        o=torch.full((*shq, h, dv), float("nan"), device=dev, dtype=dtype),
        lse=torch.full((h, cq[-1]) if varlen else (b, h, seqs_q[0]), float("nan"), device=dev),
    )
    nseq = len(seqs_q) if varlen else b
    t["alibi"] = (torch.rand(nseq, h, device=dev) * 0.3) if kw.get("alibi") else None
    t["cu_q"] = torch.tensor(cq, dtype=torch.int32, device=dev) if varlen else None
    t["cu_k"] = torch.tensor(ck, dtype=torch.int32, device=dev) if varlen else None
    t["seed"], t["offset"] = int(gen.integers(0, 2**63)), int(gen.integers(0, 2**40))
    return t, cq, ck, nseq


def run_libflash(lib, c, t, dev, deterministic=False, device_cpu=False, fwd_only=False):
    kw = c.kw
    seqs_q, seqs_k = kw["seqs_q"], kw["seqs_k"]
    varlen = kw.get("varlen", False)
    fp = fill_params(lib, q=t["q"], k=t["k"], v=t["v"], o=t["o"], lse=t["lse"], causal=kw.get("causal", False),
                     window=kw.get("window", (-1, -1)), softcap=kw.get("softcap", 0.0), alibi=t["alibi"],
                     dropout_p=kw.get("dropout", 0.0), seed=t["seed"], offset=t["offset"], cu_seqlens_q=t["cu_q"],
                     cu_seqlens_k=t["cu_k"], max_seqlen_q=max(seqs_q), max_seqlen_k=max(seqs_k),
                     device_cpu=device_cpu)
    stream = 0 if device_cpu else torch.cuda.current_stream().cuda_stream
    if not fwd_only:
        ws_n = lib.workspace_size(fp)
        ws = torch.empty(max(ws_n, 1), dtype=torch.uint8, device=t["q"].device)
        lib.fwd(fp, ws.data_ptr(), ws_n, stream)
    g = {n: torch.full_like(t[s], float("nan")) for n, s in (("dq", "q"), ("dk", "k"), ("dv", "v"))}
    g["dsum"] = torch.full_like(t["lse"], float("nan"))
    bp = fill_bwd_params(lib, fp, dout=t["dout"], dq=g["dq"], dk=g["dk"], dv=g["dv"], dsoftmax_sum=g["dsum"],
                         deterministic=deterministic)
    bws_n = lib.bwd_workspace_size(bp)
    bws = torch.empty(max(bws_n, 1), dtype=torch.uint8, device=t["q"].device)
    lib.bwd_checked(bp, bws.data_ptr(), bws_n, stream)
    g["kernel"] = lib.last_kernel()
    if not device_cpu:
        torch.cuda.synchronize()
    return g, bp, bws, bws_n


def reference(c, t, cq, ck, nseq, upcast):
    kw = c.kw
    varlen = kw.get("varlen", False)
    seqs_q, seqs_k = kw["seqs_q"], kw["seqs_k"]
    d = kw["d"]
    h = kw["h"]
    scale = 1.0 / math.sqrt(d)
    dropout_p = kw.get("dropout", 0.0)
    rp_keep = rp_keep_of(dropout_p)
    dt = torch.float32 if upcast else t["q"].dtype
    q = t["q"].detach().to(dt).requires_grad_()
    k = t["k"].detach().to(dt).requires_grad_()
    v = t["v"].detach().to(dt).requires_grad_()
    loss = 0.0
    for si in range(nseq):
        if varlen:
            qs, ks, vs = q[cq[si]:cq[si + 1]], k[ck[si]:ck[si + 1]], v[ck[si]:ck[si + 1]]
            gs = t["dout"][cq[si]:cq[si + 1]]
        else:
            qs, ks, vs, gs = q[si], k[si], v[si], t["dout"][si]
        sq_i, sk_i = qs.shape[0], ks.shape[0]
        keep = None
        if dropout_p > 0:
            keep = torch.from_numpy(np.stack([dropout_keep(t["seed"], t["offset"], h, si, hh, sq_i, sk_i, dropout_p)
                                              for hh in range(h)])).to(q.device)
        slope = t["alibi"][si] if t["alibi"] is not None else None
        o, _ = attn_ref(qs, ks, vs, scale=scale, causal=kw.get("causal", False), window=kw.get("window", (-1, -1)),
                        softcap=kw.get("softcap", 0.0), slope=slope, keep=keep, rp_keep=rp_keep, upcast=upcast)
        loss = loss + (o * gs.float()).sum()
    dq, dk, dv = torch.autograd.grad(loss, (q, k, v), allow_unused=True)
    z = lambda g, x: torch.zeros_like(x, dtype=torch.float32) if g is None else g.float()
    return {"dq": z(dq, q), "dk": z(dk, k), "dv": z(dv, v)}


def run_case(lib, c, dev, results, cpu_too=False):
    t, cq, ck, nseq = make_inputs(c, dev)
    g, bp, bws, bws_n = run_libflash(lib, c, t, dev, deterministic=c.kw.get("deterministic", False))
    ref = reference(c, t, cq, ck, nseq, upcast=True)
    pt = reference(c, t, cq, ck, nseq, upcast=False)
    ok, worst, msgs = True, 0.0, []
    want = expected_kernel(c)
    if g["kernel"] != want:
        ok = False
        msgs.append(f"ran {g['kernel']}, expected {want}")
    for n in ("dq", "dk", "dv"):
        out = g[n].float()
        if torch.isnan(out).any():
            ok = False
            msgs.append(f"{n}: {int(torch.isnan(out).sum())} NaN/unwritten")
            continue
        atol = 2e-4 * max(1.0, ref[n].abs().max().item() if out.numel() else 1.0)
        good, err, err_pt, ratio = fa_rule(out, ref[n], pt[n], mult=3, atol=atol)
        worst = max(worst, ratio)
        if not good:
            ok = False
            msgs.append(f"{n}: err {err:.3g} > 3*{err_pt:.3g}+atol")
    # softmax_d = rowsum(dO * O) (LSE layout)
    o = t["o"].float()
    dsum_ref = (o * t["dout"].float()).sum(-1)  # [b, sq, h] or [total, h]
    dsum_ref = dsum_ref.permute(0, 2, 1) if dsum_ref.dim() == 3 else dsum_ref.t()
    de = (g["dsum"] - dsum_ref).abs().max().item() if dsum_ref.numel() else 0.0
    if not de <= 1e-2 * max(1.0, dsum_ref.abs().max().item() if dsum_ref.numel() else 1.0):
        ok = False
        msgs.append(f"softmax_d err {de:.3g}")
    if cpu_too:
        tc = {kk: (vv.cpu() if torch.is_tensor(vv) else vv) for kk, vv in t.items()}
        tc["o"] = t["o"].cpu()
        tc["lse"] = t["lse"].cpu()
        gc, *_ = run_libflash(lib, c, tc, dev, device_cpu=True, fwd_only=True)
        for n in ("dq", "dk", "dv"):
            e = (gc[n].float() - g[n].float().cpu()).abs().max().item()
            e_pt = (pt[n] - ref[n]).abs().max().item()
            if not e <= 3 * e_pt + 2e-3:
                ok = False
                msgs.append(f"{n}: differs from the CPU backend by {e:.3g}")
    return record(results, c.name, ok, msgs, f"ratio={worst:.3f} [{g['kernel']}]", worst_ratio=worst, ws=bws_n)


def overflow_case(lib, dev, results, sq, d, dtype):
    """FA's bwd_overflow flavour: large inputs, tiny lengths: every gradient finite."""
    c = Case(f"overflow sq{sq} d{d}", dtype=dtype, b=2, h=2, hk=2, d=d, seqs_q=[sq], seqs_k=[sq], causal=True, amp=5.0)
    t, *_ = make_inputs(c, dev)
    g, *_ = run_libflash(lib, c, t, dev)
    ok = all(torch.isfinite(g[n]).all().item() for n in ("dq", "dk", "dv"))
    return record(results, c.name, ok, [] if ok else ["non-finite gradient"])


def determinism_case(lib, dev, results, reps, d, causal, dv=None):
    """deterministic = 1: identical bits over `reps` runs (FA's race-condition shape, b = 60)."""
    c = Case(f"deterministic b60 d{d}{f' dv{dv}' if dv else ''} causal{int(causal)}", dtype=torch.bfloat16, b=60,
             h=4, hk=2, d=d, dv=dv, seqs_q=[203], seqs_k=[317], causal=causal)
    t, *_ = make_inputs(c, dev)
    g0, bp, bws, bws_n = run_libflash(lib, c, t, dev, deterministic=True)
    ok, msgs = True, []
    stream = torch.cuda.current_stream().cuda_stream
    first = {n: g0[n].clone() for n in ("dq", "dk", "dv")}
    for r in range(reps - 1):
        for n in ("dq", "dk", "dv"):
            g0[n].fill_(float("nan"))  # bp points at g0's buffers
        lib.bwd_checked(bp, bws.data_ptr(), bws_n, stream)
        torch.cuda.synchronize()
        for n in ("dq", "dk", "dv"):
            if not torch.equal(g0[n].view(torch.int16), first[n].view(torch.int16)):
                ok = False
                msgs.append(f"{n} differs at repeat {r + 1}")
        if not ok:
            break
    # the atomic (non-deterministic) path agrees to rounding
    gn, *_ = run_libflash(lib, c, t, dev, deterministic=False)
    for n in ("dq", "dk", "dv"):
        e = (gn[n].float() - g0[n].float()).abs().max().item()
        if not e <= 2e-2 * max(1.0, g0[n].float().abs().max().item()):
            ok = False
            msgs.append(f"{n}: deterministic vs atomic differ by {e:.3g}")
    return record(results, c.name, ok, msgs, f"reps={reps}")


def build_cases(quick, only_dims=None):
    cases = []
    bf, fp = torch.bfloat16, torch.float16
    shapes = [(1, 1), (2, 17), (17, 17), (113, 203), (203, 113), (1023, 1024)]
    dims = [32, 59, 64, 128, 256]
    if quick:
        shapes = [(17, 17), (113, 203)]
        dims = [64, 128]
    if only_dims:
        dims = only_dims
    for dt in ((bf, fp) if not quick else (bf,)):
        dn = "bf16" if dt == bf else "fp16"
        for (sq, sk) in shapes:
            for d in dims:
                for causal in (False, True):
                    if dt == fp and (sq, sk) in ((1023, 1024), (2, 17)) and d in (32, 59):
                        continue
                    cases.append(Case(f"{dn} sq{sq} sk{sk} d{d} causal{int(causal)}", dtype=dt, b=2, h=3, hk=3,
                                      d=d, seqs_q=[sq], seqs_k=[sk], causal=causal))
    # long sequences (several query and key blocks of the Hopper path, partial last blocks)
    if not quick:
        for (sq, sk) in ((2048, 2048), (2177, 1031)):
            for d in [x for x in (only_dims or (64, 128)) if x in (64, 128)]:
                for causal in (False, True):
                    for dt in (bf, fp):
                        cases.append(Case(f"{'bf16' if dt == bf else 'fp16'} sq{sq} sk{sk} d{d} causal{int(causal)}",
                                          dtype=dt, b=1, h=2, hk=2, d=d, seqs_q=[sq], seqs_k=[sk], causal=causal))
        # more tiles than SMs: the Hopper path's persistent CTAs (non-causal) walk several tiles each
        for d in [x for x in (only_dims or (64, 128)) if x in (64, 128)]:
            for causal in (False, True):
                cases.append(Case(f"many tiles b3 h40 hk20 d{d} causal{int(causal)}", dtype=bf, b=3, h=40, hk=20, d=d,
                                  seqs_q=[1000], seqs_k=[1100], causal=causal))
    for hk in (1, 2):
        for d in only_dims or ((64, 128) if not quick else (128,)):
            cases.append(Case(f"{'mqa' if hk == 1 else 'gqa'} h6 hk{hk} d{d}", dtype=bf, b=2, h=6, hk=hk, d=d,
                              seqs_q=[97], seqs_k=[203], causal=hk == 2))
    for d in only_dims or ((64, 128, 256) if not quick else (128,)):
        cases.append(Case(f"local d{d}", dtype=bf, b=2, h=2, hk=2, d=d, seqs_q=[203], seqs_k=[311], window=(37, 11)))
        cases.append(Case(f"alibi causal d{d}", dtype=bf, b=2, h=4, hk=2, d=d, seqs_q=[113], seqs_k=[203],
                          alibi=True, causal=True))
        cases.append(Case(f"softcap d{d}", dtype=fp, b=2, h=2, hk=2, d=d, seqs_q=[113], seqs_k=[203], softcap=5.0))
        cases.append(Case(f"dropout d{d}", dtype=bf, b=2, h=3, hk=3, d=d, seqs_q=[97], seqs_k=[203], dropout=0.17))
        cases.append(Case(f"dropout causal alibi gqa d{d}", dtype=bf, b=2, h=2, hk=1, d=d, seqs_q=[130],
                          seqs_k=[130], dropout=0.17, causal=True, alibi=True))
        # deterministic = 1 against the reference (the repeat test below checks the bits)
        cases.append(Case(f"deterministic gqa causal d{d}", dtype=bf, b=2, h=4, hk=2, d=d, seqs_q=[203],
                          seqs_k=[317], causal=True, deterministic=True))
        cases.append(Case(f"deterministic dropout d{d}", dtype=fp, b=2, h=2, hk=2, d=d, seqs_q=[130],
                          seqs_k=[97], dropout=0.17, deterministic=True))
    # varlen on the Hopper path (d64 / d128): odd lengths, sq != sk per sequence, an empty sequence (sq = 0; sk = 0
    # is in sanitize_bwd.py only: the float reference cannot take an empty key set), sequences shorter than a block and several blocks long (partial last key box, query blocks that
    # run into the next sequence), causal (sq > sk and sq < sk), local, GQA, fp16 / bf16
    for d in [x for x in (only_dims or (64, 128)) if x in (64, 128)]:
        cases.append(Case(f"varlen gqa d{d}", dtype=bf, b=0, h=4, hk=2, d=d,
                          seqs_q=[1, 17, 113, 0, 203, 1023, 2100, 9], seqs_k=[17, 1, 203, 5, 113, 1030, 2048, 3],
                          varlen=True))
        cases.append(Case(f"varlen causal d{d}", dtype=fp, b=0, h=4, hk=4, d=d,
                          seqs_q=[113, 1, 0, 2050, 300, 17], seqs_k=[203, 17, 9, 2049, 129, 1], varlen=True,
                          causal=True))
        cases.append(Case(f"varlen local mqa d{d}", dtype=bf, b=0, h=6, hk=1, d=d, seqs_q=[203, 17, 1023, 1, 130],
                          seqs_k=[311, 17, 1000, 64, 128], varlen=True, window=(37, 11)))
    # MLA's 192 / 128 on the narrow-V kernel (cuda.sm80.bwd.dv128): odd lengths, GQA, varlen, every feature, the
    # deterministic dQ kernel, and d / dv below the instantiation (dv 100: a partial 16-byte chunk of V and dO)
    if only_dims is None or 192 in only_dims:
        mla = dict(d=192, dv=128)
        cases.append(Case("mla causal d192 dv128", dtype=bf, b=2, h=4, hk=4, seqs_q=[113], seqs_k=[203], causal=True,
                          **mla))
        cases.append(Case("mla d192 dv128", dtype=fp, b=1, h=2, hk=2, seqs_q=[1023], seqs_k=[1024], **mla))
        cases.append(Case("mla gqa d192 dv128", dtype=bf, b=2, h=6, hk=2, seqs_q=[97], seqs_k=[203], **mla))
        cases.append(Case("mla varlen causal d192 dv128", dtype=bf, b=0, h=4, hk=2, seqs_q=[113, 1, 0, 300, 17],
                          seqs_k=[203, 17, 9, 129, 1], varlen=True, causal=True, **mla))
        cases.append(Case("mla dropout alibi causal d192 dv128", dtype=bf, b=2, h=4, hk=2, seqs_q=[130],
                          seqs_k=[130], dropout=0.17, alibi=True, causal=True, **mla))
        cases.append(Case("mla softcap local d192 dv128", dtype=fp, b=2, h=2, hk=2, seqs_q=[203], seqs_k=[311],
                          softcap=5.0, window=(37, 11), **mla))
        cases.append(Case("mla deterministic gqa causal d192 dv128", dtype=bf, b=2, h=4, hk=2, seqs_q=[203],
                          seqs_k=[317], causal=True, deterministic=True, **mla))
        cases.append(Case("mla d176 dv100", dtype=bf, b=2, h=2, hk=1, d=176, dv=100, seqs_q=[97], seqs_k=[113],
                          causal=True))
    if only_dims:
        return cases
    cases.append(Case("varlen d64", dtype=bf, b=0, h=4, hk=2, d=64, seqs_q=[1, 17, 130, 64], seqs_k=[5, 300, 97, 64],
                      varlen=True))
    cases.append(Case("varlen causal d128", dtype=bf, b=0, h=4, hk=4, d=128, seqs_q=[33, 1, 257],
                      seqs_k=[100, 9, 257], varlen=True, causal=True))
    cases.append(Case("varlen local dropout d59", dtype=fp, b=0, h=2, hk=1, d=59, seqs_q=[40, 70, 3],
                      seqs_k=[120, 80, 50], varlen=True, window=(20, 5), dropout=0.17))
    cases.append(Case("dv48 d64", dtype=bf, b=2, h=2, hk=2, d=64, dv=48, seqs_q=[97], seqs_k=[203]))
    cases.append(Case("empty rows local d64", dtype=bf, b=1, h=2, hk=2, d=64, seqs_q=[300], seqs_k=[64],
                      window=(2, 0)))
    return cases


CPU_CASES = ("bf16 sq113 sk203 d64 causal1", "dropout causal alibi gqa d64", "varlen local dropout d59")


# bwd_config.h kBwdTilesSmall: head dim -> (block_m, block_n)
SMALL_TILES = {64: (64, 128), 96: (64, 64), 128: (64, 64), 192: (32, 64), 256: (32, 32)}


def expect_unsupported(lib, dev, dims, results):
    """With FLASH_SMEM_LIMIT_BYTES below every small tile: UNSUPPORTED naming the cap and the small tile."""
    nfail = 0
    for d in dims:
        c = Case(f"unsupported under the smem cap d{d}", dtype=torch.bfloat16, b=1, h=2, hk=2, d=d, seqs_q=[64],
                 seqs_k=[64])
        t, *_ = make_inputs(c, dev)
        bm, bn = SMALL_TILES[d]
        want = ("FLASH_ERROR_UNSUPPORTED", "capped by FLASH_SMEM_LIMIT_BYTES", f"head dim {d}",
                f"block_m={bm} block_n={bn}")
        try:
            run_libflash(lib, c, t, dev)
            ok, msg = False, "ran (expected FLASH_ERROR_UNSUPPORTED)"
        except Exception as e:  # FlashError from flash_bwd (or the forward, which must not fail)
            msg = str(e)
            ok = all(w in msg for w in want)
        results.append({"case": c.name, "ok": ok, "msgs": [msg]})
        print(f"{'PASS' if ok else 'FAIL'} {c.name}: {msg}", flush=True)
        nfail += not ok
    return nfail


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sanitize", action="store_true", help="a few tiny cases (for compute-sanitizer)")
    ap.add_argument("--dims", help="comma-separated head dims: run the grid at these only")
    ap.add_argument("--expect-unsupported", help="comma-separated head dims that must be refused (smem cap)")
    ap.add_argument("--only", help="comma-separated case names: run these only (e.g. under a sanitizer)")
    ap.add_argument("--det-reps", type=int, default=20)
    ap.add_argument("--json")
    ap.add_argument("--lib")
    args = ap.parse_args()
    lib = BwdLib(args.lib)
    print(lib.build_info())
    global HOPPER, HEAD_DIMS
    info = json.loads(lib.build_info())
    HEAD_DIMS = info.get("cuda_head_dims", [])
    HOPPER = (torch.cuda.get_device_capability() == (9, 0) and "sm90" in info.get("cuda_fwd_paths", [])
              and os.environ.get("FLASH_SM90") != "0" and int(os.environ.get("FLASH_SMEM_LIMIT_BYTES", "0") or 0) <= 0)
    print(f"Hopper backward expected for eligible cases: {HOPPER}")
    print("FLASH_SMEM_LIMIT_BYTES =", os.environ.get("FLASH_SMEM_LIMIT_BYTES", "(unset)"))
    dev = torch.device("cuda")
    results = []
    t0 = time.time()
    nfail = 0
    only_dims = [int(x) for x in args.dims.split(",")] if args.dims else None
    if args.expect_unsupported:
        nfail = expect_unsupported(lib, dev, [int(x) for x in args.expect_unsupported.split(",")], results)
        print(f"{len(results) - nfail}/{len(results)} passed in {time.time() - t0:.1f}s")
        sys.exit(1 if nfail else 0)
    if args.sanitize:
        keep = ("bf16 sq17 sk17 d59 causal1", "bf16 sq113 sk203 d64 causal0", "bf16 sq113 sk203 d128 causal1",
                "gqa h6 hk2 d64", "gqa h6 hk2 d128", "local d64", "local d128", "dropout d64", "dropout d128",
                "varlen d64", "varlen causal d128", "softcap d64", "deterministic gqa causal d64",
                "deterministic gqa causal d128", "deterministic dropout d128")
        cases = [c for c in build_cases(False) if c.name in keep]
        if only_dims:  # the d128 cases at these dims instead
            keep = {k.replace(" d128", f" d{d}") for k in keep if " d128" in k for d in only_dims}
            cases = [c for c in build_cases(False, only_dims) if c.name in keep]
    else:
        cases = build_cases(args.quick, only_dims)
    if args.only:
        names = args.only.split(",")
        cases = [c for c in build_cases(False, only_dims) if c.name in names]
    for c in cases:
        cpu_too = c.name in CPU_CASES and not args.sanitize
        nfail += run_checked(results, c.name, lambda: run_case(lib, c, dev, results, cpu_too=cpu_too))
    if not args.sanitize:
        for sq in (1, 2, 5, 17):
            for d in only_dims or (32, 128):
                nfail += run_checked(results, "overflow", lambda: overflow_case(lib, dev, results, sq, d, torch.float16))
        if only_dims:
            det = [(d, c, None) for d in only_dims for c in (False, True)]
        else:
            det = [(128, False, None), (64, True, None)]
        if only_dims is None or 192 in only_dims:
            det.append((192, True, 128))  # the narrow-V dQ kernel
        for d, causal, dv in det:
            nfail += run_checked(results, "deterministic",
                                 lambda: determinism_case(lib, dev, results, args.det_reps, d, causal, dv))
    print(f"{len(results) - nfail}/{len(results)} passed in {time.time() - t0:.1f}s")
    if args.json:
        write_results(args.json, results, nfail)
    sys.exit(1 if nfail else 0)


if __name__ == "__main__":
    main()
