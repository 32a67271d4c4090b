# The device op case table (device_op_cases.h): one library that bench-device-ops and the GPU tests
# (tests/CMakeLists.txt) both link, whichever of the two folders is configured, and first.
if(NOT TARGET musicgen_device_op_cases)
  add_library(musicgen_device_op_cases STATIC
              ${CMAKE_CURRENT_LIST_DIR}/device_op_cases.cpp ${CMAKE_CURRENT_LIST_DIR}/device_op_cases_dense.cpp
              ${CMAKE_CURRENT_LIST_DIR}/device_op_cases_seq.cpp ${CMAKE_CURRENT_LIST_DIR}/device_op_cases_codec.cpp)
  target_link_libraries(musicgen_device_op_cases PUBLIC musicgen_static)
endif()
