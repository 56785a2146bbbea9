#include "attn_params.h"

namespace flash::cuda {

bool aligned16(const void* ptr, const Strides& s, bool use_batch) {
    return (reinterpret_cast<uintptr_t>(ptr) % 16 == 0) && s.row % 8 == 0 && s.head % 8 == 0 &&
           (!use_batch || s.batch % 8 == 0);
}

void fill_attn_params(const FwdProblem& p, AttnParams* k) {
    k->q = p.q;
    k->k = p.k;
    k->v = p.v;
    k->o = p.o;
    k->q_batch = p.sq_.batch, k->q_row = p.sq_.row, k->q_head = p.sq_.head;
    k->k_batch = p.sk_.batch, k->k_row = p.sk_.row, k->k_head = p.sk_.head;
    k->v_batch = p.sv_.batch, k->v_row = p.sv_.row, k->v_head = p.sv_.head;
    k->o_batch = p.so_.batch, k->o_row = p.so_.row, k->o_head = p.so_.head;
    k->b = p.b, k->h = p.h, k->hk = p.hk, k->group = p.group;
    k->seqlen_q = p.seqlen_q, k->seqlen_k = p.seqlen_k, k->d = p.d, k->dv = p.dv, k->total_q = p.total_q;
    constexpr float kLog2e = 1.4426950408889634f;
    k->scale_log2 = p.scale_log2;
    k->softcap_log2 = p.softcap > 0.f ? p.softcap * kLog2e : 0.f;
    k->scale_over_softcap = p.softcap > 0.f ? p.scale / p.softcap : 0.f;
    k->win_left = p.mask.left;
    k->win_right = p.mask.right;
    k->alibi = p.alibi;
    k->alibi_batch_stride = p.alibi_batch_stride;
    const bool dropout = p.dropout.p > 0.f;
    k->rp_keep = dropout ? p.dropout.rp_keep : 1.f;
    k->threshold16 = dropout ? p.dropout.threshold16 : 0u;
    k->philox_seed = p.dropout.seed;
    k->philox_offset = p.dropout.offset;
    k->cu_seqlens_q = p.cu_seqlens_q;
    k->cu_seqlens_k = p.cu_seqlens_k;
    k->seqused_q = p.seqused_q;
    k->seqused_k = p.seqused_k;
    k->leftpad_k = p.leftpad_k;
    k->lse = p.lse;
    k->lse_unpadded = p.lse_unpadded ? 1 : 0;
    const bool vq = p.cu_seqlens_q != nullptr, vk = p.cu_seqlens_k != nullptr;
    k->aligned_q = aligned16(p.q, p.sq_, !vq);
    k->aligned_k = aligned16(p.k, p.sk_, !vk);
    k->aligned_v = aligned16(p.v, p.sv_, !vk);
    k->aligned_o = aligned16(p.o, p.so_, !vq);
    k->num_splits = 1;
}

} // namespace flash::cuda
