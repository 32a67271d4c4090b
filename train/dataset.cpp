#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "codec/atomic_file.h"
#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "weights/safetensors.h"
#include "weights/safetensors_writer.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

// Extensions libsndfile reads that the folder scan picks up (any case).
const std::set<std::string> kAudioExtensions = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3",
                                                ".aiff", ".aif", ".au", ".caf", ".w64"};

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void stat_file(TrainingTrack& t) {
  std::error_code ec;
  MG_CHECK(fs::is_regular_file(t.path, ec), "training file '", t.path, "' does not exist or is not a regular file");
  t.size = fs::file_size(t.path, ec);
  MG_CHECK(!ec, "cannot read the size of training file '", t.path, "': ", ec.message());
  const auto mtime = fs::last_write_time(t.path, ec);
  MG_CHECK(!ec, "cannot read the modification time of training file '", t.path, "': ", ec.message());
  t.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count();
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MG_CHECK(in, "cannot open the metadata file '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error("metadata file '" + path + "' is not valid JSON: " + e.what() + " (fix or remove it)");
  }
}

// The sidecar's text, or "" when the audio has none.
std::string sidecar_text(const std::string& audio_path, TextMode mode) {
  const fs::path sidecar = fs::path(audio_path).replace_extension(".json");
  std::error_code ec;
  if (!fs::is_regular_file(sidecar, ec)) return "";
  return music_info_text(music_info_from_json(read_json_file(sidecar.string()), sidecar.string()), mode);
}

std::vector<TrainingTrack> scan_folder(const std::string& dir, TextMode mode) {
  std::vector<TrainingTrack> out;
  std::error_code ec;
  // Linked folders are not entered (a link cycle would never end); linked files are read.
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    if (kAudioExtensions.count(lower(it->path().extension().string())) == 0) continue;
    TrainingTrack t;
    t.path = it->path().string();
    out.push_back(t);
  }
  MG_CHECK(!ec, "cannot read the training data folder '", dir, "': ", ec.message());
  MG_CHECK(!out.empty(), "the training data folder '", dir, "' holds no audio files (",
           "looked for .wav .flac .ogg .opus .mp3 .aiff .au .caf .w64, in subfolders too)");
  std::sort(out.begin(), out.end(), [](const TrainingTrack& a, const TrainingTrack& b) { return a.path < b.path; });
  for (TrainingTrack& t : out) t.text = sidecar_text(t.path, mode);
  return out;
}

std::vector<TrainingTrack> read_manifest(const std::string& manifest, TextMode mode) {
  std::ifstream in(manifest, std::ios::binary);
  MG_CHECK(in, "cannot open the training manifest '", manifest, "'");
  const fs::path base = fs::path(manifest).parent_path();
  std::vector<TrainingTrack> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = manifest + " line " + std::to_string(n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + " is not valid JSON: " + e.what());
    }
    MG_CHECK(j.is_object() && j.contains("path") && j["path"].is_string(), where,
             ": each line must be a JSON object with a \"path\" string (and optional description, genre, moods, ...)");
    TrainingTrack t;
    const fs::path p = j["path"].get<std::string>();
    t.path = (p.is_absolute() ? p : base / p).string();
    const MusicInfo info = music_info_from_json(j, where);
    t.text = info.has_text() ? music_info_text(info, mode) : sidecar_text(t.path, mode);
    out.push_back(t);
  }
  MG_CHECK(!out.empty(), "the training manifest '", manifest, "' lists no files");
  return out;
}

void assign_split(std::vector<TrainingTrack>& tracks, double val_fraction, uint64_t seed) {
  const size_t n = tracks.size();
  size_t n_val = size_t(std::llround(val_fraction * double(n)));
  if (val_fraction > 0 && n >= 2) n_val = std::max<size_t>(n_val, 1);
  n_val = std::min(n_val, n == 0 ? 0 : n - 1);
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < n; ++i) order.push_back({fnv1a(tracks[i].path, fnv1a(std::to_string(seed) + "|split")), i});
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < n_val; ++i) tracks[order[i].second].validation = true;
}

// ---- the cache: one safetensors file per audio file ----

