# CUDA backend sources, included by the top-level CMakeLists.txt inside if(FLASH_WITH_CUDA), after the
# `flash` target exists. Sets FLASH_CUDA_SOURCES and the per-head-dim definitions the dispatcher reads.
set(_flash_cuda_dir ${CMAKE_CURRENT_LIST_DIR})
set(FLASH_CUDA_SOURCES ${_flash_cuda_dir}/device_info.cu ${_flash_cuda_dir}/attn_params.cu ${_flash_cuda_dir}/fwd.cu
    ${_flash_cuda_dir}/fwd_combine.cu)

set(_flash_dims ${FLASH_HEAD_DIMS})
list(REMOVE_DUPLICATES _flash_dims)
list(SORT _flash_dims COMPARE NATURAL)
set(_flash_dims_json "")
foreach(_d IN LISTS _flash_dims)
  if(NOT _d MATCHES "^(32|64|96|128|192|256)$")
    message(FATAL_ERROR "FLASH_HEAD_DIMS: ${_d} is not one of 32;64;96;128;192;256")
  endif()
  file(GLOB _gen CONFIGURE_DEPENDS ${_flash_cuda_dir}/generated/fwd_*_hdim${_d}_*.cu)
  list(APPEND FLASH_CUDA_SOURCES ${_gen})
  target_compile_definitions(flash PRIVATE FLASH_HDIM_${_d})
  if(_flash_dims_json STREQUAL "")
    set(_flash_dims_json "${_d}")
  else()
    set(_flash_dims_json "${_flash_dims_json},${_d}")
  endif()
endforeach()
target_compile_definitions(flash PRIVATE "FLASH_HEAD_DIMS_JSON=\"[${_flash_dims_json}]\"")

# KV-cache decode (flash_fwd_kvcache): host side and per-head-dim instantiations.
include(${CMAKE_CURRENT_LIST_DIR}/kvcache/sources.cmake)

# Backward (flash_bwd, issue 6): host side and per-head-dim instantiations.
include(${CMAKE_CURRENT_LIST_DIR}/bwd/sources.cmake)

# Hopper forward (issue 7): sm_90a only.
include(${CMAKE_CURRENT_LIST_DIR}/hopper/sources.cmake)
