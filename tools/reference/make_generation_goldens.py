#!/usr/bin/env python3
"""Golden data for MusicGen long generation (audiocraft's sliding window), continuation and batches.

Reference: Hugging Face transformers (the version pinned in the reference venv), fp32, CPU, eager
attention, greedy (do_sample=False), on the tiny models written by make_musicgen_models.py. The LM of
audiocraft's window loop (`BaseGenModel._generate_tokens`) is one HF `generate` call per window, with the
previous window's last tokens passed as `decoder_input_ids` (HF prefixes the 2048 BOS column itself).
Every HF call with a prompt is re-run with the plain delay-pattern loop (written out below as spec_generate)
extended with fixed prompt tokens (audiocraft `LMModel.generate`), and the tokens must agree.

Writes tests/data/golden/generation/:
  prompts.safetensors           the float prompt audio (32 kHz mono) and its tiny-EnCodec codes
  long_*.safetensors            codes [K, T] of the whole loop and window.{i} [K, max_gen_len_i] per call
  continuation_*.safetensors    prompt_audio, prompt_codes, codes (prompt included), audio (one case)
  batch_text.safetensors        a padded HF batch of two prompts vs each prompt alone
  index.json                    every case: settings, window plans, checks; window_plans for real settings

Integer tensors are int32; floats f32. Shapes are written without the batch dim where batch is 1.
Run: tools/reference/.venv/bin/python tools/reference/make_generation_goldens.py
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_encodec_goldens import music_excerpt  # noqa: E402
from make_musicgen_goldens import (  # noqa: E402
    CFG_SCALE, GOLDEN, MONO, PROMPTS, SPECIAL, STEREO, load, save, text_condition, write_json)

OUT = os.path.join(GOLDEN, "generation")
FRAME_RATE = 50            # 32000 // 640, an int in audiocraft (builders: sample_rate // hop_length)
MAX_DURATION = 2.0         # audiocraft's max_duration (30 s for MusicGen), shrunk so windows are cheap
EXTEND_STRIDE = 1.2        # audiocraft's extend_stride (18 s for MusicGen)
MONO_DELAYS, STEREO_DELAYS = [0, 1, 2, 3], [0, 0, 1, 1, 2, 2, 3, 3]
TEXT = PROMPTS["ascii"]


# --- audiocraft's window arithmetic, in the same Python floats ----------------------------------

def plan_windows(duration, prompt_frames=0, frame_rate=FRAME_RATE, max_duration=MAX_DURATION,
                 extend_stride=EXTEND_STRIDE):
    """The lm.generate calls BaseGenModel._generate_tokens makes, as (offset, prompt_frames, max_gen_len).

    Kept in float arithmetic on purpose: int(chunk_duration * frame_rate) truncates 602.99999... to 602,
    which is what audiocraft does (and then returns fewer frames than int(duration * frame_rate))."""
    total = int(duration * frame_rate)
    max_prompt = int(min(duration, max_duration) * frame_rate)
    plan = {"duration": duration, "prompt_frames": prompt_frames, "frame_rate": frame_rate,
            "max_duration": max_duration, "extend_stride": extend_stride, "total_gen_len": total,
            "windows": [], "error": None}
    if prompt_frames > max_prompt:
        plan["error"] = "AssertionError: Prompt is longer than audio to generate"
        return plan
    if duration <= max_duration:
        plan["windows"].append({"offset": 0, "prompt_frames": prompt_frames, "max_gen_len": total})
    else:
        stride = int(frame_rate * extend_stride)
        off, plen = 0, prompt_frames
        while off + plen < total:
            chunk = min(duration - off / frame_rate, max_duration)
            gen_len = int(chunk * frame_rate)
            exact = min(total - off, round(max_duration * frame_rate))
            plan["windows"].append({"offset": off, "prompt_frames": plen, "max_gen_len": gen_len,
                                    "float_truncated": gen_len != exact})
            if plen >= gen_len:   # lm.generate: assert start_offset < max_gen_len
                plan["error"] = (f"AssertionError in lm.generate: window at offset {off} has a {plen}-frame "
                                 f"prompt and max_gen_len {gen_len}")
                break
            plen = max(gen_len - stride, 0)
            off += stride
    done = [w for w in plan["windows"] if w["max_gen_len"] > w["prompt_frames"]]
    frames = prompt_frames + sum(w["max_gen_len"] - w["prompt_frames"] for w in done)
    # On an assertion audiocraft returns nothing; the frames made before it are kept for the record.
    plan["frames_returned"] = None if plan["error"] else frames
    if plan["error"] and plan["windows"]:
        plan["frames_before_error"] = frames
    return plan


# --- one lm.generate call through HF --------------------------------------------------------------

class CodeSpy:
    """Captures the codes HF generate hands to the EnCodec decoder (prompt included, delay reverted)."""

    def __init__(self, model):
        self.model, self.calls = model, []
        self.original = model.audio_encoder.decode

    def __enter__(self):
        def spy(codes, *a, **kw):
            self.calls.append(codes.clone())
            return self.original(codes, *a, **kw)
        self.model.audio_encoder.decode = spy
        return self

    def __exit__(self, *exc):
        self.model.audio_encoder.decode = self.original

    def codes(self):
        """[B, K, T]; stereo: HF decodes ::2 (left) then 1::2 (right): put them back interleaved."""
        if len(self.calls) == 1:
            return self.calls[0][0]
        left, right = self.calls[0][0], self.calls[1][0]
        return torch.stack([left, right], dim=2).reshape(left.shape[0], -1, left.shape[-1])


@torch.no_grad()
def hf_generate(model, cond, prompt, max_gen_len, cfg, n_codebooks):
    """audiocraft lm.generate(prompt, max_gen_len) semantics: returns ([B, K, max_gen_len] codes incl. the
    prompt, audio). HF frames = max_length - 4 with max_length = 1 + prompt + max_new_tokens."""
    tp = 0 if prompt is None else prompt.shape[-1]
    kwargs = dict(cond)
    if prompt is not None:
        kwargs["decoder_input_ids"] = prompt.reshape(-1, tp)       # [B*K, Tp]; HF adds the BOS column
    with CodeSpy(model) as spy:
        audio = model.generate(**kwargs, do_sample=False, guidance_scale=cfg, max_new_tokens=max_gen_len - tp + 3)
    codes = spy.codes()
    assert codes.shape[1] == n_codebooks and codes.shape[-1] == max_gen_len, codes.shape
    if prompt is not None:
        assert torch.equal(codes[..., :tp], prompt.reshape(codes.shape[0], n_codebooks, tp)), "prompt altered"
    return codes, audio


@torch.no_grad()
def spec_generate(model, hidden, mask, delays, prompt, max_gen_len, cfg, prompt_in_one_call=True):
    """The plain delay-pattern generation loop with fixed prompt tokens (audiocraft LMModel.generate), batch 1.

    The first call feeds columns 0..Tp (all known) at once, or one at a time if prompt_in_one_call is
    False; then one column per call. A sampled token is written only where the column is still unknown,
    so prompt frames that sit in later columns (codebooks with a delay) survive."""
    k, tp = len(delays), 0 if prompt is None else prompt.shape[-1]
    cols = max_gen_len + max(delays) + 1
    seq = torch.full((k, cols), -1, dtype=torch.long)
    for q, d in enumerate(delays):
        for s in range(cols):
            t = s - 1 - d
            if t < 0 or t >= max_gen_len:
                seq[q, s] = SPECIAL
            elif t < tp:
                seq[q, s] = prompt[q, t]
    rows, cache, prev = hidden.shape[0], None, 0

    def step(columns):
        nonlocal cache
        o = model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=columns.repeat(rows, 1),
                  cache=cache, use_cache=True)
        cache = o.cache
        return o.logits[:, -1].reshape(rows, k, 2048)

    start = tp + 1
    if not prompt_in_one_call:
        for s in range(start - 1):
            step(seq[:, s:s + 1])
        prev = start - 1
    for offset in range(start, cols):
        lg = step(seq[:, prev:offset])
        lg = lg[1] + cfg * (lg[0] - lg[1]) if rows == 2 else lg[0]
        tok = lg.argmax(-1)
        unknown = seq[:, offset] == -1
        seq[unknown, offset] = tok[unknown]
        prev = offset
    assert (seq >= 0).all()
    return torch.stack([seq[q, 1 + d:1 + d + max_gen_len] for q, d in enumerate(delays)])


class Conditioning:
    """Text (or null) conditioning as kwargs for HF generate and as (hidden, mask) for the spec loop."""

    def __init__(self, model, processor, text, cfg):
        self.cfg = cfg
        if text is None:       # audiocraft's description=None: null condition (both CFG rows equal)
            u = model.get_unconditional_inputs(num_samples=1)
            self.kwargs = {"encoder_outputs": u.encoder_outputs, "attention_mask": u.attention_mask}
            hidden, mask = u.encoder_outputs[0], u.attention_mask
            if cfg > 1:
                hidden, mask = torch.cat([hidden, hidden]), torch.cat([mask, mask])
            self.hidden, self.mask, self.input_ids = hidden, mask, None
        else:
            self.kwargs = dict(processor(text=[text], return_tensors="pt"))
            self.input_ids, self.hidden, self.mask = text_condition(model, processor, text, cfg=cfg > 1)


@torch.no_grad()
def run_windows(model, cond, delays, plan, prompt):
    """BaseGenModel._generate_tokens with HF as the LM; every window also checked against the spec loop."""
    k = len(delays)
    pieces = [] if prompt is None else [prompt]
    windows, agree, agree_columnwise = [], True, True
    for i, w in enumerate(plan["windows"]):
        p = prompt if (prompt is not None and prompt.shape[-1] > 0) else None
        assert (0 if p is None else p.shape[-1]) == w["prompt_frames"]
        codes, _ = hf_generate(model, cond.kwargs, None if p is None else p[None], w["max_gen_len"], cond.cfg, k)
        codes = codes[0]
        spec = spec_generate(model, cond.hidden, cond.mask, delays, p, w["max_gen_len"], cond.cfg)
        agree &= torch.equal(spec, codes)
        if p is not None and i < 2:     # cost: the column-by-column prompt pass only on the first windows
            spec1 = spec_generate(model, cond.hidden, cond.mask, delays, p, w["max_gen_len"], cond.cfg,
                                  prompt_in_one_call=False)
            agree_columnwise &= torch.equal(spec1, codes)
        windows.append(codes)
        pieces.append(codes if prompt is None else codes[:, prompt.shape[-1]:])
        prompt = codes[:, int(FRAME_RATE * EXTEND_STRIDE):]
    return torch.cat(pieces, dim=-1), windows, agree, agree_columnwise


def window_record(plan):
    out = []
    for w in plan["windows"]:
        out.append(dict(w, hf_max_new_tokens=w["max_gen_len"] - w["prompt_frames"] + 3,
                        hf_decoder_input_columns=w["prompt_frames"] + 1,
                        new_frames=w["max_gen_len"] - w["prompt_frames"]))
    return out


def long_case(name, model, processor, delays, duration, text=TEXT, prompt=None, prompt_name=None):
    cond = Conditioning(model, processor, text, CFG_SCALE)
    plan = plan_windows(duration, 0 if prompt is None else prompt.shape[-1])
    assert plan["error"] is None, plan
    codes, windows, agree, agree_col = run_windows(model, cond, delays, plan, prompt)
    assert codes.shape[-1] == plan["frames_returned"], (codes.shape, plan)
    tensors = {"codes": codes}
    for i, w in enumerate(windows):
        tensors[f"window.{i}"] = w
    if cond.input_ids is not None:
        tensors["input_ids"] = cond.input_ids
    if prompt is not None:
        tensors["prompt_codes"] = prompt
    save(os.path.join(OUT, f"{name}.safetensors"), tensors)
    print(f"generation/{name}: {tuple(codes.shape)} codes in {len(windows)} windows, "
          f"{codes.unique().numel()} distinct; spec loop agrees: {agree}, column-wise prompt pass: {agree_col}")
    return {"kind": "long", "model": "stereo" if len(delays) == 8 else "mono", "text": text,
            "cfg_scale": CFG_SCALE, "delays": delays, "duration": duration, "frame_rate": FRAME_RATE,
            "max_duration": MAX_DURATION, "extend_stride": EXTEND_STRIDE,
            "stride_tokens": int(FRAME_RATE * EXTEND_STRIDE), "prompt": prompt_name,
            "prompt_frames": 0 if prompt is None else prompt.shape[-1],
            "total_gen_len": plan["total_gen_len"], "frames": codes.shape[-1], "windows": window_record(plan),
            "distinct_tokens": codes.unique().numel(), "spec_loop_agrees": agree,
            "spec_loop_columnwise_prompt_agrees": agree_col}


# --- continuation ----------------------------------------------------------------------------------

def prompt_audio():
    """{name: (float32 [1, L] at 32 kHz mono, description)}."""
    sr = 32000
    bach = music_excerpt("bach.mp3", 2.0, sr // 2, sr, 1)
    t = torch.arange(int(0.3 * sr), dtype=torch.float64) / sr
    sine = (0.5 * torch.sin(2 * math.pi * 440.0 * t)).to(torch.float32)[None]
    return {"bach": (bach, "bach.mp3 @ 2.0 s, 0.5 s, julius 44.1k -> 32 kHz, channel mean (make_encodec_goldens)"),
            "sine": (sine, "0.3 s sine, 440 Hz, amplitude 0.5, 32 kHz")}


@torch.no_grad()
def encode_prompt(model, processor, audio):
    """Codes [K, Tp] of the model's EnCodec for a 32 kHz mono prompt, the way HF generate gets them."""
    feats = processor(audio=audio[0].numpy(), sampling_rate=32000, return_tensors="pt")
    enc = model.audio_encoder.encode(feats.input_values, feats.padding_mask)
    assert enc.audio_codes.shape[0] == 1
    return enc.audio_codes[0, 0], feats


