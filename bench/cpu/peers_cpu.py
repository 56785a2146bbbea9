#!/usr/bin/env python3
"""libflash's CPU backend vs PyTorch's CPU scaled_dot_product_attention, in one process, same thread count.

Run on the device machine (16 cores, PyTorch installed), after building libflash (CPU is enough):
    python3 bench/cpu/peers_cpu.py [--lib build/libflash.so] [--threads 16] [--full]
Params are packed through flash_params_layout(), so this script follows the header without a hand-copied
struct. Prints GFLOP/s forward (and backward with --bwd) and the ratio libflash / torch.
"""
import argparse, ctypes, os, time

ap = argparse.ArgumentParser()
ap.add_argument("--lib", default=os.environ.get("FLASH_LIBRARY_PATH", "build/libflash.so"))
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--full", action="store_true", help="seqlen 512..8k, d 64/128, fp32 and bf16")
ap.add_argument("--reps", type=int, default=3)
args = ap.parse_args()

os.environ["FLASH_NUM_THREADS"] = str(args.threads)  # read once, when the pool starts
import torch  # noqa: E402

torch.set_num_threads(args.threads)
lib = ctypes.CDLL(os.path.abspath(args.lib))


class FieldInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("offset", ctypes.c_uint32), ("size", ctypes.c_uint32),
                ("kind", ctypes.c_uint32), ("reserved", ctypes.c_uint32)]


lib.flash_params_layout.restype = ctypes.POINTER(FieldInfo)
lib.flash_params_sizeof.restype = ctypes.c_uint64
lib.flash_last_error.restype = ctypes.c_char_p
KIND = {1: "Q", 2: "q", 3: "i", 4: "f", 5: "Q"}


class Params:
    def __init__(self, which, init):
        n = ctypes.c_uint32()
        tab = lib.flash_params_layout(which, ctypes.byref(n))
        self.fields = {tab[i].name.decode(): (tab[i].offset, KIND[tab[i].kind]) for i in range(n.value)}
        self.buf = ctypes.create_string_buffer(lib.flash_params_sizeof(which))
        init(self.buf)

    def __setitem__(self, name, value):
        import struct
        off, fmt = self.fields[name]
        struct.pack_into("<" + fmt, self.buf, off, value)


def check(st, what):
    if st != 0:
        raise RuntimeError(f"{what}: status {st}: {lib.flash_last_error().decode()}")


DT = {torch.float32: 3, torch.bfloat16: 2, torch.float16: 1}


def flash_fwd_call(q, k, v, o, causal):
    b, s, h, d = q.shape
    p = Params(1, lib.flash_fwd_params_init)
    p["device_type"] = 1
    p["dtype"] = DT[q.dtype]
    for name, t in (("q", q), ("k", k), ("v", v), ("o", o)):
        p[f"{name}_ptr"] = t.data_ptr()
        p[f"{name}_batch_stride"], p[f"{name}_row_stride"], p[f"{name}_head_stride"] = t.stride(0), t.stride(1), t.stride(2)
    for f, val in (("b", b), ("seqlen_q", s), ("seqlen_k", k.shape[1]), ("d", d), ("h", h), ("h_k", k.shape[2]),
                   ("is_causal", int(causal))):
        p[f] = val
    size = ctypes.c_uint64()
    check(lib.flash_fwd_workspace_size(p.buf, ctypes.byref(size)), "flash_fwd_workspace_size")
    ws = torch.empty(max(1, size.value), dtype=torch.uint8)
    return lambda: check(lib.flash_fwd(p.buf, ctypes.c_void_p(ws.data_ptr()), ctypes.c_uint64(size.value), None), "flash_fwd")


def timeit(fn, reps):
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


configs = [(torch.float32, 128, 2048, False), (torch.float32, 128, 2048, True), (torch.float32, 64, 2048, False)]
if args.full:
    configs = [(dt, d, s, c) for dt in (torch.float32, torch.bfloat16) for d in (64, 128)
               for s in (512, 1024, 2048, 4096, 8192) for c in (False, True)]
print(f"threads={args.threads} torch={torch.__version__} libflash={args.lib}")
print(f"{'dtype':>9} {'d':>4} {'seqlen':>6} {'causal':>6} {'h':>3} {'libflash GF/s':>14} {'torch GF/s':>11} {'ratio':>6} {'maxdiff':>9}")
for dt, d, s, causal in configs:
    h, b = max(1, (16 * 2048) // s), 1
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(b, s, h, d, generator=g).to(dt) for _ in range(3))
    o = torch.empty_like(q)
    run = flash_fwd_call(q, k, v, o, causal)
    qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))  # torch wants [b, h, s, d]
    sdpa = lambda: torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
    with torch.no_grad():
        t_flash = timeit(run, args.reps)
        t_torch = timeit(sdpa, args.reps)
        ref = sdpa().transpose(1, 2).float()
    diff = (o.float() - ref).abs().max().item()
    flops = 4 * b * h * s * s * d * (0.5 if causal else 1)
    gf, gt = flops / t_flash / 1e9, flops / t_torch / 1e9
    print(f"{str(dt).replace('torch.', ''):>9} {d:>4} {s:>6} {str(causal):>6} {h:>3} {gf:>14.1f} {gt:>11.1f} {gf / gt:>6.2f} {diff:>9.2e}")
