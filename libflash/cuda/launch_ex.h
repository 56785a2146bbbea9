// A kernel launch that may be a programmatic dependent launch (PDL, sm90+): with `pdl` the kernel may start while
// the previous kernel of its stream still runs, once every CTA of that kernel has called
// prim::griddep_launch_dependents() or exited; it must prim::griddep_wait() before reading what that kernel writes.
// Without `pdl` it is an ordinary launch.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace flash::cuda {

template <class... KArgs, class... Args>
cudaError_t launch_ex(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl,
                      const Args&... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, args...);
}

} // namespace flash::cuda