@torch.no_grad()
def continuation_case(name, model, processor, audio, prompt_name, text, duration, keep_audio):
    """HF processor(audio=, text=) + generate, checked against encode + decoder_input_ids and the spec loop."""
    k = model.decoder.num_codebooks
    codes_p, feats = encode_prompt(model, processor, audio)
    plan = plan_windows(duration, codes_p.shape[-1])
    assert len(plan["windows"]) == 1 and plan["error"] is None
    gen_len = plan["windows"][0]["max_gen_len"]
    tp = codes_p.shape[-1]
    cfg = CFG_SCALE if text is not None else 1.0
    cond = Conditioning(model, processor, text, cfg)

    # Route 1: the processor with audio= (and text=), as the HF docs show.
    if text is not None:
        inputs = processor(audio=audio[0].numpy(), sampling_rate=32000, text=[text], return_tensors="pt")
    else:   # processor(audio=) alone leaves the text empty; null condition = get_unconditional_inputs
        inputs = dict(feats, **cond.kwargs)
    with CodeSpy(model) as spy:
        audio_out = model.generate(**inputs, do_sample=False, guidance_scale=cfg, max_new_tokens=gen_len - tp + 3)
    codes = spy.codes()[0]
    # Route 2: encode ourselves and pass decoder_input_ids.
    codes2, _ = hf_generate(model, cond.kwargs, codes_p[None], gen_len, cfg, k)
    # Route 3: the spec loop.
    spec = spec_generate(model, cond.hidden, cond.mask, MONO_DELAYS, codes_p, gen_len, cfg)
    checks = {"processor_audio_equals_decoder_input_ids": torch.equal(codes, codes2[0]),
              "spec_loop_agrees": torch.equal(codes, spec)}
    if text is None:
        # audiocraft runs CFG 3 with both rows null: it must be a no-op (cond == null row exactly).
        cond3 = Conditioning(model, processor, None, CFG_SCALE)
        codes3, _ = hf_generate(model, cond3.kwargs, codes_p[None], gen_len, CFG_SCALE, k)
        checks["null_text_cfg3_equals_cfg1"] = torch.equal(codes3[0], codes)
    assert torch.equal(codes[:, :tp], codes_p)
    tensors = {"prompt_audio": audio, "prompt_codes": codes_p, "codes": codes}
    if cond.input_ids is not None:
        tensors["input_ids"] = cond.input_ids
    if keep_audio:
        tensors["audio"] = audio_out[0]
    save(os.path.join(OUT, f"{name}.safetensors"), tensors)
    print(f"generation/{name}: prompt {tp} frames -> {tuple(codes.shape)}, {codes[:, tp:].unique().numel()} "
          f"distinct new; {checks}")
    return dict({"kind": "continuation", "model": "mono", "prompt": prompt_name, "text": text,
                 "cfg_scale": cfg, "delays": MONO_DELAYS, "duration": duration, "prompt_samples": audio.shape[-1],
                 "prompt_frames": tp, "frames": codes.shape[-1], "hf_max_new_tokens": gen_len - tp + 3,
                 "audio": keep_audio}, **checks)


