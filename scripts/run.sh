#!/usr/bin/env bash
# README command 1: installs what is missing, builds, fetches musicgen-small (once) and runs
#   musicgen-cli --prompt "electro" -o out.wav
# Extra arguments go to musicgen-cli (e.g. scripts/run.sh --duration 5 --seed 1).
# Offline, when no model can be downloaded, it falls back to the tiny random-weight test model so
# the whole pipeline still runs (the result is then noise, and it says so).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}

MODEL=${MUSICGEN_MODEL:-weights/musicgen-small}
if [ ! -f "$MODEL/config.json" ]; then
  if ! bash weights/download.sh musicgen-small; then
    MODEL=tests/data/models/musicgen_tiny
    echo "run.sh: could not download musicgen-small; using the tiny random-weight test model $MODEL" >&2
    echo "run.sh: (its output is noise: it proves the pipeline, not the music)" >&2
  fi
fi
"$BUILD_DIR"/tools/musicgen-cli/musicgen-cli --model "$MODEL" --prompt "electro" -o out.wav "$@"
