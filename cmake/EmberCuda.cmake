# Decides whether the CUDA backend is built (EMBER_CUDA=AUTO|ON|OFF) and sets its architectures.
include_guard(GLOBAL)
include(CheckLanguage)

set(EMBER_WITH_CUDA OFF)
if(NOT EMBER_CUDA STREQUAL "OFF")
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Default: sm_90 machine code (H100/H200) with the sm_90a features (wgmma, for the TF32 matmul),
    # plus PTX so newer GPUs JIT-compile it.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a-real 90-virtual)
    endif()
    enable_language(CUDA)
    # CMake 3.25 does not know nvcc's C++20 flag (nvcc 12+ has it): teach it.
    if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION OR CMAKE_CUDA20_STANDARD_COMPILE_OPTION STREQUAL "")
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    # Host and device warnings are errors (unless EMBER_WERROR is OFF).
    set(EMBER_CUDA_FLAGS -Xcompiler=-Wall,-Wextra)
    if(EMBER_WERROR)
      list(APPEND EMBER_CUDA_FLAGS --Werror=all-warnings -Xcompiler=-Werror)
    endif()
    find_package(CUDAToolkit REQUIRED)
    set(EMBER_WITH_CUDA ON)
    message(STATUS "Ember: CUDA backend enabled (architectures: ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(EMBER_CUDA STREQUAL "ON")
    message(FATAL_ERROR "EMBER_CUDA=ON but no CUDA compiler was found. Install the CUDA toolkit "
                        "(nvcc on PATH, or set CMAKE_CUDA_COMPILER), or configure with -DEMBER_CUDA=OFF.")
  else()
    message(STATUS "Ember: no CUDA compiler found, building the CPU backend only")
  endif()
else()
  message(STATUS "Ember: CUDA backend disabled (EMBER_CUDA=OFF)")
endif()