# --- batches -------------------------------------------------------------------------------------------

@torch.no_grad()
def batch_case(model, processor, texts, steps):
    """One padded HF batch with CFG vs each prompt alone, plus the batch with padded keys left unmasked
    (audiocraft's cross-attention: padded text is zeroed but still attended)."""
    k = model.decoder.num_codebooks
    inputs = processor(text=texts, padding=True, return_tensors="pt")
    with CodeSpy(model) as spy:
        model.generate(**inputs, do_sample=False, guidance_scale=CFG_SCALE, max_new_tokens=steps)
    batch = spy.codes()
    singles = []
    for t in texts:
        with CodeSpy(model) as spy:
            model.generate(**processor(text=[t], return_tensors="pt"), do_sample=False, guidance_scale=CFG_SCALE,
                           max_new_tokens=steps)
        singles.append(spy.codes()[0])
    singles = torch.stack(singles)

    def unmask(_module, args, kwargs):
        kwargs["encoder_attention_mask"] = None
        return args, kwargs

    handle = model.decoder.register_forward_pre_hook(unmask, with_kwargs=True)
    try:
        with CodeSpy(model) as spy:
            model.generate(**inputs, do_sample=False, guidance_scale=CFG_SCALE, max_new_tokens=steps)
        unmasked = spy.codes()
    finally:
        handle.remove()
    lengths = inputs.attention_mask.sum(-1).tolist()
    rows_equal = [torch.equal(batch[i], singles[i]) for i in range(len(texts))]
    unmasked_equal = [torch.equal(unmasked[i], singles[i]) for i in range(len(texts))]
    tensors = {"attention_mask": inputs.attention_mask, "codes_batch": batch, "codes_single": singles,
               "codes_batch_unmasked_padding": unmasked}
    for i, n in enumerate(lengths):
        tensors[f"input_ids.{i}"] = inputs.input_ids[i, :n]
    save(os.path.join(OUT, "batch_text.safetensors"), tensors)
    first_diff = [int((unmasked[i] != singles[i]).any(0).nonzero()[0]) if not e else None
                  for i, e in enumerate(unmasked_equal)]
    print(f"generation/batch_text: tokens {lengths}, {tuple(batch.shape)}; batch rows == single: {rows_equal}; "
          f"unmasked padding == single: {unmasked_equal} (first differing frame {first_diff})")
    return {"kind": "batch", "model": "mono", "texts": texts, "text_tokens": lengths, "cfg_scale": CFG_SCALE,
            "delays": MONO_DELAYS, "steps": steps, "frames": batch.shape[-1],
            "batch_rows_equal_single": rows_equal, "unmasked_padding_rows_equal_single": unmasked_equal,
            "unmasked_padding_first_differing_frame": first_diff}


