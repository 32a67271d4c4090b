#!/usr/bin/env bash
# Build, test and benchmark libmusicgen on a GPU machine, in one go, with a summary table at the
# end (a failing stage never stops the ones after it). Two ways to use it:
#
#   1. Build on the GPU machine (it has the Debian -dev packages of scripts/install-deps.sh):
#        tools/gpu-check.sh
#      configures build-gpu/ with -DMUSICGEN_CUDA=ON (CMAKE_CUDA_ARCHITECTURES from
#      GPU_CHECK_ARCH, default 90), builds with all cores, runs `ctest -L gpu` (cuda_op_cases_test:
#      every row of the op case table CPU vs CUDA; cuda_models_test: the tiny MusicGen / EnCodec models end to end CPU vs CUDA),
#      the benchmarks below, then every test (but `slow`).
#
#   2. A prebuilt bundle, for a GPU box with a driver and the CUDA runtime but no compiler or
#      -dev packages (a container image made for PyTorch, say):
#        on a build machine:  tools/gpu-check.sh --prepare [--max-mb N]   # builds build-gpu-bundle/
#               (or: tools/gpu-check.sh --bundle-from DIR [--max-mb N], to bundle an existing CUDA
#               build whose CMAKE_CUDA_ARCHITECTURES includes the GPU's)
#        copy the checkout with build-gpu-bundle/ to the GPU box, then there: tools/gpu-check.sh
#      The bundle (one .tar.gz) holds the stripped test binaries, the benchmark tools and the
#      non-system shared libraries they need (CUDA's own libraries are taken from the GPU box).
#      --max-mb N fails the preparation when the checkout's tracked files plus the bundle exceed
#      N MiB (for a transfer with a size limit); GPU_CHECK_CPU_TESTS=1 adds the CPU tests (large).
#      Tests are run binary by binary, the GPU binary suite by suite; their compiled-in source
#      path is made to point at this checkout when it does not exist there.
#
# Benchmarks, right after the GPU tests, self-contained (nothing is downloaded):
#   1. make-random-model makes full-size random-weight snapshots from the committed manifests
#      (tools/make-random-model/manifests/: musicgen-small, 2.4 GB; encodec_32khz) under $BENCH_DIR.
#   2. bench-memory --device cuda: device copy bandwidth (read + written), the roofline's divisor;
#      bench-device-ops: every decode-step and codec op at full size, checked against the CPU.
#   3. bench-musicgen --device cuda --steps 503 (CFG on, batch 1): f32 and bf16 weights, greedy and
#      top-k; steady steps/s next to the roofline (weight bytes per step / copy bandwidth).
#   4. bench-codec --device cuda: EnCodec 32 kHz encode + decode of 30 s of synthesised audio, decode
#      x real time.
#   5. musicgen-cli --device cuda --greedy -d 1 and -d 10 on the same model (MG_BENCH_MODEL names
#      another MusicGen snapshot folder): the difference of the two wall times over the difference
#      of their decoder steps gives steps/s end to end, without the fixed costs.
# The targets (docs/PERFORMANCE.md): >= 1000 decode steps/s, EnCodec decode >= 500x real time.
#
# Environment: OUT (where logs go; default build-gpu-logs/), GPU_CHECK_DEADLINE_S (default 450:
# stages that would start later are skipped and reported as such), GPU_CHECK_LIMIT_S (default 470:
# every command's timeout is cut to what is left before it, so that a stage started just before the
# deadline cannot run past it and the whole check ends within 8 minutes), GPU_CHECK_MODE (auto, build
# or bundle: auto builds when the dependencies are there, else runs a bundle), GPU_CHECK_ARCH
# (CUDA architectures to build for, default 90), MG_BENCH_MODEL (musicgen-cli's model folder),
# BENCH_DIR (default /tmp/mg-bench: the random snapshots, removed at the end).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
DEADLINE=${GPU_CHECK_DEADLINE_S:-450}
LIMIT=${GPU_CHECK_LIMIT_S:-470}
LOG_DIR=${OUT:-$ROOT/build-gpu-logs}
mkdir -p "$LOG_DIR"
BUNDLE=build-gpu-bundle
JOBS=$(nproc)
ARCH=${GPU_CHECK_ARCH:-90}
MODE=${GPU_CHECK_MODE:-auto}
ROWS=()  # "stage|passed|failed|skipped|seconds|note"

