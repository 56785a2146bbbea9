// Programmatic dependent launch (PTX griddepcontrol, sm90+): a kernel launched with
// cudaLaunchAttributeProgrammaticStreamSerialization may start while the previous kernel of its stream is
// still running; it must call griddep_wait() before touching anything that kernel writes.
//   griddep_launch_dependents(): this CTA allows the dependent grid to be scheduled (once every CTA of this
//                                grid has called it or exited). It changes no memory ordering.
//   griddep_wait():              blocks until every prerequisite grid has completed and its memory
//                                operations are visible. A no-op in a kernel launched without the attribute.
// Below sm90 both are no-ops, which is correct there: the host launches without the attribute, so the
// stream serializes the kernels as usual.
#pragma once

#include "arch.cuh"

namespace flash::cuda::prim {

__device__ __forceinline__ void griddep_launch_dependents() {
#if FLASH_SM90_OR_NEWER
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void griddep_wait() {
#if FLASH_SM90_OR_NEWER
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

} // namespace flash::cuda::prim
