# Decides whether the CUDA plugin sums gradients with NCCL (EMBER_NCCL=AUTO|ON|OFF). Only nccl.h is
# needed to build: the plugin opens libnccl.so.2 when a data-parallel run first asks for it (as it
# does cuBLAS), so one build runs on machines with and without NCCL.
include_guard(GLOBAL)

set(EMBER_WITH_NCCL OFF)
if(NOT EMBER_NCCL STREQUAL "OFF" AND EMBER_WITH_CUDA)
  # NCCL beside the CUDA toolkit (as NVIDIA's packages put it), or where NCCL_ROOT / NCCL_HOME say.
  find_path(EMBER_NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME}
            ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  find_library(EMBER_NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME}
               ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT} PATH_SUFFIXES lib lib64)
  if(EMBER_NCCL_INCLUDE_DIR)
    file(STRINGS ${EMBER_NCCL_INCLUDE_DIR}/nccl.h version_lines REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
    string(REGEX REPLACE ".*NCCL_MAJOR ([0-9]+).*NCCL_MINOR ([0-9]+).*NCCL_PATCH ([0-9]+).*" "\\1.\\2.\\3"
                         EMBER_NCCL_VERSION "${version_lines}")
    set(EMBER_WITH_NCCL ON)
    # Where the plugin looks for libnccl.so.2 after the system's loader paths.
    set(EMBER_NCCL_LIBRARY_DIR "")
    if(EMBER_NCCL_LIBRARY)
      get_filename_component(EMBER_NCCL_LIBRARY_DIR ${EMBER_NCCL_LIBRARY} DIRECTORY)
    endif()
    message(STATUS "Ember: NCCL ${EMBER_NCCL_VERSION} enabled (${EMBER_NCCL_INCLUDE_DIR}/nccl.h; the library "
                   "is opened at run time, also from ${EMBER_NCCL_LIBRARY_DIR})")
  elseif(EMBER_NCCL STREQUAL "ON")
    message(FATAL_ERROR "EMBER_NCCL=ON but nccl.h was not found beside the CUDA toolkit. Install NCCL "
                        "(apt-get install libnccl-dev, or NVIDIA's package) or set NCCL_ROOT, or configure with "
                        "-DEMBER_NCCL=OFF.")
  else()
    message(STATUS "Ember: no nccl.h found; GPU ranks will sum gradients through MPI on the host")
  endif()
elseif(EMBER_NCCL STREQUAL "ON" AND NOT EMBER_WITH_CUDA)
  message(FATAL_ERROR "EMBER_NCCL=ON needs the CUDA backend (EMBER_CUDA).")
else()
  message(STATUS "Ember: NCCL disabled")
endif()
