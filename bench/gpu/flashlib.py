"""ctypes access to libflash.so and the shared pieces of the GPU harnesses (check_*.py, bench_*.py,
../peers.py): the library with its forward, backward and KV-cache entry points, params filling from torch
tensors, the float32 torch reference attention, the numpy Philox dropout mask, FlashAttention's tolerance
rule, per-case seeding and the result JSON.

The params Structures are built at load time from the library's own flash_params_layout() table (names,
offsets, sizes, kinds), so nothing here hand-copies the C layout; every field offset is verified.
torch and numpy are imported where used, so the ctypes part loads without them.
"""
import ctypes
import json
import math
import os
import zlib

FLASH_PARAMS_FWD = 1
FLASH_PARAMS_BWD = 2
FLASH_DEVICE_CPU = 1
FLASH_DEVICE_CUDA = 2
DTYPE_CODES = {"float16": 1, "bfloat16": 2, "float32": 3}
_KIND_CTYPES = {1: ctypes.c_uint64, 2: ctypes.c_int64, 3: ctypes.c_int32, 4: ctypes.c_float, 5: ctypes.c_void_p}


class _FieldInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("offset", ctypes.c_uint32), ("size", ctypes.c_uint32),
                ("kind", ctypes.c_uint32), ("reserved", ctypes.c_uint32)]


class FlashError(RuntimeError):
    pass


class Lib:
    def __init__(self, path=None):
        path = path or os.environ.get("LIBFLASH", "build/libflash.so")
        self.lib = lib = ctypes.CDLL(path)
        lib.flash_params_layout.restype = ctypes.POINTER(_FieldInfo)
        lib.flash_params_layout.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_uint32)]
        lib.flash_params_sizeof.restype = ctypes.c_uint64
        lib.flash_params_sizeof.argtypes = [ctypes.c_int32]
        lib.flash_last_error.restype = ctypes.c_char_p
        lib.flash_last_kernel.restype = ctypes.c_char_p
        lib.flash_build_info.restype = ctypes.c_char_p
        lib.flash_status_string.restype = ctypes.c_char_p
        lib.flash_status_string.argtypes = [ctypes.c_int32]
        self.FwdParams = self._make_struct(FLASH_PARAMS_FWD, "flash_fwd_params")
        P = ctypes.POINTER(self.FwdParams)
        lib.flash_fwd_params_init.argtypes = [P]
        lib.flash_fwd_params_init.restype = ctypes.c_int32
        lib.flash_fwd_workspace_size.argtypes = [P, ctypes.POINTER(ctypes.c_uint64)]
        lib.flash_fwd_workspace_size.restype = ctypes.c_int32
        lib.flash_fwd.argtypes = [P, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p]
        lib.flash_fwd.restype = ctypes.c_int32

    def _make_struct(self, which, name):
        n = ctypes.c_uint32()
        arr = self.lib.flash_params_layout(which, ctypes.byref(n))
        fields, pos, expect = [], 0, []
        for i in range(n.value):
            f = arr[i]
            if f.offset < pos:
                raise FlashError(f"layout: field {f.name} overlaps")
            if f.offset > pos:
                fields.append((f"_pad{i}", ctypes.c_uint8 * (f.offset - pos)))
            ct = _KIND_CTYPES[f.kind]
            if ctypes.sizeof(ct) != f.size:
                raise FlashError(f"layout: field {f.name} size {f.size} != kind {f.kind}")
            fname = f.name.decode()
            fields.append((fname, ct))
            expect.append((fname, f.offset))
            pos = f.offset + f.size
        size = self.lib.flash_params_sizeof(which)
        if size > pos:
            fields.append(("_tail", ctypes.c_uint8 * (size - pos)))
        S = type(name, (ctypes.Structure,), {"_pack_": 1, "_fields_": fields})
        if ctypes.sizeof(S) != size:
            raise FlashError(f"layout: {name} is {ctypes.sizeof(S)} bytes, library says {size}")
        for fname, off in expect:
            if getattr(S, fname).offset != off:
                raise FlashError(f"layout: {fname} at {getattr(S, fname).offset}, library says {off}")
        return S

    def last_kernel(self):
        """The kernel path of this thread's last call ("cuda.sm90.fwd", "cuda.sm80.fwd", ...)."""
        return self.lib.flash_last_kernel().decode()

    def build_info(self):
        return self.lib.flash_build_info().decode()

    def new_params(self):
        p = self.FwdParams()
        self.check(self.lib.flash_fwd_params_init(ctypes.byref(p)))
        return p

    def check(self, st):
        if st != 0:
            raise FlashError(f"{self.lib.flash_status_string(st).decode()}: {self.lib.flash_last_error().decode()}")

    def workspace_size(self, p):
        n = ctypes.c_uint64()
        self.check(self.lib.flash_fwd_workspace_size(ctypes.byref(p), ctypes.byref(n)))
        return n.value

    def fwd(self, p, ws_ptr=0, ws_bytes=0, stream=0):
        self.check(self.lib.flash_fwd(ctypes.byref(p), ctypes.c_void_p(ws_ptr), ws_bytes, ctypes.c_void_p(stream)))


