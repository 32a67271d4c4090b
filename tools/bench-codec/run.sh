#!/usr/bin/env bash
# Runs bench-codec (ours) and bench_reference.py (transformers) on the same full-size random-weight
# models, audio, length and thread count, and prints the speed-up last.
#   tools/bench-codec/run.sh [BUILD_DIR=build] [THREADS=2] [SECONDS=30]
# Models: tools/reference/local/encodec_{32,24}khz_random (tools/reference/make_fullsize_models.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
THREADS=${2:-2}
SECONDS_=${3:-30}
AUDIO=${BENCH_AUDIO:-../shared/data/audio/electro_1.mp3}
PY=tools/reference/.venv/bin/python
BIN=$BUILD/tools/bench-codec/bench-codec
[ -x "$BIN" ] || { echo "build it first: cmake --build $BUILD --target bench-codec" >&2; exit 1; }
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
results=()
for m in encodec_32khz_random encodec_24khz_random; do
  dir=tools/reference/local/$m
  [ -d "$dir" ] || { echo "missing $dir: run $PY tools/reference/make_fullsize_models.py" >&2; exit 1; }
  echo "== $m: $SECONDS_ s of $(basename "$AUDIO"), $THREADS threads" >&2
  ours=$("$BIN" "$dir" "$AUDIO" "$SECONDS_" "$THREADS" | grep '^RESULT')
  ref=$("$PY" tools/bench-codec/bench_reference.py "$dir" "$AUDIO" "$SECONDS_" "$THREADS" | grep '^RESULT')
  echo "$ours"; echo "$ref"
  results+=("$m $(echo "$ours" | awk '{print $5, $7}') $(echo "$ref" | awk '{print $5, $7}')")
done
echo
printf '%-22s %10s %10s %10s %10s %9s %9s\n' model ours_enc ref_enc ours_dec ref_dec enc_x dec_x
for r in "${results[@]}"; do
  read -r m oe od re rd <<<"$r"
  awk -v m="$m" -v oe="$oe" -v od="$od" -v re="$re" -v rd="$rd" \
    'BEGIN { printf "%-22s %9.2fs %9.2fs %9.2fs %9.2fs %8.2fx %8.2fx\n", m, oe, re, od, rd, re/oe, rd/od }'
done
