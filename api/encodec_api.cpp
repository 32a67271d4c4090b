// The model half of include/encodec.h: encodec_model (a loaded EnCodec, read-only), encodec_session
// (one thread's backend), codes, and .ecdc files. Every entry point runs its body through guard()
// (api/api_internal.h), which turns anything thrown into a status and the per-thread message.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "codec/atomic_file.h"
#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "codec/device_self_check.h"
#include "codec/ecdc.h"
#include "codec/ecdc_stream.h"
#include "codec/encodec.h"
#include "encodec.h"
#include "kernels/common.h"
#include "kernels/ops.h"

#include "api/api_internal.h"

using mg::capi::ArgumentError;
using mg::capi::FormatError;
using mg::capi::IoError;
using mg::capi::fail;
using mg::capi::guard;

struct encodec_session {
  const encodec_model* model;
  mg::capi::SessionBackend backend;
  encodec_session(const encodec_model* m, int n_threads) : model(m), backend(*m->device, n_threads) {}
  const mg::EncodecModel& codec() const { return *model->model; }
};

namespace {

namespace fs = std::filesystem;

// `kbps`, or the model's highest bandwidth for kbps <= 0.
double bandwidth_or_highest(const mg::EncodecModel& m, double kbps) {
  return kbps <= 0 ? m.config().target_bandwidths.back() : kbps;
}

// The codebooks for `kbps` (<= 0: all), or an ArgumentError listing the valid bandwidths.
int codebooks_for(const mg::EncodecModel& m, double kbps) {
  try {
    return m.num_codebooks_for_bandwidth(bandwidth_or_highest(m, kbps));
  } catch (const mg::Error& e) {
    throw ArgumentError(e.what());
  }
}

// Planar buffer -> host tensor [C, L] at the model's rate and channels (audiocraft's convert_audio
// when they differ). `buf` is consumed so that a long file is held at most twice.
mg::Tensor model_input(const mg::EncodecModel& m, mg::AudioBuffer buf) {
  mg::check_audio_buffer(buf, "input audio");
  if (buf.sample_rate != m.sample_rate() || buf.num_channels() != m.channels())
    buf = mg::convert_audio(buf, m.sample_rate(), m.channels());
  const int64_t C = buf.num_channels(), L = buf.num_frames();
  if (L == 0) throw FormatError("input audio has no samples");
  mg::Tensor x = mg::Tensor::empty(mg::DType::F32, {C, L});
  for (int64_t c = 0; c < C; ++c) {
    std::memcpy(x.f32() + c * L, buf.channels[size_t(c)].data(), size_t(L) * sizeof(float));
    std::vector<float>().swap(buf.channels[size_t(c)]);
  }
  return x;
}

mg::AudioBuffer to_buffer(mg::Tensor& y, int sample_rate) {
  mg::AudioBuffer out;
  out.sample_rate = sample_rate;
  const int64_t C = y.dim(0), L = y.dim(1);
  for (int64_t c = 0; c < C; ++c) out.channels.emplace_back(y.f32() + c * L, y.f32() + (c + 1) * L);
  y = mg::Tensor();
  return out;
}

mg::AudioBuffer buffer_of(const encodec_audio* a) {
  mg::AudioBuffer b;
  b.sample_rate = encodec_audio_sample_rate(a);
  const int64_t n = encodec_audio_frames(a);
  for (int c = 0; c < encodec_audio_channels(a); ++c) {
    const float* p = encodec_audio_channel_data_const(a, c);
    b.channels.emplace_back(p, p + n);
  }
  return b;
}

encodec_audio* new_audio(const mg::Tensor& y, int sample_rate) {
  encodec_audio* a = nullptr;
  const int64_t C = y.dim(0), L = y.dim(1);
  if (encodec_audio_create(sample_rate, int(C), L, &a) != MUSICGEN_OK) throw mg::Error(musicgen_last_error());
  for (int64_t c = 0; c < C; ++c)
    std::memcpy(encodec_audio_channel_data(a, int(c)), y.f32() + c * L, size_t(L) * sizeof(float));
  return a;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(mg::strcat("'", path, "' does not exist"));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(mg::strcat("cannot open '", path, "' for reading"));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw IoError(mg::strcat("error reading '", path, "'"));
  return bytes;
}

// Through the shared AtomicFile (temporary file, checked writes, fsync, rename; devices and FIFOs
// refused); its failures are I/O errors to the C API.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  try {
    mg::write_file_atomic(path, bytes);
  } catch (const mg::Error& e) {
    throw IoError(e.what());
  }
}

