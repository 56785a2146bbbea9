// From the public params to a FwdProblem / BwdProblem: every rule of include/flash.h is checked here, once,
// before any backend runs, so a failed call writes no output. Messages name the field and the values.
#pragma once

#include "flash.h"
#include "problem.h"

namespace flash {

enum class Entry { Fwd, KVCache };

int32_t load_fwd(const flash_fwd_params* params, Entry entry, FwdProblem* out);
int32_t load_bwd(const flash_bwd_params* params, BwdProblem* out);

} // namespace flash
