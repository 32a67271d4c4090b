#include "request.h"

#include <cmath>
#include <random>
#include <set>

#include "audio_bytes.h"

namespace mgserver {

using nlohmann::json;

HttpError bad_request(const std::string& message) { return HttpError(400, "invalid_request_error", message); }

namespace {

const std::set<std::string> kFields = {"prompt", "duration", "seed",   "top_k",  "top_p",          "temperature",
                                       "cfg",    "greedy",   "format", "normalize", "chords",      "notes",
                                       "bpm",    "beats_per_chord", "stream"};

double number_field(const json& body, const char* name, double lo, double hi, bool lo_open, double fallback) {
  if (!body.contains(name)) return fallback;
  const json& v = body.at(name);
  if (!v.is_number()) throw bad_request(std::string(name) + " must be a number, got " + v.type_name());
  const double x = v.get<double>();
  const bool ok = std::isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi;
  if (!ok) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "%s must be a number in %c%g, %g], got %g", name, lo_open ? '(' : '[', lo, hi, x);
    throw bad_request(msg);
  }
  return x;
}

std::string string_field(const json& body, const char* name, size_t max_bytes, const std::string& fallback) {
  if (!body.contains(name)) return fallback;
  const json& v = body.at(name);
  if (!v.is_string()) throw bad_request(std::string(name) + " must be a string, got " + v.type_name());
  const std::string s = v.get<std::string>();
  if (s.size() > max_bytes)
    throw bad_request(std::string(name) + " is " + std::to_string(s.size()) + " bytes; at most " +
                      std::to_string(max_bytes) + " are accepted");
  return s;
}

bool bool_field(const json& body, const char* name, bool fallback) {
  if (!body.contains(name)) return fallback;
  const json& v = body.at(name);
  if (!v.is_boolean()) throw bad_request(std::string(name) + " must be true or false, got " + v.type_name());
  return v.get<bool>();
}

uint64_t seed_field(const json& body) {
  if (!body.contains("seed") || body.at("seed").is_null()) {
    std::random_device rd;
    return ((uint64_t(rd()) << 32) | rd()) & 0x7fffffffffffffffULL;
  }
  const json& v = body.at("seed");
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  throw bad_request("seed must be a non-negative integer, got " + v.dump());
}

musicgen_normalize normalize_field(const json& body) {
  const std::string n = string_field(body, "normalize", 16, "peak");
  if (n == "peak") return MUSICGEN_NORMALIZE_PEAK;
  if (n == "loudness") return MUSICGEN_NORMALIZE_LOUDNESS;
  if (n == "clip") return MUSICGEN_NORMALIZE_CLIP;
  if (n == "none") return MUSICGEN_NORMALIZE_NONE;
  throw bad_request("normalize must be one of peak, loudness, clip, none; got \"" + n + "\"");
}

// chords / notes -> the chroma the model reads (melody models only).
void melody_from_text(GenerationRequest& r) {
  if (r.chords.empty() && r.notes.empty()) return;
  if (!r.chords.empty() && !r.notes.empty()) throw bad_request("give chords or notes, not both");
  r.chroma.assign(size_t(MUSICGEN_CHROMA_FRAMES) * 12, 0.0f);
  const musicgen_status st = r.chords.empty()
                                 ? musicgen_chroma_from_notes(r.notes.c_str(), r.bpm, r.chroma.data())
                                 : musicgen_chroma_from_chords(r.chords.c_str(), r.bpm, r.beats_per_chord, r.chroma.data());
  if (st != MUSICGEN_OK) throw bad_request(std::string(r.chords.empty() ? "notes: " : "chords: ") + musicgen_last_error());
}

}  // namespace

