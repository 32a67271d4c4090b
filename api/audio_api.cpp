// The audio half of include/encodec.h. Every entry point runs its body through guard()
// (api/api_internal.h): any exception becomes a status and the per-thread message.
#include "encodec.h"

#include <memory>
#include <new>
#include <string>
#include <utility>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "codec/resample.h"
#include "kernels/common.h"
#include "api/api_internal.h"

struct encodec_audio {
  mg::AudioBuffer buf;
};

using mg::capi::fail;
using mg::capi::guard;

extern "C" {

musicgen_status encodec_audio_create(int sample_rate, int channels, int64_t frames, encodec_audio** out) {
  if (out) *out = nullptr;
  return guard("encodec_audio_create", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_audio_create: out is NULL");
    if (sample_rate <= 0 || channels <= 0 || frames < 0)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT,
                  mg::strcat("encodec_audio_create: need a positive rate and channel count and frames >= 0, got ",
                             sample_rate, " Hz, ", channels, " channels, ", frames, " frames"));
    *out = new encodec_audio{mg::AudioBuffer::zeros(sample_rate, channels, frames)};
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_audio_read(const char* path, encodec_audio** out) {
  if (out) *out = nullptr;
  return guard("encodec_audio_read", MUSICGEN_ERROR_IO, [&] {
    if (!path || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_audio_read: path or out is NULL");
    *out = new encodec_audio{mg::read_audio(path)};
    return MUSICGEN_OK;
  });
}

namespace {

// The library's sample format for the C API's, or false for a value the header does not define.
bool to_audio_subtype(encodec_subtype subtype, mg::AudioSubtype* out) {
  switch (subtype) {
    case ENCODEC_SUBTYPE_PCM16: *out = mg::AudioSubtype::PCM16; return true;
    case ENCODEC_SUBTYPE_PCM24: *out = mg::AudioSubtype::PCM24; return true;
    case ENCODEC_SUBTYPE_FLOAT: *out = mg::AudioSubtype::Float; return true;
  }
  return false;
}

}  // namespace

musicgen_status encodec_audio_write(const char* path, const encodec_audio* audio, encodec_subtype subtype) {
  return guard("encodec_audio_write", MUSICGEN_ERROR_IO, [&] {
    if (!path || !audio) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_audio_write: path or audio is NULL");
    mg::AudioWriteOptions options;
    if (!to_audio_subtype(subtype, &options.subtype))
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT,
                  mg::strcat("encodec_audio_write: unknown subtype ", int(subtype), " for ", path));
    mg::write_audio(path, audio->buf, options);
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_audio_convert(const encodec_audio* in, int sample_rate, int channels, encodec_audio** out) {
  if (out) *out = nullptr;
  // Resampler and channel errors are about the requested rate/channels, hence INVALID_ARGUMENT.
  return guard("encodec_audio_convert", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!in || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_audio_convert: in or out is NULL");
    *out = new encodec_audio{mg::convert_audio(in->buf, sample_rate, channels)};
    return MUSICGEN_OK;
  });
}

musicgen_status encodec_audio_convert_file(const char* in_path, const char* out_path, int sample_rate, int channels,
                                           encodec_subtype subtype) {
  return guard("encodec_audio_convert_file", MUSICGEN_ERROR_IO, [&] {
    if (!in_path || !out_path)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "encodec_audio_convert_file: a path is NULL");
    mg::AudioWriteOptions options;
    if (!to_audio_subtype(subtype, &options.subtype))
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT,
                  mg::strcat("encodec_audio_convert_file: unknown subtype ", int(subtype), " for ", out_path));
    mg::AudioReader reader(in_path);
    // Resampler and channel errors are about the requested rate/channels, hence INVALID_ARGUMENT.
    std::unique_ptr<mg::AudioConverter> converter;
    try {
      converter = std::make_unique<mg::AudioConverter>(reader.sample_rate(), reader.channels(), sample_rate, channels);
    } catch (const mg::Error& e) {
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, e.what());
    }
    mg::AudioWriter writer(out_path, sample_rate, channels, options);
    mg::AudioBuffer block;
    while (reader.read(block)) {
      const mg::AudioBuffer out = converter->push(block);
      if (out.num_frames() > 0) writer.write(out);
    }
    const mg::AudioBuffer rest = converter->finish();
    if (rest.num_frames() > 0) writer.write(rest);
    writer.commit();
    return MUSICGEN_OK;
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
