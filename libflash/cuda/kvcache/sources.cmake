# KV-cache (flash_fwd_kvcache) sources, included at the end of ../sources.cmake: appends the host side and
# the decode-attention instantiations of the head dims this build compiles (FLASH_HEAD_DIMS).
set(_flash_kv_dir ${CMAKE_CURRENT_LIST_DIR})
list(APPEND FLASH_CUDA_SOURCES ${_flash_kv_dir}/kvcache.cu)
foreach(_d IN LISTS _flash_dims)
  list(APPEND FLASH_CUDA_SOURCES ${_flash_kv_dir}/kv_hdim${_d}.cu)
endforeach()
