#!/usr/bin/env bash
# Runs bench-codec (ours) and bench_reference.py (transformers) on the same full-size random-weight
# models, audio, length and thread count, back to back, and prints the speed-ups last.
#   tools/bench-codec/run.sh [BUILD_DIR=build] [THREADS=2] [SECONDS=30]
# THREADS may be a list ("1 2"): every model is then measured at each count, ours and the reference
# one after the other. MODELS (environment) picks the models, default both:
#   MODELS=encodec_32khz_random tools/bench-codec/run.sh build-codec "1 2" 30
# Models: tools/reference/local/encodec_{32,24}khz_random (tools/reference/make_fullsize_models.py,
# or build/tools/make-random-model/make-random-model for the 32 kHz one).
# cpu/wall is our process's CPU time over the wall time of encode / decode: ~THREADS when every
# thread computes all along; on a shared machine the OS may give the process less (load average).
# Linux's autogroup scheduling gives every login session an equal share of the CPUs whatever its
# thread count, so on a busy machine a second thread gains nothing: docs/PERFORMANCE.md ("EnCodec
# on two cores") says how those figures were taken.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
THREADS_LIST=${2:-2}
SECONDS_=${3:-30}
MODELS=${MODELS:-encodec_32khz_random encodec_24khz_random}
AUDIO=${BENCH_AUDIO:-../shared/data/audio/electro_1.mp3}
PY=tools/reference/.venv/bin/python
BIN=$BUILD/tools/bench-codec/bench-codec
[ -x "$BIN" ] || { echo "build it first: cmake --build $BUILD --target bench-codec" >&2; exit 1; }
for m in $MODELS; do
  [ -d "tools/reference/local/$m" ] || { echo "missing tools/reference/local/$m: run $PY tools/reference/make_fullsize_models.py" >&2; exit 1; }
done
# The value after key $1 in a RESULT line ("-" where an older bench-codec does not print it).
field() { awk -v k="$1" '{ v = "-"; for (i = 1; i < NF; i++) if ($i == k) v = $(i + 1); print v }'; }
results=()
echo "load average before: $(cat /proc/loadavg)" >&2
for m in $MODELS; do
  dir=tools/reference/local/$m
  for THREADS in $THREADS_LIST; do
    export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
    echo "== $m: $SECONDS_ s of $(basename "$AUDIO"), $THREADS threads (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    ours=$("$BIN" "$dir" "$AUDIO" "$SECONDS_" "$THREADS" | grep '^RESULT')
    ref=$("$PY" tools/bench-codec/bench_reference.py "$dir" "$AUDIO" "$SECONDS_" "$THREADS" | grep '^RESULT')
    echo "$ours"; echo "$ref"
    oe=$(field encode <<<"$ours") od=$(field decode <<<"$ours")
    oec=$(field encode_cpu_per_wall <<<"$ours") odc=$(field decode_cpu_per_wall <<<"$ours")
    results+=("$m $THREADS $oe $od $oec $odc $(field encode <<<"$ref") $(field decode <<<"$ref")")
  done
done
echo "load average after: $(cat /proc/loadavg)" >&2
echo
printf '%-22s %3s %9s %9s %9s %9s %8s %8s %8s %8s\n' model thr ours_enc ref_enc ours_dec ref_dec enc_x dec_x \
  enc_cpu/w dec_cpu/w
for r in "${results[@]}"; do
  read -r m t oe od oec odc re rd <<<"$r"
  awk -v m="$m" -v t="$t" -v oe="$oe" -v od="$od" -v oec="$oec" -v odc="$odc" -v re="$re" -v rd="$rd" \
    'BEGIN { printf "%-22s %3s %8.2fs %8.2fs %8.2fs %8.2fs %7.2fx %7.2fx %8s %8s\n", m, t, oe, re, od, rd, re/oe, rd/od, oec, odc }'
done
