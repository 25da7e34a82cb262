# Decides whether data-parallel training over MPI is built (EMBER_MPI=AUTO|ON|OFF).
include_guard(GLOBAL)

set(EMBER_WITH_MPI OFF)
if(NOT EMBER_MPI STREQUAL "OFF")
  # MPI's C API, called from C++ (the project has no C language; the C++ bindings are not used).
  set(MPI_CXX_SKIP_MPICXX ON)
  find_package(MPI COMPONENTS CXX QUIET)
  if(MPI_CXX_FOUND)
    set(EMBER_WITH_MPI ON)
    find_program(EMBER_MPIEXEC NAMES ${MPIEXEC_EXECUTABLE} mpiexec mpirun)
    message(STATUS "Ember: MPI enabled (MPI ${MPI_CXX_VERSION}, ${MPI_CXX_LIBRARIES})")
  elseif(EMBER_MPI STREQUAL "ON")
    message(FATAL_ERROR "EMBER_MPI=ON but no MPI was found. Install Open MPI (apt-get install libopenmpi-dev "
                        "openmpi-bin), or configure with -DEMBER_MPI=OFF.")
  else()
    message(STATUS "Ember: no MPI found, building for one process")
  endif()
else()
  message(STATUS "Ember: MPI disabled (EMBER_MPI=OFF)")
endif()
