#!/usr/bin/env python3
"""Golden data for the C++ SentencePiece tokenizer, T5 encoder and MusicGen decoder / generation loop.

Reference: Hugging Face transformers (the version pinned in the reference venv), fp32, CPU, eager
attention, batch 1, on the tiny models written by make_musicgen_models.py. Writes:

  tests/data/golden/tokenizer/cases.json      token ids per prompt (sentencepiece + </s>, and HF's own)
  tests/data/golden/t5/<case>.safetensors     T5 last_hidden_state, per-block hidden states, projected text
  tests/data/golden/musicgen/*.safetensors    teacher-forced logits, greedy codes, decoded audio, intermediates
  tests/data/golden/{t5,musicgen}/index.json  what each case holds and which behaviour it pins

Integer tensors are int32; floats f32. Shapes are written without the batch dim where batch is 1.
Run: tools/reference/.venv/bin/python tools/reference/make_musicgen_goldens.py
"""
import json
import os
import sys

import sentencepiece as spm
import torch
from safetensors.torch import save_file
from transformers import MusicgenForConditionalGeneration, MusicgenProcessor, T5Tokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "data", "models")
GOLDEN = os.path.join(ROOT, "tests", "data", "golden")
MONO = os.path.join(MODELS, "musicgen_tiny")
STEREO = os.path.join(MODELS, "musicgen_stereo_tiny")

SPECIAL = 2048           # BOS / pad / "not yet valid" id of the decoder
CFG_SCALE = 3.0

PROMPTS = {
    "ascii": "80s pop track with bassy drums and synth",
    "accents": "café music with an accordion, très élégant, for a naïve señor",
    "cjk": "日本の音楽 with 琴 and 尺八, 中国古典音乐",
    "emoji": "happy 🎵 jazz 🎷 with piano",
    "empty": "",
    "whitespace": "  lo-fi\tchill \n\n  beats   with   drums ",
    "nfkc": "ＦＵＬＬ width ｄｒｕｍｓ, ﬁne ① Ⅳ ½",
    "unknown_run": "Привет мир jazz",
    "digits": "tempo 120 bpm, 4/4 time, 2:30 long",
    # > 128 tokens: relative-position buckets for distances >= 91 and the 16/32/64 bucket edges.
    "long": " ".join(["A calm ambient track featuring a cello solo and soft piano, perfect for the beach,"] * 6),
}


