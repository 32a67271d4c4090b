#!/usr/bin/env bash
# Fuzzes every input parser (tests/fuzz, docs/FUZZING.md) for SECONDS each (default 60): installs
# clang-14 and libFuzzer when missing, builds the targets in build-fuzz (or $FUZZ_BUILD_DIR) with
# ASan+UBSan, and runs each from its committed seed corpus with its dictionary. Any crash, leak,
# timeout or OOM fails the script; the input that caused it is kept in build-fuzz/crashes/<target>/
# (commit it under tests/fuzz/regressions/<target>/ with the fix: fuzz_regressions_test replays it).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}

if ! command -v clang++-14 >/dev/null 2>&1 ||
   [ ! -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] &&
   ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends clang-14 libfuzzer-14-dev
fi
bash scripts/install-deps.sh >/dev/null

LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUSICGEN_FUZZ=ON \
  -DMUSICGEN_CUDA=OFF -DMUSICGEN_PNG=OFF -DMUSICGEN_BUILD_TESTS=OFF -DMUSICGEN_BUILD_TOOLS=OFF \
  -DMUSICGEN_BUILD_EXAMPLES=OFF "${LAUNCHER[@]}" >/dev/null
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}"

# Largest input worth trying per format: real files are larger, but the parsers' branches are all
# reached within the header-sized prefix, and a short input keeps executions fast.
declare -A MAX_LEN=([safetensors]=4096 [safetensors_index]=2048 [config_musicgen]=8192 [config_encodec]=4096
                    [config_t5]=2048 [ecdc]=4096 [audio]=8192 [midi]=4096 [chords]=1024 [notes]=1024
                    [composer]=1024)
TARGETS=(safetensors safetensors_index config_musicgen config_encodec config_t5 ecdc audio midi chords notes
         composer)
failed=()
for t in "${TARGETS[@]}"; do
  crashes="$BUILD/crashes/$t"
  work="$BUILD/corpus/$t"  # new inputs found go here; the committed seeds stay untouched
  mkdir -p "$crashes" "$work"
  echo "== fuzz_$t: ${SECONDS_PER_TARGET}s"
  # detect_leaks: a leak is a finding; the artifact prefix keeps crash, leak, timeout and oom inputs.
  if ! ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
       UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
       "$BUILD/tests/fuzz/fuzz_$t" "$work" "tests/fuzz/corpus/$t" -dict="tests/fuzz/dicts/$t.dict" \
         -max_len="${MAX_LEN[$t]}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
         -max_total_time="$SECONDS_PER_TARGET" -artifact_prefix="$crashes/" -print_final_stats=1 \
         > "$BUILD/crashes/$t.log" 2>&1; then
    failed+=("$t")
    tail -n 40 "$BUILD/crashes/$t.log"
  fi
  grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units" "$BUILD/crashes/$t.log" | tail -n 2 || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs under $BUILD/crashes/)" >&2
  echo "fuzz: $(( ${#TARGETS[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
  exit 1
fi
echo "fuzzing: all ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET}s without a finding"
echo "fuzz: ${#TARGETS[@]} passed, 0 failed"
