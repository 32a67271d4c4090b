#!/usr/bin/env python3
"""`.ecdc` container goldens: files written by Meta's `encodec` package, plus hostile files.

The container (encodec/binary.py, encodec/compress.py):
  header   '!4sBI' = magic b"ECDC", uint8 version 0, big-endian uint32 JSON length
  metadata JSON (Python json.dumps default spacing): {"m": model name, "al": audio length,
           "nc": codebooks, "lm": use_lm}
  body     per segment (48 kHz: one per 1 s segment; else one): [big-endian f32 scale if the model
           normalises] + codes packed LSB-first, `bits = log2(bins)` each, t outer / k inner,
           flushed to a whole byte at the end of each segment. With "lm": true the body is instead
           arithmetic-coded with an LM (not supported by the C++ port; one such file is here so its
           error path is tested).

How the files are made:
  * 24 kHz and 48 kHz: `encodec.compress.compress(model, wav, use_lm=...)` itself, on the `encodec`
    package's own EncodecModel built with its internal constructors (SEANetEncoder, SEANetDecoder,
    ResidualVectorQuantizer, EncodecModel; no download) and loaded with the tiny HF weights
    (tests/data/models/encodec_*_tiny), so the codes equal those of the HF goldens. The script checks
    that, and that `encodec.compress.decompress` reads every file back.
  * 32 kHz: Meta's tool has no 32 kHz model (MODELS = 24k, 48k only), so the same container is
    written by `write_ecdc` below, a re-implementation that is checked byte-for-byte against the
    package on every 24k/48k case first. Meta's reader then reads it back.
  * use_lm=True: the package's LM checkpoint cannot be downloaded here; `get_lm_model` is replaced by
    the same LMModel architecture with its seeded random init (torch.manual_seed(1234), exactly what
    get_lm_model does before loading), so the file is valid for that LM only.
  * hostile files: bad magic, bad version, truncated header / body / 48k scale, a JSON length past
    the end of the file, and broken JSON. index.json records what Meta's reader raises on each.

Writes tests/data/golden/ecdc/: <case>.ecdc, <case>.safetensors (codes: `codes` [K, T] or
`codes_seg<i>` [K, T_i] per 48k segment, `scales` [S] f32), <case>.json (the exact metadata), and
index.json. Run after make_encodec_models.py:
  tools/reference/.venv/bin/python tools/reference/make_ecdc_goldens.py
"""

import argparse
import io
import json
import math
import os
import shutil
import struct
import sys

import torch
from safetensors.torch import save_file
from transformers import EncodecModel as HFEncodecModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_encodec_models import MODELS_DIR, ROOT  # noqa: E402
from make_encodec_goldens import MUSIC_CASES, case_inputs, encode_segments  # noqa: E402

import encodec  # noqa: E402
from encodec import binary as ecdc_binary  # noqa: E402
import encodec.compress  # noqa: E402,F401  (the package re-exports a function of the same name)
ecdc_compress = sys.modules["encodec.compress"]
from encodec import modules as em  # noqa: E402
from encodec import quantization as eq  # noqa: E402
from encodec.model import EncodecModel as PkgEncodecModel, LMModel  # noqa: E402

OUT_DIR = os.path.join(ROOT, "tests", "data", "golden", "ecdc")

# case -> (tiny model, golden input case in tests/data/golden/encodec, bandwidth kbps, use_lm)
CASES = {
    "24k_music_bach_6kbps": ("encodec_24khz_tiny", "music_bach", 6.0, False),      # 80 bits/frame
    "24k_music_bach_1.5kbps": ("encodec_24khz_tiny", "music_bach", 1.5, False),    # 20 bits/frame
    "24k_short_200_24kbps": ("encodec_24khz_tiny", "short_200", 24.0, False),      # 1 frame, 32 cb
    "48k_music_3seg_6kbps": ("encodec_48khz_tiny", "music_3seg", 6.0, False),      # 3 segments
    "48k_music_3seg_3kbps": ("encodec_48khz_tiny", "music_3seg", 3.0, False),      # partial bytes
    "48k_silence_12kbps": ("encodec_48khz_tiny", "silence", 12.0, False),          # scale 1e-8
    "32k_music_drums_2.2kbps": ("encodec_32khz_tiny", "music_drums", 2.2, False),  # 44 bits/frame
    "32k_short_500_2.2kbps": ("encodec_32khz_tiny", "short_500", 2.2, False),
    "24k_noise_3kbps_lm": ("encodec_24khz_tiny", "noise", 3.0, True),              # entropy-coded
}
REAL_NAME = {"encodec_24khz_tiny": "encodec_24khz", "encodec_32khz_tiny": "encodec_32khz",
             "encodec_48khz_tiny": "encodec_48khz"}


