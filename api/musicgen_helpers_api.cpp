// The helpers of include/musicgen.h that need no model: audio files as musicgen_audio, and the
// chroma conditions of melody models. Stateless, so safe from any thread.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "api/api_internal.h"
#include "codec/audio_file.h"
#include "conditioning/chords.h"
#include "conditioning/chroma.h"
#include "conditioning/chroma_png.h"
#include "musicgen.h"

using mg::capi::fail;
using mg::capi::guard;

namespace {

mg::AudioBuffer buffer_of(const musicgen_audio& a) {
  mg::AudioBuffer buf;
  buf.sample_rate = a.sample_rate;
  for (int c = 0; c < a.channels; ++c)
    buf.channels.emplace_back(a.samples + c * a.n_samples, a.samples + (c + 1) * a.n_samples);
  return buf;
}

musicgen_status put_chroma(const mg::Tensor& chroma, float* out) {
  if (!out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "no output buffer for the chroma");
  mg::Tensor fitted = mg::chroma_fit_length(chroma, MUSICGEN_CHROMA_FRAMES);
  std::copy(fitted.f32(), fitted.f32() + fitted.numel(), out);
  return MUSICGEN_OK;
}

// musicgen_audio_read(_limited): `read` gives the buffer, copied out planar.
template <typename Read>
musicgen_status read_into(const char* where, const char* path, musicgen_audio* out, Read&& read) {
  if (out) std::memset(out, 0, sizeof(*out));
  return guard(where, MUSICGEN_ERROR_IO, [&] {
    if (!path || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, std::string(where) + ": path and out are required");
    mg::AudioBuffer a = read();
    const size_t n = size_t(a.num_frames()) * a.num_channels();
    float* buf = static_cast<float*>(std::malloc(n * sizeof(float)));
    if (!buf) throw std::bad_alloc();
    for (int c = 0; c < a.num_channels(); ++c)
      std::copy(a.channels[c].begin(), a.channels[c].end(), buf + c * a.num_frames());
    out->samples = buf;
    out->n_samples = a.num_frames();
    out->channels = a.num_channels();
    out->sample_rate = a.sample_rate;
    return MUSICGEN_OK;
  });
}

}  // namespace

extern "C" {

void musicgen_audio_free(musicgen_audio* audio) {
  if (!audio) return;
  std::free(audio->samples);
  audio->samples = nullptr;
  audio->n_samples = 0;
}

musicgen_status musicgen_audio_write(const musicgen_audio* audio, const char* path) {
  return guard("musicgen_audio_write", MUSICGEN_ERROR_IO, [&] {
    if (!audio || !audio->samples || !path)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_audio_write: audio and path are required");
    mg::write_audio(path, buffer_of(*audio));
    return MUSICGEN_OK;
  });
}


musicgen_status musicgen_audio_read(const char* path, musicgen_audio* out) {
  return read_into("musicgen_audio_read", path, out, [&] { return mg::read_audio(path); });
}

musicgen_status musicgen_audio_read_limited(const char* path, float max_seconds, int cut, musicgen_audio* out) {
  return read_into("musicgen_audio_read_limited", path, out,
                   [&] { return mg::read_audio_limited(path, max_seconds, cut != 0); });
}

musicgen_status musicgen_chroma_from_chords(const char* chords, float bpm, float beats_per_chord, float* out) {
  return guard("musicgen_chroma_from_chords", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    mg::ChordOptions o;
    o.bpm = bpm;
    o.beats_per_chord = beats_per_chord;
    return put_chroma(mg::chords_to_chroma(chords ? chords : "", o, MUSICGEN_CHROMA_FRAMES), out);
  });
}

musicgen_status musicgen_chroma_from_notes(const char* notes, float bpm, float* out) {
  return guard("musicgen_chroma_from_notes", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    return put_chroma(mg::notes_to_chroma(notes ? notes : "", bpm, MUSICGEN_CHROMA_FRAMES), out);
  });
}

musicgen_status musicgen_chroma_from_midi(const char* midi_path, float* out) {
  return guard("musicgen_chroma_from_midi", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!midi_path) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "no MIDI file given");
    return put_chroma(mg::timeline_to_chroma(mg::read_midi_file(midi_path), MUSICGEN_CHROMA_FRAMES), out);
  });
}

musicgen_status musicgen_chroma_from_audio(const musicgen_audio* audio, float* out) {
  return guard("musicgen_chroma_from_audio", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!audio || !audio->samples) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "no audio given");
    return put_chroma(mg::melody_chroma(buffer_of(*audio)), out);
  });
}

musicgen_status musicgen_chroma_write_png(const float* chroma, int64_t frames, const char* path) {
  return guard("musicgen_chroma_write_png", MUSICGEN_ERROR_IO, [&] {
    if (!chroma || frames <= 0 || !path)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_chroma_write_png: chroma, frames and path are required");
    mg::write_chroma_png(path, mg::Tensor::from_vector(std::vector<float>(chroma, chroma + frames * 12), {frames, 12}));
    return MUSICGEN_OK;
  });
}

}  // extern "C"
