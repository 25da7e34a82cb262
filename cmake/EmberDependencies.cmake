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

ember_require_package(fmt libfmt-dev)
ember_require_package(nlohmann_json nlohmann-json3-dev)
ember_require_package(CLI11 libcli11-dev)
if(EMBER_BUILD_TESTS)
  ember_require_package(GTest libgtest-dev)
endif()

# OpenMP parallelizes the CPU reference over rows; without it the reference runs on one core.
find_package(OpenMP COMPONENTS CXX QUIET)
if(OpenMP_CXX_FOUND)
  message(STATUS "Ember: OpenMP found, the CPU backend runs in parallel")
else()
  message(STATUS "Ember: OpenMP not found, the CPU backend runs on one core")
endif()