# --- main --------------------------------------------------------------------------------------------

REAL_PLANS = [(15.0, 0), (30.0, 0), (30.06, 0), (36.08, 0), (45.3, 0), (60.0, 0), (120.0, 0), (300.0, 0),
              (60.0, 250), (30.0, 1501)]


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    mono, mono_proc = load(MONO)
    cases = {}

    prompts = prompt_audio()
    prompt_tensors = {}
    prompt_codes = {}
    for pname, (audio, _) in prompts.items():
        codes_p, _ = encode_prompt(mono, mono_proc, audio)
        prompt_tensors[f"{pname}.audio"] = audio
        prompt_tensors[f"{pname}.codes"] = codes_p
        prompt_codes[pname] = codes_p
    save(os.path.join(OUT, "prompts.safetensors"), prompt_tensors)

    cases["long_5s"] = long_case("long_5s", mono, mono_proc, MONO_DELAYS, 5.0)
    cases["long_3s"] = long_case("long_3s", mono, mono_proc, MONO_DELAYS, 3.0)
    cases["long_2_34s_float_trunc"] = long_case("long_2_34s_float_trunc", mono, mono_proc, MONO_DELAYS, 2.34)
    cases["long_continuation_3s"] = long_case("long_continuation_3s", mono, mono_proc, MONO_DELAYS, 3.0,
                                              prompt=prompt_codes["bach"], prompt_name="bach")

    for pname, (audio, _) in prompts.items():
        for text in (TEXT, None):
            name = f"continuation_{pname}_{'text' if text else 'notext'}"
            cases[name] = continuation_case(name, mono, mono_proc, audio, pname, text, 1.5,
                                            keep_audio=(pname == "bach" and text is not None))

    cases["batch_text"] = batch_case(mono, mono_proc, [PROMPTS["ascii"], PROMPTS["digits"]], steps=40)

    stereo, stereo_proc = load(STEREO)
    cases["stereo_long_3s"] = long_case("stereo_long_3s", stereo, stereo_proc, STEREO_DELAYS, 3.0)

    tiny_plans = [plan_windows(d) for d in (2.0, 2.34, 2.76, 3.0, 5.0)] + [plan_windows(3.0, 25)]
    real_plans = [plan_windows(d, p, max_duration=30.0, extend_stride=18.0) for d, p in REAL_PLANS]

    import transformers
    write_json(os.path.join(OUT, "index.json"), {
        "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, fp32 CPU, eager "
                     f"attention, greedy (do_sample=False); LM loop = audiocraft BaseGenModel._generate_tokens",
        "models": {"mono": "tests/data/models/musicgen_tiny", "stereo": "tests/data/models/musicgen_stereo_tiny"},
        "special_token": SPECIAL,
        "prompts": {n: {"samples": a.shape[-1], "sample_rate": 32000, "frames": prompt_codes[n].shape[-1],
                        "source": d} for n, (a, d) in prompts.items()},
        "tensors": {
            "prompts": "<name>.audio [1, L] f32 32 kHz mono (the exact float input used), <name>.codes [4, Tp] "
                       "= musicgen_tiny's audio_encoder.encode (4 codebooks, 640 samples per frame).",
            "long": "codes [K, frames] = cat of the prompt (if any) and each window's new frames, as audiocraft "
                    "returns them; window.{i} [K, max_gen_len_i] = the i-th lm.generate output, prompt "
                    "included (its first prompt_frames frames are the previous window's frames "
                    "stride_tokens..end); input_ids [T_text]; prompt_codes [K, Tp] where a prompt is used. "
                    "Stereo codes are interleaved [L0,R0,L1,R1,...].",
            "continuation": "prompt_audio [1, L]; prompt_codes [4, Tp]; codes [4, frames] (prompt included, "
                            "codes[:, :Tp] == prompt_codes); input_ids [T_text] (with text only); audio "
                            "[1, frames*640] = HF generate's decoded output (where 'audio' is true).",
            "batch": "input_ids.{i} [T_i] (unpadded); attention_mask [2, T_max] (right padding, id 0); "
                     "codes_batch [2, 4, frames] = one HF generate over the padded batch with CFG (rows: "
                     "cond 0, cond 1, null 0, null 1); codes_single [2, 4, frames] = each prompt alone; "
                     "codes_batch_unmasked_padding [2, 4, frames] = the same batch with the cross-attention "
                     "mask dropped (padded text states are still zeroed), i.e. audiocraft's behaviour.",
        },
        "pins": [
            "Windows: audiocraft's loop (genmodel.py _generate_tokens) with max_duration 2.0 s and extend_stride "
            "1.2 s (60 frames) instead of 30/18; the loop runs only when duration > max_duration. Each window "
            "is a fresh generate call: positions restart at 0, the KV cache starts empty, the prompt is the "
            "previous window's frames [stride_tokens:] (tokens, no EnCodec round trip).",
            "HF with a prompt: decoder_input_ids [K, Tp] get the 2048 column prefixed, the delay pattern puts "
            "prompt frame t of codebook k at column 1+t+d_k, the first forward covers columns 0..Tp at once "
            "and later columns keep the prompt frames already there. This equals the spec loop with fixed "
            "prompt tokens (spec_loop_agrees), also when the prompt columns are fed one per call "
            "(spec_loop_columnwise_prompt_agrees, first two windows). For a window of max_gen_len G frames "
            "with a Tp-frame prompt HF needs max_new_tokens = G - Tp + 3.",
            "Float arithmetic of the window lengths: max_gen_len = int(min(duration - off/frame_rate, "
            "max_duration) * frame_rate) in doubles truncates e.g. (2.34 - 1.2) * 50 = 56.99999 to 56, so "
            "audiocraft returns 116 frames for 2.34 s although int(2.34 * 50) = 117 "
            "(long_2_34s_float_trunc). With the real 30/18 settings 30.06 s gives 1502 frames, not 1503, "
            "and 36.08 s makes a last window whose prompt is as long as max_gen_len: lm.generate's "
            "'assert start_offset < max_gen_len' fails (window_plans).",
            "Continuation: HF processor(audio=, text=) + generate and audio_encoder.encode + "
            "decoder_input_ids give the same codes; the output includes the prompt (as audiocraft returns "
            "it); a prompt longer than min(duration, max_duration) * frame_rate frames is audiocraft's "
            "'Prompt is longer than audio to generate' assertion.",
            "Continuation without text: audiocraft's description=None is the null condition in both CFG rows, "
            "so CFG is a no-op; HF: get_unconditional_inputs (one zero state, mask 0) with guidance 1. "
            "processor(audio=) without text cannot be used as is: generate would feed the decoder's BOS id "
            "to T5. null_text_cfg3_equals_cfg1 checks that cfg 3 with two null rows gives the same codes.",
            "Batches: HF masks padded text keys in cross-attention, so a padded batch row equals the prompt "
            "run alone (batch_rows_equal_single); audiocraft zeroes padded text states but attends to them, "
            "which changes the shorter prompt's row (codes_batch_unmasked_padding). The C++ batches rows "
            "without padding and is tested against codes_single.",
        ],
        "window_plans": {"about": "plan_windows() in this script: audiocraft's window arithmetic only (no "
                                  "model). 'tiny' uses max_duration 2.0 / extend_stride 1.2 (the goldens), "
                                  "'real' MusicGen's 30 / 18. frames_returned = what audiocraft returns "
                                  "(null when it raises); error = the assertion it raises, if any; "
                                  "frames_before_error = frames the windows before that one made.",
                         "tiny": tiny_plans, "real": real_plans},
        "cases": cases})
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    sys.exit(main())