class FwdCall:
    """One flash_fwd call on torch tensors, prepared once: the params (fill_params' keywords), a workspace of the
    size the library asks for, the stream (default: torch's current one). Calling it launches the forward and
    allocates nothing, so timing loops measure the kernel alone. `o` (allocated when not given) and `lse` are
    the outputs; the inputs stay referenced for as long as the call lives."""

    def __init__(self, lib, *, q, k, v, o=None, lse=None, stream=None, **params):
        import torch
        self.lib, self.q, self.k, self.v, self.lse = lib, q, k, v, lse
        self.o = torch.empty_like(q) if o is None else o
        self.p = fill_params(lib, q=q, k=k, v=v, o=self.o, lse=lse, **params)
        self.ws_bytes = lib.workspace_size(self.p)
        self.ws = torch.empty(max(self.ws_bytes, 1), dtype=torch.uint8, device=q.device)
        self.ws_ptr = self.ws.data_ptr()
        self.stream = torch.cuda.current_stream().cuda_stream if stream is None else stream

    def __call__(self):
        self.lib.fwd(self.p, self.ws_ptr, self.ws_bytes, self.stream)


def set_tensor(p, name, t):
    """{name}_ptr and its strides from a [b, s, h, d] (batch stride set) or [total, h, d] tensor."""
    setattr(p, f"{name}_ptr", t.data_ptr())
    st = t.stride()
    if t.dim() == 4:
        setattr(p, f"{name}_batch_stride", st[0])
        st = st[1:]
    setattr(p, f"{name}_row_stride", st[0])
    setattr(p, f"{name}_head_stride", st[1])


def fill_params(lib, *, q, k, v, o, lse=None, causal=False, window=(-1, -1), softcap=0.0, scale=0.0,
                alibi=None, dropout_p=0.0, seed=0, offset=0, cu_seqlens_q=None, cu_seqlens_k=None,
                seqused_q=None, seqused_k=None, leftpad_k=None, max_seqlen_q=None, max_seqlen_k=None,
                num_splits=0, pack_gqa=0, device_cpu=False):
    """q/k/v/o: torch tensors [b, s, h, d] (dense) or [total, h, d] (varlen), last dim contiguous."""
    p = lib.new_params()
    p.device_type = FLASH_DEVICE_CPU if device_cpu else FLASH_DEVICE_CUDA
    p.device_id = 0 if device_cpu else q.device.index or 0
    p.dtype = DTYPE_CODES[str(q.dtype).replace("torch.", "")]
    varlen = cu_seqlens_q is not None
    for name, t in (("q", q), ("k", k), ("v", v), ("o", o)):
        set_tensor(p, name, t)
    if varlen:
        p.b = cu_seqlens_q.numel() - 1
        p.seqlen_q = max_seqlen_q
        p.seqlen_k = max_seqlen_k
        p.total_q = q.shape[0]
        p.cu_seqlens_q = cu_seqlens_q.data_ptr()
        p.cu_seqlens_k = cu_seqlens_k.data_ptr()
    else:
        p.b, p.seqlen_q = q.shape[0], q.shape[1]
        p.seqlen_k = k.shape[1] if max_seqlen_k is None else max_seqlen_k
    p.d, p.h = q.shape[-1], q.shape[-2]
    p.dv = v.shape[-1]
    p.h_k = k.shape[-2]
    if lse is not None:
        p.softmax_lse_ptr = lse.data_ptr()
    p.scale_softmax = scale
    p.softcap = softcap
    p.p_dropout = dropout_p
    p.is_causal = 1 if causal else 0
    p.window_size_left, p.window_size_right = window
    if alibi is not None:
        p.alibi_slopes_ptr = alibi.data_ptr()
        p.alibi_slopes_batch_stride = alibi.stride(0) if alibi.dim() == 2 else 0
    p.philox_seed, p.philox_offset = seed, offset
    for name, t in (("seqused_q", seqused_q), ("seqused_k", seqused_k), ("leftpad_k", leftpad_k)):
        if t is not None:
            setattr(p, name, t.data_ptr())
    p.num_splits = num_splits
    p.pack_gqa = pack_gqa
    return p


