#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds examples/generate.c against it twice: via
# pkg-config and via find_package(musicgen). Proves the install rules, musicgen.pc and the CMake
# package config work for a user who only has the installed files.
set -euo pipefail
BUILD=$1
SRC=$2
PREFIX=$BUILD/test-install
rm -rf "$PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" > /dev/null
for f in include/musicgen.h include/encodec.h include/musicgen_common.h; do [ -f "$PREFIX/$f" ] || { echo "missing $f"; exit 1; }; done
LIBDIR=$(dirname "$(find "$PREFIX" -name 'libmusicgen.so*' | head -n 1)")
PC=$(find "$PREFIX" -name musicgen.pc | head -n 1)
[ -n "$PC" ] || { echo "missing musicgen.pc"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$PC")
cc -std=c99 "$SRC/examples/generate.c" $(pkg-config --cflags --libs musicgen) -Wl,-rpath,"$LIBDIR" -o "$PREFIX/gen-pc"
{ "$PREFIX/gen-pc" 2>&1 || true; } | grep -q usage
mkdir -p "$PREFIX/consumer"
cat > "$PREFIX/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(musicgen REQUIRED)
add_executable(gen $SRC/examples/generate.c)
target_link_libraries(gen PRIVATE musicgen::musicgen)
CM
cmake -S "$PREFIX/consumer" -B "$PREFIX/consumer/build" -DCMAKE_PREFIX_PATH="$PREFIX" > /dev/null
cmake --build "$PREFIX/consumer/build" > /dev/null
{ "$PREFIX/consumer/build/gen" 2>&1 || true; } | grep -q usage
echo "1 passed, 0 failed"
