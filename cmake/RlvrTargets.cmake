# Helpers shared by every folder: warnings per target, one function per test target.

function(rlvr_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare)
endfunction()

# rlvr_library(name SOURCES ... LIBS ...): a static library rooted at the repository top
# (so includes read "rewards/verifier.h").
function(rlvr_library name)
  cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${A_LIBS})
  rlvr_warnings(${name})
endfunction()

# rlvr_test(name SOURCES ... LIBS ...): a Catch2 executable whose test cases become CTest tests;
# Catch2 tags become CTest labels ([gpu] -> label gpu, [slow] -> label slow).
function(rlvr_test name)
  cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE rlvr_catch_main ${A_LIBS})
  target_compile_definitions(${name} PRIVATE
    RLVR_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    RLVR_SHARED_DATA="${PROJECT_SOURCE_DIR}/../shared/data"
    RLVR_BINARY_DIR="${PROJECT_BINARY_DIR}")
  rlvr_warnings(${name})
  # Debian's Catch2 v2 CMake module has no ADD_TAGS_AS_LABELS, so the [gpu] tag becomes the `gpu` label
  # through two discoveries: the [gpu] cases (prefix "gpu: ", label gpu) and all others (label = folder).
  get_filename_component(_area ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  catch_discover_tests(${name} TEST_SPEC "~[gpu]~[.]"
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    PROPERTIES LABELS "${_area}" TIMEOUT 1800)
  catch_discover_tests(${name} TEST_SPEC "[gpu]" TEST_PREFIX "gpu: "
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    PROPERTIES LABELS "gpu;${_area}" TIMEOUT 1800)
endfunction()

# Libraries and tests that include LibTorch share one precompiled header (built once, in rlvr_torch_pch):
# <torch/torch.h> costs ~20 s per translation unit on 2 cores without it.
function(rlvr_torch_pch_target)
  if(TARGET rlvr_torch_pch)
    return()
  endif()
  add_library(rlvr_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp)
  target_link_libraries(rlvr_torch_pch PUBLIC rlvr::torch)
  target_include_directories(rlvr_torch_pch PUBLIC ${PROJECT_SOURCE_DIR})
  target_precompile_headers(rlvr_torch_pch PRIVATE ${PROJECT_SOURCE_DIR}/cmake/torch_pch.h)
  rlvr_warnings(rlvr_torch_pch)
endfunction()

function(rlvr_use_torch target)
  rlvr_torch_pch_target()
  target_link_libraries(${target} PUBLIC rlvr::torch)
  target_precompile_headers(${target} REUSE_FROM rlvr_torch_pch)
endfunction()

# rlvr_torch_library(name SOURCES ... LIBS ...): like rlvr_library, with LibTorch and the shared PCH.
function(rlvr_torch_library name)
  cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
  rlvr_library(${name} SOURCES ${A_SOURCES} LIBS ${A_LIBS})
  rlvr_use_torch(${name})
endfunction()
