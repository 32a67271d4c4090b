#!/usr/bin/env bash
# Configures and builds libmusicgen, its tools and tests into build/ (or $BUILD_DIR).
# CUDA is built when nvcc is found (MUSICGEN_CUDA=AUTO); set MUSICGEN_CUDA=OFF to skip it, and
# CUDA_ARCHS (a CMake architecture list) to build for other GPUs than the default list.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
# ccache, when installed, makes rebuilds in a fresh build folder cheap (it is optional).
LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
# CUDA architectures: the default list (CMakeLists.txt: Turing to Hopper, PTX for newer) unless
# CUDA_ARCHS names others. CI (CI=true) only proves that the CUDA code compiles, so it builds one:
# the oldest of the list, where an intrinsic that needs a newer GPU fails to compile.
ARCH=()
if [ -n "${CUDA_ARCHS:-}" ]; then
  ARCH=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS")
elif [ "${CI:-}" = true ]; then
  ARCH=(-DCMAKE_CUDA_ARCHITECTURES=75-real)
fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMUSICGEN_CUDA="${MUSICGEN_CUDA:-AUTO}" "${LAUNCHER[@]}" \
  "${ARCH[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
