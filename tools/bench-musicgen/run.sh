#!/usr/bin/env bash
# The MusicGen speed benchmark in one go: read bandwidth (bench-memory); ours with each weights
# format (bench-musicgen), written as a file and streamed (--stream); then transformers f32 on the
# same snapshot at 1 and 2 threads (bench_reference.py, the best of the two is the reference), one
# after the other; a table per format, ratios against transformers last.
#
#   tools/bench-musicgen/run.sh                              # musicgen-small, 503 steps (10 s), all cores
#   STEPS=100 THREADS=2 tools/bench-musicgen/run.sh          # fewer steps on a slow or busy machine
#   WEIGHTS="bf16 q8 q4" tools/bench-musicgen/run.sh         # quantized decoders (q8_0, q4_0)
#   MODEL=medium WEIGHTS="bf16 q4" REF=0 tools/bench-musicgen/run.sh
#   MODEL=medium WEIGHTS="bf16 q8 q4" QUANTIZED=snapshot STREAM="" REF=0 tools/bench-musicgen/run.sh
#
# Environment: MODEL (small, medium or a snapshot folder; small = tools/reference/local/musicgen-small
# from tools/reference/make_fullsize_musicgen.py, medium = tools/reference/local/musicgen-medium-random
# from make-random-model with manifests/musicgen-medium.json), BUILD (build folder with bench-memory
# and bench-musicgen, default build-bench), PY (default tools/reference/.venv/bin/python), THREADS
# (default nproc), STEPS (default 503), WEIGHTS (default "f32 bf16 f16"; also q8, q4), STREAM
# (formats also run with --stream, default "bf16"; "" for none), REF (1: run transformers, default;
# 0: skip it, e.g. for medium, whose f32 reference needs ~8 GB), REF_THREADS (default "1 2"),
# SAMPLING ("" = top-k 250, "--greedy"), QUANTIZED (where q8/q4 weights come from: "load" =
# converted from MODEL at load, default; "snapshot" = the quantized snapshots MODEL-q8 and MODEL-q4,
# made once with `musicgen-cli quantize --weights q4 MODEL MODEL-q4`, loaded memory-mapped),
# PROBE_EVERY (default 50: bench-musicgen --probe-every, a read probe in the same process before and
# after every 50 decode steps; 0: off).
#
# Two rooflines per row: "roofline" divides by the bandwidth bench-memory measured before all the
# runs (the median of its passes); "paired" is the median over 50-step windows of each window's
# steps/s against the probes run right before and after it (the higher of the two, so it can only
# come out high). On a VM whose bandwidth swings 2x within minutes, the paired one is the one to
# quote; the gap between the two shows how much the bandwidth moved.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-small}
case $MODEL in
  small) MODEL=tools/reference/local/musicgen-small ;;
  medium) MODEL=tools/reference/local/musicgen-medium-random ;;
esac
BUILD=${BUILD:-build-bench}
PY=${PY:-tools/reference/.venv/bin/python}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-503}
WEIGHTS=${WEIGHTS:-f32 bf16 f16}
STREAM=${STREAM-bf16}
REF=${REF:-1}
REF_THREADS=${REF_THREADS:-1 2}
SAMPLING=${SAMPLING:-}
QUANTIZED=${QUANTIZED:-load}
PROBE_EVERY=${PROBE_EVERY:-50}
LOG=${LOG:-$BUILD/bench-musicgen.log}

for f in "$BUILD/tools/bench-memory/bench-memory" "$BUILD/tools/bench-musicgen/bench-musicgen"; do
  [[ -x $f ]] || { echo "run.sh: $f is missing: cmake --build $BUILD --target bench-memory bench-musicgen" >&2; exit 1; }
done
[[ $QUANTIZED == load || $QUANTIZED == snapshot ]] || { echo "run.sh: QUANTIZED must be load or snapshot, not '$QUANTIZED'" >&2; exit 1; }
[[ $PROBE_EVERY =~ ^[0-9]+$ ]] || { echo "run.sh: PROBE_EVERY must be a whole number of steps (0: off), not '$PROBE_EVERY'" >&2; exit 1; }
model_for() {  # weights -> the snapshot folder that format loads from
  if [[ $QUANTIZED == snapshot && ($1 == q8 || $1 == q4) ]]; then echo "$MODEL-$1"; else echo "$MODEL"; fi
}
for w in $WEIGHTS; do
  m=$(model_for "$w")
  [[ $m == "$MODEL" || -f $m/model.safetensors ]] || {
    echo "run.sh: no $w snapshot in $m: make it once with" \
         "$BUILD/tools/musicgen-cli/musicgen-cli quantize --weights $w $MODEL $m" >&2
    exit 1
  }
done
[[ -f $MODEL/model.safetensors ]] || {
  echo "run.sh: no model in $MODEL: run tools/reference/make_fullsize_musicgen.py (small) or" \
       "make-random-model make tools/make-random-model/manifests/musicgen-medium.json $MODEL (medium)" >&2
  exit 1
}

: > "$LOG"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); model $MODEL; q8/q4 from: $QUANTIZED; threads $THREADS; steps $STEPS; sampling ${SAMPLING:-top-k 250}" | tee -a "$LOG"

