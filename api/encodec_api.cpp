// The model half of include/encodec.h: encodec_context (a loaded EnCodec model and its backend),
// codes, and .ecdc files. Every entry point runs its body through guard(), which turns anything
// thrown into a status and the shared per-thread message (api/audio_api.cpp owns the slot).
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

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "codec/ecdc.h"
#include "codec/encodec.h"
#include "encodec.h"
#include "kernels/common.h"
#include "kernels/ops.h"

#include "api/encodec_api_internal.h"

using mg::capi::ArgumentError;
using mg::capi::FormatError;
using mg::capi::IoError;
using mg::capi::fail;
using mg::capi::guard;

struct encodec_context {
  std::unique_ptr<mg::Backend> backend;
  std::unique_ptr<mg::EncodecModel> model;
  std::string ecdc_name;
};

struct encodec_codes {
  mg::EncodedAudio codes;
};

namespace {

namespace fs = std::filesystem;

// The codebooks for `kbps` (<= 0: all), or an ArgumentError listing the valid bandwidths.
int codebooks_for(const mg::EncodecModel& m, double kbps) {
  const auto& bws = m.config().target_bandwidths;
  if (kbps <= 0) kbps = bws.back();
  std::string list;
  for (double b : bws) {
    if (std::fabs(b - kbps) < 1e-9) return m.config().num_quantizers_for_bandwidth(b);
    list += (list.empty() ? "" : ", ") + mg::strcat(b);
  }
  throw ArgumentError(mg::strcat("bandwidth ", kbps, " kbps is not one this model supports: use one of ", list,
                                 " (kbps)"));
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
  if (encodec_audio_create(sample_rate, int(C), L, &a) != ENCODEC_OK) throw mg::Error(encodec_last_error());
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

// Writes under a temporary name in the same folder, renames at the end; removes it on failure.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-encodec");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw IoError(mg::strcat("cannot write '", path, "' (cannot create a file in its folder)"));
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    f.close();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw IoError(mg::strcat("error writing '", path, "'"));
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError(mg::strcat("cannot rename the temporary file to '", path, "'"));
  }
}

mg::EncodedAudio parse_ecdc(const encodec_context* ctx, const std::vector<uint8_t>& bytes, const std::string& what) {
  mg::EcdcHeader h;
  try {
    h = mg::ecdc_read_header(bytes);
  } catch (const mg::Error& e) {
    throw FormatError(what + ": " + e.what());
  }
  if (!h.lm && h.model != ctx->ecdc_name) {
    try {
      mg::ecdc_model_info(h.model);
    } catch (const mg::Error& e) {
      throw FormatError(what + ": " + e.what());
    }
    throw ArgumentError(mg::strcat(what, " was written with ", h.model, ", but the loaded model is ", ctx->ecdc_name,
                                   ": use an ", h.model, " model (--model)"));
  }
  try {
    return mg::ecdc_read(bytes);
  } catch (const mg::Error& e) {
    throw FormatError(what + ": " + e.what());
  }
}

}  // namespace

