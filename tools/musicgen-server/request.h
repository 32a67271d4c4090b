// A generation request as the server reads it (API.md, "POST /v1/music/generations"): JSON or
// multipart form fields -> GenerationRequest, every field type- and range-checked with the
// library's bounds (musicgen_common.h), errors as HttpError (400 with a message naming the field).
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "audio_bytes.h"
#include "musicgen.h"

namespace mgserver {

// An error the client gets as {"error": {"message", "type"}} with `status`.
struct HttpError : std::runtime_error {
  int status;
  std::string type;
  HttpError(int status, std::string type, const std::string& message)
      : std::runtime_error(message), status(status), type(std::move(type)) {}
};
HttpError bad_request(const std::string& message);

// The longest prompt accepted: T5 reads 512 tokens at most; 4096 bytes is several times that.
constexpr size_t kMaxPromptBytes = 4096;
constexpr size_t kMaxChordsBytes = 4096;

struct GenerationRequest {
  std::string prompt;
  double duration = 10.0;
  uint64_t seed = 0;
  int top_k = 250;
  float top_p = 0.0f;
  float temperature = 1.0f;
  float cfg = 3.0f;
  bool greedy = false;
  std::string format = "wav";  // wav flac ogg mp3; pcm when streaming
  musicgen_normalize normalize = MUSICGEN_NORMALIZE_PEAK;
  std::string chords, notes;
  float bpm = 120.0f, beats_per_chord = 4.0f;
  bool stream = false;
  // Melody models: a chroma [MUSICGEN_CHROMA_FRAMES * 12] from chords/notes, or an uploaded
  // recording (planar float at melody_rate).
  std::vector<float> chroma;
  std::vector<float> melody;
  int melody_channels = 0, melody_rate = 0;
  int64_t melody_samples = 0;
};

struct RequestLimits {
  double max_duration = 120.0;
  bool melody_model = false;
};

// A JSON object -> request (seed drawn at random when absent). Throws HttpError(400).
GenerationRequest parse_generation(const nlohmann::json& body, const RequestLimits& limits);
// Multipart text fields -> the JSON object parse_generation reads: a `request` field holds the
// whole object; other fields are typed by name (numbers, booleans, strings).
nlohmann::json form_fields_to_json(const std::map<std::string, std::string>& fields);
// A melody upload (file bytes) decoded into the request; 400 for an undecodable file.
void attach_melody(GenerationRequest& r, const std::string& file_bytes, const TempDir& tmp);

const char* content_type_for(const std::string& format);

}  // namespace mgserver
