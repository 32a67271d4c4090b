#!/usr/bin/env python3
"""Build the tiny random-weight MusicGen snapshots used by the C++ tests (no download needed).

Writes, in the Hugging Face snapshot layout of facebook/musicgen-small:
  tests/data/models/musicgen_tiny/         mono, K=4 codebooks, delays 0,1,2,3
  tests/data/models/musicgen_stereo_tiny/  stereo, K=8 codebooks [L0,R0,L1,R1,...], delays 0,0,1,1,2,2,3,3
each with config.json, model.safetensors, generation_config.json, spiece.model, tokenizer_config.json and
preprocessor_config.json.

The structure is the real one (T5 encoder with relative buckets 32 / max distance 128 and ReLU FFN,
enc_to_dec_proj, pre-LN decoder with cross-attention and 2049-row embeddings, EnCodec 32 kHz with hop 640);
only the widths are tiny. The weights are seeded and rescaled so that logits are far from flat: with the
HF default init (std 0.02) every codebook's argmax would be nearly random noise around zero and greedy
decoding would not exercise anything.

Run with the reference venv:  tools/reference/.venv/bin/python tools/reference/make_musicgen_models.py
"""
import io
import os
import shutil
import sys
import tempfile

import sentencepiece as spm
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    EncodecConfig,
    EncodecFeatureExtractor,
    GenerationConfig,
    MusicgenConfig,
    MusicgenDecoderConfig,
    MusicgenForConditionalGeneration,
    MusicgenProcessor,
    T5Config,
    T5Tokenizer,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "data", "models")

SPM_VOCAB = 256          # sentencepiece pieces (ids 0..255); T5Tokenizer adds 100 <extra_id_N> after them
T5_VOCAB = 384           # config vocab, padded past 256 + 100 like t5-base pads 32100 to 32128
SEED = 1234

# --- 1. tokenizer ------------------------------------------------------------------------------

GENRES = ["jazz", "rock", "pop", "classical", "ambient", "techno", "house", "hip hop", "folk", "blues",
          "reggae", "metal", "funk", "soul", "lo-fi", "orchestral", "cinematic", "disco", "bossa nova",
          "country", "trance", "drum and bass", "synthwave", "flamenco", "k-pop", "j-pop", "gamelan"]
INSTRUMENTS = ["piano", "guitar", "acoustic guitar", "electric guitar", "bass", "drums", "violin",
               "cello", "saxophone", "trumpet", "flute", "synthesizer", "organ", "strings", "choir",
               "harp", "marimba", "sitar", "koto", "shamisen", "erhu", "808 kick", "hi-hats", "claps"]
MOODS = ["happy", "sad", "calm", "energetic", "dark", "bright", "dreamy", "epic", "relaxing", "upbeat",
         "melancholic", "groovy", "peaceful", "intense", "warm", "slow", "fast", "catchy", "gentle"]
EXTRA_LINES = [
    "80s pop track with bassy drums and synth",
    "90s rock song with loud guitars and heavy drums",
    "a light and cheerly EDM track, with syncopated drums, aery pads, and strong emotions, bpm: 130",
    "lofi slow bpm electro chill with organic samples",
    "An 80s driving pop song with heavy drums and synth pads in the background",
    "a duck quacking as birds chirp and a pigeon cooing",
    "café music with an accordion, très élégant, for a naïve señor at the fête in Zürich",
    "Beyoncé style R&B, smooth vocals, über cool groove, Müller's résumé, crème brûlée",
    "Ça va? Où est la musique? Straße, façade, jalapeño, São Paulo, Kraków, Ångström",
    "日本の音楽 with 琴 and 尺八, 静かな夜, 桜の歌",
    "中国古典音乐, 二胡 and 古筝, 春江花月夜",
    "한국 음악, 가야금 and drums",
    "tempo 120 bpm, 4/4 time, key of C major, 3 minutes",
    "tempo 90 bpm, 6/8 time, key of A minor, 2:30 long",
    "the quick brown fox jumps over the lazy dog while a band plays",
]