def save(path, tensors, meta=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        v = v.to(torch.int32) if not v.is_floating_point() else v.to(torch.float32)
        out[k] = v.contiguous()
    save_file(out, path, metadata={k: str(v) for k, v in (meta or {}).items()})
    os.chmod(path, 0o644)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


# --- tokenizer ---------------------------------------------------------------------------------

def tokenizer_goldens():
    sp = spm.SentencePieceProcessor(model_file=os.path.join(MONO, "spiece.model"))
    hf = T5Tokenizer.from_pretrained(MONO)               # transformers 5: the tokenizers ("fast") backend
    processor = MusicgenProcessor.from_pretrained(MONO)
    cases = []
    for name, text in PROMPTS.items():
        ids = sp.encode(text, out_type=int) + [1]
        pieces = sp.encode(text, out_type=str) + ["</s>"]
        hf_ids = hf(text).input_ids
        proc_ids = processor(text=[text]).input_ids[0]
        cases.append({"name": name, "text": text, "ids": ids, "pieces": pieces,
                      "hf_tokenizer_ids": hf_ids, "hf_matches_sentencepiece": hf_ids == ids,
                      "processor_ids": list(proc_ids)})
    doc = {
        "about": "T5 tokenization of prompts by the tiny spiece.model (unigram, nmt_nfkc, pad 0, eos 1, unk 2, "
                 "no BOS, no byte fallback). 'ids' = sentencepiece EncodeAsIds(text) + [1] (</s>): what the C++ "
                 "tokenizer must produce (audiocraft's slow T5Tokenizer does the same). 'hf_tokenizer_ids' = "
                 "transformers' T5Tokenizer, which in transformers 5 is the tokenizers-library backend (the old "
                 "'fast' one); MusicgenProcessor uses the same class (processor_ids).",
        "model": "tests/data/models/musicgen_tiny/spiece.model",
        "sentencepiece_version": spm.__version__,
        "eos_id": 1, "pad_id": 0, "unk_id": 2,
        "cases": cases,
    }
    write_json(os.path.join(GOLDEN, "tokenizer", "cases.json"), doc)
    diffs = [c["name"] for c in cases if not c["hf_matches_sentencepiece"]]
    print(f"tokenizer: {len(cases)} cases, HF differs from sentencepiece on: {diffs or 'none'}")
    return {c["name"]: c["ids"] for c in cases}


# --- T5 ----------------------------------------------------------------------------------------

@torch.no_grad()
def t5_goldens(model, ids_by_name):
    index = {}
    for name in ("ascii", "accents", "empty", "long"):
        ids = torch.tensor([ids_by_name[name]])
        mask = torch.ones_like(ids)
        # Hooks rather than output_hidden_states: HF reports the last block only after the final RMSNorm.
        seen = []
        enc = model.text_encoder.encoder
        hooks = [enc.embed_tokens.register_forward_hook(lambda _m, _i, o: seen.append(o.clone()))]
        hooks += [b.register_forward_hook(lambda _m, _i, o: seen.append(
            (o[0] if isinstance(o, tuple) else o).clone())) for b in enc.block]
        out = model.text_encoder(input_ids=ids, attention_mask=mask)
        for h in hooks:
            h.remove()
        projected = model.enc_to_dec_proj(out.last_hidden_state) * mask[..., None]
        tensors = {"input_ids": ids[0], "attention_mask": mask[0],
                   "last_hidden_state": out.last_hidden_state[0], "projected": projected[0]}
        # hidden_states.0 = token embeddings, .i = output of block i-1 (before the final RMSNorm).
        if name != "long":   # size: the long case keeps only its outputs
            for i, h in enumerate(seen):
                tensors[f"hidden_states.{i}"] = h[0]
        save(os.path.join(GOLDEN, "t5", f"{name}.safetensors"), tensors)
        index[name] = {"text": PROMPTS[name], "tokens": ids.shape[1]}

    # Batch of two prompts of different lengths: the short row is right-padded with id 0 / mask 0.
    # Pins the padding mask folded into T5's position bias (finfo.min) and the zeroed projection rows.
    texts = [PROMPTS["ascii"], PROMPTS["digits"]]
    rows = [ids_by_name["ascii"], ids_by_name["digits"]]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    out = model.text_encoder(input_ids=ids, attention_mask=mask)
    projected = model.enc_to_dec_proj(out.last_hidden_state) * mask[..., None]
    save(os.path.join(GOLDEN, "t5", "batch_padded.safetensors"),
         {"input_ids": ids, "attention_mask": mask, "last_hidden_state": out.last_hidden_state,
          "projected": projected})
    index["batch_padded"] = {"text": texts, "tokens": width, "batch": 2}
    write_json(os.path.join(GOLDEN, "t5", "index.json"), {
        "about": "T5 encoder of tests/data/models/musicgen_tiny (2 blocks, d_model 32, 4 heads x 8, relu FFN, "
                 "32 buckets / max distance 128) and enc_to_dec_proj. Per case: input_ids, attention_mask, "
                 "last_hidden_state [T,32] (after final RMSNorm), hidden_states.{0..2} [T,32] (0 = embeddings, "
                 "i = after block i-1; not for 'long'), projected [T,24] = (last_hidden_state W^T + b) * mask. "
                 "batch_padded "
                 "keeps the batch dim [2,T,...]: padded rows of 'projected' are exactly 0 and the padded "
                 "keys are masked with finfo(f32).min inside T5 attention.",
        "notes": ["'empty' is HF's view of an empty prompt: ids [1] (</s>) with mask 1, so its projection is "
                  "NOT zero. audiocraft instead forces the mask of an empty description to 0 (null condition).",
                  "'long' has > 128 tokens: exercises every relative-position bucket incl. distance >= 91 "
                  "and the exact 16/32/64 edges."],
        "cases": index})
    print(f"t5: {len(index)} cases")


# --- MusicGen decoder ----------------------------------------------------------------------------

def delay_pattern(codes, delays):
    """[K, T] frames -> [K, T + max_delay + 1] columns; column 0 and invalid cells are SPECIAL."""
    k, t = codes.shape
    seq = torch.full((k, t + max(delays) + 1), SPECIAL, dtype=torch.long)
    for q, d in enumerate(delays):
        seq[q, 1 + d:1 + d + t] = codes[q]
    return seq


def text_condition(model, processor, text, cfg):
    """Encoder states and mask as MusicgenForConditionalGeneration.generate builds them (cond rows first)."""
    enc = processor(text=[text], return_tensors="pt")
    hidden = model.text_encoder(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
    mask = enc.attention_mask
    if cfg:
        hidden = torch.cat([hidden, torch.zeros_like(hidden)])
        mask = torch.cat([mask, torch.zeros_like(mask)])
    return enc.input_ids[0], hidden, mask


class Recorder:
    """Forward hooks on the decoder: embedding sum, position embedding, each layer's output, final norm."""

    def __init__(self, decoder):
        self.out, self.handles = {}, []
        dec = decoder.model.decoder

        def keep(name):
            return lambda _m, _i, o: self.out.__setitem__(name, (o[0] if isinstance(o, tuple) else o).detach())

        for k, emb in enumerate(dec.embed_tokens):
            self.handles.append(emb.register_forward_hook(keep(f"embed_tokens.{k}")))
        self.handles.append(dec.embed_positions.register_forward_hook(keep("positions")))
        for i, layer in enumerate(dec.layers):
            self.handles.append(layer.register_forward_hook(keep(f"layers.{i}")))
        self.handles.append(dec.layer_norm.register_forward_hook(keep("layer_norm")))

    def close(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def teacher_forcing(model, processor, name, text, frames, delays, cols_kept, seed, intermediates,
                    cond_uncond=True):
    """One forward over the whole delayed sequence (no cache), cond and null rows; checks it equals the
    step-by-step KV-cached forward (which pins positions = cache length)."""
    k = len(delays)
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 2048, (k, frames), generator=gen)
    seq = delay_pattern(codes, delays)[:, :cols_kept]
    ids, hidden, mask = text_condition(model, processor, text, cfg=True)
    dec_ids = seq.repeat(2, 1)                                   # [2K, S]: cond row codebooks, then null row

    rec = Recorder(model.decoder) if intermediates else None
    out = model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=dec_ids, use_cache=False)
    logits = out.logits.reshape(2, k, cols_kept, 2048)          # [row, K, S, V]
    if rec:
        rec.close()

    # Same logits one column at a time through the KV cache.
    cache, steps = None, []
    for s in range(cols_kept):
        o = model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=dec_ids[:, s:s + 1],
                  cache=cache, use_cache=True)
        cache = o.cache
        steps.append(o.logits.reshape(2, k, 1, 2048))
    stepwise = torch.cat(steps, dim=2)
    step_err = (stepwise - logits).abs().max().item()
    assert step_err < 1e-4, f"{name}: cached vs full forward differ by {step_err}"

    # Null rows with the mask left out: enc_to_dec_proj.bias leaks into the "null" condition (a trap).
    leak = model(encoder_outputs=(hidden,), decoder_input_ids=dec_ids, use_cache=False).logits
    leak_err = (leak.reshape(2, k, cols_kept, 2048)[1] - logits[1]).abs().max().item()

    cond, null = logits[0].transpose(0, 1), logits[1].transpose(0, 1)   # -> [S, K, V]
    tensors = {"input_ids": ids, "projected": model.enc_to_dec_proj(hidden[:1])[0] * mask[0, :, None],
               "codes": codes, "decoder_input_ids": seq, "logits_cfg": null + CFG_SCALE * (cond - null)}
    if cond_uncond:
        tensors.update({"logits_cond": cond, "logits_uncond": null})
    if rec:
        # Per-column decoder intermediates for both rows: [2, S, D].
        emb_sum = sum(rec.out[f"embed_tokens.{q}"] for q in range(k))
        tensors["inter.embed_sum"] = emb_sum.reshape(2, cols_kept, -1)
        tensors["inter.positions"] = rec.out["positions"].reshape(cols_kept, -1)
        for i in range(len(model.decoder.model.decoder.layers)):
            tensors[f"inter.layers.{i}"] = rec.out[f"layers.{i}"]
        tensors["inter.layer_norm"] = rec.out["layer_norm"]
    save(os.path.join(GOLDEN, "musicgen", f"{name}.safetensors"), tensors)
    top = tensors["logits_cfg"].argmax(-1)
    print(f"musicgen/{name}: S={cols_kept} K={k} cached-vs-full {step_err:.2e}, "
          f"mask-omitted null-row leak {leak_err:.3f}, distinct cfg argmax {top.unique().numel()}")
    return {"kind": "teacher_forcing", "text": text, "frames": frames, "columns": cols_kept,
            "delays": delays, "cfg_scale": CFG_SCALE, "cached_vs_full_max_abs": step_err,
            "has_cond_uncond": cond_uncond, "has_intermediates": intermediates,
            "null_row_change_if_mask_omitted": leak_err}


