// Training data for fine-tuning (LoRA): audio files with their text, cut into fixed-length
// segments, EnCodec-encoded once and cached on disk.
//
//   data: a folder (searched recursively; linked subfolders are not entered) of audio files libsndfile reads (wav, flac, ogg, mp3, ...)
//         with optional audiocraft sidecars (song.mp3 + song.json: description, genre, moods, ...),
//         or a JSONL manifest: one object per line with "path" (relative to the manifest's folder)
//         and optional metadata fields; a line without metadata reads the audio's sidecar.
//   text: train/music_info.h; a file without metadata trains the unconditional (empty) condition.
//   audio -> the model's rate and channels (codec/convert_audio.h, audiocraft's convert_audio)
//         -> segments of segment_seconds (the plan below) -> MusicGen::encode_audio, once.
//   plan: a file of L samples gives floor(L / S) segments of S samples, laid end to end from an
//         offset in [0, L mod S] drawn from (seed, the file's path): what is left out of a file (less
//         than one segment) is not always its end. A file shorter than S gives one segment, itself.
//   split: whole files (never segments of one file on both sides): files ordered by a hash of
//         (seed, path), the first round(val_fraction * files) are validation (at least one when
//         val_fraction > 0 and there are two files or more, never all of them).
//   cache: <cache_dir>/<hash>.safetensors per file, keyed by its path, size, modification time,
//         the model (model_cache_key), the segment length and the seed, written atomically; the key
//         is stored inside and compared on read, so a stale or foreign file is re-encoded, never used.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/tensor.h"
#include "lm/generate.h"
#include "train/music_info.h"

namespace mg {

struct DatasetOptions {
  std::string data;                 // folder or .jsonl manifest
  std::string cache_dir;            // where encoded codes are kept (created); "" = no cache
  double segment_seconds = 10.0;    // (0, 30]
  double val_fraction = 0.1;        // [0, 1)
  uint64_t seed = 0;
  TextMode text_mode = TextMode::Merged;
  std::string model_key;            // model_cache_key(model path): part of every cache key
};

struct TrainingTrack {
  std::string path;                 // as found (folder scan) or resolved (manifest)
  std::string text;                 // "" = unconditional
  uint64_t size = 0;                // bytes, for the cache key
  int64_t mtime_ns = 0;
  bool validation = false;
};

struct TrainingSegment {
  int track = 0;                    // index into Dataset::tracks
  int64_t start = 0;                // first sample, at the model's rate
  int64_t length = 0;               // samples
  Codes codes;                      // [K][frames], frames = ceil(length / hop)
};

struct Dataset {
  std::vector<TrainingTrack> tracks;
  std::vector<TrainingSegment> train, validation;
  int encoded_tracks = 0;           // files encoded by this call
  int cached_tracks = 0;            // files whose codes came from the cache
};

// A short text that changes when the model at `model_path` changes (its canonical path, and the
// size and modification time of config.json and the weight files).
std::string model_cache_key(const std::string& model_path);

// The files, their texts and the split (no audio is read). Errors: a missing folder or manifest, a
// folder without audio files, a manifest line that is not an object or lacks "path", a listed file
// that does not exist, a sidecar that is not JSON. Sorted by path (folder) or in manifest order.
std::vector<TrainingTrack> list_training_tracks(const DatasetOptions& options);

// The segment plan of one file of `samples` samples (see the top of this file).
std::vector<std::pair<int64_t, int64_t>> plan_segments(int64_t samples, int64_t segment_samples, uint64_t seed,
                                                       const std::string& path);

// Everything above: lists, reads, converts, cuts, encodes (or reads the cache), splits. `log`
// (optional) gets one line per file. An unreadable audio file is an error naming it.
Dataset prepare_dataset(Backend& be, const MusicGen& model, const DatasetOptions& options,
                        const std::function<void(const std::string&)>& log = nullptr);

}  // namespace mg
