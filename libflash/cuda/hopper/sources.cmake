# Hopper forward (sm_90a: wgmma, TMA). Compiled only when the arch list holds 90a, since its kernels exist
# for that target alone; FLASH_HAS_SM90A tells the dispatcher the path is there.
if(FLASH_CUDA_ARCHS MATCHES "90a")
  set(_flash_sm90_dir ${CMAKE_CURRENT_LIST_DIR})
  list(APPEND FLASH_CUDA_SOURCES ${_flash_sm90_dir}/fwd_sm90.cu ${_flash_sm90_dir}/tensor_map.cu)
  foreach(_d IN LISTS _flash_dims)
    file(GLOB _gen CONFIGURE_DEPENDS ${_flash_sm90_dir}/generated/fwd_sm90_*_hdim${_d}_*.cu)
    list(APPEND FLASH_CUDA_SOURCES ${_gen})
  endforeach()
  target_compile_definitions(flash PRIVATE FLASH_HAS_SM90A)
endif()
