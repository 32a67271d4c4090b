#!/usr/bin/env python3
"""The transformers side of tools/bench-musicgen: MusicgenForConditionalGeneration.generate on the same
snapshot, CFG 3, batch 1, with torch.set_num_threads(T), timed like bench-musicgen (load, decode steps,
EnCodec decode apart). A pass-through logits processor timestamps every step (MusicGen's generate in
transformers 5 does not stream per step); the audio decode is timed through a wrapper.

  tools/reference/.venv/bin/python tools/bench-musicgen/bench_reference.py \
      --model tools/reference/local/musicgen-small --threads 2 --steps 503 [--greedy]

Last line: RESULT impl=transformers threads=.. steps=.. step_ms=.. steps_per_s=.. generate_s=.. audio_s=..
load_s=.. total_s=.. peak_rss_mb=..  (the same keys as bench-musicgen; run.sh parses both).
"""
import argparse
import resource
import sys
import time

import torch
from transformers import LogitsProcessor, LogitsProcessorList, MusicgenForConditionalGeneration, MusicgenProcessor


class StepClock(LogitsProcessor):
    """Called once per decoder step with that step's logits; records when, changes nothing."""

    def __init__(self):
        self.stamps = []

    def __call__(self, input_ids, scores):
        self.stamps.append(time.perf_counter())
        return scores


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tools/reference/local/musicgen-small")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=503)
    ap.add_argument("--prompt", default="80s pop track with bassy drums and synth")
    ap.add_argument("--greedy", action="store_true", help="do_sample=False instead of top-k 250 sampling")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t = time.perf_counter()
    model = MusicgenForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    processor = MusicgenProcessor.from_pretrained(args.model)
    load_s = time.perf_counter() - t
    print(f"transformers: load {load_s:.2f} s, {torch.get_num_threads()} threads, "
          f"attention {model.decoder.config._attn_implementation}")

    audio_time = []
    decode = model.audio_encoder.decode

    def timed_decode(*a, **kw):
        t0 = time.perf_counter()
        out = decode(*a, **kw)
        audio_time.append(time.perf_counter() - t0)
        return out

    model.audio_encoder.decode = timed_decode
    clock = StepClock()
    inputs = processor(text=[args.prompt], return_tensors="pt")
    sampling = dict(do_sample=False) if args.greedy else dict(do_sample=True, top_k=250)
    with torch.inference_mode():
        t = time.perf_counter()
        out = model.generate(**inputs, guidance_scale=3.0, max_new_tokens=args.steps,
                             logits_processor=LogitsProcessorList([clock]), **sampling)
        gen_total = time.perf_counter() - t
    audio_s = sum(audio_time)
    gen_s = gen_total - audio_s
    stamps = clock.stamps
    n = len(stamps)
    steady = (stamps[-1] - stamps[0]) / (n - 1) if n > 1 else stamps[-1] - t
    print(f"audio: {out.shape[-1]} samples decoded in {audio_s:.2f} s")
    print(f"steps {n}, generate {gen_s:.2f} s: text + first-step overhead {stamps[0] - t - steady:.2f} s, "
          f"{steady * 1e3:.2f} ms/step steady, {1 / steady:.2f} steps/s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT impl=transformers weights=f32 threads={args.threads} steps={n} step_ms={steady * 1e3:.3f} "
          f"steps_per_s={1 / steady:.4f} generate_s={gen_s:.3f} audio_s={audio_s:.3f} load_s={load_s:.3f} "
          f"total_s={load_s + gen_total:.3f} peak_rss_mb={rss:.0f}")


if __name__ == "__main__":
    sys.exit(main())
