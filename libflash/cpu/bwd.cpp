#include "../api/error.h"
#include "cpu_backend.h"

namespace flash::cpu {

uint64_t bwd_workspace_size(const BwdProblem&) { return 0; }

int32_t bwd(const BwdProblem&, void*, uint64_t) {
    return set_error(FLASH_ERROR_NOT_IMPLEMENTED, "flash_bwd is not implemented yet on the CPU");
}

} // namespace flash::cpu