# ----------------------------------------------------------------------------------------------
# The `encodec` package's model, built from its internal constructors with the tiny HF weights


def package_model_from_hf(hf, name):
    cfg = hf.config
    common = dict(channels=cfg.audio_channels, dimension=cfg.hidden_size, n_filters=cfg.num_filters,
                  n_residual_layers=cfg.num_residual_layers, ratios=list(cfg.upsampling_ratios),
                  norm=cfg.norm_type, kernel_size=cfg.kernel_size,
                  last_kernel_size=cfg.last_kernel_size,
                  residual_kernel_size=cfg.residual_kernel_size,
                  dilation_base=cfg.dilation_growth_rate, causal=cfg.use_causal_conv,
                  pad_mode=cfg.pad_mode, true_skip=not cfg.use_conv_shortcut,
                  compress=cfg.compress, lstm=cfg.num_lstm_layers)
    encoder = em.SEANetEncoder(**common)
    decoder = em.SEANetDecoder(**common, trim_right_ratio=cfg.trim_right_ratio)
    quantizer = eq.ResidualVectorQuantizer(dimension=cfg.hidden_size, n_q=cfg.num_quantizers,
                                           bins=cfg.codebook_size)
    model = PkgEncodecModel(encoder, decoder, quantizer, list(cfg.target_bandwidths),
                            cfg.sampling_rate, cfg.audio_channels, normalize=cfg.normalize,
                            segment=cfg.chunk_length_s, overlap=cfg.overlap or 0.01, name=name)
    model.load_state_dict(hf_to_package_state_dict(hf, model), strict=True)
    return model.eval()


def hf_to_package_state_dict(hf, pkg):
    """HF keys -> encodec package keys (the MAPPING of HF's convert_encodec_checkpoint, inverted)."""
    from transformers.models.encodec import modeling_encodec as me

    wanted = set(pkg.state_dict().keys())
    out = {}
    for key, value in hf.state_dict().items():
        parts = key.split(".")
        if parts[0] == "quantizer":  # quantizer.layers.q.codebook.X
            new = f"quantizer.vq.layers.{parts[2]}._codebook.{parts[4]}"
        else:
            stack, idx = parts[0], parts[2]
            rest = parts[3:]
            mod = getattr(hf, stack).layers[int(idx)]
            prefix = [stack, "model", idx]
            if rest[0] == "lstm":
                new = ".".join(prefix + rest)
            else:
                if rest[0] in ("block", "shortcut"):  # resnet block: block.1.conv.* / shortcut.conv.*
                    n = 2 if rest[0] == "block" else 1
                    prefix += rest[:n]
                    rest = rest[n:]
                outer = "convtr" if isinstance(mod, me.EncodecConvTranspose1d) else "conv"
                if rest[0] == "norm":
                    new = ".".join(prefix + [outer, "norm"] + rest[1:])
                else:
                    tail = ".".join(rest[1:])
                    tail = tail.replace("parametrizations.weight.original0", "weight_g")
                    tail = tail.replace("parametrizations.weight.original1", "weight_v")
                    new = ".".join(prefix + [outer, outer, tail])
        if new not in wanted:
            raise KeyError(f"no package key for HF key {key} (tried {new})")
        out[new] = value
    missing = wanted - set(out)
    if missing:
        raise KeyError(f"package keys not filled from HF: {sorted(missing)[:5]}")
    return out


def seeded_random_lm(model):
    """What EncodecModel.get_lm_model builds before loading its checkpoint (no download here)."""
    torch.manual_seed(1234)
    lm = LMModel(model.quantizer.n_q, model.quantizer.bins, num_layers=5, dim=200,
                 past_context=int(3.5 * model.frame_rate))
    return lm.eval()


# ----------------------------------------------------------------------------------------------
# Re-implementation of the writer (used for 32 kHz; checked against the package on 24k/48k)


def write_ecdc(model_name, audio_length, bits, segments):
    """segments: list of (codes int64 [K, T], scale float or None). Returns the file bytes."""
    meta = {"m": model_name, "al": int(audio_length), "nc": int(segments[0][0].shape[0]),
            "lm": False}
    meta_bytes = json.dumps(meta).encode("utf-8")
    out = bytearray(struct.pack("!4sBI", b"ECDC", 0, len(meta_bytes)))
    out += meta_bytes
    for codes, scale in segments:
        if scale is not None:
            out += struct.pack("!f", float(scale))
        acc, nbits = 0, 0
        for t in range(codes.shape[1]):
            for k in range(codes.shape[0]):
                acc |= int(codes[k, t]) << nbits
                nbits += bits
                while nbits >= 8:
                    out.append(acc & 0xFF)
                    acc >>= 8
                    nbits -= 8
        if nbits:
            out.append(acc)
    return bytes(out)