extern "C" {

encodec_context_params encodec_context_default_params(void) {
  encodec_context_params p;
  p.n_threads = 0;
  p.use_cuda = 0;
  return p;
}

encodec_status encodec_context_load(const char* model_path, const encodec_context_params* params,
                                    encodec_context** out) {
  if (out) *out = nullptr;
  return guard("encodec_context_load", ENCODEC_ERROR_FORMAT, [&] {
    if (!model_path || !out) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_context_load: model_path or out is NULL");
    const encodec_context_params p = params ? *params : encodec_context_default_params();
    std::error_code ec;
    if (!fs::exists(model_path, ec))
      throw IoError(mg::strcat("model folder '", model_path, "' does not exist (an EnCodec or MusicGen snapshot "
                               "folder with config.json and model.safetensors)"));
    if (!fs::exists(fs::path(model_path) / "config.json", ec) && fs::is_directory(model_path, ec))
      throw IoError(mg::strcat("model folder '", model_path, "' has no config.json"));
    auto ctx = std::make_unique<encodec_context>();
    ctx->backend = p.use_cuda ? mg::make_cuda_backend(0) : mg::make_cpu_backend(p.n_threads);
    ctx->model = mg::EncodecModel::load(*ctx->backend, model_path);
    ctx->ecdc_name = mg::ecdc_model_name(ctx->model->config());
    *out = ctx.release();
    return ENCODEC_OK;
  });
}

void encodec_context_free(encodec_context* ctx) {
  if (!ctx) return;
  ctx->model.reset();  // before the backend that owns its device memory
  delete ctx;
}

int encodec_context_sample_rate(const encodec_context* ctx) { return ctx ? ctx->model->sample_rate() : 0; }
int encodec_context_channels(const encodec_context* ctx) { return ctx ? ctx->model->channels() : 0; }
const char* encodec_context_model_name(const encodec_context* ctx) { return ctx ? ctx->ecdc_name.c_str() : ""; }

int encodec_context_num_bandwidths(const encodec_context* ctx) {
  return ctx ? int(ctx->model->config().target_bandwidths.size()) : 0;
}

double encodec_context_bandwidth(const encodec_context* ctx, int i) {
  if (!ctx || i < 0 || i >= encodec_context_num_bandwidths(ctx)) return 0.0;
  return ctx->model->config().target_bandwidths[size_t(i)];
}

int encodec_context_num_codebooks(const encodec_context* ctx, double kbps) {
  if (!ctx) return 0;
  try {
    return codebooks_for(*ctx->model, kbps);
  } catch (...) {
    return 0;
  }
}

encodec_status encodec_encode(encodec_context* ctx, const encodec_audio* audio, double kbps, encodec_codes** out) {
  if (out) *out = nullptr;
  return guard("encodec_encode", ENCODEC_ERROR_INTERNAL, [&] {
    if (!ctx || !audio || !out) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_encode: ctx, audio or out is NULL");
    const int nq = codebooks_for(*ctx->model, kbps);
    (void)nq;
    const double bw = kbps <= 0 ? ctx->model->config().target_bandwidths.back() : kbps;
    auto codes = std::make_unique<encodec_codes>();
    codes->codes = ctx->model->encode(model_input(*ctx->model, buffer_of(audio)), bw);
    *out = codes.release();
    return ENCODEC_OK;
  });
}

encodec_status encodec_decode(encodec_context* ctx, const encodec_codes* codes, encodec_audio** out) {
  if (out) *out = nullptr;
  return guard("encodec_decode", ENCODEC_ERROR_INVALID_ARGUMENT, [&] {
    if (!ctx || !codes || !out) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_decode: ctx, codes or out is NULL");
    const mg::Tensor y = ctx->model->decode(codes->codes);
    *out = new_audio(y, ctx->model->sample_rate());
    return ENCODEC_OK;
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

encodec_status encodec_compress(encodec_context* ctx, const encodec_audio* audio, double kbps, uint8_t** data,
                                size_t* size) {
  if (data) *data = nullptr;
  if (size) *size = 0;
  return guard("encodec_compress", ENCODEC_ERROR_INTERNAL, [&] {
    if (!ctx || !audio || !data || !size)
      return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_compress: ctx, audio, data or size is NULL");
    codebooks_for(*ctx->model, kbps);
    const double bw = kbps <= 0 ? ctx->model->config().target_bandwidths.back() : kbps;
    const mg::EncodedAudio codes = ctx->model->encode(model_input(*ctx->model, buffer_of(audio)), bw);
    const std::vector<uint8_t> bytes =
        mg::ecdc_write(mg::ecdc_model_info(ctx->ecdc_name, ctx->model->config()), codes);
    *data = static_cast<uint8_t*>(std::malloc(bytes.size()));
    if (!*data) throw std::bad_alloc();
    std::memcpy(*data, bytes.data(), bytes.size());
    *size = bytes.size();
    return ENCODEC_OK;
  });
}

encodec_status encodec_decompress(encodec_context* ctx, const uint8_t* data, size_t size, encodec_audio** out) {
  if (out) *out = nullptr;
  return guard("encodec_decompress", ENCODEC_ERROR_FORMAT, [&] {
    if (!ctx || !data || !out) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_decompress: ctx, data or out is NULL");
    const mg::EncodedAudio codes = parse_ecdc(ctx, std::vector<uint8_t>(data, data + size), ".ecdc data");
    const mg::Tensor y = ctx->model->decode(codes);
    *out = new_audio(y, ctx->model->sample_rate());
    return ENCODEC_OK;
  });
}

void encodec_bytes_free(uint8_t* data) { std::free(data); }

encodec_status encodec_compress_file(encodec_context* ctx, const char* audio_path, const char* ecdc_path, double kbps) {
  return guard("encodec_compress_file", ENCODEC_ERROR_INTERNAL, [&] {
    if (!ctx || !audio_path || !ecdc_path)
      return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_compress_file: ctx or a path is NULL");
    codebooks_for(*ctx->model, kbps);  // before the (possibly long) read
    const double bw = kbps <= 0 ? ctx->model->config().target_bandwidths.back() : kbps;
    mg::AudioBuffer in;
    try {
      in = mg::read_audio(audio_path);
    } catch (const mg::AudioDataError&) {
      throw;
    } catch (const mg::Error& e) {
      throw IoError(e.what());
    }
    const mg::EncodedAudio codes = ctx->model->encode(model_input(*ctx->model, std::move(in)), bw);
    write_file_atomic(ecdc_path, mg::ecdc_write(mg::ecdc_model_info(ctx->ecdc_name, ctx->model->config()), codes));
    return ENCODEC_OK;
  });
}

encodec_status encodec_decompress_file(encodec_context* ctx, const char* ecdc_path, const char* audio_path,
                                       encodec_subtype subtype) {
  return guard("encodec_decompress_file", ENCODEC_ERROR_IO, [&] {
    if (!ctx || !ecdc_path || !audio_path)
      return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_decompress_file: ctx or a path is NULL");
    mg::AudioWriteOptions options;
    switch (subtype) {
      case ENCODEC_SUBTYPE_PCM16: options.subtype = mg::AudioSubtype::PCM16; break;
      case ENCODEC_SUBTYPE_PCM24: options.subtype = mg::AudioSubtype::PCM24; break;
      case ENCODEC_SUBTYPE_FLOAT: options.subtype = mg::AudioSubtype::Float; break;
      default: return fail(ENCODEC_ERROR_INVALID_ARGUMENT, mg::strcat("unknown sample subtype ", int(subtype)));
    }
    mg::Tensor y;
    {
      const mg::EncodedAudio codes = parse_ecdc(ctx, read_file(ecdc_path), mg::strcat("'", ecdc_path, "'"));
      y = ctx->model->decode(codes);
    }
    mg::write_audio(audio_path, to_buffer(y, ctx->model->sample_rate()), options);
    return ENCODEC_OK;
  });
}

encodec_status encodec_ecdc_read_info(const char* ecdc_path, encodec_ecdc_info* out) {
  if (out) std::memset(out, 0, sizeof *out);
  return guard("encodec_ecdc_read_info", ENCODEC_ERROR_FORMAT, [&] {
    if (!ecdc_path || !out) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_ecdc_read_info: path or out is NULL");
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
    return ENCODEC_OK;
  });
}

}  // extern "C"
