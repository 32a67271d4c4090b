# Turns the web page into a C++ header (kWebPage bytes, kWebPageSize): cmake -DIN=page -DOUT=header -P.
# Without the page, a placeholder that says where it goes.
if(EXISTS "${IN}")
  file(READ "${IN}" _hex HEX)
else()
  file(READ "${CMAKE_CURRENT_LIST_DIR}/placeholder.html" _hex HEX)
endif()
string(LENGTH "${_hex}" _len)
math(EXPR _size "${_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
file(WRITE "${OUT}.tmp" "// Generated from tools/musicgen-server/web/index.html by embed_page.cmake: do not edit.\n#pragma once\n#include <cstddef>\nstatic const unsigned char kWebPage[] = {${_bytes} 0};\nstatic const size_t kWebPageSize = ${_size};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
