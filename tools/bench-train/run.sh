#!/usr/bin/env bash
# LoRA training speed, libmusicgen vs PyTorch + PEFT, back to back on the same machine, shapes and
# thread count. Usage: tools/bench-train/run.sh BUILD_DIR [MODEL_DIR...] (default: the tiny model
# and tools/reference/local/musicgen-small). THREADS=n, STEPS=n, BATCHES="1 4" override.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: run.sh BUILD_DIR [MODEL_DIR...]}
shift
models=("$@")
[ ${#models[@]} -eq 0 ] && models=("$root/tests/data/models/musicgen_tiny" "$root/tools/reference/local/musicgen-small")
threads=${THREADS:-$(nproc)}
steps=${STEPS:-3}
py="$root/tools/reference/.venv/bin/python"
echo "load: $(cat /proc/loadavg)"
for m in "${models[@]}"; do
  for b in ${BATCHES:-1 4}; do
    "$build/tools/bench-train/bench-train" --model "$m" --batch "$b" --segment 10 --steps "$steps" --threads "$threads"
    "$py" "$root/tools/bench-train/bench_reference.py" --model "$m" --batch "$b" --segment 10 --steps "$steps" \
      --threads "$threads" 2>/dev/null | tail -1
  done
done
echo "load: $(cat /proc/loadavg)"
