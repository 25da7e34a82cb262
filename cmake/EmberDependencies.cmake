# Finds every third-party dependency; a missing one stops configure with the package to install.
include_guard(GLOBAL)

function(ember_require_package name debian_package)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR
      "Ember needs ${name}, which was not found. Install it with:\n"
      "  sudo apt-get install ${debian_package}\n"
      "or run scripts/install-deps.sh, which installs everything Ember needs.")
  endif()
endfunction()

option(EMBER_FMT_HEADER_ONLY "Use fmt header-only (for machines that only carry its headers)" OFF)
set(EMBER_GTEST_SOURCE_DIR "" CACHE PATH "Build GoogleTest from these sources instead of find_package(GTest)")
ember_require_package(fmt libfmt-dev)
if(EMBER_FMT_HEADER_ONLY)
  set(EMBER_FMT fmt::fmt-header-only)
else()
  set(EMBER_FMT fmt::fmt)
endif()
ember_require_package(nlohmann_json nlohmann-json3-dev)
ember_require_package(CLI11 libcli11-dev)
if(EMBER_BUILD_TESTS)
  if(EMBER_GTEST_SOURCE_DIR)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(${EMBER_GTEST_SOURCE_DIR} ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
    if(NOT TARGET GTest::gtest)  # googletest >= 1.11 defines these aliases itself
      add_library(GTest::gtest ALIAS gtest)
      add_library(GTest::gtest_main ALIAS gtest_main)
    endif()
  else()
    ember_require_package(GTest libgtest-dev)
  endif()
endif()

# OpenBLAS computes the fast CPU path's matmul; without it that path uses plain float32 loops.
# Ember sets it to one thread and splits products among its own threads (engine/src/cpu/thread_pool.hpp);
# Debian's OpenMP build is the one scripts/install-deps.sh installs.
set(EMBER_BLAS AUTO CACHE STRING "Use OpenBLAS for the fast CPU path's matmul: AUTO (when found), ON or OFF")
set_property(CACHE EMBER_BLAS PROPERTY STRINGS AUTO ON OFF)
set(EMBER_WITH_OPENBLAS OFF)
if(NOT EMBER_BLAS STREQUAL "OFF")
  find_package(OpenBLAS CONFIG QUIET)
  if(OpenBLAS_FOUND AND OpenBLAS_LIBRARIES)
    set(EMBER_WITH_OPENBLAS ON)
    # Which of Debian's builds this is (openblas-openmp, openblas-pthread, openblas-serial): the
    # installed library looks for it first (its RUNPATH) and refuses another at start-up.
    get_filename_component(EMBER_OPENBLAS_DIR "${OpenBLAS_LIBRARIES}" DIRECTORY)
    if(OpenBLAS_LIBRARIES MATCHES "openmp")
      set(EMBER_OPENBLAS_PARALLEL 2)
    elseif(OpenBLAS_LIBRARIES MATCHES "pthread")
      set(EMBER_OPENBLAS_PARALLEL 1)
    elseif(OpenBLAS_LIBRARIES MATCHES "serial")
      set(EMBER_OPENBLAS_PARALLEL 0)
    else()
      set(EMBER_OPENBLAS_PARALLEL -1)  # unknown: no check
    endif()
    message(STATUS "Ember: OpenBLAS ${OpenBLAS_VERSION} (${EMBER_OPENBLAS_DIR}) computes the fast CPU path's matmul")
    if(EMBER_OPENBLAS_PARALLEL EQUAL 2)
      # The OpenMP build threads each call by the caller's OpenMP thread count, which Ember sets to
      # one around its calls (omp_set_num_threads): the OpenMP runtime is linked for that alone.
      find_package(OpenMP COMPONENTS CXX REQUIRED)
    endif()
  elseif(EMBER_BLAS STREQUAL "ON")
    message(FATAL_ERROR "EMBER_BLAS=ON but OpenBLAS was not found. Install it with:\n"
                        "  sudo apt-get install libopenblas-openmp-dev")
  else()
    message(STATUS "Ember: OpenBLAS not found (apt-get install libopenblas-openmp-dev); "
                   "the fast CPU path multiplies with built-in loops")
  endif()
endif()