def corpus_lines():
    lines = list(EXTRA_LINES)
    # Deterministic combinations so every word appears in several contexts (unigram needs counts).
    for i, g in enumerate(GENRES):
        for j in range(6):
            ins = INSTRUMENTS[(i * 5 + j * 7) % len(INSTRUMENTS)]
            ins2 = INSTRUMENTS[(i * 3 + j * 11 + 1) % len(INSTRUMENTS)]
            mood = MOODS[(i * 7 + j * 3) % len(MOODS)]
            bpm = 60 + (i * 13 + j * 17) % 120
            lines.append(f"{mood} {g} song with {ins} and {ins2}, {bpm} bpm")
            lines.append(f"A {mood} {g} track featuring a {ins} solo, perfect for the beach")
    # The accented and CJK lines again, so their characters are frequent enough to survive as pieces.
    lines += EXTRA_LINES[6:12] * 4
    return lines


def train_sentencepiece(out_path):
    """Unigram like T5's spiece.model: pad=0, eos=1, unk=2, no BOS, nmt_nfkc, no byte fallback."""
    # Trained from an iterator into memory: with input/model_prefix paths the proto would record the
    # temporary folder's name and the file would differ from run to run.
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()), model_writer=model, model_type="unigram",
        vocab_size=SPM_VOCAB, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        character_coverage=1.0, byte_fallback=False, normalization_rule_name="nmt_nfkc",
        add_dummy_prefix=True, remove_extra_whitespaces=True, split_digits=False,
        hard_vocab_limit=True, seed_sentencepiece_size=100000, num_threads=1, minloglevel=2)
    with open(out_path, "wb") as f:
        f.write(model.getvalue())


# --- 2. model ----------------------------------------------------------------------------------

def t5_config():
    # t5-base's encoder config with tiny widths (d_model 768 -> 32, 12 heads x 64 -> 4 x 8, d_ff 4x).
    # d_model differs from the decoder width on purpose: HF only creates enc_to_dec_proj when they differ.
    return T5Config(
        vocab_size=T5_VOCAB, d_model=32, d_kv=8, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.1,
        layer_norm_epsilon=1e-6, initializer_factor=1.0, feed_forward_proj="relu", is_encoder_decoder=True,
        use_cache=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=True)


def encodec_config():
    # facebook/encodec_32khz with tiny widths: same ratios (hop 640, 50 Hz), 4 codebooks of 2048 at 2.2 kbps,
    # non-causal, reflect padding, no conv shortcut (the current hub config).
    return EncodecConfig(
        target_bandwidths=[2.2], sampling_rate=32000, audio_channels=1, normalize=False,
        chunk_length_s=None, overlap=None, hidden_size=4, num_filters=2, num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 4], norm_type="weight_norm", kernel_size=7, last_kernel_size=7,
        residual_kernel_size=3, dilation_growth_rate=2, use_causal_conv=False, pad_mode="reflect",
        compress=2, num_lstm_layers=2, trim_right_ratio=1.0, codebook_size=2048, codebook_dim=4,
        use_conv_shortcut=False)


def decoder_config(stereo):
    # The K x 2049 x D embeddings and K x 2048 x D heads dominate the file size, hence the narrow widths
    # (the stereo model has twice the tables, so it is narrower still; 4 heads are kept in both).
    hidden = 8 if stereo else 24
    return MusicgenDecoderConfig(
        vocab_size=2048, max_position_embeddings=2048, num_hidden_layers=2 if stereo else 3,
        ffn_dim=4 * hidden, num_attention_heads=4, layerdrop=0.0, use_cache=True, activation_function="gelu",
        hidden_size=hidden, dropout=0.1, attention_dropout=0.0, activation_dropout=0.0,
        initializer_factor=0.02, scale_embedding=False, num_codebooks=8 if stereo else 4,
        audio_channels=2 if stereo else 1, pad_token_id=2048, bos_token_id=2048, eos_token_id=None,
        tie_word_embeddings=False)


