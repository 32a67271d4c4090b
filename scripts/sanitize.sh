#!/usr/bin/env bash
# The default test suite again under AddressSanitizer + UndefinedBehaviorSanitizer (a stage of
# scripts/test.sh; run it alone after scripts/install-deps.sh). Builds into build-asan (or
# $ASAN_BUILD_DIR) what the tests need and nothing else: no CUDA (a sanitizer cannot see into the
# GPU, and nvcc is the slowest compiler here), no examples, no benchmarks, -O1 with line tables only.
# The default compiler (gcc on CI): clang-14 lacks the "f16c" feature name that the CPU kernels'
# __builtin_cpu_supports asks for.
# Tests labelled slow, gpu (they skip without a device) and threads (ThreadSanitizer runs those)
# are left out. Leaks inside third-party libraries are suppressed by tests/sanitizers/lsan.supp,
# which says what each hides and why; any other report fails the stage.
# Cost: a cold run compiles the library, three tools and the test files again with ASan (the
# longest stage of a cold CI run); with a warm ccache only the links and the test run remain.
# Measured on a shared 2-core machine: warm ccache 259 s (about 120 s of links, 139 s for 477
# tests; load ~5); cold 70 min, but with other builds holding the load at 9 to 23, so the cold time
# of a dedicated 2-core runner is still to be measured.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ASAN_BUILD_DIR:-build-asan}
JOBS=${JOBS:-$(nproc)}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}

LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DMUSICGEN_SANITIZE=address,undefined \
  -DMUSICGEN_CUDA=OFF -DMUSICGEN_BUILD_EXAMPLES=OFF "${LAUNCHER[@]}" \
  ${MUSICGEN_TEST_AUDIO_DIR:+-DMUSICGEN_TEST_AUDIO_DIR="$MUSICGEN_TEST_AUDIO_DIR"} >/dev/null

# The targets the chosen tests run: every test binary of the unit, parity and cli folders, the C
# program, the shared library (install and exports tests), the three tools the CLI tests start,
# and musicgen-server (install_test installs every tool, so each must exist).
TARGETS=(musicgen c_api_test musicgen-cli encodec-tool make-random-model musicgen-server)
for f in tests/unit/*_test.cpp tests/parity/*_test.cpp tests/cli/*_test.cpp; do
  TARGETS+=("$(basename "$f" .cpp)")
done
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"

# halt_on_error: the first report fails the test that caused it. detect_leaks: LeakSanitizer runs
# at every exit. UBSan reports are made fatal too (they are only printed by default).
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:strict_string_checks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" -L 'unit|parity|cli' -LE 'slow|gpu|threads' \
  --timeout 600
