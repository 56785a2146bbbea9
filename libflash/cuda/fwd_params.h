// The device-side parameter block of the forward kernels: the shared attention fields (attn_params.h) plus
// the split-KV partials. Built on the host by fwd.cu.
#pragma once

#include <cstdint>

#include "attn_params.h"

namespace flash::cuda {

struct FwdParams : AttnParams {
    // Split-KV: num_splits > 1 writes partials to o_accum [ns][h][acc_rows][D] and lse_accum [ns][h][acc_rows]
    // (acc_rows = b * seqlen_q dense, total_q varlen; a sequence's row r is acc_row0 + r).
    int32_t acc_rows;
    float* o_accum;
    float* lse_accum;
    // sm80 kernel, masked and one split: (batch, head) pairs per L2 section (tile_order.h), the CTA's linear
    // index decoded section by section; 0: blockIdx as it is (m block fastest, kReverseM).
    int32_t sec_pairs;
};

} // namespace flash::cuda