@torch.no_grad()
def manual_greedy(model, hidden, mask, k, delays, steps, cfg_scale):
    """Spec section 6.8 written out: one column per call, CFG on raw logits, argmax, delay bookkeeping."""
    frames = steps + 1 - (max(delays) + 1)
    seq = torch.full((k, steps + 1), -1, dtype=torch.long)
    seq[:, 0] = SPECIAL
    cache = None
    rows = hidden.shape[0]
    for s in range(steps):
        col = seq[:, s:s + 1].repeat(rows, 1)
        o = model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=col, cache=cache,
                  use_cache=True)
        cache = o.cache
        lg = o.logits[:, -1].reshape(rows, k, 2048)
        lg = lg[1] + cfg_scale * (lg[0] - lg[1]) if rows == 2 else lg[0]
        tok = lg.argmax(-1)
        for q, d in enumerate(delays):
            seq[q, s + 1] = tok[q] if 0 <= s - d < frames else SPECIAL
    return torch.stack([seq[q, 1 + d:1 + d + frames] for q, d in enumerate(delays)])


@torch.no_grad()
def greedy(model, processor, name, text, steps, cfg_scale, delays, keep_audio, keep_scores=False,
           unconditional=False):
    captured = {}
    codec_decode = model.audio_encoder.decode

    def spy(codes, *a, **kw):
        captured.setdefault("codes", []).append(codes.clone())
        return codec_decode(codes, *a, **kw)

    model.audio_encoder.decode = spy
    try:
        if unconditional:
            inputs = model.get_unconditional_inputs(num_samples=1)
            kwargs = dict(encoder_outputs=inputs.encoder_outputs, attention_mask=inputs.attention_mask)
        else:
            kwargs = dict(processor(text=[text], return_tensors="pt"))
        out = model.generate(**kwargs, do_sample=False, guidance_scale=cfg_scale, max_new_tokens=steps,
                             return_dict_in_generate=True, output_logits=True, output_scores=True)
    finally:
        model.audio_encoder.decode = codec_decode
    audio = out.sequences[0]                                     # [channels, samples]
    codes = torch.cat([c[0, 0] for c in captured["codes"]])     # [K, T]; stereo: left then right halves
    if len(captured["codes"]) == 2:                              # back to the interleaved [L0,R0,L1,R1,...]
        left, right = captured["codes"][0][0, 0], captured["codes"][1][0, 0]
        codes = torch.stack([left, right], dim=1).reshape(-1, left.shape[-1])
    k = codes.shape[0]

    if unconditional:
        hidden, mask = inputs.encoder_outputs[0], inputs.attention_mask
        ids = None
    else:
        ids, hidden, mask = text_condition(model, processor, text, cfg=cfg_scale > 1)
    manual = manual_greedy(model, hidden, mask, k, delays, steps, cfg_scale)
    assert torch.equal(manual, codes), f"{name}: spec loop and HF generate disagree"

    tensors = {"codes": codes}
    if not unconditional:      # no zero-size tensor: the unconditional case has no tokens at all
        tensors["input_ids"] = ids
    if keep_scores:
        # Scores = the CFG-combined logits HF took the argmax of; first 3 calls only (size), [K, V] each.
        tensors["cfg_logits_first_steps"] = torch.stack(out.scores[:3])
    if keep_audio:
        tensors["audio"] = audio
    save(os.path.join(GOLDEN, "musicgen", f"{name}.safetensors"), tensors)
    distinct = codes.unique().numel()
    print(f"musicgen/{name}: {k}x{codes.shape[1]} codes, {distinct} distinct, audio {tuple(audio.shape)}")
    return {"kind": "greedy", "text": None if unconditional else text, "unconditional": unconditional,
            "steps": steps, "frames": codes.shape[1], "cfg_scale": cfg_scale, "delays": delays,
            "distinct_tokens": distinct, "audio": keep_audio, "cfg_logits_first_steps": keep_scores,
            "audio_samples": audio.shape[-1]}