std::string cache_key(const TrainingTrack& t, const DatasetOptions& o) {
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(t.path, ec);
  char seg[64];
  std::snprintf(seg, sizeof seg, "%.17g", o.segment_seconds);
  return "codes-v1|" + (ec ? t.path : canon.string()) + "|" + std::to_string(t.size) + "|" + std::to_string(t.mtime_ns) +
         "|" + o.model_key + "|segment=" + seg + "|seed=" + std::to_string(o.seed);
}

std::string cache_path(const std::string& key, const DatasetOptions& o) {
  return (fs::path(o.cache_dir) / (hex64(fnv1a(key)) + ".safetensors")).string();
}

std::string join_i64(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

std::vector<int64_t> split_i64(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
  return v;
}

// The cached segments of a file, or false when there is no usable cache entry (absent, another key,
// unreadable: then it is encoded again and the entry rewritten).
bool read_cache(const std::string& path, const std::string& key, int K, std::vector<TrainingSegment>& out) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  try {
    const auto f = SafeTensorsFile::open(path);
    const auto& meta = f->metadata();
    auto k = meta.find("key"), s = meta.find("starts"), l = meta.find("lengths");
    if (k == meta.end() || k->second != key || s == meta.end() || l == meta.end()) return false;
    const std::vector<int64_t> starts = split_i64(s->second), lengths = split_i64(l->second);
    if (starts.size() != lengths.size() || starts.empty()) return false;
    std::vector<TrainingSegment> segs;
    for (size_t i = 0; i < starts.size(); ++i) {
      const Tensor t = f->get("segment." + std::to_string(i));
      if (t.dtype != DType::I32 || t.ndim() != 2 || t.dim(0) != K) return false;
      TrainingSegment seg;
      seg.start = starts[i];
      seg.length = lengths[i];
      seg.codes.assign(K, std::vector<int>(size_t(t.dim(1))));
      const int32_t* p = t.ptr<int32_t>();
      for (int k = 0; k < K; ++k) std::copy(p + k * t.dim(1), p + (k + 1) * t.dim(1), seg.codes[k].begin());
      segs.push_back(std::move(seg));
    }
    out = std::move(segs);
    return true;
  } catch (const Error&) {
    return false;
  }
}

void write_cache(const std::string& path, const std::string& key, const std::vector<TrainingSegment>& segs) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::vector<int64_t> starts, lengths;
  for (size_t i = 0; i < segs.size(); ++i) {
    const Codes& c = segs[i].codes;
    const int64_t K = int64_t(c.size()), T = c.empty() ? 0 : int64_t(c[0].size());
    Tensor t = Tensor::empty(DType::I32, {K, T});
    for (int64_t k = 0; k < K; ++k) std::copy(c[k].begin(), c[k].end(), t.ptr<int32_t>() + k * T);
    tensors.push_back({"segment." + std::to_string(i), t});
    starts.push_back(segs[i].start);
    lengths.push_back(segs[i].length);
  }
  const std::string bytes =
      safetensors_bytes(tensors, {{"key", key}, {"starts", join_i64(starts)}, {"lengths", join_i64(lengths)}});
  AtomicFile f(path);
  f.write_all(bytes.data(), bytes.size());
  f.commit();
}

std::vector<TrainingSegment> encode_track(Backend& be, const MusicGen& model, const TrainingTrack& t,
                                          const DatasetOptions& o) {
  AudioBuffer audio;
  try {
    audio = read_audio(t.path);
  } catch (const Error& e) {
    throw Error(std::string("cannot read training file: ") + e.what() +
                " (convert it to wav/flac, or remove it from the training data)");
  }
  const AudioBuffer conv = convert_audio(audio, model.sample_rate(), model.channels());
  const int64_t S = std::llround(o.segment_seconds * model.sample_rate());
  std::vector<TrainingSegment> out;
  for (const auto& [start, length] : plan_segments(conv.num_frames(), S, o.seed, t.path)) {
    Tensor x = Tensor::empty(DType::F32, {conv.num_channels(), length});
    for (int c = 0; c < conv.num_channels(); ++c)
      std::copy(conv.channels[c].begin() + start, conv.channels[c].begin() + start + length, x.f32() + c * length);
    TrainingSegment seg;
    seg.start = start;
    seg.length = length;
    seg.codes = model.encode_audio(be, x);
    out.push_back(std::move(seg));
  }
  return out;
}

}  // namespace

