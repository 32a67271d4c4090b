#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the main job of the moment:
# converting a real recording to 32 kHz mono WAV (MusicGen's rate) with our reader, resampler and
# writer. Usage: scripts/run.sh [INPUT] [OUTPUT]
set -euo pipefail
cd "$(dirname "$0")/.."
IN=${1:-../shared/data/audio/bach.mp3}
OUT=${2:-out.wav}
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
"$BUILD_DIR"/tools/encodec-tool/encodec-tool convert "$IN" "$OUT" --rate 32000 --channels 1
echo "wrote $OUT"
