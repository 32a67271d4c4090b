// The audio half of include/encodec.h. Every entry point runs its body through guard(), which turns
// any exception into a status and a per-thread message: nothing thrown crosses the C boundary.
#include "encodec.h"

#include <new>
#include <string>
#include <utility>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "codec/resample.h"
#include "kernels/common.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "api/encodec_api_internal.h"

struct encodec_audio {
  mg::AudioBuffer buf;
};

namespace {

// The C API's error slot: one message per thread, as errno. Not state of the library itself.
thread_local std::string t_last_error;

}  // namespace

using mg::capi::fail;
using mg::capi::guard;

extern "C" {

const char* encodec_status_string(encodec_status status) {
  switch (status) {
    case ENCODEC_OK: return "ok";
    case ENCODEC_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case ENCODEC_ERROR_IO: return "i/o error";
    case ENCODEC_ERROR_FORMAT: return "unusable data";
    case ENCODEC_ERROR_OUT_OF_MEMORY: return "out of memory";
    case ENCODEC_ERROR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* encodec_last_error(void) { return t_last_error.c_str(); }

const char* encodec_version(void) { return "0.1.0"; }

const char* encodec_system_info(void) {
  thread_local std::string info;
  std::string blas;
  try {
    blas = mg::cpu::blas::describe();
  } catch (const std::exception& e) {
    blas = std::string("not loadable (") + e.what() + ")";
  }
  bool cuda = false;
  try {
    cuda = mg::cuda_available();
  } catch (...) {
  }
  info = std::string("AVX2 = ") + (mg::cpu::cpu_has_avx2() ? "1" : "0") + " | AVX512 = " +
         (mg::cpu::cpu_has_avx512() ? "1" : "0") + " | BLAS = " + blas + " | CUDA = " + (cuda ? "1" : "0");
  return info.c_str();
}

encodec_status encodec_audio_create(int sample_rate, int channels, int64_t frames, encodec_audio** out) {
  if (out) *out = nullptr;
  return guard("encodec_audio_create", ENCODEC_ERROR_INVALID_ARGUMENT, [&] {
    if (!out) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_audio_create: out is NULL");
    if (sample_rate <= 0 || channels <= 0 || frames < 0)
      return fail(ENCODEC_ERROR_INVALID_ARGUMENT,
                  mg::strcat("encodec_audio_create: need a positive rate and channel count and frames >= 0, got ",
                             sample_rate, " Hz, ", channels, " channels, ", frames, " frames"));
    *out = new encodec_audio{mg::AudioBuffer::zeros(sample_rate, channels, frames)};
    return ENCODEC_OK;
  });
}

encodec_status encodec_audio_read(const char* path, encodec_audio** out) {
  if (out) *out = nullptr;
  return guard("encodec_audio_read", ENCODEC_ERROR_IO, [&] {
    if (!path || !out) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_audio_read: path or out is NULL");
    *out = new encodec_audio{mg::read_audio(path)};
    return ENCODEC_OK;
  });
}

encodec_status encodec_audio_write(const char* path, const encodec_audio* audio, encodec_subtype subtype) {
  return guard("encodec_audio_write", ENCODEC_ERROR_IO, [&] {
    if (!path || !audio) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_audio_write: path or audio is NULL");
    mg::AudioWriteOptions options;
    switch (subtype) {
      case ENCODEC_SUBTYPE_PCM16: options.subtype = mg::AudioSubtype::PCM16; break;
      case ENCODEC_SUBTYPE_PCM24: options.subtype = mg::AudioSubtype::PCM24; break;
      case ENCODEC_SUBTYPE_FLOAT: options.subtype = mg::AudioSubtype::Float; break;
      default:
        return fail(ENCODEC_ERROR_INVALID_ARGUMENT,
                    mg::strcat("encodec_audio_write: unknown subtype ", int(subtype), " for ", path));
    }
    mg::write_audio(path, audio->buf, options);
    return ENCODEC_OK;
  });
}

encodec_status encodec_audio_convert(const encodec_audio* in, int sample_rate, int channels, encodec_audio** out) {
  if (out) *out = nullptr;
  // Resampler and channel errors are about the requested rate/channels, hence INVALID_ARGUMENT.
  return guard("encodec_audio_convert", ENCODEC_ERROR_INVALID_ARGUMENT, [&] {
    if (!in || !out) return fail(ENCODEC_ERROR_INVALID_ARGUMENT, "encodec_audio_convert: in or out is NULL");
    *out = new encodec_audio{mg::convert_audio(in->buf, sample_rate, channels)};
    return ENCODEC_OK;
  });
}

void encodec_audio_free(encodec_audio* audio) { delete audio; }

int encodec_audio_sample_rate(const encodec_audio* audio) { return audio ? audio->buf.sample_rate : 0; }
int encodec_audio_channels(const encodec_audio* audio) { return audio ? audio->buf.num_channels() : 0; }
int64_t encodec_audio_frames(const encodec_audio* audio) { return audio ? audio->buf.num_frames() : 0; }

float* encodec_audio_channel_data(encodec_audio* audio, int channel) {
  if (!audio || channel < 0 || channel >= audio->buf.num_channels()) return nullptr;
  return audio->buf.channels[size_t(channel)].data();
}

const float* encodec_audio_channel_data_const(const encodec_audio* audio, int channel) {
  if (!audio || channel < 0 || channel >= audio->buf.num_channels()) return nullptr;
  return audio->buf.channels[size_t(channel)].data();
}

}  // extern "C"

// Shared with the model half of the C API (api/encodec_api.cpp): one error slot for the whole API.
namespace mg::capi {
void set_last_error(const std::string& message) { t_last_error = message; }
}  // namespace mg::capi