std::string model_cache_key(const std::string& model_path) {
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(model_path, ec);
  std::string key = ec ? model_path : canon.string();
  for (const char* f : {"config.json", "model.safetensors", "model.safetensors.index.json"}) {
    const fs::path p = fs::path(model_path) / f;
    if (!fs::is_regular_file(p, ec)) continue;
    const auto mtime = fs::last_write_time(p, ec).time_since_epoch();
    key += std::string("|") + f + ":" + std::to_string(fs::file_size(p, ec)) + ":" +
           std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(mtime).count());
  }
  return key;
}

std::vector<std::pair<int64_t, int64_t>> plan_segments(int64_t samples, int64_t segment_samples, uint64_t seed,
                                                       const std::string& path) {
  MG_CHECK(segment_samples >= 1, "segment length must be at least one sample");
  if (samples <= segment_samples) return {{0, samples}};
  const int64_t n = samples / segment_samples, slack = samples - n * segment_samples;
  std::mt19937_64 rng(fnv1a(path, fnv1a(std::to_string(seed) + "|plan")));
  const int64_t offset = slack == 0 ? 0 : int64_t(rng() % uint64_t(slack + 1));
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t i = 0; i < n; ++i) out.push_back({offset + i * segment_samples, segment_samples});
  return out;
}

std::vector<TrainingTrack> list_training_tracks(const DatasetOptions& o) {
  MG_CHECK(o.segment_seconds > 0 && o.segment_seconds <= 30, "--segment must be in (0, 30] seconds, found ",
           o.segment_seconds, " (MusicGen was trained on 30 s crops)");
  MG_CHECK(o.val_fraction >= 0 && o.val_fraction < 1, "--val must be in [0, 1), found ", o.val_fraction);
  std::error_code ec;
  MG_CHECK(!o.data.empty(), "no training data given: pass a folder of audio files or a .jsonl manifest");
  MG_CHECK(fs::exists(o.data, ec), "training data '", o.data, "' does not exist (a folder of audio files or a .jsonl manifest)");
  std::vector<TrainingTrack> tracks =
      fs::is_directory(o.data, ec) ? scan_folder(o.data, o.text_mode) : read_manifest(o.data, o.text_mode);
  for (TrainingTrack& t : tracks) stat_file(t);
  assign_split(tracks, o.val_fraction, o.seed);
  return tracks;
}

Dataset prepare_dataset(Backend& be, const MusicGen& model, const DatasetOptions& o,
                        const std::function<void(const std::string&)>& log) {
  Dataset d;
  d.tracks = list_training_tracks(o);
  if (!o.cache_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.cache_dir, ec);
    MG_CHECK(fs::is_directory(o.cache_dir), "cannot create the code cache folder '", o.cache_dir,
             "': ", ec ? ec.message() : "not a folder");
  }
  const int K = model.config().decoder.num_codebooks;
  for (size_t i = 0; i < d.tracks.size(); ++i) {
    const TrainingTrack& t = d.tracks[i];
    const std::string key = cache_key(t, o);
    const std::string cpath = o.cache_dir.empty() ? "" : cache_path(key, o);
    std::vector<TrainingSegment> segs;
    const bool cached = !cpath.empty() && read_cache(cpath, key, K, segs);
    if (cached) {
      ++d.cached_tracks;
    } else {
      segs = encode_track(be, model, t, o);
      ++d.encoded_tracks;
      if (!cpath.empty()) write_cache(cpath, key, segs);
    }
    if (log)
      log(t.path + ": " + std::to_string(segs.size()) + " segment(s), " + (cached ? "cached" : "encoded") + ", " +
          (t.validation ? "validation" : "train") + (t.text.empty() ? ", no text (unconditional)" : ", \"" + t.text + "\""));
    for (TrainingSegment& s : segs) {
      s.track = int(i);
      (t.validation ? d.validation : d.train).push_back(std::move(s));
    }
  }
  return d;
}

}  // namespace mg
