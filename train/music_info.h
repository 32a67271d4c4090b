// The text condition of a training file, from audiocraft-style metadata (a sidecar .json beside the
// audio, or a line of a JSONL manifest): audiocraft's MusicInfo fields, read with the same
// clean-ups (audiocraft/data/music_dataset.py, info_audio_dataset.py), and one deterministic text.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mg {

struct MusicInfo {
  std::string description, title, artist;   // get_string: trimmed; "" = absent
  std::string genre, name, instrument;      // get_keyword: trimmed, lower case
  std::string key;                          // get_musical_key: lower case; "" when several ("C, G")
  std::optional<double> bpm;                // get_bpm: a number or a numeric string, else absent
  std::vector<std::string> moods, keywords; // get_keyword_list: a list, or a string split on , and spaces
  bool has_text() const;                    // any field the text is built from
};

// Reads the fields above from a JSON object; other keys are ignored, values of a wrong type are
// treated as absent (as audiocraft's getters do). `source` names the file in errors: a value that is
// not an object is one.
MusicInfo music_info_from_json(const nlohmann::json& j, const std::string& source);

// How the training text is made from a MusicInfo:
//   Merged (default): audiocraft's augment_music_info_description with every metadata field kept,
//     in its field order: "<description>. key: c major. bpm: 120.0. genre: electronic. moods:
//     uplifting, motivational. keywords: bright, pulsing. instrument: mix" (fields that are absent
//     are left out; without a description the metadata alone).
//   Description: the description alone (the metadata text when there is no description).
// No text at all gives "": the unconditional (null) condition.
enum class TextMode { Merged, Description };
std::string music_info_text(const MusicInfo& info, TextMode mode);
// "merged" | "description" -> mode; anything else is an error listing both.
TextMode parse_text_mode(const std::string& name);

}  // namespace mg
