#include "../api/error.h"
#include "cpu_backend.h"

namespace flash::cpu {

uint64_t fwd_kvcache_workspace_size(const FwdProblem&) { return 0; }

int32_t fwd_kvcache(const FwdProblem&, void*, uint64_t) {
    return set_error(FLASH_ERROR_NOT_IMPLEMENTED, "flash_fwd_kvcache is not implemented yet on the CPU");
}

} // namespace flash::cpu