# ----------------------------------------------------------------------------------------------


def read_back(data, pkg_models):
    """Meta's reader on `data`, with its pretrained-model table pointed at the tiny models."""
    saved = dict(ecdc_compress.MODELS)
    try:
        for name, model in pkg_models.items():
            ecdc_compress.MODELS[name] = (lambda m=model: m)
        return ecdc_compress.decompress(data)
    finally:
        ecdc_compress.MODELS.clear()
        ecdc_compress.MODELS.update(saved)


def parse_codes(data, bits, seg_frames, normalize):
    """Independent reader used to extract the codes a file holds (and to check the writers)."""
    magic, version, n = struct.unpack("!4sBI", data[:9])
    meta = json.loads(data[9:9 + n].decode("utf-8"))
    pos = 9 + n
    segments = []
    for frames in seg_frames:
        scale = None
        if normalize:
            scale = struct.unpack("!f", data[pos:pos + 4])[0]
            pos += 4
        unpacker = ecdc_binary.BitUnpacker(bits, io.BytesIO(data[pos:]))
        codes = torch.tensor([[0] * frames for _ in range(meta["nc"])], dtype=torch.int64)
        for t in range(frames):
            for k in range(meta["nc"]):
                codes[k, t] = unpacker.pull()
        pos += math.ceil(frames * meta["nc"] * bits / 8)
        segments.append((codes, scale))
    assert pos == len(data), (pos, len(data))
    return meta, segments


def segment_frames(model, length):
    seg = model.segment_length or length
    stride = model.segment_stride or length
    return [int(math.ceil(min(length - off, seg) / model.sample_rate * model.frame_rate))
            for off in range(0, length, stride)]


def python_error(data, pkg_models):
    try:
        read_back(data, pkg_models)
    except Exception as e:  # noqa: BLE001 - recording what the reference raises is the point
        return f"{type(e).__name__}: {e}"
    return None


# What a reader must say (the C++ side throws mg::Error naming this). Meta's own messages are kept
# in index.json as python_error but are not the spec: its _read_exactly compares the bytes read
# against the bytes *still missing*, so short reads can return too little data and surface as a
# struct/JSON/Unicode error instead of EOFError.
HOSTILE_EXPECT = {
    "hostile_bad_magic": "not an ECDC file (magic is not 'ECDC')",
    "hostile_bad_version": "unsupported ECDC version 1 (only 0)",
    "hostile_truncated_header": "truncated header (6 of 9 bytes)",
    "hostile_json_len_past_end": "metadata length runs past the end of the file",
    "hostile_truncated_json": "metadata length runs past the end of the file",
    "hostile_bad_json": "metadata is not valid JSON",
    "hostile_truncated_body": "code stream ends before metadata.al samples are covered",
    "hostile_48k_truncated_scale": "file ends inside a segment scale",
}


