# Decides whether ONNX export is built (EMBER_ONNX=AUTO|ON|OFF): ONNX's own protobuf classes,
# checker and shape inference (Debian's libonnx-dev, with libprotobuf-dev) write and verify the file.
include_guard(GLOBAL)

set(EMBER_ONNX AUTO CACHE STRING "ONNX export (Sequential::export_onnx, ember export): AUTO (when libonnx-dev is found), ON or OFF")
set_property(CACHE EMBER_ONNX PROPERTY STRINGS AUTO ON OFF)
set(EMBER_WITH_ONNX OFF)
if(NOT EMBER_ONNX STREQUAL "OFF")
  # ONNX's exported targets name protobuf::libprotobuf, which this defines.
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND)
    find_package(ONNX CONFIG QUIET)
  endif()
  if(Protobuf_FOUND AND ONNX_FOUND AND TARGET onnx)
    set(EMBER_WITH_ONNX ON)
    message(STATUS "Ember: ONNX export enabled (ONNX ${ONNX_VERSION}, protobuf ${Protobuf_VERSION})")
  elseif(EMBER_ONNX STREQUAL "ON")
    message(FATAL_ERROR "EMBER_ONNX=ON but ONNX was not found. Install it with apt-get install libonnx-dev "
                        "libprotobuf-dev, or configure with -DEMBER_ONNX=OFF.")
  else()
    message(STATUS "Ember: no ONNX found (apt-get install libonnx-dev), building without ONNX export")
  endif()
else()
  message(STATUS "Ember: ONNX export disabled (EMBER_ONNX=OFF)")
endif()