mg::EncodedAudio parse_ecdc(const encodec_model* model, const std::vector<uint8_t>& bytes, const std::string& what) {
  mg::EcdcHeader h;
  try {
    h = mg::ecdc_read_header(bytes);
  } catch (const mg::Error& e) {
    throw FormatError(what + ": " + e.what());
  }
  if (!h.lm && h.model != model->ecdc_name) {
    try {
      mg::ecdc_model_info(h.model);
    } catch (const mg::Error& e) {
      throw FormatError(what + ": " + e.what());
    }
    const std::string loaded = model->ecdc_name.empty() ? "a non-standard EnCodec" : model->ecdc_name;
    throw ArgumentError(mg::strcat(what, " was written with ", h.model, ", but the loaded model is ", loaded,
                                   ": use an ", h.model, " model (--model)"));
  }
  try {
    return mg::ecdc_read(bytes);
  } catch (const mg::Error& e) {
    throw FormatError(what + ": " + e.what());
  }
}

// An .ecdc of `codes` for `model`; refused, naming why, for a model without an .ecdc name.
std::vector<uint8_t> ecdc_bytes(const encodec_model* model, const mg::EncodedAudio& codes) {
  if (model->ecdc_name.empty())
    throw ArgumentError("cannot write an .ecdc file: " + model->ecdc_refusal +
                        "; its codes can still be encoded and decoded (encodec_session_encode/decode)");
  return mg::ecdc_write(mg::ecdc_model_info(model->ecdc_name, model->model->config()), codes);
}

// `codes`, with the audio length encodec_codes_create left open (<= 0) resolved for `m`: every
// frame decoded (one segment; a segmented model needs the length given).
mg::EncodedAudio with_length(const mg::EncodecModel& m, const mg::EncodedAudio& codes) {
  if (codes.length > 0) return codes;
  if (codes.segments.size() != 1 || m.config().chunk_length())
    throw ArgumentError("codes without an audio length: give encodec_codes_create the length for a model that "
                        "encodes in segments");
  mg::EncodedAudio c = codes;
  c.length = codes.segments[0].dim(1) * m.config().hop_length();
  return c;
}

// Runs a session's computation on its backend, holding the model's device while it does.
template <typename F>
auto on_session(encodec_session* s, F&& f) {
  auto lock = s->backend.lock();
  return f(s->backend.get());
}

// Runs `f`, turning a plain mg::Error (a file that cannot be read or written) into an IoError; the
// audio layer's data and request errors keep their kinds.
template <typename F>
auto as_io(F&& f) {
  try {
    return f();
  } catch (const mg::AudioDataError&) {
    throw;
  } catch (const mg::AudioRequestError&) {
    throw;
  } catch (const IoError&) {
    throw;
  } catch (const mg::Error& e) {
    throw IoError(e.what());
  }
}

// Runs `f`, turning an mg::Error into a FormatError about `what`.
template <typename F>
auto as_format(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const mg::Error& e) {
    throw FormatError(what + ": " + e.what());
  }
}

// A planar block -> host tensor [C, n].
mg::Tensor block_tensor(const mg::AudioBuffer& b) {
  const int64_t C = b.num_channels(), n = b.num_frames();
  mg::Tensor x = mg::Tensor::empty(mg::DType::F32, {C, n});
  for (int64_t c = 0; c < C; ++c) std::memcpy(x.f32() + c * n, b.channels[size_t(c)].data(), size_t(n) * sizeof(float));
  return x;
}