"$BUILD/tools/bench-memory/bench-memory" --threads "$THREADS" --mb 1024 --reps 10 | tee -a "$LOG"
GBPS=$(awk '/^read_gbps/ {print $2}' "$LOG")

run_ours() {  # weights [--stream]
  local m
  m=$(model_for "$1")
  echo "== ours, $1 weights${2:+, streamed} ($m)" | tee -a "$LOG"
  "$BUILD/tools/bench-musicgen/bench-musicgen" --model "$m" --threads "$THREADS" --steps "$STEPS" \
    --weights "$1" --read-gbps "$GBPS" --probe-every "$PROBE_EVERY" $SAMPLING ${2:-} 2>&1 | tee -a "$LOG"
}
for w in $WEIGHTS; do run_ours "$w"; done
for w in $STREAM; do run_ours "$w" --stream; done
if [[ $REF == 1 ]]; then
  for t in $REF_THREADS; do
    echo "== transformers, $t threads" | tee -a "$LOG"
    "$PY" -u tools/bench-musicgen/bench_reference.py --model "$MODEL" --threads "$t" --steps "$STEPS" \
      $SAMPLING 2>&1 | grep -v "must be .None. or an integer" | tee -a "$LOG"
  done
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"

# Summary: one row per RESULT line. The roofline is each format's own bytes per step (q8_0 and
# q4_0 with their block scales, as bench-musicgen prints them) over the measured read bandwidth.
# Time to first audio: the first streamed chunk, or the whole generation + decode for a file.
echo
PER_STEP=$(sed -n 's/.* \([0-9]*\) weights read per step.*/\1/p' "$LOG" | head -1)
echo "read bandwidth $GBPS GB/s; ${PER_STEP:-?} weights read per decode step"
awk -v gbps="$GBPS" -v per_step="${PER_STEP:-0}" '
  /^RESULT/ {
    delete r
    for (i = 2; i <= NF; ++i) { split($i, kv, "="); r[kv[1]] = kv[2] }
    n = ++rows
    impl[n] = r["impl"]; w[n] = r["weights"]; th[n] = r["threads"]; sps[n] = r["steps_per_s"]; ms[n] = r["step_ms"]
    tot[n] = r["total_s"]; rss[n] = r["peak_rss_mb"]; mode[n] = r["mode"] == "" ? "file" : r["mode"]
    ttfa[n] = r["first_audio_s"] != "" ? r["first_audio_s"] : r["generate_s"] + r["audio_s"]
    gb[n] = r["impl"] == "transformers" ? 4 * per_step / 1e9 : r["weight_gb_per_step"]
    kvgb[n] = r["kv_gb_per_step_mean"]
    paired[n] = r["paired_roofline_pct_median"]; paired_kv[n] = r["paired_roofline_with_kv_pct_median"]
    if (r["impl"] == "transformers" && r["steps_per_s"] > ref_sps) { ref_sps = r["steps_per_s"]; ref_th = r["threads"] }
    if (r["impl"] == "transformers" && (ref_total == "" || r["total_s"] < ref_total)) ref_total = r["total_s"]
  }
  END {
    printf "%-13s %-5s %-6s %3s %8s %9s %9s %8s %8s %8s %8s %9s %9s %8s %8s\n", "impl", "wts", "mode", "thr", "steps/s",
           "ms/step", "roofline", "paired", "+KV", "paired", "total s", "RSS MB", "1st audio", "x steps", "x total"
    for (i = 1; i <= rows; ++i) {
      pct = (gb[i] > 0 && gbps > 0) ? sprintf("%7.0f%%", 100 * sps[i] * gb[i] / gbps) : "       -"
      pkv = (kvgb[i] > 0 && gbps > 0) ? sprintf("%7.0f%%", 100 * sps[i] * (gb[i] + kvgb[i]) / gbps) : "       -"
      pp = paired[i] != "" ? sprintf("%7.0f%%", paired[i]) : "       -"
      ppkv = paired_kv[i] != "" ? sprintf("%7.0f%%", paired_kv[i]) : "       -"
      xs = ref_sps > 0 ? sprintf("%7.2fx", sps[i] / ref_sps) : "       -"
      xt = ref_total > 0 ? sprintf("%7.2fx", ref_total / tot[i]) : "       -"
      printf "%-13s %-5s %-6s %3s %8.2f %9.1f %9s %8s %8s %8s %8.1f %9.0f %9.2f %8s %8s\n", impl[i], w[i], mode[i], th[i],
             sps[i], ms[i], pct, pp, pkv, ppkv, tot[i], rss[i], ttfa[i], xs, xt
    }
    if (ref_sps > 0)
      printf "x steps: steps/s over transformers f32 at its best thread count (%s: %.2f steps/s); x total: its total time over ours\n", ref_th, ref_sps
    printf "roofline: steps/s x bytes read per step (weights and their scales) / read bandwidth, per format;\n"
    printf "+KV: the same with the mean KV cache bytes a step reads added (the physical bound)\n"
    printf "paired: the same, median over the windows of --probe-every steps, each against the read probes\n"
    printf "run right before and after it in the same process (the higher of the two)\n"
  }' "$LOG"