def load(folder):
    model = MusicgenForConditionalGeneration.from_pretrained(folder, attn_implementation="eager").eval()
    return model, MusicgenProcessor.from_pretrained(folder)


@torch.no_grad()
def sdpa_agrees(folder, text):
    """Eager and SDPA must agree, including the fully masked null rows (NaN bug, transformers #31208)."""
    outs = []
    for impl in ("eager", "sdpa"):
        model = MusicgenForConditionalGeneration.from_pretrained(
            folder, attn_implementation={"decoder": impl, "text_encoder": impl, "audio_encoder": "eager"}).eval()
        assert model.decoder.config._attn_implementation == impl
        processor = MusicgenProcessor.from_pretrained(folder)
        _, hidden, mask = text_condition(model, processor, text, cfg=True)
        ids = torch.full((2 * model.decoder.num_codebooks, 3), SPECIAL)
        outs.append(model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=ids).logits)
    assert torch.isfinite(outs[1]).all(), "SDPA produced non-finite logits on the null rows"
    return (outs[0] - outs[1]).abs().max().item()


def main():
    torch.set_num_threads(2)
    ids_by_name = tokenizer_goldens()
    mono, mono_proc = load(MONO)
    t5_goldens(mono, ids_by_name)

    mono_delays, stereo_delays = [0, 1, 2, 3], [0, 0, 1, 1, 2, 2, 3, 3]
    cases = {}
    cases["tf_ascii"] = teacher_forcing(mono, mono_proc, "tf_ascii", PROMPTS["ascii"], frames=17,
                                        delays=mono_delays, cols_kept=20, seed=7, intermediates=True)
    cases["greedy_ascii"] = greedy(mono, mono_proc, "greedy_ascii", PROMPTS["ascii"], 60, CFG_SCALE,
                                   mono_delays, keep_audio=True, keep_scores=True)
    cases["greedy_accents"] = greedy(mono, mono_proc, "greedy_accents", PROMPTS["accents"], 60, CFG_SCALE,
                                     mono_delays, keep_audio=False)
    cases["greedy_cjk"] = greedy(mono, mono_proc, "greedy_cjk", PROMPTS["cjk"], 60, CFG_SCALE,
                                 mono_delays, keep_audio=False)
    cases["greedy_empty_prompt"] = greedy(mono, mono_proc, "greedy_empty_prompt", "", 60, CFG_SCALE,
                                          mono_delays, keep_audio=False)
    cases["greedy_unconditional"] = greedy(mono, mono_proc, "greedy_unconditional", None, 60, 1.0,
                                           mono_delays, keep_audio=True, unconditional=True)
    cases["greedy_ascii_nocfg"] = greedy(mono, mono_proc, "greedy_ascii_nocfg", PROMPTS["ascii"], 60, 1.0,
                                         mono_delays, keep_audio=False)

    stereo, stereo_proc = load(STEREO)
    cases["tf_stereo"] = teacher_forcing(stereo, stereo_proc, "tf_stereo", PROMPTS["ascii"], frames=3,
                                         delays=stereo_delays, cols_kept=6, seed=11, intermediates=False,
                                         cond_uncond=False)
    cases["greedy_stereo"] = greedy(stereo, stereo_proc, "greedy_stereo", PROMPTS["ascii"], 30, CFG_SCALE,
                                    stereo_delays, keep_audio=True)
    sdpa_err = sdpa_agrees(MONO, PROMPTS["ascii"])
    print(f"eager vs sdpa max |diff| {sdpa_err:.2e}")

    import transformers
    write_json(os.path.join(GOLDEN, "musicgen", "index.json"), {
        "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, fp32 CPU, eager "
                     f"attention, batch 1 (CFG doubles it: cond row first, null row second)",
        "models": {"mono": "tests/data/models/musicgen_tiny", "stereo": "tests/data/models/musicgen_stereo_tiny"},
        "special_token": SPECIAL,
        "eager_vs_sdpa_max_abs": sdpa_err,
        "tensors": {
            "teacher_forcing": "input_ids [T_text]; projected [T_text, D] (enc_to_dec_proj, masked); codes [K, "
                               "frames] (random); decoder_input_ids [K, S] = delay pattern of codes (column 0 and "
                               "invalid cells = 2048), cut to S columns; logits_cond / logits_uncond / logits_cfg "
                               "[S, K, 2048] (cond/uncond only where has_cond_uncond) for one forward over "
                               "all S columns (column s predicts column s+1); "
                               "cfg = uncond + 3 * (cond - uncond). The null row uses zeros as encoder states "
                               "and an all-zero attention mask. inter.embed_sum [2, S, D] (sum of the K "
                               "embeddings), inter.positions [S, D], inter.layers.{i} [2, S, D] (output of "
                               "decoder layer i), inter.layer_norm [2, S, D] (final norm, before the heads).",
            "greedy": "input_ids [T_text] (absent for unconditional); codes [K, frames] after reverting the "
                      "delay pattern (HF generate, do_sample=False, max_new_tokens=steps, frames = steps - 3); "
                      "stereo codes are interleaved [L0,R0,L1,R1,...]; cfg_logits_first_steps [3, K, 2048] "
                      "(where listed) = "
                      "the guided logits of the first 3 calls; audio [channels, frames*640] = EnCodec decode "
                      "(only where 'audio' is true).",
        },
        "pins": [
            "Delay pattern: codebook k at column s holds frame s-1-d_k; T frames need T+3 calls "
            "(steps = frames+3).",
            "Positions: position = number of columns already in the cache (cached and full forwards agree: "
            "cached_vs_full_max_abs).",
            "Null condition = zero encoder states with an all-zero mask; with the mask left out, "
            "enc_to_dec_proj.bias leaks into the null row (null_row_change_if_mask_omitted > 0) - HF generate "
            "always passes the mask, so the goldens have it. With a zero mask the null row's cross-attention "
            "output is exactly 0 whatever the masking (zero K/V, no biases).",
            "CFG on raw logits, cond row first: l = l_null + 3 * (l_cond - l_null), then argmax per codebook.",
            "greedy_empty_prompt: HF tokenizes '' as [</s>] with mask 1, so the 'empty' prompt is conditioned on "
            "T5('</s>') (not null). audiocraft instead zeroes the mask of an empty description, which makes it "
            "behave like the null condition; greedy_unconditional is that (HF get_unconditional_inputs: one zero "
            "state, mask 0, guidance 1).",
            "greedy_ascii_nocfg: guidance_scale 1 -> batch of 1, no null row.",
            "Every greedy case was re-run with the spec section 6.8 loop (one column per call, KV cache) and "
            "gives the same codes as HF generate.",
        ],
        "cases": cases})


if __name__ == "__main__":
    sys.exit(main())
