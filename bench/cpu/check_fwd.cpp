// Developer check of the CPU forward through the C ABI against a naive float64 reference, over random
// configurations. Build: c++ -O2 -std=c++17 -Iinclude -Ilibflash bench/cpu/check_fwd.cpp -Lbuild -lflash
// Run: LD_LIBRARY_PATH=build ./a.out [iterations] [seed]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "flash.h"
#include "cpu/convert.h"
#include "cpu/philox.h"

using namespace flash::cpu;

static float round_to(int dt, float x) {
    if (dt == FLASH_DTYPE_FP16) return half_to_float(float_to_half(x));
    if (dt == FLASH_DTYPE_BF16) return bf16_to_float(float_to_bf16(x));
    return x;
}

struct Buf {
    int dt;
    std::vector<float> f; // values (already representable in dt)
    std::vector<uint16_t> h;
    void init(int dtype, size_t n, std::mt19937& g, float sc) {
        dt = dtype;
        f.resize(n);
        h.resize(n);
        std::normal_distribution<float> nd(0.f, sc);
        for (size_t i = 0; i < n; ++i) set(i, nd(g));
    }
    void set(size_t i, float x) {
        f[i] = round_to(dt, x);
        if (dt == FLASH_DTYPE_FP16) h[i] = float_to_half(x);
        if (dt == FLASH_DTYPE_BF16) h[i] = float_to_bf16(x);
    }
    void* ptr() { return dt == FLASH_DTYPE_FP32 ? (void*)f.data() : (void*)h.data(); }
    float get(size_t i) const {
        if (dt == FLASH_DTYPE_FP16) return half_to_float(h[i]);
        if (dt == FLASH_DTYPE_BF16) return bf16_to_float(h[i]);
        return f[i];
    }
};

