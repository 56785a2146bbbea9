# CUDA backward sources (issue 6), included at the end of ../sources.cmake (which sets _flash_dims from
# FLASH_HEAD_DIMS). Appends bwd.cu and the generated instantiations of the selected head dims.
list(APPEND FLASH_CUDA_SOURCES ${CMAKE_CURRENT_LIST_DIR}/bwd.cu)
foreach(_d IN LISTS _flash_dims)
  file(GLOB _bwd_gen CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/generated/bwd_*_hdim${_d}_*.cu)
  list(APPEND FLASH_CUDA_SOURCES ${_bwd_gen})
endforeach()
