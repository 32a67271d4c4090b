#!/usr/bin/env bash
# Configures and builds libmusicgen, its tools and tests into build/ (or $BUILD_DIR).
# CUDA is built when nvcc is found (MUSICGEN_CUDA=AUTO); set MUSICGEN_CUDA=OFF to skip it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMUSICGEN_CUDA="${MUSICGEN_CUDA:-AUTO}" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
