#!/usr/bin/env bash
# README command 2 (and what CI runs): installs what is missing, builds everything (CUDA code too
# when nvcc is present) and runs the whole default test suite. GPU tests skip without a device;
# tests labelled `slow` are left out (run them with: ctest --test-dir build -L slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${JOBS:-$(nproc)}" -LE slow --timeout 300

# The Python package: pip install . into build/pyvenv (CUDA off), then its pytest suite.
bash python/run-tests.sh
