#!/usr/bin/env python3
"""GPU correctness harness for libflash's CUDA flash_fwd_kvcache (run on the device machine).

Per case: a random dense or paged cache (pages shuffled through a random block table), random
cache_seqlens / leftpad / cache_batch_idx, optional knew/vnew; flash_fwd_kvcache through ctypes on torch
data_ptr(); then against a float32 PyTorch reference that mirrors the CPU backend (libflash/cpu/kvcache.cpp,
rotary.h): knew rotated in fp32 and rounded to the dtype, written at cache_seqlens[i]..; q rotated at
cache_seqlens[i] + r (causal/local) or cache_seqlens[i]; keys [leftpad, cache_seqlens + seqlen_new).
Rules: O within 2x the error of the same math in the input dtype (+1e-5), LSE within 1e-3 relative, +inf
rows exact, the updated cache equal to the reference (V exact, rotated K within 1 ulp), the rest of the
cache untouched, bitwise repeatable.
Usage: check_kvcache.py [--quick|--sanitize] [--json OUT.json] [--only SUBSTR,...]
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flashlib import (Case, KVLib, attn_ref, fa_rule, kv_params, lse_problem, record, run_checked,  # noqa: E402
                      seed_case, write_results)


def rotate(x, cos, sin, pos, interleaved):
    """x [n, heads, d] (dtype), pos [n] long: fp32 rotation rounded to the dtype (cpu/rotary.h)."""
    rd = cos.shape[1] * 2
    if rd == 0:
        return x
    c = cos[pos].float()[:, None, :]
    s = sin[pos].float()[:, None, :]
    xf = x.float()
    out = xf.clone()
    if interleaved:
        x0, x1 = xf[..., 0:rd:2], xf[..., 1:rd:2]
        out[..., 0:rd:2] = x0 * c - x1 * s
        out[..., 1:rd:2] = x0 * s + x1 * c
    else:
        h = rd // 2
        x0, x1 = xf[..., :h], xf[..., h:rd]
        out[..., :h] = x0 * c - x1 * s
        out[..., h:rd] = x0 * s + x1 * c
    return out.to(x.dtype)


def run_case(lib, c, dev, results):
    kw = dict(c.kw)
    dtype = kw.get("dtype", torch.bfloat16)
    b, sq, sk, d = kw["b"], kw["sq"], kw["sk"], kw["d"]
    h, hk = kw["h"], kw["hk"]
    dv = kw.get("dv", d)
    snew = kw.get("snew", 0)
    causal, window = kw.get("causal", False), kw.get("window", (-1, -1))
    alibi_on, softcap = kw.get("alibi", False), kw.get("softcap", 0.0)
    rot_frac, inter = kw.get("rot", 0.0), kw.get("inter", False)
    page = kw.get("page")
    leftpad_on, cbi_on = kw.get("leftpad", False), kw.get("cbi", False)
    ns = kw.get("ns", 0)
    gen = seed_case(c.name)
    scale = 1.0 / math.sqrt(d)
    cap = sk  # cache capacity per sequence (FA's seqlen_k)
    lo = 0
    cs = [int(gen.integers(lo, cap - snew + 1)) for _ in range(b)]
    cs[0] = cap - snew  # one full sequence
    if kw.get("empty") and b > 1:
        cs[-1] = 0  # an empty cache row (with snew == 0: no keys at all)
    lp = [int(gen.integers(0, x + 1)) if leftpad_on else 0 for x in cs]
    # keep at least a few keys for most sequences
    if leftpad_on:
        lp = [min(a, max(0, x - 5)) for a, x in zip(lp, cs)]
    rd = int(round(d * rot_frac)) // 2 * 2
    # sq == 0 (append only): zero-row views; torch reports NULL data pointers for empty tensors, so the
    # pointers the API requires are taken from the one-row base tensors below
    q_base = torch.randn(b, max(sq, 1), h, d, device=dev, dtype=dtype)
    q = q_base[:, :sq]
    b_k = b + 2 if cbi_on else b
    if page is None:
        k_cache = torch.randn(b_k, cap, hk, d, device=dev, dtype=dtype)
        v_cache = torch.randn(b_k, cap, hk, dv, device=dev, dtype=dtype)
        bt = None
    else:
        nblk = (cap + page - 1) // page
        npages = b * nblk + 3
        k_cache = torch.randn(npages, page, hk, d, device=dev, dtype=dtype)
        v_cache = torch.randn(npages, page, hk, dv, device=dev, dtype=dtype)
        perm = torch.randperm(npages, device=dev)[: b * nblk].to(torch.int32)
        bt = perm.view(b, nblk).contiguous()
        cap = nblk * page
    cbi = torch.tensor(gen.permutation(b_k)[:b].astype(np.int32), device=dev) if cbi_on else None
    knew = torch.randn(b, snew, hk, d, device=dev, dtype=dtype) if snew else None
    vnew = torch.randn(b, snew, hk, dv, device=dev, dtype=dtype) if snew else None
    cos = sin = None
    if rd:
        ro_len = cap + sq
        ang = torch.rand(ro_len, rd // 2, device=dev) * 2 * math.pi
        cos, sin = torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)
    alibi = (torch.rand(b, h, device=dev) * 0.3) if alibi_on else None
    t32 = lambda xs: torch.tensor(xs, dtype=torch.int32, device=dev)
    cs_t = t32(cs)
    lp_t = t32(lp) if leftpad_on else None
    o_base = torch.full((b, max(sq, 1), h, dv), float("nan"), device=dev, dtype=dtype)
    lse_base = torch.full((b, h, max(sq, 1)), float("nan"), device=dev, dtype=torch.float32)
    o, lse = o_base[:, :sq], lse_base[:, :, :sq]
    k0, v0 = k_cache.clone(), v_cache.clone()

    p = kv_params(lib, q=q, k_cache=k_cache, v_cache=v_cache, o=o, lse=lse, cache_seqlens=cs_t, knew=knew,
                  vnew=vnew, cos=cos, sin=sin, interleaved=inter, cache_batch_idx=cbi, leftpad=lp_t,
                  block_table=bt, causal=causal, window=window, softcap=softcap, alibi=alibi, num_splits=ns)
    if sq == 0:
        p.q_ptr, p.o_ptr, p.softmax_lse_ptr = q_base.data_ptr(), o_base.data_ptr(), lse_base.data_ptr()
    ws_n = lib.kv_workspace_size(p)
    ws = torch.empty(max(ws_n, 1), dtype=torch.uint8, device=dev)
    stream = torch.cuda.current_stream().cuda_stream
    lib.fwd_kvcache(p, ws.data_ptr(), ws_n, stream)
    torch.cuda.synchronize()

    # ---- reference cache update ----
    kr, vr = k0.clone(), v0.clone()
    per_row = causal or window != (-1, -1)

    def rows_of(i, t):  # buffer positions t (tensor) of sequence i -> (tensor index tuple)
        if bt is None:
            bb = cbi[i].item() if cbi is not None else i
            return (torch.full_like(t, bb), t)
        return (bt[i][t // page].long(), t % page)

    for i in range(b):
        if snew:
            t = torch.arange(cs[i], cs[i] + snew, device=dev)
            kn = rotate(knew[i], cos, sin, t, inter) if rd else knew[i]
            ix = rows_of(i, t)
            kr[ix] = kn
            vr[ix] = vnew[i]
    ok, msgs, worst = True, [], 0.0
    kdiff = (k_cache.float() - kr.float()).abs()
    ktol = kr.float().abs() * (2 ** -7 if dtype == torch.bfloat16 else 2 ** -10) + 1e-6
    if (kdiff > ktol).any() or not torch.equal(v_cache, vr):
        ok = False
        msgs.append(f"cache update differs (K bad {int((kdiff > ktol).sum())}, V bad {int((v_cache != vr).sum())})")
    if sq == 0:  # append only: nothing attended (the separate append kernel's path)
        return record(results, c.name, ok, msgs, "append only", worst_ratio=0.0, ws=ws_n)
    for i in range(b):
        end = cs[i] + snew
        t = torch.arange(lp[i], end, device=dev)
        ix = rows_of(i, t)
        ks, vs = kr[ix], vr[ix]  # [sk_i, hk, d]
        if ks.shape[0] == 0:  # no keys: O = 0, LSE = +inf
            if not (torch.equal(o[i].float(), torch.zeros_like(o[i].float())) and torch.isinf(lse[i]).all()):
                ok = False
                msgs.append(f"seq{i}: no keys but O != 0 or LSE != +inf")
            continue
        qi = q[i]
        if rd:
            pos = cs[i] + (torch.arange(sq, device=dev) if per_row else torch.zeros(sq, dtype=torch.long, device=dev))
            qi = rotate(qi, cos, sin, pos, inter)
        slope = alibi[i] if alibi is not None else None
        ref, lref = attn_ref(qi, ks, vs, scale=scale, causal=causal, window=window, softcap=softcap, slope=slope,
                             keep=None, rp_keep=1.0, upcast=True)
        pt, _ = attn_ref(qi, ks, vs, scale=scale, causal=causal, window=window, softcap=softcap, slope=slope,
                         keep=None, rp_keep=1.0, upcast=False)
        out = o[i].float()
        if torch.isnan(out).any():
            ok = False
            msgs.append(f"seq{i}: NaN/unwritten in O ({int(torch.isnan(out).sum())})")
            continue
        good, err, err_pt, ratio = fa_rule(out, ref, pt, mult=2, atol=1e-5)
        worst = max(worst, ratio)
        if not good:
            ok = False
            msgs.append(f"seq{i}: err {err:.3g} > 2*{err_pt:.3g}+1e-5")
        why = lse_problem(lse[i], lref)
        if why:
            ok = False
            msgs.append(f"seq{i}: {why}")
    if ok and not snew:  # repeatability (with knew the second call would append again)
        o1, l1 = o.clone(), lse.clone()
        o.fill_(float("nan"))
        lib.fwd_kvcache(p, ws.data_ptr(), ws_n, stream)
        torch.cuda.synchronize()
        if not (torch.equal(o.view(torch.int16), o1.view(torch.int16)) and torch.equal(lse.view(torch.int32), l1.view(torch.int32))):
            ok = False
            msgs.append("not bitwise repeatable")
    return record(results, c.name, ok, msgs, f"ratio={worst:.3f}", worst_ratio=worst, ws=ws_n)


def build_cases(quick):
    """FA's kvcache grid, reduced: every (d, shape) gets a few cases that cycle through the options."""
    dims = [32, 59, 64, 128, 256]
    shapes = [(1, 128), (1, 339), (3, 1024), (64, 800), (16, 20000), (1, 131072)]
    heads = [("mha", 6, 6), ("mqa", 6, 1), ("gqa", 8, 2)]
    masks = [("none", False, (-1, -1)), ("causal", True, (-1, -1)), ("local", False, (63, 17))]
    rots = [(0.0, False), (0.5, False), (1.0, True), (0.5, True), (1.0, False)]
    pages = [None, 1, 16, 256]
    splits = [1, 3, 0]
    cases, n = [], 0
    for d in dims:
        for (sq, sk) in shapes:
            reps = 2 if quick else 4
            for rep in range(reps):
                hn, h, hk = heads[n % 3]
                mn, causal, window = masks[(n // 3) % 3]
                rot, inter = rots[n % 5]
                page = pages[(n // 2) % 4]
                ns = splits[n % 3]
                snew = [0, 1, 3][(n // 5) % 3] if sq <= 64 else 0
                snew = min(snew, sk)
                alibi = n % 7 == 3
                softcap = 5.0 if n % 11 == 4 else 0.0
                leftpad = n % 4 == 1
                cbi = page is None and n % 5 == 2
                b = 1 if sk >= 100000 else (2 if sk >= 10000 else 3)
                if sk >= 100000 and page == 1:
                    page = 16
                name = (f"d{d} sq{sq} sk{sk} {hn} {mn} new{snew} rot{rot}{'i' if inter else ''} page{page} "
                        f"ns{ns}{' alibi' if alibi else ''}{' softcap' if softcap else ''}{' leftpad' if leftpad else ''}"
                        f"{' cbi' if cbi else ''}")
                cases.append(Case(name, b=b, sq=sq, sk=sk, d=d, h=h, hk=hk, causal=causal, window=window, rot=rot,
                                  inter=inter, page=page, ns=ns, snew=snew, alibi=alibi, softcap=softcap,
                                  leftpad=leftpad, cbi=cbi))
                n += 1
    dt = torch.float16
    cases.append(Case("fp16 d128 decode gqa32/8 page16 new1 rot causal", dtype=dt, b=4, sq=1, sk=3000, d=128, h=32, hk=8,
                      causal=True, rot=1.0, page=16, snew=1, ns=0))
    cases.append(Case("fp16 d64 dv48 sq5 page3 leftpad", dtype=dt, b=3, sq=5, sk=700, d=64, dv=48, h=4, hk=2, page=3,
                      leftpad=True, snew=2, ns=0))
    cases.append(Case("bf16 d128 ns256 sk40000", b=1, sq=1, sk=40000, d=128, h=8, hk=1, ns=256))
    cases.append(Case("bf16 d128 page64 local left-only sq7", b=2, sq=7, sk=1500, d=128, h=4, hk=4, page=64,
                      window=(100, -1), ns=3, snew=7, rot=0.5, inter=True))
    cases.append(Case("bf16 d64 empty cache", b=2, sq=2, sk=64, d=64, h=2, hk=1, snew=0, leftpad=False, ns=0,
                      causal=True, empty=True))
    # The append without query rows (its own kernel), and appended rows that no query attends (a local window
    # narrower than the new rows: the attention kernel's writers must still put them in the cache).
    cases.append(Case("bf16 d128 append only sq0 page16 rot leftpad", b=3, sq=0, sk=500, d=128, h=8, hk=2, snew=3,
                      rot=1.0, page=16, leftpad=True))
    cases.append(Case("fp16 d64 new5 local(2,0) unattended new rows ns3", dtype=dt, b=2, sq=1, sk=900, d=64, h=4, hk=2,
                      snew=5, window=(2, 0), rot=0.5, ns=3))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sanitize", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--only")
    ap.add_argument("--lib")
    args = ap.parse_args()
    lib = KVLib(args.lib)
    print(lib.build_info())
    dev = torch.device("cuda")
    cases = build_cases(args.quick)
    if args.sanitize:
        cases = [Case("san d64 gqa page3 new2 rot causal", b=2, sq=3, sk=200, d=64, h=4, hk=2, page=3, snew=2, rot=1.0,
                      causal=True, ns=3, leftpad=True),
                 Case("san d59 dense cbi alibi", b=2, sq=1, sk=150, d=59, h=2, hk=1, cbi=True, alibi=True, ns=0, snew=1),
                 Case("san d128 page16 local", b=1, sq=17, sk=300, d=128, h=8, hk=2, page=16, window=(20, 3), ns=1)]
    if args.only:
        subs = args.only.split(",")
        cases = [c for c in cases if any(x in c.name for x in subs)]
    results, nfail, t0 = [], 0, time.time()
    for c in cases:
        nfail += run_checked(results, c.name, lambda: run_case(lib, c, dev, results))
    print(f"kvcache: {len(results) - nfail}/{len(results)} passed in {time.time() - t0:.1f}s")
    if args.json:
        write_results(args.json, results, nfail)
    sys.exit(1 if nfail else 0)


if __name__ == "__main__":
    main()