@torch.no_grad()
def rescale_weights(model, gen):
    """Re-draw every weight so that activations have O(1) scale and logits a spread of a few units."""
    def normal(t, std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=gen) * std + mean)

    for name, p in model.named_parameters():
        if name.startswith("audio_encoder."):
            continue
        if "layer_norm" in name or name.endswith("final_layer_norm.weight"):
            # Norm weights near 1 and (LayerNorm) biases near 0, but not exactly: a missing affine fails.
            normal(p, 0.1, 1.0 if name.endswith("weight") else 0.0)
        elif "relative_attention_bias" in name:
            normal(p, 1.0)
        elif "embed_tokens" in name or name.endswith("shared.weight"):
            normal(p, 1.0)
        elif "lm_heads" in name:
            normal(p, 3.0 / p.shape[1] ** 0.5)
        elif name.endswith("bias"):
            normal(p, 0.5)   # only enc_to_dec_proj.bias: large, so a missing mask visibly leaks it
        else:
            normal(p, 1.0 / p.shape[-1] ** 0.5)

    codec = model.audio_encoder
    for layer in codec.quantizer.layers:
        cb = layer.codebook
        # Wide codebooks so that the decoded audio depends on the codes well above its DC offset.
        cb.embed.copy_(torch.randn(cb.embed.shape, generator=gen) * 5.0)
        cb.embed_avg.copy_(cb.embed)
        cb.cluster_size.fill_(1.0)
        cb.inited.fill_(1.0)


def build(folder, stereo, spiece_path):
    torch.manual_seed(SEED + int(stereo))
    gen = torch.Generator().manual_seed(SEED + int(stereo))
    config = MusicgenConfig(text_encoder=t5_config().to_dict(), audio_encoder=encodec_config().to_dict(),
                            decoder=decoder_config(stereo).to_dict())
    model = MusicgenForConditionalGeneration(config).eval()
    rescale_weights(model, gen)

    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    model.save_pretrained(folder)
    write_hub_weight_norm_names(os.path.join(folder, "model.safetensors"))

    # Same generation settings as the converted facebook/musicgen-* checkpoints.
    GenerationConfig(
        decoder_start_token_id=2048, pad_token_id=2048, bos_token_id=2048, max_length=1500,
        do_sample=True, guidance_scale=3.0).save_pretrained(folder)

    # Hub layout: spiece.model + tokenizer_config.json and a preprocessor_config.json for the EnCodec
    # feature extractor (transformers 5 would otherwise fold it into a processor_config.json, which the
    # hub snapshots do not have). No tokenizer.json: 360 kB (mostly the nmt_nfkc charsmap again) that
    # the C++ never reads; HF rebuilds it from spiece.model (needs protobuf).
    shutil.copyfile(spiece_path, os.path.join(folder, "spiece.model"))
    tokenizer = T5Tokenizer.from_pretrained(folder, extra_ids=100)
    tokenizer.save_pretrained(folder)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=32000, padding_value=0.0, chunk_length_s=None,
                            overlap=None).save_pretrained(folder)
    shutil.copyfile(spiece_path, os.path.join(folder, "spiece.model"))
    os.remove(os.path.join(folder, "tokenizer.json"))
    return model


def write_hub_weight_norm_names(path):
    """Rename parametrizations.weight.original0/1 -> weight_g/weight_v, as in the hub's model.safetensors.

    The released checkpoints were written with torch's old weight_norm names; transformers 5 maps them
    back on load (conversion_mapping 'legacy'), so both spellings load in HF. The C++ loader must accept
    the hub spelling first, hence the tiny models use it.
    """
    tensors = load_file(path)
    renamed = {}
    for key, value in tensors.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        renamed[key] = value.contiguous()
    save_file(renamed, path, metadata={"format": "pt"})
    os.chmod(path, 0o644)


@torch.no_grad()
def check_reload(folder):
    """The written snapshot must load back in HF with every weight (no fresh init) and the tokenizer."""
    model, info = MusicgenForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if "embed_positions" not in k]
    if missing or info["unexpected_keys"] or info["mismatched_keys"]:
        raise RuntimeError(f"{folder}: reload mismatch {info}")
    processor = MusicgenProcessor.from_pretrained(folder)
    ids = processor(text=["happy jazz"], return_tensors="pt").input_ids[0].tolist()
    if ids[-1] != 1:
        raise RuntimeError(f"{folder}: tokenizer does not append </s>: {ids}")


def folder_size(folder):
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def main():
    os.makedirs(MODELS, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        spiece = os.path.join(tmp, "spiece.model")
        train_sentencepiece(spiece)
        for name, stereo in (("musicgen_tiny", False), ("musicgen_stereo_tiny", True)):
            folder = os.path.join(MODELS, name)
            build(folder, stereo, spiece)
            check_reload(folder)
            files = sorted(os.listdir(folder))
            print(f"{name}: {folder_size(folder) / 1e6:.2f} MB  {files}")


if __name__ == "__main__":
    sys.exit(main())
