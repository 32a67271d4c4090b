#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds examples/generate.c against it twice: via
# pkg-config and via find_package(musicgen). Proves the install rules, musicgen.pc and the CMake
# package config work for a user who only has the installed files. A sanitizer build (third
# argument: MUSICGEN_SANITIZE, e.g. address,undefined) installs an instrumented library, which only
# links into a program built with the same -fsanitize flags: the consumer gets them too.
set -euo pipefail
BUILD=$1
SRC=$2
SANITIZE=${3:-}
SAN_FLAGS=()
if [ -n "$SANITIZE" ]; then SAN_FLAGS=(-fsanitize="$SANITIZE"); fi
PREFIX=$BUILD/test-install
rm -rf "$PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" > /dev/null
for f in include/musicgen.h include/encodec.h include/musicgen_common.h; do [ -f "$PREFIX/$f" ] || { echo "missing $f"; exit 1; }; done
LIBDIR=$(dirname "$(find "$PREFIX" -name 'libmusicgen.so*' | head -n 1)")
PC=$(find "$PREFIX" -name musicgen.pc | head -n 1)
[ -n "$PC" ] || { echo "missing musicgen.pc"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$PC")
cc -std=c99 "${SAN_FLAGS[@]}" "$SRC/examples/generate.c" $(pkg-config --cflags --libs musicgen) -Wl,-rpath,"$LIBDIR" -o "$PREFIX/gen-pc"
{ "$PREFIX/gen-pc" 2>&1 || true; } | grep -q usage
mkdir -p "$PREFIX/consumer"
cat > "$PREFIX/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(musicgen REQUIRED)
add_executable(gen $SRC/examples/generate.c)
target_link_libraries(gen PRIVATE musicgen::musicgen)
CM
cmake -S "$PREFIX/consumer" -B "$PREFIX/consumer/build" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_C_FLAGS="${SAN_FLAGS[*]}" -DCMAKE_EXE_LINKER_FLAGS="${SAN_FLAGS[*]}" > /dev/null
cmake --build "$PREFIX/consumer/build" > /dev/null
{ "$PREFIX/consumer/build/gen" 2>&1 || true; } | grep -q usage
echo "1 passed, 0 failed"