class BwdLib(Lib):
    """Lib plus flash_bwd (the struct again built from flash_params_layout)."""

    def __init__(self, path=None):
        super().__init__(path)
        lib = self.lib
        self.BwdParams = self._make_struct(FLASH_PARAMS_BWD, "flash_bwd_params")
        P = ctypes.POINTER(self.BwdParams)
        lib.flash_bwd_params_init.argtypes = [P]
        lib.flash_bwd_params_init.restype = ctypes.c_int32
        lib.flash_bwd_workspace_size.argtypes = [P, ctypes.POINTER(ctypes.c_uint64)]
        lib.flash_bwd_workspace_size.restype = ctypes.c_int32
        lib.flash_bwd.argtypes = [P, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p]
        lib.flash_bwd.restype = ctypes.c_int32

    def new_bwd_params(self):
        p = self.BwdParams()
        self.check(self.lib.flash_bwd_params_init(ctypes.byref(p)))
        return p

    def bwd_workspace_size(self, p):
        n = ctypes.c_uint64()
        self.check(self.lib.flash_bwd_workspace_size(ctypes.byref(p), ctypes.byref(n)))
        return n.value

    def bwd(self, p, ws_ptr=0, ws_bytes=0, stream=0):
        return self.lib.flash_bwd(ctypes.byref(p), ctypes.c_void_p(ws_ptr), ws_bytes, ctypes.c_void_p(stream))

    def bwd_checked(self, p, ws_ptr=0, ws_bytes=0, stream=0):
        self.check(self.bwd(p, ws_ptr, ws_bytes, stream))


class KVLib(Lib):
    """Lib plus the flash_fwd_kvcache entry points (they take flash_fwd_params)."""

    def __init__(self, path=None):
        super().__init__(path)
        P = ctypes.POINTER(self.FwdParams)
        self.lib.flash_fwd_kvcache_workspace_size.argtypes = [P, ctypes.POINTER(ctypes.c_uint64)]
        self.lib.flash_fwd_kvcache_workspace_size.restype = ctypes.c_int32
        self.lib.flash_fwd_kvcache.argtypes = [P, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p]
        self.lib.flash_fwd_kvcache.restype = ctypes.c_int32

    def kv_workspace_size(self, p):
        n = ctypes.c_uint64()
        self.check(self.lib.flash_fwd_kvcache_workspace_size(ctypes.byref(p), ctypes.byref(n)))
        return n.value

    def fwd_kvcache(self, p, ws_ptr=0, ws_bytes=0, stream=0):
        self.check(self.lib.flash_fwd_kvcache(ctypes.byref(p), ctypes.c_void_p(ws_ptr), ws_bytes, ctypes.c_void_p(stream)))


def fill_bwd_params(lib, fp, *, dout, dq, dk, dv, dsoftmax_sum=None, deterministic=False):
    """Copies every shared field of a filled flash_fwd_params `fp` and adds the backward tensors."""
    p = lib.new_bwd_params()
    fwd_names = {f[0] for f in fp._fields_ if not f[0].startswith("_")}
    for name, _ in p._fields_:
        if name.startswith("_") or name == "struct_size" or name.startswith("reserved"):
            continue
        if name in fwd_names:
            setattr(p, name, getattr(fp, name))
    for name, t in (("do", dout), ("dq", dq), ("dk", dk), ("dv", dv)):
        set_tensor(p, name, t)
    if dsoftmax_sum is not None:
        p.dsoftmax_sum = dsoftmax_sum.data_ptr()
    p.deterministic = 1 if deterministic else 0
    return p


