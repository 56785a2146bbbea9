# Hopper forward and backward (sm_90a: wgmma, TMA). fwd_sm90.cu / bwd_sm90.cu (the dispatchers' entries, host code) are always built: without
# 90a in the arch list it only answers "not taken". The kernels exist for the sm_90a target alone, so they and
# the tensor-map code are compiled only when the list holds 90a; FLASH_HAS_SM90A tells the dispatcher.
set(_flash_sm90_dir ${CMAKE_CURRENT_LIST_DIR})
list(APPEND FLASH_CUDA_SOURCES ${_flash_sm90_dir}/fwd_sm90.cu ${_flash_sm90_dir}/bwd_sm90.cu)
if(FLASH_CUDA_ARCHS MATCHES "90a")
  list(APPEND FLASH_CUDA_SOURCES ${_flash_sm90_dir}/tensor_map.cu)
  foreach(_d IN LISTS _flash_dims)
    file(GLOB _gen CONFIGURE_DEPENDS ${_flash_sm90_dir}/generated/fwd_sm90_*_hdim${_d}_*.cu
         ${_flash_sm90_dir}/generated/bwd_sm90_*_hdim${_d}_*.cu)
    list(APPEND FLASH_CUDA_SOURCES ${_gen})
  endforeach()
  target_compile_definitions(flash PRIVATE FLASH_HAS_SM90A)
endif()
