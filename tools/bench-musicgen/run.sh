#!/usr/bin/env bash
# The MusicGen speed benchmark in one go: read bandwidth (bench-memory), ours with f32, bf16 and f16
# decoder weights (bench-musicgen), then transformers on the same snapshot (bench_reference.py), all
# with the same thread count, one after the other; a table, and the ratio printed last.
#
#   tools/bench-musicgen/run.sh                     # 503 steps (10 s of audio), all cores
#   STEPS=100 THREADS=2 tools/bench-musicgen/run.sh # fewer steps on a slow or busy machine
#
# Environment: MODEL (default tools/reference/local/musicgen-small, made by
# tools/reference/make_fullsize_musicgen.py), BUILD (build folder with bench-memory and bench-musicgen,
# default build-bench), PY (default tools/reference/.venv/bin/python), THREADS (default nproc),
# STEPS (default 503), WEIGHTS (default "f32 bf16 f16"), SAMPLING ("" = top-k 250, "--greedy").
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-tools/reference/local/musicgen-small}
BUILD=${BUILD:-build-bench}
PY=${PY:-tools/reference/.venv/bin/python}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-503}
WEIGHTS=${WEIGHTS:-f32 bf16 f16}
SAMPLING=${SAMPLING:-}
LOG=${LOG:-$BUILD/bench-musicgen.log}

for f in "$BUILD/tools/bench-memory/bench-memory" "$BUILD/tools/bench-musicgen/bench-musicgen"; do
  [[ -x $f ]] || { echo "run.sh: $f is missing: cmake --build $BUILD --target bench-memory bench-musicgen" >&2; exit 1; }
done
[[ -f $MODEL/model.safetensors ]] || { echo "run.sh: no model in $MODEL: run tools/reference/make_fullsize_musicgen.py" >&2; exit 1; }

: > "$LOG"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); threads $THREADS; steps $STEPS; sampling ${SAMPLING:-top-k 250}" | tee -a "$LOG"

"$BUILD/tools/bench-memory/bench-memory" --threads "$THREADS" --mb 1024 --reps 10 | tee -a "$LOG"
GBPS=$(awk '/^read_gbps/ {print $2}' "$LOG")

for w in $WEIGHTS; do
  echo "== ours, $w weights" | tee -a "$LOG"
  "$BUILD/tools/bench-musicgen/bench-musicgen" --model "$MODEL" --threads "$THREADS" --steps "$STEPS" \
    --weights "$w" --read-gbps "$GBPS" $SAMPLING 2>&1 | tee -a "$LOG"
done
echo "== transformers" | tee -a "$LOG"
"$PY" -u tools/bench-musicgen/bench_reference.py --model "$MODEL" --threads "$THREADS" --steps "$STEPS" \
  $SAMPLING 2>&1 | grep -v "must be .None. or an integer" | tee -a "$LOG"

# Summary: one row per RESULT line, the roofline per weight dtype, the ratio last.
PER_STEP=$(sed -n 's/.* \([0-9]*\) weights read per step.*/\1/p' "$LOG" | head -1)
echo
echo "weights read per decode step: $PER_STEP; read bandwidth $GBPS GB/s"
awk -v gbps="$GBPS" -v n="$PER_STEP" '
  /^RESULT/ {
    for (i = 2; i <= NF; ++i) { split($i, kv, "="); r[kv[1]] = kv[2] }
    bytes = (r["weights"] == "f32" ? 4 : 2) * n
    limit = gbps * 1e9 / bytes
    printf "%-13s %-5s %7.2f steps/s (%7.1f ms/step, %3.0f%% of the %5.2f steps/s roofline)  total %7.1f s  peak RSS %6.0f MB\n",
           r["impl"], r["weights"], r["steps_per_s"], r["step_ms"], 100 * r["steps_per_s"] / limit, limit,
           r["total_s"], r["peak_rss_mb"]
    if (r["impl"] == "transformers") { ref_sps = r["steps_per_s"]; ref_total = r["total_s"] }
    if (r["impl"] == "ours" && r["weights"] == "f32") { our_sps = r["steps_per_s"]; our_total = r["total_s"] }
  }
  END {
    if (ref_sps > 0 && our_sps > 0)
      printf "ratio ours f32 / transformers f32: %.2fx steps/s, %.2fx less total time\n", our_sps / ref_sps, ref_total / our_total
  }' "$LOG"