def kv_params(lib, *, q, k_cache, v_cache, o, lse, cache_seqlens, knew=None, vnew=None, cos=None, sin=None,
              interleaved=False, cache_batch_idx=None, leftpad=None, block_table=None, causal=False,
              window=(-1, -1), softcap=0.0, alibi=None, num_splits=0, scale=0.0):
    """q [b, sq, h, d]; caches [b_k, cap, hk, d] or [pages, page, hk, d] (block_table [b, max_blocks])."""
    p = lib.new_params()
    p.device_type = FLASH_DEVICE_CUDA
    p.device_id = q.device.index or 0
    p.dtype = DTYPE_CODES[str(q.dtype).replace("torch.", "")]
    set_tensor(p, "q", q)
    set_tensor(p, "k", k_cache)
    set_tensor(p, "v", v_cache)
    set_tensor(p, "o", o)
    p.b, p.seqlen_q, p.h, p.d = q.shape
    p.dv = v_cache.shape[-1]
    p.h_k = k_cache.shape[2]
    if block_table is not None:
        p.block_table = block_table.data_ptr()
        p.block_table_batch_stride = block_table.stride(0)
        p.page_block_size = k_cache.shape[1]
        p.max_num_blocks_per_seq = block_table.shape[1]
        p.num_pages = k_cache.shape[0]
        p.seqlen_k = block_table.shape[1] * k_cache.shape[1]
    else:
        p.seqlen_k = k_cache.shape[1]
    if lse is not None:
        p.softmax_lse_ptr = lse.data_ptr()
    p.cache_seqlens = cache_seqlens.data_ptr()
    if knew is not None:
        set_tensor(p, "knew", knew)
        set_tensor(p, "vnew", vnew)
        p.seqlen_knew = knew.shape[1]
    if cos is not None:
        p.rotary_cos_ptr, p.rotary_sin_ptr = cos.data_ptr(), sin.data_ptr()
        p.rotary_dim = cos.shape[1] * 2
        p.rotary_seqlen = cos.shape[0]
        p.is_rotary_interleaved = 1 if interleaved else 0
    if cache_batch_idx is not None:
        p.cache_batch_idx = cache_batch_idx.data_ptr()
        p.b_k = k_cache.shape[0]
    if leftpad is not None:
        p.leftpad_k = leftpad.data_ptr()
    p.is_causal = 1 if causal else 0
    p.window_size_left, p.window_size_right = window
    p.softcap = softcap
    p.scale_softmax = scale
    if alibi is not None:
        p.alibi_slopes_ptr = alibi.data_ptr()
        p.alibi_slopes_batch_stride = alibi.stride(0) if alibi.dim() == 2 else 0
    p.num_splits = num_splits
    return p


# ---- references ----

def attn_ref(q, k, v, *, scale, causal, window, softcap, slope, keep, rp_keep, upcast):
    """One sequence: q [sq, h, d], k [sk, hk, d], v [sk, hk, dv] -> (o [sq, h, dv] f32, lse [h, sq] f32).

    upcast: the float32 reference; else the same math in the input dtype (FA's reorder_ops flavour: K is
    scaled rather than the scores), the yardstick of the tolerance rule. Differentiable (the backward's
    reference takes autograd of o): the row max is detached and a row with no visible key divides by 1, so
    its O is 0 and its gradients stay finite; its LSE is +inf.
    """
    import torch

    dt = torch.float32 if upcast else q.dtype
    sq, h, _ = q.shape
    sk, hk, _ = k.shape
    g = h // hk
    qf, kf, vf = q.to(dt), k.to(dt), v.to(dt)
    if not upcast:
        kf = kf * scale
    kf = kf.repeat_interleave(g, dim=1)
    vf = vf.repeat_interleave(g, dim=1)
    s = torch.einsum("qhd,khd->hqk", qf, kf).float()
    if upcast:
        s = s * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(sq, device=q.device)[:, None]
    j = torch.arange(sk, device=q.device)[None, :]
    a = i + sk - sq
    if slope is not None:
        s = s - slope.view(h, 1, 1) * (a - j).abs().float()[None]
    left, right = window
    if causal:
        right = 0
    vis = torch.ones(sq, sk, dtype=torch.bool, device=q.device)
    if left >= 0:
        vis &= j >= a - left
    if right >= 0:
        vis &= j <= a + right
    s = s.masked_fill(~vis[None], float("-inf"))
    m = s.amax(-1, keepdim=True).detach()
    any_vis = torch.isfinite(m)
    m = torch.where(any_vis, m, torch.zeros_like(m))
    e = torch.exp(s - m)
    l = e.sum(-1, keepdim=True)
    pm = e / torch.where(l > 0, l, torch.ones_like(l))
    lse = torch.where(any_vis[..., 0], (m + torch.log(l))[..., 0], torch.full_like(m[..., 0], float("inf")))
    if keep is not None:
        pm = pm * keep.float() * rp_keep
    o = torch.einsum("hqk,khd->qhd", pm.to(dt), vf).float()
    return o, lse


