"""ctypes access to libflash.so for the GPU harnesses (check_fwd.py, ../peers.py).

The flash_fwd_params Structure is built at load time from the library's own flash_params_layout() table
(names, offsets, sizes, kinds), so nothing here hand-copies the C layout; every field offset is verified.
"""
import ctypes
import os

FLASH_PARAMS_FWD = 1
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


def fill_params(lib, *, q, k, v, o, lse=None, causal=False, window=(-1, -1), softcap=0.0, scale=0.0,
                alibi=None, dropout_p=0.0, seed=0, offset=0, cu_seqlens_q=None, cu_seqlens_k=None,
                seqused_q=None, seqused_k=None, leftpad_k=None, max_seqlen_q=None, max_seqlen_k=None,
                num_splits=0, device_cpu=False):
    """q/k/v/o: torch tensors [b, s, h, d] (dense) or [total, h, d] (varlen), last dim contiguous."""
    p = lib.new_params()
    p.device_type = FLASH_DEVICE_CPU if device_cpu else FLASH_DEVICE_CUDA
    p.device_id = 0 if device_cpu else q.device.index or 0
    p.dtype = DTYPE_CODES[str(q.dtype).replace("torch.", "")]
    varlen = cu_seqlens_q is not None
    for name, t in (("q", q), ("k", k), ("v", v), ("o", o)):
        setattr(p, f"{name}_ptr", t.data_ptr())
        st = t.stride()
        if t.dim() == 4:
            setattr(p, f"{name}_batch_stride", st[0])
            st = st[1:]
        setattr(p, f"{name}_row_stride", st[0])
        setattr(p, f"{name}_head_stride", st[1])
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
    return p