int main(int argc, char** argv) {
    const int iters = argc > 1 ? atoi(argv[1]) : 50;
    std::mt19937 g(argc > 2 ? atoi(argv[2]) : 1);
    auto U = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); };
    int fails = 0;
    for (int it = 0; it < iters; ++it) {
        const int dts[3] = {FLASH_DTYPE_FP16, FLASH_DTYPE_BF16, FLASH_DTYPE_FP32};
        const int dt = dts[U(0, 2)];
        const int b = U(1, 3), hk = U(1, 3), group = U(1, 3), h = hk * group;
        const int sq = U(1, 150), sk = U(0, 200), d = U(1, 130), dv = U(0, 1) ? d : U(1, 140);
        const bool varlen = U(0, 2) == 0;
        const int causal = U(0, 2) == 0;
        int wl = -1, wr = -1;
        if (!causal && U(0, 2) == 0) { wl = U(-1, 40); wr = U(-1, 40); }
        const float softcap = U(0, 3) == 0 ? 3.f : 0.f;
        const bool alibi = U(0, 3) == 0;
        const float pdrop = (softcap == 0.f && U(0, 3) == 0) ? 0.17f : 0.f;
        // per-sequence lengths
        std::vector<int> lq(b, sq), lk(b, sk), cuq(b + 1, 0), cuk(b + 1, 0), usedq(b), usedk(b);
        if (varlen)
            for (int i = 0; i < b; ++i) { lq[i] = U(0, sq); lk[i] = U(0, sk); }
        for (int i = 0; i < b; ++i) { cuq[i + 1] = cuq[i] + lq[i]; cuk[i + 1] = cuk[i] + lk[i]; }
        const bool use_seqused = varlen && U(0, 1);
        for (int i = 0; i < b; ++i) { usedq[i] = use_seqused ? U(0, lq[i]) : lq[i]; usedk[i] = use_seqused ? U(0, lk[i]) : lk[i]; }
        const int total_q = varlen ? cuq[b] : b * sq, total_k = varlen ? cuk[b] : b * sk;
        Buf q, k, v, o;
        q.init(dt, size_t(total_q) * h * d + 1, g, 1.f);
        k.init(dt, size_t(total_k) * hk * d + 1, g, 1.f);
        v.init(dt, size_t(total_k) * hk * dv + 1, g, 1.f);
        o.init(dt, size_t(total_q) * h * dv + 1, g, 0.f);
        for (size_t i = 0; i < o.f.size(); ++i) o.set(i, 1234.f); // poison
        std::vector<float> slopes(b * h), lse(varlen ? size_t(h) * total_q + 1 : size_t(b) * h * sq, -7.f);
        for (auto& s : slopes) s = std::uniform_real_distribution<float>(0.f, 0.3f)(g);

        flash_fwd_params p;
        flash_fwd_params_init(&p);
        p.device_type = FLASH_DEVICE_CPU;
        p.dtype = dt;
        p.q_ptr = q.ptr(); p.k_ptr = k.ptr(); p.v_ptr = v.ptr(); p.o_ptr = o.ptr();
        p.q_row_stride = int64_t(h) * d; p.q_head_stride = d; p.q_batch_stride = int64_t(sq) * h * d;
        p.k_row_stride = int64_t(hk) * d; p.k_head_stride = d; p.k_batch_stride = int64_t(sk) * hk * d;
        p.v_row_stride = int64_t(hk) * dv; p.v_head_stride = dv; p.v_batch_stride = int64_t(sk) * hk * dv;
        p.o_row_stride = int64_t(h) * dv; p.o_head_stride = dv; p.o_batch_stride = int64_t(sq) * h * dv;
        p.b = b; p.seqlen_q = sq; p.seqlen_k = sk; p.d = d; p.dv = dv; p.h = h; p.h_k = hk;
        p.softmax_lse_ptr = lse.data();
        p.softcap = softcap; p.p_dropout = pdrop; p.is_causal = causal;
        p.window_size_left = wl; p.window_size_right = wr;
        if (alibi) { p.alibi_slopes_ptr = slopes.data(); p.alibi_slopes_batch_stride = h; }
        p.philox_seed = 0x1234567890ull; p.philox_offset = 77;
        if (varlen) {
            p.cu_seqlens_q = cuq.data(); p.cu_seqlens_k = cuk.data(); p.total_q = total_q;
            if (use_seqused) { p.seqused_q = usedq.data(); p.seqused_k = usedk.data(); }
        }
        uint64_t wsb = 0;
        int st = flash_fwd_workspace_size(&p, &wsb);
        std::vector<char> ws(wsb);
        if (st == 0) st = flash_fwd(&p, ws.data(), wsb, nullptr);
        if (st != 0) {
            printf("it %d: status %d %s\n", it, st, flash_last_error());
            ++fails;
            continue;
        }
        // reference
        const double scale = 1.0 / std::sqrt(double(d));
        const uint32_t thr = uint32_t(std::min(65535.0, std::floor(pdrop * 65536.0 + 0.5)));
        double maxerr = 0, maxref = 0, lerr = 0;
        int bad_poison = 0;
        for (int bi = 0; bi < b; ++bi) {
            const int SQ = varlen ? usedq[bi] : sq, SK = varlen ? usedk[bi] : sk;
            const int64_t q0 = varlen ? cuq[bi] : int64_t(bi) * sq, k0 = varlen ? cuk[bi] : int64_t(bi) * sk;
            for (int hi = 0; hi < h; ++hi) {
                const int kh = hi / group;
                for (int r = 0; r < (varlen ? lq[bi] : sq); ++r) {
                    const size_t orow = size_t(q0 + r) * h * dv + size_t(hi) * dv;
                    const size_t li = varlen ? size_t(hi) * total_q + q0 + r : (size_t(bi) * h + hi) * sq + r;
                    if (r >= SQ) { // untouched
                        for (int x = 0; x < dv; ++x) bad_poison += o.get(orow + x) != round_to(dt, 1234.f);
                        bad_poison += lse[li] != -7.f;
                        continue;
                    }
                    std::vector<double> s(SK, -INFINITY);
                    double mx = -INFINITY;
                    for (int j = 0; j < SK; ++j) {
                        const int64_t a = int64_t(r) + SK - SQ;
                        bool vis = true;
                        if (causal && j > a) vis = false;
                        if (!causal && wl >= 0 && j < a - wl) vis = false;
                        if (!causal && wr >= 0 && j > a + wr) vis = false;
                        if (!vis) continue;
                        double acc = 0;
                        for (int x = 0; x < d; ++x)
                            acc += double(q.get(size_t(q0 + r) * h * d + size_t(hi) * d + x)) *
                                   k.get(size_t(k0 + j) * hk * d + size_t(kh) * d + x);
                        acc *= scale;
                        if (softcap > 0) acc = softcap * std::tanh(acc / softcap);
                        if (alibi) acc -= slopes[bi * h + hi] * std::fabs(double(a - j));
                        s[j] = acc;
                        mx = std::max(mx, acc);
                    }
                    double sum = 0;
                    for (int j = 0; j < SK; ++j) sum += s[j] == -INFINITY ? 0 : std::exp(s[j] - mx);
                    const double L = sum == 0 ? INFINITY : mx + std::log(sum);
                    if (!(L == INFINITY && lse[li] == INFINITY)) lerr = std::max(lerr, std::fabs(L - lse[li]));
                    for (int x = 0; x < dv; ++x) {
                        double out = 0;
                        for (int j = 0; j < SK; ++j) {
                            if (s[j] == -INFINITY) continue;
                            double pj = std::exp(s[j] - mx) / sum;
                            if (pdrop > 0) {
                                uint32_t keep = dropout_keep8(p.philox_seed, p.philox_offset, bi, h, hi, r, j >> 3, thr);
                                pj = (keep >> (j & 7) & 1) ? pj / (1.0 - pdrop) : 0;
                            }
                            out += pj * v.get(size_t(k0 + j) * hk * dv + size_t(kh) * dv + x);
                        }
                        maxref = std::max(maxref, std::fabs(out));
                        maxerr = std::max(maxerr, std::fabs(out - o.get(orow + x)));
                    }
                }
            }
        }
        const double tol = dt == FLASH_DTYPE_FP32 ? 2e-5 : dt == FLASH_DTYPE_FP16 ? 4e-3 : 3e-2;
        const bool ok = maxerr <= tol * std::max(1.0, maxref) && lerr < 1e-3 && bad_poison == 0;
        if (!ok || argc > 3)
            printf("it %d %s dt=%d b=%d h=%d hk=%d sq=%d sk=%d d=%d dv=%d varlen=%d used=%d causal=%d w=(%d,%d) cap=%g alibi=%d p=%g: "
                   "err=%.3g ref=%.3g lse_err=%.3g poison=%d\n",
                   it, ok ? "ok" : "FAIL", dt, b, h, hk, sq, sk, d, dv, varlen, use_seqused, causal, wl, wr, softcap,
                   alibi, pdrop, maxerr, maxref, lerr, bad_poison);
        fails += !ok;
    }
    printf("%d / %d failed\n", fails, iters);
    return fails != 0;
}
