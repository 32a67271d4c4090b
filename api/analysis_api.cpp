// The music analyser through the C API (include/musicgen.h, "music analysis"): one immutable
// result object per analysed recording. Stateless otherwise, so safe from any thread.
#include <string>
#include <vector>

#include "api/api_internal.h"
#include "conditioning/analysis.h"
#include "conditioning/chords.h"
#include "conditioning/chroma_png.h"
#include "musicgen.h"

using mg::capi::fail;
using mg::capi::guard;

struct musicgen_analysis {
  mg::Analysis result;
  std::string key, mode, json;
};

namespace {

musicgen_status finish(mg::Analysis&& r, musicgen_analysis** out) {
  auto* a = new musicgen_analysis;
  a->result = std::move(r);
  if (a->result.has_key) {
    a->key = mg::pitch_class_name(a->result.key.tonic);
    a->mode = a->result.key.minor ? "minor" : "major";
  }
  a->json = mg::analysis_to_json(a->result);
  *out = a;
  return MUSICGEN_OK;
}

const mg::ChordSpan* chord(const musicgen_analysis* a, int i) {
  return a && i >= 0 && size_t(i) < a->result.chords.size() ? &a->result.chords[size_t(i)] : nullptr;
}

}  // namespace

extern "C" {

musicgen_status musicgen_analyze_file(const char* path, musicgen_analysis** out) {
  if (out) *out = nullptr;
  return guard("musicgen_analyze_file", MUSICGEN_ERROR_IO, [&] {
    if (!path || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_analyze_file: path and out are required");
    return finish(mg::analyze_file(path), out);
  });
}

musicgen_status musicgen_analyze_audio(const float* planar, int64_t frames, int channels, int rate,
                                       musicgen_analysis** out) {
  if (out) *out = nullptr;
  return guard("musicgen_analyze_audio", MUSICGEN_ERROR_FORMAT, [&] {
    if (!planar || !out || frames <= 0 || channels <= 0 || rate <= 0)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT,
                  "musicgen_analyze_audio: samples and out are required, with frames, channels and rate > 0 (got " +
                      std::to_string(frames) + ", " + std::to_string(channels) + ", " + std::to_string(rate) + ")");
    mg::AudioBuffer buf;
    buf.sample_rate = rate;
    for (int c = 0; c < channels; ++c) buf.channels.emplace_back(planar + c * frames, planar + (c + 1) * frames);
    return finish(mg::analyze_audio(buf), out);
  });
}

void musicgen_analysis_free(musicgen_analysis* a) { delete a; }

const char* musicgen_analysis_key(const musicgen_analysis* a) { return a ? a->key.c_str() : ""; }
const char* musicgen_analysis_mode(const musicgen_analysis* a) { return a ? a->mode.c_str() : ""; }
float musicgen_analysis_key_confidence(const musicgen_analysis* a) {
  return a && a->result.has_key ? float(mg::key_confidence(a->result.key)) : 0.0f;
}
float musicgen_analysis_bpm(const musicgen_analysis* a) { return a ? float(a->result.tempo.bpm) : 0.0f; }
int musicgen_analysis_octave_ambiguous(const musicgen_analysis* a) {
  return a && a->result.tempo.octave_ambiguous ? 1 : 0;
}
float musicgen_analysis_alternative_bpm(const musicgen_analysis* a) {
  return a ? float(a->result.tempo.alternative_bpm) : 0.0f;
}
int musicgen_analysis_chord_count(const musicgen_analysis* a) { return a ? int(a->result.chords.size()) : 0; }
const char* musicgen_analysis_chord_label(const musicgen_analysis* a, int i) {
  const mg::ChordSpan* c = chord(a, i);
  return c ? c->label.c_str() : "";
}
float musicgen_analysis_chord_start(const musicgen_analysis* a, int i) {
  const mg::ChordSpan* c = chord(a, i);
  return c ? float(c->start) : 0.0f;
}
float musicgen_analysis_chord_end(const musicgen_analysis* a, int i) {
  const mg::ChordSpan* c = chord(a, i);
  return c ? float(c->end) : 0.0f;
}
const char* musicgen_analysis_to_json(const musicgen_analysis* a) { return a ? a->json.c_str() : nullptr; }

musicgen_status musicgen_analysis_write_chroma_png(const musicgen_analysis* a, const char* path) {
  return guard("musicgen_analysis_write_chroma_png", MUSICGEN_ERROR_IO, [&] {
    if (!a || !path)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_analysis_write_chroma_png: analysis and path are required");
    mg::ChromaPngOptions o;
    o.frame_rate = a->result.chroma_frame_rate;
    o.cell_width = 1;  // 21.5 frames a second: one pixel each keeps a minute under 1300 pixels
    mg::write_chroma_png(path, a->result.chroma, o);
    return MUSICGEN_OK;
  });
}

}  // extern "C"
