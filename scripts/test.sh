#!/usr/bin/env bash
# README command 2 (and what CI runs): installs what is missing, builds everything (CUDA code too
# when nvcc is present) and runs the whole default test suite. GPU tests skip without a device;
# tests labelled `slow` are left out (run them with: ctest --test-dir build -L slow).
# Then the sessions-and-threads test again under ThreadSanitizer, in its own build folder
# (build-tsan, or $TSAN_BUILD_DIR): only that test's target is built, without CUDA or tools; the
# default suite under ASan+UBSan (scripts/sanitize.sh, build-asan); and the fuzz smoke.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache (when installed) keys on paths relative to the checkout, so a fresh clone elsewhere reuses
# what an earlier build compiled.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${JOBS:-$(nproc)}" -LE slow --timeout 300

# The Python package: pip install . into build/pyvenv (CUDA off), then its pytest suite.
bash python/run-tests.sh

# musicgen-server end to end on loopback (web page in headless Chromium, Prometheus, fault, Ray
# Serve and load tests; installs chromium, prometheus, ray[serve], playwright): about 5 minutes.
# MUSICGEN_SKIP_SERVER_INTEGRATION=1 skips it locally; CI runs it.
bash scripts/server-integration.sh

TSAN_BUILD_DIR=${TSAN_BUILD_DIR:-build-tsan}
LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$TSAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUSICGEN_SANITIZE=thread -DMUSICGEN_CUDA=OFF \
  -DMUSICGEN_BUILD_TOOLS=OFF -DMUSICGEN_BUILD_EXAMPLES=OFF "${LAUNCHER[@]}" >/dev/null
cmake --build "$TSAN_BUILD_DIR" -j "${JOBS:-$(nproc)}" --target sessions_threads_test step_lanes_threads_test
# OpenBLAS and FFTW are not instrumented: tests/threads/tsan.supp says what it hides and why.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/threads/tsan.supp ${TSAN_OPTIONS:-}" \
  ctest --test-dir "$TSAN_BUILD_DIR" --output-on-failure -L threads --timeout 600

# The default suite again under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan, or
# $ASAN_BUILD_DIR): scripts/sanitize.sh says what it builds, what it leaves out and why.
bash scripts/sanitize.sh

# Fuzz smoke: every input parser's libFuzzer target for 10 s (build-fuzz; docs/FUZZING.md). About
# 2.5 minutes with a warm ccache: ~25 s of clang build, 110 s of fuzzing.
bash scripts/fuzz.sh 10