def philox_numpy(c0, c1, c2, c3, k0, k1):
    import numpy as np

    M0, M1, W0, W1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57), 0x9E3779B9, 0xBB67AE85
    mask = np.uint64(0xFFFFFFFF)
    c0, c1, c2, c3 = (np.asarray(x, dtype=np.uint64) & mask for x in (c0, c1, c2, c3))
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0 = M0 * c0
        p1 = M1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & mask
        hi1, lo1 = p1 >> np.uint64(32), p1 & mask
        c0, c1, c2, c3 = (hi1 ^ c1 ^ k0) & mask, lo1, (hi0 ^ c3 ^ k1) & mask, lo0
        k0 = (k0 + np.uint64(W0)) & mask
        k1 = (k1 + np.uint64(W1)) & mask
    return c0, c1, c2, c3


def dropout_keep(seed, offset, h, bi, hi, sq, sk, p):
    """bool [sq, sk] keep mask of include/flash.h for (bi, hi)."""
    import numpy as np

    thr = min(65535, int(math.floor(float(np.float32(p)) * 65536 + 0.5)))
    n = (offset + bi * h + hi) & 0xFFFFFFFFFFFFFFFF
    rows = np.arange(sq, dtype=np.uint64)[:, None]
    cols = np.arange(sk, dtype=np.uint64)[None, :]
    x = philox_numpy(cols >> np.uint64(3), rows + np.zeros_like(cols), np.full((sq, sk), n & 0xFFFFFFFF),
                     np.full((sq, sk), n >> 32), seed & 0xFFFFFFFF, seed >> 32)
    word_idx = (cols & np.uint64(7)) >> np.uint64(1)
    words = np.stack(x, 0)
    w = np.take_along_axis(words, np.broadcast_to(word_idx, (sq, sk))[None].astype(np.int64), 0)[0]
    u16 = (w >> (np.uint64(16) * (cols & np.uint64(1)))) & np.uint64(0xFFFF)
    return u16 >= np.uint64(thr)


def rp_keep_of(dropout_p):
    """1 / (1 - p) as the library computes it (p rounded to float32 first)."""
    import numpy as np

    return 1.0 / (1.0 - float(np.float32(dropout_p))) if dropout_p > 0 else 1.0


# ---- rules and bookkeeping ----

def fa_rule(out, ref, pt, *, mult, atol):
    """FlashAttention's test rule: max|out - ref32| <= mult * max|pt - ref32| + atol (pt: the same math in the
    input dtype), so the kernel may be at most `mult` times as far from float32 as plain torch is.
    Returns (ok, err, err_pt, ratio = err / tol); an empty tensor passes."""
    if out.numel() == 0:
        return True, 0.0, 0.0, 0.0
    err = (out - ref).abs().max().item()
    err_pt = (pt.float() - ref).abs().max().item()
    tol = mult * err_pt + atol
    return not err > tol, err, err_pt, err / max(tol, 1e-12)


def lse_problem(lse, lref):
    """None when lse matches the reference (+inf rows exactly, the rest within 1e-3 relative), else why."""
    import torch

    fin = torch.isfinite(lref)
    if not torch.equal(torch.isinf(lse) & (lse > 0), ~fin):
        return "LSE +inf pattern differs"
    if fin.any():
        le = ((lse - lref).abs() / (1 + lref.abs()))[fin].max().item()
        if le > 1e-3:
            return f"LSE err {le:.3g}"
    return None


class Case:
    def __init__(self, name, **kw):
        self.name, self.kw = name, kw


def seed_case(name):
    """Seeds torch from the case name (so a case reproduces alone, e.g. with --only) and returns a numpy
    generator seeded the same way."""
    import numpy as np
    import torch

    seed = zlib.crc32(name.encode())
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def record(results, name, ok, msgs, detail=None, **extra):
    """Appends a case's result and prints its PASS/FAIL line."""
    results.append({"case": name, "ok": ok, **extra, "msgs": msgs})
    words = ["PASS" if ok else "FAIL", name] + ([detail] if detail is not None else []) + [" | ".join(msgs)]
    print(" ".join(words), flush=True)
    return ok


def run_checked(results, name, fn):
    """fn() -> bool; returns the number of failures (0 or 1). An exception fails the case and the run goes on."""
    try:
        return 0 if fn() else 1
    except Exception as e:  # report and go on
        results.append({"case": name, "ok": False, "msgs": [repr(e)]})
        print(f"FAIL {name} exception {e!r}", flush=True)
        return 1


def write_results(path, results, nfail):
    with open(path, "w") as f:
        json.dump({"passed": len(results) - nfail, "total": len(results), "results": results}, f, indent=1)