// The audio file at `path`, read block by block and converted to the model's rate and channels
// (audiocraft's convert_audio, StreamResampler-exact): an AudioBlockSource.
struct ModelInputStream {
  mg::AudioReader reader;
  mg::AudioConverter converter;
  bool ended = false;
  ModelInputStream(const std::string& path, const mg::EncodecModel& m)
      : reader(as_io([&] { return mg::AudioReader(path); })),
        converter(reader.sample_rate(), reader.channels(), m.sample_rate(), m.channels()) {}
  // The length the whole file will have at the model's rate, from the header (the .ecdc header's
  // first guess; an estimate for compressed inputs).
  int64_t expected_length(const mg::EncodecModel& m) const {
    // A stream of unknown length may report any count: past 2^40 frames it is no guess at all.
    if (reader.header_frames() <= 0 || reader.header_frames() >= (int64_t(1) << 40)) return 1;
    if (reader.sample_rate() == m.sample_rate()) return reader.header_frames();
    return mg::Resampler(reader.sample_rate(), m.sample_rate()).default_output_length(reader.header_frames());
  }
  mg::Tensor next() {
    mg::AudioBuffer block;
    while (!ended) {
      if (!as_io([&] { return reader.read(block); })) {
        ended = true;
        block = converter.finish();
      } else {
        block = converter.push(block);
      }
      if (block.num_frames() > 0) return block_tensor(block);
    }
    return mg::Tensor();
  }
};

// The .ecdc file at `path` opened for decoding with `model`: header, model name and body checked.
std::unique_ptr<mg::EcdcReader> open_ecdc(const encodec_model* model, const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(mg::strcat("'", path, "' does not exist"));
  const std::string what = mg::strcat("'", path, "'");
  auto in = as_format(what, [&] { return std::make_unique<mg::EcdcReader>(path); });
  const mg::EcdcHeader& h = in->header();
  if (!h.lm && h.model != model->ecdc_name) {
    as_format(what, [&] { return mg::ecdc_model_info(h.model); });
    const std::string loaded = model->ecdc_name.empty() ? "a non-standard EnCodec" : model->ecdc_name;
    throw ArgumentError(mg::strcat(what, " was written with ", h.model, ", but the loaded model is ", loaded,
                                   ": use an ", h.model, " model (--model)"));
  }
  as_format(what, [&] {
    in->open_body();
    return 0;
  });
  return in;
}

}  // namespace

namespace mg::capi {

void bind_encodec_model(encodec_model& m, const mg::EncodecModel& model) {
  m.model = &model;
  try {
    m.ecdc_name = mg::ecdc_model_name(model.config());
  } catch (const mg::Error& e) {
    m.ecdc_name.clear();
    m.ecdc_refusal = e.what();
  }
}

}  // namespace mg::capi