GenerationRequest parse_generation(const json& body, const RequestLimits& limits) {
  if (!body.is_object()) throw bad_request(std::string("the request body must be a JSON object, got ") + body.type_name());
  for (const auto& kv : body.items())
    if (!kFields.count(kv.key())) throw bad_request("unknown field \"" + kv.key() + "\" (API.md lists the fields)");
  GenerationRequest r;
  r.prompt = string_field(body, "prompt", kMaxPromptBytes, "");
  const double max_duration = std::min<double>(limits.max_duration, MUSICGEN_MAX_DURATION_S);
  r.duration = number_field(body, "duration", 0, max_duration, true, 10.0);
  r.seed = seed_field(body);
  const double top_k = number_field(body, "top_k", 0, 1 << 20, false, 250);
  if (top_k != std::floor(top_k)) throw bad_request("top_k must be an integer");
  r.top_k = int(top_k);
  r.top_p = float(number_field(body, "top_p", 0, 1, false, 0.0));
  r.temperature = float(number_field(body, "temperature", 0, MUSICGEN_MAX_SCALE, false, 1.0));
  r.cfg = float(number_field(body, "cfg", 0, MUSICGEN_MAX_SCALE, false, 3.0));
  r.greedy = bool_field(body, "greedy", false);
  r.stream = bool_field(body, "stream", false);
  r.format = string_field(body, "format", 16, "wav");
  const std::set<std::string> formats = r.stream ? std::set<std::string>{"wav", "pcm"}
                                                 : std::set<std::string>{"wav", "flac", "ogg", "mp3"};
  if (!formats.count(r.format))
    throw bad_request("format must be " + std::string(r.stream ? "wav or pcm when streaming" : "one of wav, flac, ogg, mp3") +
                      "; got \"" + r.format + "\"");
  r.normalize = normalize_field(body);
  r.chords = string_field(body, "chords", kMaxChordsBytes, "");
  r.notes = string_field(body, "notes", kMaxChordsBytes, "");
  r.bpm = float(number_field(body, "bpm", 20, 400, false, 120));
  r.beats_per_chord = float(number_field(body, "beats_per_chord", 0, 64, true, 4));
  if (!limits.melody_model && (!r.chords.empty() || !r.notes.empty()))
    throw bad_request("chords and notes need a melody model (musicgen-melody*); this server runs a text-only model");
  melody_from_text(r);
  if (!r.greedy && r.temperature > 0 && r.top_k == 0 && r.top_p == 0)
    throw bad_request("top_k is 0 and top_p is 0: set top_k (250 is the default) or top_p");
  return r;
}

json form_fields_to_json(const std::map<std::string, std::string>& fields) {
  json body = json::object();
  auto it = fields.find("request");
  if (it != fields.end()) {
    body = json::parse(it->second, nullptr, false);
    if (body.is_discarded()) throw bad_request("the multipart field \"request\" is not valid JSON");
    if (!body.is_object()) throw bad_request("the multipart field \"request\" must hold a JSON object");
  }
  const std::set<std::string> numbers = {"duration", "seed", "top_k", "top_p", "temperature", "cfg", "bpm", "beats_per_chord"};
  const std::set<std::string> booleans = {"greedy", "stream"};
  for (const auto& kv : fields) {
    if (kv.first == "request") continue;
    if (numbers.count(kv.first)) {
      json v = json::parse(kv.second, nullptr, false);
      if (v.is_discarded() || !v.is_number()) throw bad_request(kv.first + " must be a number, got \"" + kv.second + "\"");
      body[kv.first] = v;
    } else if (booleans.count(kv.first)) {
      if (kv.second != "true" && kv.second != "false")
        throw bad_request(kv.first + " must be true or false, got \"" + kv.second + "\"");
      body[kv.first] = kv.second == "true";
    } else {
      body[kv.first] = kv.second;
    }
  }
  return body;
}

void attach_melody(GenerationRequest& r, const std::string& file_bytes, const TempDir& tmp) {
  if (!r.chroma.empty()) throw bad_request("give a melody upload or chords/notes, not both");
  musicgen_audio a{};
  std::string error;
  if (!read_audio_bytes(file_bytes, tmp, &a, &error)) throw bad_request("melody: " + error);
  r.melody.assign(a.samples, a.samples + a.n_samples * a.channels);
  r.melody_channels = a.channels;
  r.melody_rate = a.sample_rate;
  r.melody_samples = a.n_samples;
  musicgen_audio_free(&a);
}

const char* content_type_for(const std::string& format) {
  if (format == "flac") return "audio/flac";
  if (format == "ogg") return "audio/ogg";
  if (format == "mp3") return "audio/mpeg";
  return "audio/wav";
}

}  // namespace mgserver
