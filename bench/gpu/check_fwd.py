#!/usr/bin/env python3
"""GPU correctness harness for libflash's CUDA forward (run on the device machine).

For every case: random inputs, outputs poisoned with NaN, flash_fwd through ctypes on torch data_ptr(),
then FlashAttention's rule against a float32 PyTorch reference:
    max|out - ref32| <= 2 * max|out_pt - ref32| + 1e-5,   out_pt = the same math in the input dtype,
plus LSE (|lse - ref| <= 1e-3 + 1e-3|ref|, +inf rows exact), every valid element written, padding rows
untouched, and bitwise repeatability. Dropout: the mask is read back exactly (uniform attention over an
identity V) and compared bit for bit with an independent numpy Philox and with the CPU backend.
Every case also asserts which kernel ran. Run it twice: as is, and with FLASH_FWD_DECODE=0 so the decode-shaped
cases (few query rows per K/V head) exercise the forward kernels instead of the KV-cache decode kernel.
Usage: [FLASH_FWD_DECODE=0] check_fwd.py [--quick] [--json OUT.json] [--splits1] [--only a,b]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

from flashlib import (Case, Lib, attn_ref, dropout_keep, fa_rule, fill_params, lse_problem, record, rp_keep_of,
                      run_checked, seed_case, write_results)

HOPPER = False  # set in main(): an sm_90 GPU, a build with sm_90a kernels, FLASH_SM90 not 0
DECODE = os.environ.get("FLASH_FWD_DECODE") != "0"  # the library reads it once, as this does


def run_case(lib, c, dev, results, repeat_check=True):
    kw = dict(c.kw)
    dtype = kw.pop("dtype")
    b, h, hk, d = kw.pop("b"), kw.pop("h"), kw.pop("hk"), kw.pop("d")
    dv = kw.pop("dv", None) or d
    seqs_q, seqs_k = kw.pop("seqs_q"), kw.pop("seqs_k")
    varlen = kw.pop("varlen", False)
    causal, window = kw.pop("causal", False), kw.pop("window", (-1, -1))
    softcap, alibi_on = kw.pop("softcap", 0.0), kw.pop("alibi", False)
    dropout_p, num_splits = kw.pop("dropout", 0.0), kw.pop("num_splits", 0)
    seqused_k_frac, leftpad_on = kw.pop("seqused_k", None), kw.pop("leftpad", False)
    seqused_q_on = kw.pop("seqused_q", False)
    kgrow = kw.pop("kgrow", 0.0)  # key j scaled by 1 + kgrow * (1 - j / (sk - 1)): the row max rises block by block
    noncontig = kw.pop("noncontig", False)
    assert not (kgrow and (varlen or noncontig)), "kgrow scales dense contiguous K only"
    pack = kw.pop("pack", None)  # True / False: the Hopper kernel must (not) pack the GQA group into its tiles
    split_want = kw.pop("split", None)  # True / False: the Hopper heuristic must (not) split the keys
    tail_want = kw.pop("tail", None)  # True / False: the Hopper grid's partial last wave must (not) run as pieces
    gen = seed_case(c.name)
    scale = 1.0 / math.sqrt(d)
    seed, offset = int(gen.integers(0, 2**63)), int(gen.integers(0, 2**40))

    def rnd(*shape, last):
        if noncontig:  # a strided view: extra columns and an extra head between rows
            t = torch.randn(*shape[:-2], shape[-2] + 1, last + 8, device=dev, dtype=dtype)
            return t[..., : shape[-2], :last]
        return torch.randn(*shape[:-1], last, device=dev, dtype=dtype)

    if varlen:
        cq = [0] + list(np.cumsum(seqs_q))
        ck = [0] + list(np.cumsum(seqs_k))
        q = rnd(cq[-1], h, d, last=d)
        k = rnd(ck[-1], hk, d, last=d)
        v = rnd(ck[-1], hk, dv, last=dv)
        o = torch.full((cq[-1], h, dv), float("nan"), device=dev, dtype=dtype)
        lse = torch.full((h, cq[-1]), float("nan"), device=dev, dtype=torch.float32)
        cu_q = torch.tensor(cq, dtype=torch.int32, device=dev)
        cu_k = torch.tensor(ck, dtype=torch.int32, device=dev)
        max_q, max_k = max(seqs_q), max(seqs_k)
    else:
        sq, sk = seqs_q[0], seqs_k[0]
        q = rnd(b, sq, h, d, last=d)
        k = rnd(b, sk, hk, d, last=d)
        v = rnd(b, sk, hk, dv, last=dv)
        if kgrow:  # the kernels visit key blocks from the last to the first, so the max grows as they go
            f = 1.0 + kgrow * (1.0 - torch.arange(sk, device=dev, dtype=torch.float32) / max(sk - 1, 1))
            k = (k.float() * f.view(1, sk, 1, 1)).to(dtype)
        o = torch.full((b, sq, h, dv), float("nan"), device=dev, dtype=dtype)
        lse = torch.full((b, h, sq), float("nan"), device=dev, dtype=torch.float32)
        cu_q = cu_k = None
        max_q, max_k = sq, sk
    nseq = len(seqs_q) if varlen else b
    lens_k_total = seqs_k if varlen else [seqs_k[0]] * b
    lens_q_total = seqs_q if varlen else [seqs_q[0]] * b
    leftpad = [int(gen.integers(0, max(1, L // 3))) for L in lens_k_total] if leftpad_on else [0] * nseq
    used_k = ([max(leftpad[i], int(L * seqused_k_frac)) for i, L in enumerate(lens_k_total)]
              if seqused_k_frac is not None else None)
    used_q = [max(0, L - int(gen.integers(0, max(1, L // 2 + 1)))) for L in lens_q_total] if seqused_q_on else None
    t32 = lambda xs: torch.tensor(xs, dtype=torch.int32, device=dev) if xs is not None else None
    alibi = (torch.rand(nseq, h, device=dev) * 0.3) if alibi_on else None

    # Keep the index tensors alive until the kernels have run (params hold raw pointers only).
    idx_keep = (t32(used_q), t32(used_k), t32(leftpad) if leftpad_on else None)
    p = fill_params(lib, q=q, k=k, v=v, o=o, lse=lse, causal=causal, window=window, softcap=softcap,
                    alibi=alibi, dropout_p=dropout_p, seed=seed, offset=offset, cu_seqlens_q=cu_q,
                    cu_seqlens_k=cu_k, seqused_q=idx_keep[0], seqused_k=idx_keep[1],
                    leftpad_k=idx_keep[2], max_seqlen_q=max_q, max_seqlen_k=max_k,
                    num_splits=num_splits)
    ws_n = lib.workspace_size(p)
    ws = torch.empty(max(ws_n, 1), dtype=torch.uint8, device=dev)
    lib.fwd(p, ws.data_ptr(), ws_n, torch.cuda.current_stream().cuda_stream)
    kernel = lib.last_kernel()
    torch.cuda.synchronize()
    o1, lse1 = o.clone(), lse.clone()
    ok, worst, msgs = True, 0.0, []
    # Which path must have run: the Hopper kernel takes every problem it covers (hopper/fwd_sm90.cu), split-KV
    # included (on its packed kernel: the group must fit a tile, which it does in every case here).
    aligned = all(t.data_ptr() % 16 == 0 and all(s % 8 == 0 for s in t.stride()[:-1]) for t in (q, k, v, o))
    sm90_ok = HOPPER and dropout_p == 0 and not alibi_on and max(d, dv) > 32 and aligned
    # Decode-shaped dense calls run on the KV-cache decode kernel (fwd.cu decode_route) unless FLASH_FWD_DECODE=0.
    decode = DECODE and not varlen and dropout_p == 0 and max(d, dv) <= 128 and max(seqs_q) * (h // hk) <= 32
    want = "cuda.fwd_kvcache" if decode else "cuda.sm90.fwd" if sm90_ok else "cuda.sm80.fwd"
    if not decode and 128 < max(d, dv) <= 192 and dv <= 128:
        want += ".dv128"  # the narrow-V instantiations (sm90_dim_v, fwd_dim_v: MLA's 192 / 128)
    if sm90_ok and not decode:
        # Splits: forced by the case, or the heuristic's choice (a case may assert it with split=True / False).
        split = num_splits >= 2 if num_splits else (split_want if split_want is not None else kernel.endswith(".split"))
        if split and h > hk or pack or (pack is None and not split and kernel.startswith(want + ".packgqa")):
            want += ".packgqa"  # GQA packing is the host's choice (hopper/fwd_sm90.cu pack_gqa) unless the case says
        if split:
            want += ".split"
            if ws_n <= 256:
                ok = False
                msgs.append(f"split on Hopper with a {ws_n}-byte workspace (no room for the partials)")
        elif not causal and window == (-1, -1):
            # The tail split depends on the SM count (fwd_sm90.cu choose_tail): a case may assert it.
            tail = tail_want if tail_want is not None else kernel == want + ".tail"
            if tail:
                want += ".tail"
    if kernel != want:
        ok = False
        msgs.append(f"ran {kernel!r}, expected {want!r}")
    rp_keep = rp_keep_of(dropout_p)
    for si in range(nseq):
        q0 = cq[si] if varlen else 0
        k0 = ck[si] if varlen else 0
        Lq = seqs_q[si] if varlen else seqs_q[0]
        Lk_end = (used_k[si] if used_k else (seqs_k[si] if varlen else seqs_k[0]))
        sq_i = used_q[si] if used_q else Lq
        lp = leftpad[si]
        sk_i = Lk_end - lp
        if varlen:
            qs, ks, vs = q[q0:q0 + sq_i], k[k0 + lp:k0 + lp + sk_i], v[k0 + lp:k0 + lp + sk_i]
            os_, ls = o1[q0:q0 + Lq], lse1[:, q0:q0 + Lq]
        else:
            qs, ks, vs = q[si, :sq_i], k[si, lp:lp + sk_i], v[si, lp:lp + sk_i]
            os_, ls = o1[si], lse1[si]
        keep = None
        if dropout_p > 0:
            keep = torch.from_numpy(np.stack([dropout_keep(seed, offset, h, si, hh, sq_i, sk_i, dropout_p)
                                              for hh in range(h)])).to(dev)
        slope = alibi[si] if alibi is not None else None
        ref, lref = attn_ref(qs, ks, vs, scale=scale, causal=causal, window=window, softcap=softcap,
                             slope=slope, keep=keep, rp_keep=rp_keep, upcast=True)
        pt, _ = attn_ref(qs, ks, vs, scale=scale, causal=causal, window=window, softcap=softcap, slope=slope,
                         keep=keep, rp_keep=rp_keep, upcast=False)
        out = os_[:sq_i].float()
        if torch.isnan(out).any():
            ok = False
            msgs.append(f"seq{si}: NaN/unwritten in O ({int(torch.isnan(out).sum())})")
            continue
        good, err, err_pt, ratio = fa_rule(out, ref, pt, mult=2, atol=1e-5)
        worst = max(worst, ratio)
        if not good:
            ok = False
            msgs.append(f"seq{si}: err {err:.3g} > 2*{err_pt:.3g}+1e-5")
        why = lse_problem(ls[:, :sq_i], lref)
        if why:
            ok = False
            msgs.append(f"seq{si}: {why}")
        if sq_i < Lq:  # seqused_q padding rows: untouched
            if not torch.isnan(os_[sq_i:].float()).all() or not torch.isnan(ls[:, sq_i:]).all():
                ok = False
                msgs.append(f"seq{si}: padding rows were written")
    if repeat_check and ok:
        o.fill_(float("nan"))
        lse.fill_(float("nan"))
        lib.fwd(p, ws.data_ptr(), ws_n, torch.cuda.current_stream().cuda_stream)
        torch.cuda.synchronize()
        same = torch.equal(o.view(torch.int16), o1.view(torch.int16)) and torch.equal(lse.view(torch.int32), lse1.view(torch.int32))
        if not same:
            ok = False
            msgs.append("not bitwise repeatable")
    return record(results, c.name, ok, msgs, f"[{kernel}] ratio={worst:.3f}", worst_ratio=worst, ws=ws_n, kernel=kernel)


def dropout_mask_case(lib, dev, results, dtype, sq, sk, h, b, p_drop, seed, offset, cpu_too):
    """Reads the mask back exactly: q = 0 (uniform attention), V = identity -> O[i, j] = keep * rp / sk."""
    name = f"dropout-mask {dtype} b{b} h{h} sq{sq} sk{sk} p{p_drop}"
    dv = sk
    q = torch.zeros(b, sq, h, 32, device=dev, dtype=dtype)
    k = torch.randn(b, sk, h, 32, device=dev, dtype=dtype)
    v = torch.eye(sk, device=dev, dtype=dtype)[None, :, None, :].expand(b, sk, h, sk).contiguous()
    o = torch.full((b, sq, h, dv), float("nan"), device=dev, dtype=dtype)
    pp = fill_params(lib, q=q, k=k, v=v, o=o, dropout_p=p_drop, seed=seed, offset=offset, num_splits=1)
    lib.fwd(pp, 0, 0, torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    got = (o != 0).permute(0, 2, 1, 3).cpu().numpy()  # [b, h, sq, sk]
    want = np.stack([np.stack([dropout_keep(seed, offset, h, bi, hi, sq, sk, p_drop) for hi in range(h)])
                     for bi in range(b)])
    ok = bool((got == want).all()) and not torch.isnan(o).any().item()
    msgs = [] if ok else [f"{int((got != want).sum())} mask bits differ from numpy Philox"]
    if cpu_too:
        qc, kc, vc = q.cpu(), k.cpu(), v.cpu()
        oc = torch.full_like(vc[:, :sq].expand(b, sq, h, dv).contiguous(), float("nan"))
        pc = fill_params(lib, q=qc, k=kc, v=vc, o=oc, dropout_p=p_drop, seed=seed, offset=offset, device_cpu=True)
        wsn = lib.workspace_size(pc)
        wsc = torch.empty(max(wsn, 1), dtype=torch.uint8)
        lib.fwd(pc, wsc.data_ptr(), wsn, 0)
        gc = (oc != 0).permute(0, 2, 1, 3).numpy()
        if not (gc == got).all():
            ok = False
            msgs.append(f"{int((gc != got).sum())} mask bits differ from the CPU backend")
    return record(results, name, ok, msgs)


def misaligned_workspace_case(lib, dev, results):
    """A workspace pointer off 16-byte alignment is refused (FLASH_ERROR_INVALID_ARGUMENT naming it) before any
    launch: O stays as poisoned, and the context stays usable."""
    from flashlib import FlashError
    q = torch.randn(1, 4, 8, 128, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, 3000, 2, 128, device=dev, dtype=torch.bfloat16)
    o = torch.full_like(q, float("nan"))
    p = fill_params(lib, q=q, k=k, v=k, o=o, num_splits=3)
    ws_n = lib.workspace_size(p)
    ws = torch.empty(ws_n + 64, dtype=torch.uint8, device=dev)
    msgs = []
    try:
        lib.fwd(p, ws.data_ptr() + 4, ws_n, torch.cuda.current_stream().cuda_stream)
        msgs.append("a workspace at +4 bytes was accepted")
    except FlashError as e:
        if "16-byte aligned" not in str(e) or "INVALID_ARGUMENT" not in str(e):
            msgs.append(f"unexpected error: {e}")
    torch.cuda.synchronize()
    if not torch.isnan(o.float()).all():
        msgs.append("O was written")
    lib.fwd(p, ws.data_ptr(), ws_n, torch.cuda.current_stream().cuda_stream)  # the context still works
    torch.cuda.synchronize()
    if ws_n == 0:
        msgs.append("the case needs a workspace (a split) to test")
    return record(results, "misaligned workspace refused", not msgs, msgs)


def build_cases(quick):
    cases = []
    dts = [torch.bfloat16, torch.float16]
    shapes = [(1, 1), (17, 17), (97, 113), (113, 203), (203, 113), (1023, 1024)]
    dims = [32, 59, 64, 96, 128, 192, 256]
    if quick:
        shapes = [(17, 17), (113, 203), (203, 113)]
        dims = [59, 64, 128]
        dts = [torch.bfloat16]
    for dt in dts:
        dn = "bf16" if dt == torch.bfloat16 else "fp16"
        for (sq, sk) in shapes:
            for d in dims:
                for causal in (False, True):
                    cases.append(Case(f"{dn} sq{sq} sk{sk} d{d} causal{int(causal)}", dtype=dt, b=2, h=3, hk=3, d=d,
                                      seqs_q=[sq], seqs_k=[sk], causal=causal))
    dt = torch.bfloat16
    for hk in (1, 2, 6):
        for d in ((64, 128) if not quick else (64,)):
            cases.append(Case(f"gqa h6 hk{hk} d{d}", dtype=dt, b=2, h=6, hk=hk, d=d, seqs_q=[97], seqs_k=[203], causal=hk == 2))
    for d in ((64, 128, 256) if not quick else (128,)):
        cases.append(Case(f"local d{d}", dtype=dt, b=2, h=2, hk=2, d=d, seqs_q=[203], seqs_k=[311], window=(37, 11)))
        cases.append(Case(f"local-left-only d{d}", dtype=dt, b=1, h=2, hk=2, d=d, seqs_q=[300], seqs_k=[300], window=(50, -1)))
        cases.append(Case(f"alibi d{d}", dtype=dt, b=2, h=4, hk=2, d=d, seqs_q=[113], seqs_k=[203], alibi=True, causal=True))
        cases.append(Case(f"softcap d{d}", dtype=torch.float16, b=2, h=2, hk=2, d=d, seqs_q=[113], seqs_k=[203], softcap=5.0))
        cases.append(Case(f"dropout d{d}", dtype=dt, b=2, h=3, hk=3, d=d, seqs_q=[97], seqs_k=[203], dropout=0.17))
        cases.append(Case(f"dropout-causal-alibi d{d}", dtype=dt, b=2, h=2, hk=1, d=d, seqs_q=[130], seqs_k=[130], dropout=0.3, causal=True, alibi=True))
    cases.append(Case("varlen d64", dtype=dt, b=0, h=4, hk=2, d=64, seqs_q=[1, 17, 130, 64], seqs_k=[5, 300, 97, 64], varlen=True))
    cases.append(Case("varlen causal d128", dtype=dt, b=0, h=4, hk=4, d=128, seqs_q=[33, 1, 257], seqs_k=[100, 9, 257], varlen=True, causal=True))
    cases.append(Case("varlen seqused_k leftpad d96", dtype=dt, b=0, h=2, hk=2, d=96, seqs_q=[40, 70, 3], seqs_k=[120, 80, 50], varlen=True, seqused_k=0.8, leftpad=True, causal=True))
    cases.append(Case("dense seqused_q/k leftpad d64", dtype=dt, b=3, h=2, hk=1, d=64, seqs_q=[150], seqs_k=[260], seqused_q=True, seqused_k=0.9, leftpad=True))
    cases.append(Case("dv48 d64", dtype=dt, b=2, h=2, hk=2, d=64, dv=48, seqs_q=[97], seqs_k=[203]))
    # d96's Hopper kernel (64-column smem blocks, the last half zeros; N = 96 P V): its other row features
    cases.append(Case("gqa dv64 d96", dtype=dt, b=2, h=6, hk=2, d=96, dv=64, seqs_q=[97], seqs_k=[203]))
    cases.append(Case("softcap local d96", dtype=torch.float16, b=2, h=2, hk=2, d=96, seqs_q=[203], seqs_k=[311],
                      softcap=5.0, window=(37, 11)))
    cases.append(Case("splits3 causal d96", dtype=dt, b=2, h=2, hk=2, d=96, seqs_q=[50], seqs_k=[1500], num_splits=3,
                      causal=True))
    cases.append(Case("d80 causal long", dtype=dt, b=1, h=4, hk=4, d=80, seqs_q=[1100], seqs_k=[1300], causal=True))
    cases.append(Case("dv100 d128 causal", dtype=dt, b=2, h=2, hk=2, d=128, dv=100, seqs_q=[97], seqs_k=[203], causal=True))
    # The narrow-V Hopper kernel (MLA's d 192 / dv 128; any 128 < d <= 192 with dv <= 128): V, P V and O at 128
    # columns while Q K^T spans 192. Its rows' features: GQA, causal over several key blocks, varlen with a window,
    # softcap, splits, more tiles than SMs (persistent), d / dv that leave TMA to zero-fill columns.
    cases.append(Case("mla d192 dv128", dtype=dt, b=2, h=4, hk=4, d=192, dv=128, seqs_q=[97], seqs_k=[203]))
    cases.append(Case("mla causal gqa d192 dv128", dtype=dt, b=2, h=8, hk=2, d=192, dv=128, seqs_q=[300], seqs_k=[700],
                      causal=True))
    cases.append(Case("mla varlen local d192 dv128", dtype=dt, b=0, h=4, hk=2, d=192, dv=128, seqs_q=[300, 1, 77],
                      seqs_k=[1500, 129, 900], varlen=True, window=(100, 30)))
    cases.append(Case("mla softcap causal d192 dv128", dtype=torch.float16, b=2, h=2, hk=2, d=192, dv=128,
                      seqs_q=[257], seqs_k=[513], softcap=30.0, causal=True))
    cases.append(Case("mla splits3 d192 dv128", dtype=dt, b=2, h=4, hk=1, d=192, dv=128, seqs_q=[5], seqs_k=[1000],
                      num_splits=3))
    cases.append(Case("mla d160 dv96 causal", dtype=dt, b=2, h=2, hk=2, d=160, dv=96, seqs_q=[113], seqs_k=[203],
                      causal=True))
    cases.append(Case("mla persistent d192 dv128", dtype=dt, b=4, h=16, hk=16, d=192, dv=128, seqs_q=[700],
                      seqs_k=[900]))
    cases.append(Case("mla persistent causal d192 dv128", dtype=dt, b=4, h=16, hk=4, d=192, dv=128, seqs_q=[1000],
                      seqs_k=[1000], causal=True))
    # Dropout and ALiBi run on the mma.sync kernel on every GPU: its narrow-V instantiation's feature kernel.
    cases.append(Case("mla dropout alibi causal d192 dv128", dtype=dt, b=2, h=4, hk=2, d=192, dv=128, seqs_q=[130],
                      seqs_k=[203], dropout=0.17, alibi=True, causal=True))
    cases.append(Case("noncontig d64", dtype=dt, b=2, h=3, hk=3, d=64, seqs_q=[113], seqs_k=[203], noncontig=True))
    # Scores that grow from key block to key block (in the order the kernels visit them): the running max keeps
    # moving up, by more than the lazy-rescale threshold (kgrow 8) or by more than an fp32 exponential's range
    # (kgrow 300: 2^(s - stale max) overflows), so every rescale path runs, the Hopper kernel's speculative
    # softmax's fallback included. One split, so each tile walks all of its key blocks.
    for d in ((64, 128, 256) if not quick else (128,)):
        for causal in (False, True):
            cases.append(Case(f"growing max d{d} causal{int(causal)}", dtype=torch.float16 if causal else dt, b=2, h=4,
                              hk=4, d=d, seqs_q=[300], seqs_k=[2100], causal=causal, kgrow=8.0, num_splits=1))
        cases.append(Case(f"overflowing max d{d}", dtype=dt, b=2, h=4, hk=4, d=d, seqs_q=[300], seqs_k=[2100],
                          causal=d == 128, kgrow=300.0, num_splits=1))
    # ... and rows whose first visible key comes blocks after their tile's first (a window's left edge).
    cases.append(Case("growing max local d128", dtype=torch.float16, b=1, h=4, hk=4, d=128, seqs_q=[2100],
                      seqs_k=[2100], window=(700, 0), kgrow=8.0, num_splits=1))
    cases.append(Case("noncontig d40 causal", dtype=torch.float16, b=2, h=3, hk=3, d=40, seqs_q=[113], seqs_k=[203], noncontig=True, causal=True))
    for ns in (0, 1, 2, 3, 7, 64):
        cases.append(Case(f"decode splits{ns} d128", dtype=dt, b=1, h=4, hk=1, d=128, seqs_q=[1], seqs_k=[4099], num_splits=ns))
    cases.append(Case("splits5 causal d64", dtype=dt, b=2, h=2, hk=2, d=64, seqs_q=[77], seqs_k=[1500], num_splits=5, causal=True))
    cases.append(Case("splits3 varlen d128", dtype=dt, b=0, h=2, hk=2, d=128, seqs_q=[1, 30, 5], seqs_k=[900, 300, 2000], varlen=True, num_splits=3))
    cases.append(Case("splits4 local d256", dtype=dt, b=1, h=2, hk=2, d=256, seqs_q=[16], seqs_k=[1200], window=(300, 0), num_splits=4))
    # Several key blocks per sequence with a partial last one (the Hopper kernel's shifted last box), in
    # varlen (neighbouring sequences in the same tensor) and dense with sk != sq.
    cases.append(Case("varlen long d128", dtype=dt, b=0, h=4, hk=2, d=128, seqs_q=[300, 1000, 77], seqs_k=[1500, 129, 900], varlen=True))
    cases.append(Case("varlen long causal d64", dtype=dt, b=0, h=2, hk=1, d=64, seqs_q=[300, 1000, 77], seqs_k=[1500, 129, 900], varlen=True, causal=True))
    cases.append(Case("varlen long local d256", dtype=torch.float16, b=0, h=2, hk=2, d=256, seqs_q=[500, 20], seqs_k=[700, 333], varlen=True, window=(100, 30)))
    cases.append(Case("dense sq1000 sk3000 causal d192", dtype=dt, b=1, h=2, hk=1, d=192, seqs_q=[1000], seqs_k=[3000], causal=True))
    cases.append(Case("softcap bf16 causal gqa d128", dtype=dt, b=2, h=4, hk=1, d=128, seqs_q=[257], seqs_k=[513], softcap=30.0, causal=True))
    # More tiles than SMs: the persistent Hopper grid strides over several tiles per CTA (varlen: with
    # tiles past a short sequence's end skipped).
    cases.append(Case("persistent d128", dtype=dt, b=4, h=16, hk=4, d=128, seqs_q=[700], seqs_k=[900]))
    cases.append(Case("persistent d64", dtype=torch.float16, b=3, h=16, hk=16, d=64, seqs_q=[1000], seqs_k=[517]))
    cases.append(Case("persistent varlen d128", dtype=dt, b=0, h=16, hk=8, d=128, seqs_q=[700, 1, 1500, 333], seqs_k=[900, 64, 1500, 2000], varlen=True))
    # Causal / local with more tiles than SMs (dynamic schedule where the tile table makes them persistent;
    # tiles of one to many key blocks back to back, windows leaving some tiles without keys).
    cases.append(Case("persistent causal d128", dtype=dt, b=4, h=16, hk=4, d=128, seqs_q=[700], seqs_k=[900], causal=True))
    cases.append(Case("persistent causal d64", dtype=torch.float16, b=3, h=16, hk=8, d=64, seqs_q=[1000], seqs_k=[1000], causal=True))
    cases.append(Case("persistent local varlen d128", dtype=dt, b=0, h=16, hk=16, d=128, seqs_q=[700, 1, 1500, 333], seqs_k=[900, 64, 1500, 2000], varlen=True, window=(100, 0)))
    # The O-buffer rows (tma_o 2: d256, MLA 192 / 128; causal ones dynamic): a CTA that stores a tile through TMA and
    # then gets two tiles without an S GEMM (no visible key: causal with seqlen_q >= seqlen_k + 2 block_m; or past a
    # short sequence's end) must release the buffer before it waits for the tile ring (step 51: it hung before).
    # Unpacked (hk = h), one split, more tiles than SMs.
    cases.append(Case("persistent causal sq>>sk d256", dtype=dt, b=4, h=32, hk=32, d=256, seqs_q=[1024], seqs_k=[128],
                      causal=True))
    cases.append(Case("persistent causal sq>>sk d192 dv128", dtype=torch.float16, b=4, h=32, hk=32, d=192, dv=128,
                      seqs_q=[1024], seqs_k=[128], causal=True))
    cases.append(Case("persistent varlen causal d256", dtype=dt, b=0, h=16, hk=16, d=256, seqs_q=[700, 1] * 8,
                      seqs_k=[700, 1] * 8, varlen=True, causal=True))
    # seqlen_k >= 2048 (causal; non-causal >= 1025) puts d64 on its second tile row (3 consumers, fwd_sm90_config.h);
    # varlen: the longest sequence decides. Without num_splits the heuristic may split these small grids (the row then
    # follows the keys per split).
    cases.append(Case("long d64", dtype=dt, b=1, h=4, hk=2, d=64, seqs_q=[2100], seqs_k=[2100]))
    cases.append(Case("long causal d64", dtype=torch.float16, b=1, h=4, hk=4, d=64, seqs_q=[2048], seqs_k=[2111], causal=True))
    cases.append(Case("long varlen local d64", dtype=dt, b=0, h=4, hk=1, d=64, seqs_q=[2100, 5, 700], seqs_k=[2100, 3000, 9], varlen=True, window=(300, 7)))
    # d256 non-causal: block_n 128 below 2k keys (O through its own buffer, the consumers in turn; several tiles per
    # CTA), block_n 80 from 2k (and with softcap); the boundary itself (2048 keys, 80 not dividing it), one split so
    # the row follows the whole key length (the heuristic would split these grids).
    cases.append(Case("short d256", dtype=dt, b=3, h=16, hk=8, d=256, seqs_q=[600], seqs_k=[700]))
    cases.append(Case("softcap short d256", dtype=torch.float16, b=2, h=4, hk=4, d=256, seqs_q=[200], seqs_k=[300], softcap=20.0))
    cases.append(Case("long d256", dtype=dt, b=1, h=4, hk=1, d=256, seqs_q=[1100], seqs_k=[4130]))
    cases.append(Case("long d256 2048", dtype=dt, b=2, h=8, hk=2, d=256, seqs_q=[333], seqs_k=[2048], num_splits=1))
    cases.append(Case("short d256 2047", dtype=torch.float16, b=1, h=8, hk=8, d=256, seqs_q=[257], seqs_k=[2047], num_splits=1))
    # d64 non-causal: the 3-consumer row (192-row tiles) from 1025 keys, a partial last tile and a full-tile grid; below
    # it the persistent 2-consumer row (CTAs taking 2 tiles of 8 key blocks, so a K/V ring whose depth does not divide 8
    # wraps its phase inside and across tiles), and the boundary itself.
    cases.append(Case("persistent 2-consumer d64", dtype=dt, b=3, h=16, hk=8, d=64, seqs_q=[1000], seqs_k=[1000], num_splits=1))
    cases.append(Case("2-consumer d64 1024", dtype=torch.float16, b=1, h=6, hk=2, d=64, seqs_q=[333], seqs_k=[1024], num_splits=1))
    cases.append(Case("3-consumer d64 1025", dtype=dt, b=2, h=6, hk=3, d=64, seqs_q=[700], seqs_k=[1025], num_splits=1))
    cases.append(Case("3-consumer d64 1536", dtype=dt, b=2, h=6, hk=3, d=64, seqs_q=[1500], seqs_k=[1536], num_splits=1))
    cases.append(Case("3-consumer d64 full tiles", dtype=torch.float16, b=1, h=4, hk=4, d=64, seqs_q=[1536], seqs_k=[1600],
                      num_splits=1))
    # d256 causal: below 4k keys the persistent block_n 128 row (O through its own buffer), from 4k (and with softcap)
    # the block_n 80 row; a full-tile grid of the first, so every tile's O takes the buffer.
    cases.append(Case("persistent causal d256", dtype=dt, b=2, h=16, hk=4, d=256, seqs_q=[900], seqs_k=[1000], causal=True))
    cases.append(Case("softcap causal d256", dtype=dt, b=2, h=4, hk=2, d=256, seqs_q=[300], seqs_k=[517], softcap=50.0, causal=True))
    cases.append(Case("long causal d256", dtype=torch.float16, b=1, h=4, hk=2, d=256, seqs_q=[2000], seqs_k=[4200], causal=True))
    # O's paired register stores (pair_o) ending inside a pair of column tiles: dv 200 on the block_n 80 row.
    cases.append(Case("long d200 paired O", dtype=torch.float16, b=1, h=3, hk=3, d=200, seqs_q=[300], seqs_k=[4100]))
    # d192 x 192 causal: the persistent dynamic row below 4k keys (CTAs taking several tiles, GQA, softcap, varlen),
    # the one-CTA-per-tile row from 4k (its first row boundary: seqlen_k 4096 exactly).
    cases.append(Case("persistent causal gqa d192", dtype=dt, b=4, h=16, hk=4, d=192, seqs_q=[1000], seqs_k=[1000], causal=True))
    cases.append(Case("persistent causal softcap d192", dtype=torch.float16, b=2, h=16, hk=16, d=192, seqs_q=[900], seqs_k=[1100],
                      softcap=30.0, causal=True))
    cases.append(Case("persistent varlen causal d192", dtype=dt, b=0, h=12, hk=6, d=192, seqs_q=[300, 1200, 5],
                      seqs_k=[800, 1200, 77], varlen=True, causal=True))
    cases.append(Case("long causal d192 4096", dtype=dt, b=1, h=4, hk=2, d=192, seqs_q=[700], seqs_k=[4096], causal=True))
    cases.append(Case("full tiles causal d256", dtype=dt, b=2, h=8, hk=8, d=256, seqs_q=[1024], seqs_k=[1024], causal=True))
    cases.append(Case("persistent varlen d256", dtype=dt, b=0, h=12, hk=12, d=256, seqs_q=[300, 1200, 5], seqs_k=[800, 1200, 77], varlen=True))
    cases.append(Case("empty rows local d64", dtype=dt, b=1, h=2, hk=2, d=64, seqs_q=[300], seqs_k=[64], window=(2, 0)))
    # GQA packing on the Hopper kernel (a K/V head's query heads share the tiles' rows): short query lengths,
    # groups that divide block_m and one that does not (6: 21 query rows x 6 heads = 126 of 128 rows), MQA,
    # every mask, varlen, seqused / leftpad, softcap, the 3-consumer d64 row (block_m 192) and both d256 rows.
    # One split each: the split heuristic would split these small grids.
    cases.append(Case("packgqa decode d128", dtype=dt, b=2, h=32, hk=4, d=128, seqs_q=[1], seqs_k=[3000], num_splits=1, pack=True))
    cases.append(Case("packgqa sq5 causal d64", dtype=torch.float16, b=2, h=16, hk=2, d=64, seqs_q=[5], seqs_k=[700], causal=True, num_splits=1, pack=True))
    cases.append(Case("packgqa group6 local d256", dtype=dt, b=2, h=12, hk=2, d=256, seqs_q=[40], seqs_k=[500], window=(64, 8), num_splits=1, pack=True))
    cases.append(Case("packgqa group6 causal long d256", dtype=dt, b=1, h=12, hk=2, d=256, seqs_q=[50], seqs_k=[4300], causal=True, num_splits=1, pack=True))
    cases.append(Case("packgqa varlen causal d128", dtype=dt, b=0, h=16, hk=2, d=128, seqs_q=[3, 17, 1], seqs_k=[200, 1000, 64], varlen=True, causal=True, num_splits=1, pack=True))
    cases.append(Case("packgqa mqa seqused leftpad d64", dtype=dt, b=2, h=8, hk=1, d=64, seqs_q=[20], seqs_k=[300], seqused_q=True, seqused_k=0.8, leftpad=True, num_splits=1, pack=True))
    cases.append(Case("packgqa softcap d128", dtype=torch.float16, b=2, h=8, hk=2, d=128, seqs_q=[9], seqs_k=[517], softcap=30.0, num_splits=1, pack=True))
    cases.append(Case("packgqa long d64", dtype=dt, b=1, h=16, hk=1, d=64, seqs_q=[7], seqs_k=[2500], causal=True, num_splits=1, pack=True))
    cases.append(Case("packgqa dv64 d128", dtype=dt, b=2, h=8, hk=2, d=128, dv=64, seqs_q=[30], seqs_k=[129], num_splits=1, pack=True))
    cases.append(Case("no packgqa sq1000 d128", dtype=dt, b=1, h=8, hk=1, d=128, seqs_q=[1024], seqs_k=[1024], num_splits=1, pack=False))
    # Split-KV on the Hopper kernel (packed instantiation; group 1 packs trivially): every head dim and tile row
    # (the row follows the keys per split: d64 >= 1025 non-causal / 2048 causal per split takes the 3-consumer row,
    # d256 >= 2048 non-causal / 4096 causal the block_n 80 rows), every mask, varlen, seqused / leftpad, softcap, GQA groups that do and do not divide block_m, MQA,
    # dv < d, splits left empty by a window, more splits than key blocks, and the heuristic on decode shapes.
    cases.append(Case("split2 d64 long row", dtype=dt, b=1, h=2, hk=2, d=64, seqs_q=[300], seqs_k=[4500], num_splits=2))
    cases.append(Case("split5 causal gqa d64", dtype=torch.float16, b=2, h=8, hk=2, d=64, seqs_q=[33], seqs_k=[3001], causal=True, num_splits=5))
    cases.append(Case("split3 d128 group6", dtype=dt, b=2, h=12, hk=2, d=128, seqs_q=[21], seqs_k=[2000], num_splits=3))
    cases.append(Case("split7 causal d128 sq>sk", dtype=dt, b=1, h=4, hk=4, d=128, seqs_q=[300], seqs_k=[1000], causal=True, num_splits=7))
    cases.append(Case("split4 local d192", dtype=torch.float16, b=1, h=3, hk=1, d=192, seqs_q=[50], seqs_k=[1500], window=(200, 30), num_splits=4))
    cases.append(Case("split6 d256 long row", dtype=dt, b=1, h=2, hk=1, d=256, seqs_q=[9], seqs_k=[25000], num_splits=6))
    cases.append(Case("split3 causal d256", dtype=dt, b=1, h=4, hk=2, d=256, seqs_q=[100], seqs_k=[900], causal=True, num_splits=3))
    cases.append(Case("split4 varlen seqused leftpad d128", dtype=dt, b=0, h=8, hk=2, d=128, seqs_q=[1, 40, 7], seqs_k=[1500, 300, 2500], varlen=True, seqused_k=0.8, leftpad=True, causal=True, num_splits=4))
    cases.append(Case("split3 seqused_q dense d64", dtype=dt, b=3, h=4, hk=1, d=64, seqs_q=[30], seqs_k=[1200], seqused_q=True, seqused_k=0.7, num_splits=3))
    cases.append(Case("split5 softcap d128", dtype=torch.float16, b=1, h=4, hk=4, d=128, seqs_q=[17], seqs_k=[1300], softcap=30.0, num_splits=5))
    cases.append(Case("split8 empty splits local d64", dtype=dt, b=1, h=2, hk=2, d=64, seqs_q=[100], seqs_k=[2000], window=(40, 0), num_splits=8))
    cases.append(Case("split64 > blocks d128", dtype=dt, b=1, h=2, hk=1, d=128, seqs_q=[3], seqs_k=[700], num_splits=64))
    cases.append(Case("split3 dv64 mqa d128", dtype=dt, b=2, h=8, hk=1, d=128, dv=64, seqs_q=[5], seqs_k=[1000], num_splits=3))
    cases.append(Case("split heuristic decode mha d128", dtype=dt, b=1, h=8, hk=8, d=128, seqs_q=[1], seqs_k=[8000], split=True))
    cases.append(Case("split heuristic decode gqa d64", dtype=torch.float16, b=2, h=32, hk=4, d=64, seqs_q=[1], seqs_k=[6000], causal=True, split=True))
    cases.append(Case("no split heuristic big grid d128", dtype=dt, b=8, h=16, hk=16, d=128, seqs_q=[256], seqs_k=[2000], split=False))
    # Decode-shaped calls with seqused / leftpad (on the KV-cache decode kernel unless FLASH_FWD_DECODE=0).
    cases.append(Case("decode seqused_k leftpad gqa d128", dtype=dt, b=3, h=16, hk=4, d=128, seqs_q=[1], seqs_k=[3000], seqused_k=0.7, leftpad=True))
    cases.append(Case("decode seqused_q causal mqa d64", dtype=torch.float16, b=3, h=8, hk=1, d=64, seqs_q=[4], seqs_k=[900], seqused_q=True, seqused_k=0.9, causal=True))
    cases.append(Case("decode leftpad local softcap d96", dtype=dt, b=2, h=4, hk=4, d=96, seqs_q=[5], seqs_k=[1300], leftpad=True, window=(200, 0), softcap=20.0))
    # Masked tiles in L2 sections (tile_order.h), on the one-CTA-per-tile and the persistent dynamic rows, local,
    # packed GQA, varlen. The names give the sections as they were before session 40 (32 MB of K/V each, the last one
    # shorter; the mma.sync path keeps that order); the Hopper path makes them equal (4+4+4+3, 36+36, 3+3, 2+2, 4+4+4, 14+13+13) and, up to 1536 keys, sizes them by
    # 8 MB grown to two waves of tiles: the last case is 27+27+26 pairs there (wave floor 33 with 132 SMs).
    cases.append(Case("l2 sections causal d128 4+4+4+3", dtype=dt, b=3, h=5, hk=5, d=128, seqs_q=[300], seqs_k=[16384], causal=True, num_splits=1))
    cases.append(Case("l2 sections causal d64 dynamic 65+7", dtype=torch.float16, b=9, h=8, hk=8, d=64, seqs_q=[200], seqs_k=[2000], causal=True, num_splits=1))
    cases.append(Case("l2 sections local d256 3+3", dtype=dt, b=2, h=3, hk=3, d=256, seqs_q=[600], seqs_k=[9000], window=(500, 100), num_splits=1))
    cases.append(Case("l2 sections packgqa causal d128 3+1", dtype=dt, b=2, h=16, hk=2, d=128, seqs_q=[50], seqs_k=[20000], causal=True, num_splits=1, pack=True))
    cases.append(Case("l2 sections varlen causal d128 5+5+2", dtype=dt, b=0, h=4, hk=4, d=128, seqs_q=[100, 700, 30], seqs_k=[9000, 12000, 500], varlen=True, causal=True, num_splits=1))
    cases.append(Case("l2 sections causal d128 40 pairs sk4096", dtype=dt, b=2, h=20, hk=20, d=128, seqs_q=[4096], seqs_k=[4096], causal=True, num_splits=1))
    cases.append(Case("l2 sections causal d64 80 pairs sk1024", dtype=torch.float16, b=2, h=40, hk=40, d=64, seqs_q=[1024], seqs_k=[1024], causal=True, num_splits=1))
    # Masked tiles aligned to the sequence's end (the partial tile is the first one, its rows above the sequence
    # empty; rows whose block_m is not a multiple of block_n): the 3-consumer d64 row (192 x 128) dense and varlen
    # (a first tile reading its neighbour's rows), d256's long row (128 x 80) local, d192 (128 x 112) causal; one
    # split and no packing, else these small grids take the split / packed kernels, which keep the plain order.
    cases.append(Case("shifted causal d64 3-consumer", dtype=dt, b=2, h=4, hk=4, d=64, seqs_q=[2100], seqs_k=[2100], causal=True, num_splits=1, pack=False))
    cases.append(Case("shifted varlen causal d64 3-consumer", dtype=torch.float16, b=0, h=4, hk=2, d=64, seqs_q=[2100, 5, 700], seqs_k=[2100, 3000, 2050], varlen=True, causal=True))
    cases.append(Case("shifted local d256 block_n 80", dtype=dt, b=1, h=3, hk=3, d=256, seqs_q=[4200], seqs_k=[4200], window=(300, 0), num_splits=1, pack=False))
    cases.append(Case("shifted causal d192", dtype=torch.float16, b=2, h=2, hk=2, d=192, seqs_q=[203], seqs_k=[203], causal=True, num_splits=1, pack=False))
    # The tail split (unmasked dense grids on the persistent static rows, 132 SMs): the last tiles mod SMs as
    # key-range pieces on every SM, then the tail combine. Partial m blocks and key blocks in the tail tiles,
    # the 3-consumer d64 row, packed GQA, the d256 row that takes softcap, d < the instantiated dim, dv < d.
    cases.append(Case("tail d128 partial blocks", dtype=dt, b=1, h=140, hk=140, d=128, seqs_q=[200], seqs_k=[2100], tail=True))
    cases.append(Case("tail d64 3-consumer row", dtype=torch.float16, b=2, h=45, hk=45, d=64, seqs_q=[500], seqs_k=[3000], tail=True))
    cases.append(Case("tail packgqa d128", dtype=dt, b=9, h=64, hk=16, d=128, seqs_q=[20], seqs_k=[2000], num_splits=1, pack=True, tail=True))
    cases.append(Case("tail softcap d256", dtype=torch.float16, b=1, h=140, hk=140, d=256, seqs_q=[130], seqs_k=[1500], softcap=20.0, tail=True))
    cases.append(Case("tail d256 short row", dtype=dt, b=1, h=140, hk=140, d=256, seqs_q=[130], seqs_k=[1500], tail=True))
    cases.append(Case("tail d160 on d192", dtype=dt, b=1, h=150, hk=150, d=160, seqs_q=[64], seqs_k=[2000], tail=True))
    cases.append(Case("tail dv64 d128", dtype=dt, b=1, h=140, hk=140, d=128, dv=64, seqs_q=[130], seqs_k=[2100], tail=True))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sanitize", action="store_true", help="reduced grid for compute-sanitizer")
    ap.add_argument("--json")
    ap.add_argument("--only", help="comma-separated substrings of case names")
    ap.add_argument("--lib")
    ap.add_argument("--splits1", action="store_true",
                    help="num_splits = 1 wherever a case leaves it to the heuristic (on Hopper: the sm90 kernel "
                         "takes every case it covers instead of the small ones going to split-KV on sm80)")
    args = ap.parse_args()
    lib = Lib(args.lib)
    print(lib.build_info())
    global HOPPER
    HOPPER = (torch.cuda.get_device_capability() == (9, 0) and "sm90" in json.loads(lib.build_info()).get("cuda_fwd_paths", [])
              and os.environ.get("FLASH_SM90") != "0")
    print(f"Hopper path expected for eligible cases: {HOPPER}")
    dev = torch.device("cuda")
    results = []
    t0 = time.time()
    nfail = 0
    cases = build_cases(args.quick or args.sanitize)
    if args.sanitize:
        keep = ("bf16 sq17 sk17 d59 causal1", "bf16 sq113 sk203 d64 causal0", "bf16 sq203 sk113 d128 causal1",
                "gqa h6 hk2 d64", "local d128", "alibi d128", "dropout d128", "varlen d64",
                "varlen seqused_k leftpad d96", "noncontig d40 causal", "decode splits3 d128", "splits4 local d256",
                "dv100 d128 causal", "persistent varlen d128", "varlen long local d256", "softcap bf16 causal gqa d128",
                "persistent d64")
        cases = [c for c in build_cases(False) if c.name in keep]
    if args.only:
        subs = args.only.split(",")
        cases = [c for c in build_cases(False) if any(x in c.name for x in subs)]
    if args.splits1:
        for c in cases:
            c.kw["num_splits"] = c.kw.get("num_splits", 0) or 1
    for c in cases:
        nfail += run_checked(results, c.name, lambda: run_case(lib, c, dev, results))
    for (dt, sq, sk, h, b, pd, cpu) in [(torch.bfloat16, 77, 200, 3, 2, 0.17, True), (torch.float16, 130, 256, 2, 1, 0.5, False),
                                         (torch.bfloat16, 1, 9, 1, 1, 0.3, True)][: 1 if args.sanitize else 3]:
        nfail += run_checked(results, "dropout-mask", lambda: dropout_mask_case(
            lib, dev, results, dt, sq, sk, h, b, pd, 0x123456789ABCDEF, 2**33 + 5, cpu))
    if not args.only:
        nfail += run_checked(results, "misaligned workspace", lambda: misaligned_workspace_case(lib, dev, results))
    print(f"{len(results) - nfail}/{len(results)} passed in {time.time() - t0:.1f}s")
    if args.json:
        write_results(args.json, results, nfail)
    sys.exit(1 if nfail else 0)


if __name__ == "__main__":
    main()