def hostile_files(base_24k, base_48k):
    n = struct.unpack("!I", base_24k[5:9])[0]
    meta_end = 9 + n
    bad_json = bytearray(base_24k)
    bad_json[9] = ord("[")  # '{' -> '[': JSON that does not parse
    over = bytearray(base_24k)
    over[5:9] = struct.pack("!I", len(base_24k) + 100)
    n48 = struct.unpack("!I", base_48k[5:9])[0]
    return {
        "hostile_bad_magic": b"ECDX" + base_24k[4:],
        "hostile_bad_version": base_24k[:4] + bytes([1]) + base_24k[5:],
        "hostile_truncated_header": base_24k[:6],
        "hostile_json_len_past_end": bytes(over),
        "hostile_truncated_json": base_24k[: meta_end - 3],
        "hostile_bad_json": bytes(bad_json),
        "hostile_truncated_body": base_24k[:-5],
        "hostile_48k_truncated_scale": base_48k[: 9 + n48 + 2],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=OUT_DIR)
    args = ap.parse_args()
    torch.set_num_threads(2)
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)

    hf_models, pkg_models, inputs = {}, {}, {}
    for tiny in MUSIC_CASES:
        hf = HFEncodecModel.from_pretrained(os.path.join(MODELS_DIR, tiny)).eval()
        hf_models[tiny] = hf
        pkg_models[REAL_NAME[tiny]] = package_model_from_hf(hf, REAL_NAME[tiny])
        inputs[tiny] = {k: v[0] for k, v in case_inputs(tiny, hf.config).items()}

    index = {"about": "ECDC container goldens; see tools/reference/make_ecdc_goldens.py",
             "encodec_package_version": getattr(encodec, "__version__", "?"),
             "cases": {}}
    written = {}
    for case, (tiny, input_case, bw, use_lm) in CASES.items():
        hf, name = hf_models[tiny], REAL_NAME[tiny]
        pkg = pkg_models[name]
        x = inputs[tiny][input_case]
        pkg.set_target_bandwidth(bw)
        with torch.no_grad():
            frames = pkg.encode(x[None])
            hf_frames = encode_segments(hf, x[None], bw)
        # The package and HF's per-segment path (= HF >= PR #39431 on unpadded input) must agree.
        assert len(frames) == len(hf_frames), case
        for i, ((codes, scale), (hf_codes, hf_scale)) in enumerate(zip(frames, hf_frames)):
            assert torch.equal(codes, hf_codes), f"{case}: package and HF codes differ (seg {i})"
            if scale is not None:
                assert torch.equal(scale.view(()), hf_scale.view(())), case
        segments = [(c[0], None if s is None else float(s.view(()))) for c, s in frames]
        bits = pkg.bits_per_codebook
        if name in ("encodec_24khz", "encodec_48khz"):
            if use_lm:
                pkg.get_lm_model = lambda m=pkg: seeded_random_lm(m)
            data = ecdc_compress.compress(pkg, x, use_lm=use_lm)
            writer = f"encodec package {getattr(encodec, '__version__', '?')} compress()"
            if not use_lm:
                assert data == write_ecdc(name, x.shape[-1], bits, segments), \
                    f"{case}: re-implemented writer differs from the package"
        else:
            data = write_ecdc(name, x.shape[-1], bits, segments)
            writer = "make_ecdc_goldens.write_ecdc (re-implementation; Meta's tool has no 32 kHz)"
        wav, sr = read_back(data, pkg_models)  # Meta's reader must accept it
        if not use_lm:
            meta, parsed = parse_codes(data, bits, segment_frames(pkg, x.shape[-1]), pkg.normalize)
            for (a, sa), (b, sb) in zip(parsed, segments):
                assert torch.equal(a, b) and (sa is None or struct.pack("!f", sa) ==
                                              struct.pack("!f", sb)), case
            with torch.no_grad():
                ref = pkg.decode(frames)[0, :, : x.shape[-1]]
            assert torch.equal(wav, ref), f"{case}: decompress differs from decode"
        meta = ecdc_binary.read_ecdc_header(io.BytesIO(data))
        tensors = {}
        if len(segments) == 1 and segments[0][1] is None:
            tensors["codes"] = segments[0][0].contiguous()
        else:
            for i, (c, _) in enumerate(segments):
                tensors[f"codes_seg{i}"] = c.contiguous()
        if segments[0][1] is not None:
            tensors["scales"] = torch.tensor([s for _, s in segments], dtype=torch.float32)
        base = os.path.join(args.out, case)
        with open(base + ".ecdc", "wb") as f:
            f.write(data)
        save_file(tensors, base + ".safetensors")
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        hdr = 9 + struct.unpack("!I", data[5:9])[0]
        index["cases"][case] = dict(
            tiny_model=f"tests/data/models/{tiny}", encodec_golden_input=f"{tiny}/{input_case}",
            bandwidth=bw, writer=writer, metadata=meta, header_json=data[9:hdr].decode(),
            file_bytes=len(data), header_bytes=hdr, bits_per_code=bits,
            segment_frames=segment_frames(pkg, x.shape[-1]),
            scales=[s for _, s in segments] if segments[0][1] is not None else None,
            expect="ok" if not use_lm else "C++: entropy-coded (lm: true) .ecdc is not supported",
            decoded_audio="equals tests/data/golden/encodec/" f"{tiny}/{input_case} decoded_bw%g "
                          "trimmed to metadata.al (same input, same codes)" % bw)
        written[case] = data
        print(f"{case}: {len(data)} bytes, nc={meta['nc']}, segments={len(segments)}, {writer}")

    for case, data in hostile_files(written["24k_music_bach_6kbps"],
                                    written["48k_music_3seg_6kbps"]).items():
        err = python_error(data, pkg_models)
        assert err is not None, f"{case}: Meta's reader accepted a hostile file"
        with open(os.path.join(args.out, case + ".ecdc"), "wb") as f:
            f.write(data)
        index["cases"][case] = dict(file_bytes=len(data), expect="error",
                                    error_kind=HOSTILE_EXPECT[case], python_error=err)
        print(f"{case}: {len(data)} bytes -> {err}")

    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"total {total / 1e3:.1f} kB in {args.out}")


if __name__ == "__main__":
    main()