elapsed() { echo $(( $(date +%s) - START )); }
# budget N: N seconds, or what is left before LIMIT when that is less (at least 1: `timeout 0`
# would mean no limit at all).
budget() {
  local left=$(( LIMIT - $(elapsed) ))
  [ "$left" -lt 1 ] && left=1
  if [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); }

print_table() {
  echo
  echo "==================== gpu-check summary ($(elapsed) s) ===================="
  printf '%-26s %7s %7s %8s %8s  %s\n' stage passed failed skipped seconds note
  local r
  for r in "${ROWS[@]}"; do
    IFS='|' read -r s p f k t n <<<"$r"
    printf '%-26s %7s %7s %8s %8s  %s\n' "$s" "$p" "$f" "$k" "$t" "$n"
  done
  echo "logs: $LOG_DIR"
}

gpu_info() {
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2
  else
    echo "nvidia-smi: not found"
  fi
  command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -1
  command -v nvcc >/dev/null 2>&1 || { [ -x /usr/local/cuda/bin/nvcc ] && /usr/local/cuda/bin/nvcc --version | tail -1; }
  return 0
}

# ---- on a build machine: make the bundle ------------------------------------------------------
if [ "${1:-}" = "--prepare" ] || [ "${1:-}" = "--bundle-from" ]; then
  set -e
  ACTION=$1; shift
  BUILD=build-gpu-prep
  if [ "$ACTION" = "--bundle-from" ]; then BUILD=${1:?usage: tools/gpu-check.sh --bundle-from BUILD_DIR [--max-mb N]}; shift; fi
  MAX_MB=""
  if [ "${1:-}" = "--max-mb" ]; then MAX_MB=${2:?--max-mb needs a size in MiB}; shift 2; fi
  [ $# -eq 0 ] || { echo "gpu-check: unexpected argument '$1' (usage: --prepare|--bundle-from DIR [--max-mb N])" >&2; exit 2; }
  if [ "$ACTION" = "--prepare" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMUSICGEN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" >/dev/null
    cmake --build "$BUILD" -j "$JOBS"
  else
    # The library's fat binary must hold code for the GPU (GPU_CHECK_ARCH, default 90).
    lib=$(find "$BUILD" -maxdepth 1 -name 'libmusicgen.a' | head -1)
    cuobj=$(command -v cuobjdump || true)
    if [ -n "$lib" ] && [ -n "$cuobj" ]; then
      elfs=$("$cuobj" --list-elf "$lib" 2>/dev/null || true)  # captured: `| grep -q` under pipefail can SIGPIPE
      grep -q "sm_${ARCH%%;*}" <<<"$elfs" ||
        { echo "$BUILD holds no sm_${ARCH%%;*} code (build with CMAKE_CUDA_ARCHITECTURES including ${ARCH%%;*})"; exit 1; }
    fi
  fi
  STAGE="$BUNDLE/stage"
  rm -rf "$BUNDLE" && mkdir -p "$STAGE/bin" "$STAGE/lib"
  # Every test binary carries the whole library with its CUDA code (~6 MB each), so the GPU tests
  # go as ONE binary (gpu_all_tests), and the CPU tests (which the CPU build runs anyway) only when
  # GPU_CHECK_CPU_TESTS=1 asks for them: the bundle stays small enough to copy around.
  cmake --build "$BUILD" -j "$JOBS" --target gpu_all_tests >/dev/null
  mkdir -p "$STAGE/bin/gpu"
  strip -o "$STAGE/bin/gpu/gpu_all_tests" "$BUILD/tests/gpu_all_tests"
  labels=""
  [ "${GPU_CHECK_CPU_TESTS:-0}" = 1 ] && labels="unit parity cli"
  for label in $labels; do
    for src in tests/$label/*_test.cpp; do
      [ -e "$src" ] || continue
      name=$(basename "$src" .cpp)
      [ -x "$BUILD/tests/$name" ] || continue
      mkdir -p "$STAGE/bin/$label"
      strip -o "$STAGE/bin/$label/$name" "$BUILD/tests/$name"
    done
  done
  # The tools of the benchmark stage (bench-codec and musicgen-cli bring libmusicgen.so, below).
  mkdir -p "$STAGE/bin/tools"
  for tool in musicgen-cli make-random-model bench-memory bench-musicgen bench-codec bench-device-ops; do
    if [ -x "$BUILD/tools/$tool/$tool" ]; then
      strip -o "$STAGE/bin/tools/$tool" "$BUILD/tools/$tool/$tool"
    else
      echo "warning: $BUILD/tools/$tool/$tool is not built: the benchmark stage will skip what needs it" >&2
    fi
  done
  # Shared libraries the binaries need, except the C library family (the GPU machine's is newer)
  # and CUDA's (large; the GPU machine has its own toolkit and driver).
  find "$STAGE/bin" -type f -exec ldd {} \; 2>/dev/null | awk '/=> \//{print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libgcc_s|libstdc\+\+|libcuda|libcudart|libcublas|libcublasLt|libcufft|libnvrtc|libnvJitLink)\.so' |
    while read -r lib; do cp -L "$lib" "$STAGE/lib/"; done
  # OpenBLAS is not linked but loaded with dlopen("libopenblas.so.0") (kernels/cpu/blas.h), so ldd
  # does not list it: bundle it under that name (found through LD_LIBRARY_PATH there), with its deps.
  oblas=$(ldconfig -p | awk '/libopenblas\.so\.0 /{print $NF; exit}')
  if [ -n "$oblas" ]; then
    cp -L "$oblas" "$STAGE/lib/libopenblas.so.0"
    ldd "$oblas" | awk '/=> \//{print $3}' |
      grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so' |
      while read -r lib; do cp -L "$lib" "$STAGE/lib/"; done
  else
    echo "warning: libopenblas.so.0 not found here: the bundle's CPU tests will need it there" >&2
  fi
  echo "$ROOT" >"$STAGE/source_dir"
  tar -C "$STAGE" -cf - . | gzip -9 >"$BUNDLE/bundle.tar.gz"
  rm -rf "$STAGE"
  du -sh "$BUNDLE/bundle.tar.gz"
  tree_bytes=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  total=$(( tree_bytes + $(stat -c %s "$BUNDLE/bundle.tar.gz") ))
  echo "tracked files $(( tree_bytes / 1048576 )) MiB + bundle = $(( total / 1048576 )) MiB to copy to the GPU box"
  if [ -n "$MAX_MB" ] && [ "$total" -gt $(( MAX_MB * 1048576 )) ]; then
    echo "over --max-mb $MAX_MB: leave out GPU_CHECK_CPU_TESTS or tools" >&2; exit 1
  fi
  echo "bundle ready: copy the checkout with $BUNDLE/ to the GPU box and run tools/gpu-check.sh there"
  exit 0
fi

echo "gpu-check on $(hostname), $JOBS cores"
gpu_info

deps_present() {
  command -v cmake >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 || return 1
  pkg-config --exists sndfile openblas sentencepiece fftw3f libebur128 libpng 2>/dev/null || return 1
  [ -e /usr/include/nlohmann/json.hpp ] && [ -e /usr/include/CLI/CLI.hpp ] && [ -e /usr/include/gtest/gtest.h ]
}

# Counts from ctest output: passed = "Passed" lines, failed = "***Failed"/"***Exception"/"***Timeout",
# skipped = "***Skipped" / "Not Run".
ctest_stage() {
  local stage=$1; shift
  local log="$LOG_DIR/ctest-${stage// /_}.log" t0=$(date +%s)
  if [ "$(elapsed)" -ge "$DEADLINE" ]; then row "$stage" - - - 0 "skipped: past the deadline"; return; fi
  timeout "$(budget 400)" ctest --test-dir build-gpu --output-on-failure --timeout 120 -j 4 "$@" >"$log" 2>&1
  local rc=$?
  local p f k
  p=$(grep -cE 'Test +#[0-9]+: .* Passed' "$log")
  f=$(grep -cE '\*\*\*(Failed|Exception|Timeout)' "$log")
  k=$(grep -cE '\*\*\*Skipped|Not Run' "$log")
  row "$stage" "$p" "$f" "$k" $(( $(date +%s) - t0 )) "ctest rc=$rc"
  grep -E '\*\*\*(Failed|Exception|Timeout)' "$log" | head -20
}

# Decoder steps of a generation of $1 seconds: 50 frames/s plus 3 delay columns (musicgen-small:
# 32 kHz EnCodec with hop 640, 4 codebooks; lm/delay_pattern.h).
bench_steps() { echo $(( $1 * 50 + 3 )); }

BENCH_DIR=${BENCH_DIR:-/tmp/mg-bench}
BENCH_MUSICGEN=$BENCH_DIR/musicgen-small
BENCH_ENCODEC=$BENCH_DIR/encodec_32khz
COPY_GBPS=""

# field NAME LINE: the value of NAME=value in a RESULT line of bench-musicgen.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -1; }

# bench_gpu TOOLS_DIR: steps 1-4 described at the top, one summary row each.
bench_gpu() {
  local tools=$1 t0 log rc
  local mrm=$tools/make-random-model bm=$tools/bench-memory bmg=$tools/bench-musicgen bc=$tools/bench-codec
  # 1. the random snapshots (16 cores there: seconds)
  if [ "$(elapsed)" -ge "$DEADLINE" ]; then row "bench make models" - - - 0 "skipped: past the deadline"; return; fi
  if [ ! -x "$mrm" ]; then row "bench make models" - - 1 0 "skipped: no make-random-model at $mrm"; return; fi
  t0=$(date +%s%N); log="$LOG_DIR/make-random-model.log"
  rm -rf "$BENCH_DIR"
  timeout "$(budget 120)" "$mrm" make tools/make-random-model/manifests/musicgen-small.json "$BENCH_MUSICGEN" >"$log" 2>&1 &&
    timeout "$(budget 60)" "$mrm" make tools/make-random-model/manifests/encodec_32khz.json "$BENCH_ENCODEC" >>"$log" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ]; then
    row "bench make models" 0 1 0 $(( ($(date +%s%N) - t0) / 1000000000 )) "make-random-model failed (rc $rc): see make-random-model.log"
    tail -5 "$log"; return
  fi
  row "bench make models" 1 0 0 $(( ($(date +%s%N) - t0) / 1000000000 )) \
    "$(awk -v ms=$(( ($(date +%s%N) - t0) / 1000000 )) '/GB of weights/ {gb += $4} END {printf "%.2f GB of random weights in %.1f s", gb, ms / 1000}' "$log")"

  # 2. device copy bandwidth; without a device the GPU rows are skipped (this is how the script
  #    runs on a machine without a GPU)
  if [ ! -x "$bm" ]; then row "bench copy bandwidth" - - 1 0 "skipped: no bench-memory at $bm"; return; fi
  t0=$(date +%s); log="$LOG_DIR/bench-memory.log"
  timeout "$(budget 60)" "$bm" --device cuda --mb 1024 --reps 20 >"$log" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ]; then
    if grep -q "no CUDA device" "$log"; then
      row "bench copy bandwidth" - - 1 $(( $(date +%s) - t0 )) "skipped: no CUDA device (the GPU benchmarks are skipped too)"
    else
      row "bench copy bandwidth" 0 1 0 $(( $(date +%s) - t0 )) "bench-memory --device cuda failed (rc $rc): see bench-memory.log"
      tail -5 "$log"
    fi
    return
  fi
  COPY_GBPS=$(awk '/^copy_gbps/ {print $2}' "$log")
  row "bench copy bandwidth" 1 0 0 $(( $(date +%s) - t0 )) "$COPY_GBPS GB/s device-to-device (1 GiB, read + written, median)"

  # 2b. every decode-step and codec op at full-size shapes: checked against the CPU, timed as one
  #     graph of 50 calls, GB/s against the copy bandwidth (bench-device-ops.log has the table)
  local bdo=$tools/bench-device-ops stage="bench device ops"
  if [ "$(elapsed)" -ge "$DEADLINE" ]; then row "$stage" - - - 0 "skipped: past the deadline"
  elif [ ! -x "$bdo" ]; then row "$stage" - - 1 0 "skipped: no bench-device-ops at $bdo"
  else
    t0=$(date +%s); log="$LOG_DIR/bench-device-ops.log"
    timeout "$(budget 150)" "$bdo" --device cuda --copy-gbps "$COPY_GBPS" --tflops 67 >"$log" 2>&1
    rc=$?
    grep -v '^OP ' "$log" | head -40
    local nops bad
    nops=$(grep -c '^OP ' "$log"); bad=$(awk '/^OP / {for (i = 1; i <= NF; i++) if ($i ~ /^rel_err=/) {split($i, a, "="); if (a[2] + 0 > 1e-3) n++}} END {print n + 0}' "$log")
    if [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]; then
      row "$stage" "$nops" 0 0 $(( $(date +%s) - t0 )) "all within 1e-3 of the CPU; GB/s and % of copy bandwidth in bench-device-ops.log"
    else
      row "$stage" $(( nops - bad )) $(( bad > 0 ? bad : 1 )) 0 $(( $(date +%s) - t0 )) "rc $rc, $bad ops off the CPU by > 1e-3: see bench-device-ops.log"
    fi
  fi

  # 3. decode steps: 503 = 10 s of audio, CFG pair (batch 1)
  local w mode flag line
  for w in f32 bf16; do
    for mode in greedy top-k eager; do
      # eager: bf16 greedy with the steps run op by op (no CUDA graph), to show what the graph buys.
      [ "$mode" = eager ] && [ "$w" != bf16 ] && continue
      local stage="bench musicgen $w $mode"
      if [ "$(elapsed)" -ge "$DEADLINE" ]; then row "$stage" - - - 0 "skipped: past the deadline"; continue; fi
      [ -x "$bmg" ] || { row "$stage" - - 1 0 "skipped: no bench-musicgen at $bmg"; continue; }
      flag=""; [ "$mode" = greedy ] && flag="--greedy"; [ "$mode" = eager ] && flag="--greedy --eager"
      t0=$(date +%s); log="$LOG_DIR/bench-musicgen-$w-$mode.log"
      # Audio (EnCodec decode + finiteness check) on the first run only: the others time steps.
      local audio="--no-audio"; [ "$w$mode" = f32greedy ] && audio=""
      timeout "$(budget 120)" "$bmg" --device cuda --model "$BENCH_MUSICGEN" --steps 503 --weights "$w" $flag $audio \
        --copy-gbps "$COPY_GBPS" >"$log" 2>&1
      rc=$?
      line=$(grep '^RESULT' "$log" | tail -1)
      if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        row "$stage" 0 1 0 $(( $(date +%s) - t0 )) "bench-musicgen failed (rc $rc): see $(basename "$log")"
        tail -5 "$log"; continue
      fi
      row "$stage" 1 0 0 $(( $(date +%s) - t0 )) "$(printf '%s steps/s (%s ms/step), %s%% of the %s steps/s roofline (%s GB/step); target >= 1000' \
        "$(field steps_per_s "$line")" "$(field step_ms "$line")" "$(field roofline_pct "$line")" \
        "$(field roofline_steps_per_s "$line")" "$(field weight_gb_per_step "$line")")"
    done
  done

  # 4. EnCodec 32 kHz: 30 s of synthesised audio encoded and decoded on the GPU, best of 3
  local stage="bench encodec decode 30s"
  if [ "$(elapsed)" -ge "$DEADLINE" ]; then row "$stage" - - - 0 "skipped: past the deadline"; return; fi
  [ -x "$bc" ] || { row "$stage" - - 1 0 "skipped: no bench-codec at $bc"; return; }
  t0=$(date +%s); log="$LOG_DIR/bench-codec.log"
  timeout "$(budget 120)" "$bc" "$BENCH_ENCODEC" synth 30 "$JOBS" 3 --device cuda >"$log" 2>&1
  rc=$?
  line=$(grep '^RESULT' "$log" | tail -1)
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    row "$stage" 0 1 0 $(( $(date +%s) - t0 )) "bench-codec failed (rc $rc): see bench-codec.log"
    tail -5 "$log"; return
  fi
  # RESULT ours <model> encode <s> decode <s> device cuda seconds 30 encode_x_realtime <x> decode_x_realtime <x>
  row "$stage" 1 0 0 $(( $(date +%s) - t0 )) "$(awk '{printf "decode %.1fx real time (%.3f s), encode %.1fx (%.3f s); target >= 500x; compute-bound: no weight roofline", $15, $7, $13, $5}' <<<"$line")"
}

# bench_decode CLI: step 5 described at the top.
bench_decode() {
  local cli=$1 model=${MG_BENCH_MODEL:-$BENCH_MUSICGEN} stage="bench decode cuda (cli)"
  if [ ! -f "$model/config.json" ]; then
    row "$stage" - - - 0 "skipped: no $model (made by the benchmark stage, or MG_BENCH_MODEL)"; return
  fi
  if [ -z "${MG_BENCH_MODEL:-}" ] && [ -z "$COPY_GBPS" ]; then
    row "$stage" - - 1 0 "skipped: no device copy bandwidth (no CUDA device, or bench-memory failed)"; return
  fi
  if [ ! -x "$cli" ]; then row "$stage" - - 1 0 "skipped: no musicgen-cli at $cli"; return; fi
  if [ "$(elapsed)" -ge "$DEADLINE" ]; then row "$stage" - - - 0 "skipped: past the deadline"; return; fi
  local t0=$(date +%s) d ms1=0 ms10=0 start end rc
  for d in 1 10; do
    start=$(date +%s%N)
    timeout "$(budget 150)" "$cli" --model "$model" --device cuda --greedy -d "$d" -q -p "upbeat synth pop with drums" \
      -o "$LOG_DIR/bench-$d.wav" >"$LOG_DIR/bench-$d.log" 2>&1
    rc=$?
    end=$(date +%s%N)
    if [ "$rc" -ne 0 ]; then
      row "$stage" 0 1 0 $(( $(date +%s) - t0 )) "musicgen-cli -d $d failed (rc $rc): see bench-$d.log"
      tail -5 "$LOG_DIR/bench-$d.log"; return
    fi
    if [ "$d" = 1 ]; then ms1=$(( (end - start) / 1000000 )); else ms10=$(( (end - start) / 1000000 )); fi
  done
  local note
  note=$(awk -v a="$ms1" -v b="$ms10" -v s1="$(bench_steps 1)" -v s10="$(bench_steps 10)" 'BEGIN {
    rate = (b > a) ? (s10 - s1) * 1000.0 / (b - a) : 0;
    printf "%.1f steps/s, CFG pair (-d 10: %.1f s total, -d 1: %.1f s)", rate, b / 1000.0, a / 1000.0 }')
  row "$stage" 1 0 0 $(( $(date +%s) - t0 )) "$note"
}

if [ "$MODE" = build ] || { [ "$MODE" = auto ] && deps_present; }; then
  # ---- mode 1: build on the GPU machine ----
  t0=$(date +%s)
  if cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMUSICGEN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
       >"$LOG_DIR/configure.log" 2>&1 &&
     timeout "$(budget 400)" cmake --build build-gpu -j "$JOBS" >"$LOG_DIR/build.log" 2>&1; then
    row build 1 0 0 $(( $(date +%s) - t0 )) "cmake build, $JOBS jobs"
    ctest_stage "ctest -L gpu" -L gpu
    # bench_gpu takes one folder of tools: link the build's tools/<name>/<name> into one.
    mkdir -p build-gpu/bench-tools
    for tool in make-random-model bench-memory bench-musicgen bench-codec bench-device-ops; do
      ln -sfn "$ROOT/build-gpu/tools/$tool/$tool" "build-gpu/bench-tools/$tool"
    done
    bench_gpu build-gpu/bench-tools
    bench_decode build-gpu/tools/musicgen-cli/musicgen-cli
    ctest_stage "ctest all (-LE slow)" -LE slow
  else
    row build 0 1 0 $(( $(date +%s) - t0 )) "see configure.log / build.log"
    tail -30 "$LOG_DIR/build.log" 2>/dev/null || tail -30 "$LOG_DIR/configure.log"
  fi
elif [ "$MODE" != build ] && [ -f "$BUNDLE/bundle.tar.gz" ]; then
  # ---- mode 2: run the prebuilt bundle ----
  UNPACKED=/tmp/mg-gpu-bundle
  rm -rf "$UNPACKED" && mkdir -p "$UNPACKED" && tar -C "$UNPACKED" -xzf "$BUNDLE/bundle.tar.gz"
  libdirs="$UNPACKED/lib"
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && libdirs="$libdirs:$d"; done
  # CUDA libraries that only a pip wheel (PyTorch's nvidia-* packages) may provide there.
  for lib in libcublas.so.13 libcufft.so.12 libcufft.so.13 libcudart.so.13; do
    found=$(find /usr/local /usr/lib /opt -name "$lib" 2>/dev/null | head -1)
    [ -n "$found" ] && libdirs="$libdirs:$(dirname "$found")"
  done
  export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  src=$(cat "$UNPACKED/source_dir")
  if [ "$src" != "$ROOT" ] && [ ! -e "$src" ]; then
    # Tests find tests/data through the path compiled in at build time.
    mkdir -p "$(dirname "$src")" && ln -s "$ROOT" "$src" || echo "warning: cannot link $src -> $ROOT"
  fi
  for label in gpu unit parity cli; do
    [ -d "$UNPACKED/bin/$label" ] || continue
    for bin in "$UNPACKED"/bin/$label/*; do
      # The GPU tests are one binary: run it suite by suite, so that a crash in one suite (code
      # that has never run on a GPU before) does not hide the results of the others.
      suites="-"
      [ "$label" = gpu ] && suites=$("$bin" --gtest_list_tests 2>/dev/null | grep -E '^[A-Za-z0-9_/]+\.$' | tr -d '.')
      for suite in $suites; do
        name="$label/$(basename "$bin")"
        filter=()
        if [ "$suite" != - ]; then name="$label/$suite"; filter=(--gtest_filter="$suite.*"); fi
        if [ "$(elapsed)" -ge "$DEADLINE" ]; then row "$name" - - - 0 "skipped: past the deadline"; continue; fi
        log="$LOG_DIR/$(basename "$name").log"
        t0=$(date +%s)
        timeout "$(budget 240)" "$bin" --gtest_brief=0 "${filter[@]}" >"$log" 2>&1
        rc=$?
        p=$(grep -cE '^\[       OK \]' "$log")
        f=$(grep -cE '^\[  FAILED  \] [^ ]+ \([0-9]+ ms\)' "$log")
        k=$(grep -cE '^\[  SKIPPED \] [^ ]+ \([0-9]+ ms\)' "$log")
        row "$name" "$p" "$f" "$k" $(( $(date +%s) - t0 )) "rc=$rc"
        if [ "$rc" -ne 0 ]; then grep -E '^\[  FAILED  \]|Failure|rel_err|error' "$log" | head -15; tail -3 "$log"; fi
      done
    done
    # Right after the GPU tests: the benchmark must not be squeezed out by the deadline.
    if [ "$label" = gpu ]; then
      bench_gpu "$UNPACKED/bin/tools"
      bench_decode "$UNPACKED/bin/tools/musicgen-cli"
    fi
  done
else
  echo "gpu-check: this machine lacks the build dependencies (scripts/install-deps.sh) and has no"
  echo "$BUNDLE/. Install them (scripts/install-deps.sh), or prepare a bundle on a machine that has"
  echo "them (tools/gpu-check.sh --prepare) and copy it here with the checkout."
  row setup 0 1 0 0 "no dependencies and no bundle"
fi

rm -rf "$BENCH_DIR"  # 2.6 GB of random weights
print_table
for r in "${ROWS[@]}"; do
  IFS='|' read -r _ _ f _ _ _ <<<"$r"
  [ "$f" != "0" ] && [ "$f" != "-" ] && exit 1
done
exit 0