extern "C" {

encodec_model_params encodec_model_default_params(void) {
  encodec_model_params p;
  p.device = MUSICGEN_DEVICE_AUTO;
  p.n_threads = 0;
  return p;
}

encodec_session_params encodec_session_default_params(void) {
  encodec_session_params p;
  p.n_threads = 0;
  return p;
}

musicgen_status encodec_model_load(const char* model_path, const encodec_model_params* params, encodec_model** out) {
  if (out) *out = nullptr;
  return guard("encodec_model_load", MUSICGEN_ERROR_FORMAT, [&] {
    if (!model_path || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_model_load: model_path or out is NULL");
    const encodec_model_params p = params ? *params : encodec_model_default_params();
    std::error_code ec;
    if (!fs::exists(model_path, ec))
      throw IoError(mg::strcat("model folder '", model_path, "' does not exist (an EnCodec or MusicGen snapshot "
                               "folder with config.json and model.safetensors)"));
    if (!fs::exists(fs::path(model_path) / "config.json", ec) && fs::is_directory(model_path, ec))
      throw IoError(mg::strcat("model folder '", model_path, "' has no config.json"));
    auto m = std::make_unique<encodec_model>();
    m->owned = mg::capi::load_on_device(
        p.device, p.n_threads, m->own_device, [&](mg::Backend& be) { return mg::EncodecModel::load(be, model_path); },
        [&](const mg::EncodecModel& model, mg::Backend& be) { mg::check_codec_on_device(model, be, model_path); });
    mg::capi::bind_encodec_model(*m, *m->owned);
    *out = m.release();
    return MUSICGEN_OK;
  });
}

void encodec_model_free(encodec_model* model) {
  if (!model || model->device != &model->own_device) return;  // a MusicGen model's codec is the model's
  model->owned.reset();  // before the backend that owns its device memory
  delete model;
}

int encodec_model_sample_rate(const encodec_model* m) { return m ? m->model->sample_rate() : 0; }
int encodec_model_channels(const encodec_model* m) { return m ? m->model->channels() : 0; }
const char* encodec_model_name(const encodec_model* m) { return m ? m->ecdc_name.c_str() : ""; }

int encodec_model_num_bandwidths(const encodec_model* m) {
  return m ? int(m->model->config().target_bandwidths.size()) : 0;
}

double encodec_model_bandwidth(const encodec_model* m, int i) {
  if (!m || i < 0 || i >= encodec_model_num_bandwidths(m)) return 0.0;
  return m->model->config().target_bandwidths[size_t(i)];
}

int encodec_model_num_codebooks(const encodec_model* m, double kbps) {
  if (!m) return 0;
  try {
    return codebooks_for(*m->model, kbps);
  } catch (...) {
    return 0;
  }
}

musicgen_status encodec_session_create(const encodec_model* model, const encodec_session_params* params,
                                       encodec_session** out) {
  if (out) *out = nullptr;
  return guard("encodec_session_create", MUSICGEN_ERROR_INTERNAL, [&] {
    if (!model || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_session_create: model or out is NULL");
    const encodec_session_params p = params ? *params : encodec_session_default_params();
    *out = new encodec_session(model, p.n_threads);
    return MUSICGEN_OK;
  });
}

void encodec_session_free(encodec_session* session) { delete session; }

musicgen_status encodec_session_encode(encodec_session* s, const encodec_audio* audio, double kbps,
                                       encodec_codes** out) {
  if (out) *out = nullptr;
  return guard("encodec_session_encode", MUSICGEN_ERROR_INTERNAL, [&] {
    if (!s || !audio || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_session_encode: session, audio or out is NULL");
    codebooks_for(s->codec(), kbps);
    auto codes = std::make_unique<encodec_codes>();
    mg::Tensor x = model_input(s->codec(), buffer_of(audio));
    codes->codes = on_session(s, [&](mg::Backend& be) { return s->codec().encode(be, x, bandwidth_or_highest(s->codec(), kbps)); });
    *out = codes.release();
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_session_decode(encodec_session* s, const encodec_codes* codes, encodec_audio** out) {
  if (out) *out = nullptr;
  return guard("encodec_session_decode", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!s || !codes || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_session_decode: session, codes or out is NULL");
    const mg::EncodedAudio c = with_length(s->codec(), codes->codes);
    const mg::Tensor y = on_session(s, [&](mg::Backend& be) { return s->codec().decode(be, c); });
    *out = new_audio(y, s->codec().sample_rate());
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_codes_create(int num_codebooks, int64_t frames, const int64_t* data, int64_t audio_length,
                                     encodec_codes** out) {
  if (out) *out = nullptr;
  return guard("encodec_codes_create", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!data || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_codes_create: data or out is NULL");
    if (num_codebooks < 1 || frames < 1)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, mg::strcat("encodec_codes_create: need at least one codebook and one "
                                                              "frame, got ", num_codebooks, " x ", frames));
    auto codes = std::make_unique<encodec_codes>();
    mg::Tensor t = mg::Tensor::empty(mg::DType::I64, {num_codebooks, frames});
    std::memcpy(t.data, data, size_t(num_codebooks) * size_t(frames) * sizeof(int64_t));
    codes->codes.num_codebooks = num_codebooks;
    codes->codes.segments = {t};
    codes->codes.length = audio_length;  // <= 0: resolved by the model that decodes them (with_length)
    *out = codes.release();
    return MUSICGEN_OK;
  });
}

void encodec_codes_free(encodec_codes* codes) { delete codes; }
int encodec_codes_num_codebooks(const encodec_codes* c) { return c ? c->codes.num_codebooks : 0; }
int64_t encodec_codes_audio_length(const encodec_codes* c) { return c ? c->codes.length : 0; }
int encodec_codes_num_segments(const encodec_codes* c) { return c ? int(c->codes.segments.size()) : 0; }

int64_t encodec_codes_num_frames(const encodec_codes* c, int segment) {
  if (!c || segment < 0 || segment >= encodec_codes_num_segments(c)) return 0;
  return c->codes.segments[size_t(segment)].dim(1);
}

const int64_t* encodec_codes_data(const encodec_codes* c, int segment) {
  if (!c || segment < 0 || segment >= encodec_codes_num_segments(c)) return nullptr;
  return c->codes.segments[size_t(segment)].ptr<int64_t>();
}

float encodec_codes_scale(const encodec_codes* c, int segment) {
  if (!c || segment < 0 || size_t(segment) >= c->codes.scales.size()) return 1.0f;
  return c->codes.scales[size_t(segment)];
}

musicgen_status encodec_codes_write_ecdc(const encodec_model* model, const encodec_codes* codes, const char* ecdc_path) {
  return guard("encodec_codes_write_ecdc", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!model || !codes || !ecdc_path)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_codes_write_ecdc: model, codes or path is NULL");
    write_file_atomic(ecdc_path, ecdc_bytes(model, with_length(*model->model, codes->codes)));
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_codes_read_ecdc(const encodec_model* model, const char* ecdc_path, encodec_codes** out) {
  if (out) *out = nullptr;
  return guard("encodec_codes_read_ecdc", MUSICGEN_ERROR_FORMAT, [&] {
    if (!model || !ecdc_path || !out)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_codes_read_ecdc: model, path or out is NULL");
    auto codes = std::make_unique<encodec_codes>();
    codes->codes = parse_ecdc(model, read_file(ecdc_path), mg::strcat("'", ecdc_path, "'"));
    *out = codes.release();
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_session_compress(encodec_session* s, const encodec_audio* audio, double kbps, uint8_t** data,
                                         size_t* size) {
  if (data) *data = nullptr;
  if (size) *size = 0;
  return guard("encodec_session_compress", MUSICGEN_ERROR_INTERNAL, [&] {
    if (!s || !audio || !data || !size)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_session_compress: session, audio, data or size is NULL");
    codebooks_for(s->codec(), kbps);
    if (s->model->ecdc_name.empty()) ecdc_bytes(s->model, {});  // refused before the encode, not after
    mg::Tensor x = model_input(s->codec(), buffer_of(audio));
    const mg::EncodedAudio codes =
        on_session(s, [&](mg::Backend& be) { return s->codec().encode(be, x, bandwidth_or_highest(s->codec(), kbps)); });
    const std::vector<uint8_t> bytes = ecdc_bytes(s->model, codes);
    *data = static_cast<uint8_t*>(std::malloc(bytes.size()));
    if (!*data) throw std::bad_alloc();
    std::memcpy(*data, bytes.data(), bytes.size());
    *size = bytes.size();
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_session_decompress(encodec_session* s, const uint8_t* data, size_t size, encodec_audio** out) {
  if (out) *out = nullptr;
  return guard("encodec_session_decompress", MUSICGEN_ERROR_FORMAT, [&] {
    if (!s || !data || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_session_decompress: session, data or out is NULL");
    const mg::EncodedAudio codes = parse_ecdc(s->model, std::vector<uint8_t>(data, data + size), ".ecdc data");
    const mg::Tensor y = on_session(s, [&](mg::Backend& be) { return s->codec().decode(be, codes); });
    *out = new_audio(y, s->codec().sample_rate());
    return MUSICGEN_OK;
  });
}

void encodec_bytes_free(uint8_t* data) { std::free(data); }

musicgen_status encodec_session_compress_file(encodec_session* s, const char* audio_path, const char* ecdc_path,
                                              double kbps) {
  return guard("encodec_session_compress_file", MUSICGEN_ERROR_INTERNAL, [&] {
    if (!s || !audio_path || !ecdc_path)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_session_compress_file: session or a path is NULL");
    codebooks_for(s->codec(), kbps);  // before the (possibly long) read
    if (s->model->ecdc_name.empty()) ecdc_bytes(s->model, {});
    // Streamed (docs/ARCHITECTURE.md, "Windowed EnCodec"): blocks of the file go through the
    // resampler and the encoder, the codes into the .ecdc as they come; memory does not grow with
    // the length of the file.
    const mg::EncodecModel& m = s->codec();
    const double bw = bandwidth_or_highest(m, kbps);
    ModelInputStream in(audio_path, m);
    const mg::EcdcModelInfo info = mg::ecdc_model_info(s->model->ecdc_name, m.config());
    auto out = as_io([&] {
      return std::make_unique<mg::EcdcWriter>(ecdc_path, info, m.num_codebooks_for_bandwidth(bw), in.expected_length(m));
    });
    auto sink = [&](int64_t segment, const mg::Tensor& codes, float scale) {
      as_io([&] {
        out->add(segment, codes, scale);
        return 0;
      });
    };
    const int64_t length =
        on_session(s, [&](mg::Backend& be) { return m.encode_stream(be, [&] { return in.next(); }, bw, sink); });
    as_io([&] {
      out->finish(length);
      return 0;
    });
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_session_decompress_file(encodec_session* s, const char* ecdc_path, const char* audio_path,
                                                encodec_subtype subtype) {
  return guard("encodec_session_decompress_file", MUSICGEN_ERROR_IO, [&] {
    if (!s || !ecdc_path || !audio_path)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_session_decompress_file: session or a path is NULL");
    mg::AudioWriteOptions options;
    switch (subtype) {
      case ENCODEC_SUBTYPE_PCM16: options.subtype = mg::AudioSubtype::PCM16; break;
      case ENCODEC_SUBTYPE_PCM24: options.subtype = mg::AudioSubtype::PCM24; break;
      case ENCODEC_SUBTYPE_FLOAT: options.subtype = mg::AudioSubtype::Float; break;
      default: return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, mg::strcat("unknown sample subtype ", int(subtype)));
    }
    // Streamed: codes are read, decoded and written as audio window by window.
    const mg::EncodecModel& m = s->codec();
    std::unique_ptr<mg::EcdcReader> in = open_ecdc(s->model, ecdc_path);
    mg::AudioWriter out(audio_path, m.sample_rate(), m.channels(), options);
    const std::string what = mg::strcat("'", ecdc_path, "'");
    auto codes = [&](int64_t frames, float* scale) { return as_format(what, [&] { return in->next(frames, scale); }); };
    auto sink = [&](const mg::Tensor& y) {
      mg::Tensor block = y;
      out.write(to_buffer(block, m.sample_rate()));
    };
    on_session(s, [&](mg::Backend& be) {
      m.decode_stream(be, codes, in->header().audio_length, sink);
      return 0;
    });
    out.commit();
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_ecdc_read_info(const char* ecdc_path, encodec_ecdc_info* out) {
  if (out) std::memset(out, 0, sizeof *out);
  return guard("encodec_ecdc_read_info", MUSICGEN_ERROR_FORMAT, [&] {
    if (!ecdc_path || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_ecdc_read_info: path or out is NULL");
    const std::vector<uint8_t> bytes = read_file(ecdc_path);
    size_t body = 0;
    mg::EcdcHeader h;
    try {
      h = mg::ecdc_read_header(bytes, &body);
    } catch (const mg::Error& e) {
      throw FormatError(mg::strcat("'", ecdc_path, "': ", e.what()));
    }
    std::snprintf(out->model, sizeof out->model, "%s", h.model.c_str());
    out->audio_length = h.audio_length;
    out->num_codebooks = h.num_codebooks;
    out->lm = h.lm ? 1 : 0;
    out->file_size = int64_t(bytes.size());
    out->header_size = int64_t(body);
    try {
      const mg::EcdcModelInfo info = mg::ecdc_model_info(h.model);
      out->sample_rate = info.sample_rate;
      out->channels = info.channels;
      const int64_t stride = info.stride > 0 ? info.stride : h.audio_length;
      out->num_segments = int((h.audio_length + stride - 1) / stride);
      const double frame_rate = std::ceil(double(info.sample_rate) / info.hop_length);
      out->bandwidth_kbps = h.num_codebooks * info.bits * frame_rate / 1000.0;
    } catch (const mg::Error&) {
      // unknown model name: the header fields above are still worth showing
    }
    return MUSICGEN_OK;
  });
}

}  // extern "C"
