#!/usr/bin/env bash
# Configures libmusicgen as a library only (no tests, tools or examples) with GoogleTest, CLI11 and
# libpng hidden from CMake, as a parent project without them would, then compiles the one source
# whose code depends on libpng (the chroma picture) without it. Proves that a library-only build
# needs none of the three.
set -euo pipefail
SRC=$1
BUILD=$2
rm -rf "$BUILD"
log=$BUILD.log
if ! cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMUSICGEN_CUDA=OFF \
     -DMUSICGEN_BUILD_TESTS=OFF -DMUSICGEN_BUILD_TOOLS=OFF -DMUSICGEN_BUILD_EXAMPLES=OFF \
     -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON \
     -DCMAKE_DISABLE_FIND_PACKAGE_PNG=ON >"$log" 2>&1; then
  cat "$log"; echo "0 passed, 1 failed"; exit 1
fi
grep -q "chroma pictures (libpng) OFF" "$log" || { cat "$log"; echo "libpng was not left out"; echo "0 passed, 1 failed"; exit 1; }
# The target list is captured first: `cmake ... | grep -q` under pipefail turns a SIGPIPE into "no
# such target", which would let a target that is there pass unseen.
targets=$(cmake --build "$BUILD" --target help)
for t in musicgen-cli encodec-tool example-generate tensor_test; do
  if grep -q "\.\.\. $t\$" <<<"$targets"; then
    echo "a library-only build still defines the target $t"; echo "0 passed, 1 failed"; exit 1
  fi
done
cmake --build "$BUILD" --target conditioning/chroma_png.cpp.o >"$log" 2>&1 || { cat "$log"; echo "0 passed, 1 failed"; exit 1; }
rm -rf "$BUILD" "$log"
echo "1 passed, 0 failed"
