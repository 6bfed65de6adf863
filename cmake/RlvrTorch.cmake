# LibTorch from the pinned PyPI wheel, as target rlvr::torch.
#  - With a CUDA toolkit (nvcc) present: find_package(Torch), which compiles and links the CUDA parts.
#  - Without one (a user's fresh machine): an imported target over the wheel's headers and libraries,
#    CPU-only at link time (LIBTORCH.md 1.6). The same wheel still runs CUDA at run time if loaded by Python,
#    but rlvr then reports CUDA as unavailable.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
execute_process(
  COMMAND ${Python3_EXECUTABLE} -c "import torch,os;print(torch.utils.cmake_prefix_path);print(os.path.dirname(torch.__file__));print(torch.__version__)"
  OUTPUT_VARIABLE _rlvr_torch_info OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "rlvr: cannot import torch with ${Python3_EXECUTABLE}. HINT: run scripts/setup.sh, "
                      "or pass -DPython3_EXECUTABLE=<venv>/bin/python")
endif()
string(REPLACE "\n" ";" _rlvr_torch_info "${_rlvr_torch_info}")
list(GET _rlvr_torch_info 0 RLVR_TORCH_CMAKE_PREFIX)
list(GET _rlvr_torch_info 1 RLVR_TORCH_DIR)
list(GET _rlvr_torch_info 2 RLVR_TORCH_VERSION)
get_filename_component(RLVR_TORCH_SITE "${RLVR_TORCH_DIR}/.." ABSOLUTE)

set(RLVR_USE_CUDA AUTO CACHE STRING "Link LibTorch CUDA parts: AUTO (when nvcc is found), ON or OFF")
find_program(RLVR_NVCC nvcc HINTS /usr/local/cuda/bin)
if(RLVR_USE_CUDA STREQUAL "AUTO")
  if(RLVR_NVCC)
    set(RLVR_USE_CUDA ON)
  else()
    set(RLVR_USE_CUDA OFF)
  endif()
endif()

file(GLOB _rlvr_nvlibs "${RLVR_TORCH_SITE}/nvidia/*/lib")
foreach(d IN LISTS _rlvr_nvlibs)
  add_link_options("LINKER:-rpath-link,${d}")
endforeach()
# Never record the driver stub (libcuda.so.1) as a dependency: binaries must start without a GPU driver.
add_link_options("LINKER:--as-needed")

add_library(rlvr_torch INTERFACE)
add_library(rlvr::torch ALIAS rlvr_torch)
if(RLVR_USE_CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_COMPILER "${RLVR_NVCC}")
  endif()
  set(TORCH_CUDA_ARCH_LIST "9.0" CACHE STRING "")   # no GPU autodetection; H200 = sm_90
  list(APPEND CMAKE_PREFIX_PATH "${RLVR_TORCH_CMAKE_PREFIX}")
  find_package(Torch REQUIRED)
  set(CMAKE_CUDA_ARCHITECTURES 90)
  target_link_libraries(rlvr_torch INTERFACE ${TORCH_LIBRARIES})
  target_compile_definitions(rlvr_torch INTERFACE RLVR_HAS_CUDA=1)
  message(STATUS "rlvr: LibTorch ${RLVR_TORCH_VERSION} with CUDA (${RLVR_TORCH_DIR})")
else()
  set(_l "${RLVR_TORCH_DIR}/lib")
  target_include_directories(rlvr_torch SYSTEM INTERFACE
    "${RLVR_TORCH_DIR}/include" "${RLVR_TORCH_DIR}/include/torch/csrc/api/include")
  target_compile_definitions(rlvr_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
  target_link_libraries(rlvr_torch INTERFACE "${_l}/libtorch.so" "${_l}/libtorch_cpu.so" "${_l}/libc10.so")
  target_link_options(rlvr_torch INTERFACE "LINKER:-rpath,${_l}")
  message(STATUS "rlvr: LibTorch ${RLVR_TORCH_VERSION}, CPU-only link (no nvcc found) (${RLVR_TORCH_DIR})")
endif()
target_compile_definitions(rlvr_torch INTERFACE RLVR_TORCH_VERSION="${RLVR_TORCH_VERSION}")
# libtorch.so (2.11 wheel) exports its own copies of std::filesystem functions, and its remove_all segfaults
# when the dynamic linker binds it before libstdc++'s (a 3-line program linked with -ltorch reproduces it).
# Recording libstdc++ first in DT_NEEDED makes every binary use libstdc++'s std::filesystem.
target_link_options(rlvr_torch INTERFACE "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
