#include "train/music_info.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "kernels/common.h"

namespace mg {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// get_string: a non-empty string other than "None", trimmed.
std::string get_string(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  const std::string v = it->get<std::string>();
  return v.empty() || v == "None" ? "" : trim(v);
}

std::string get_keyword(const nlohmann::json& j, const char* key) { return lower(get_string(j, key)); }

std::string get_musical_key(const nlohmann::json& j) {
  const std::string v = get_keyword(j, "key");
  return v.find(',') == std::string::npos ? v : "";
}

std::optional<double> get_bpm(const nlohmann::json& j) {
  auto it = j.find("bpm");
  if (it == j.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (!it->is_string()) return std::nullopt;
  const std::string s = trim(it->get<std::string>());
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::vector<std::string> get_keyword_list(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  std::vector<std::string> raw;
  if (it == j.end() || it->is_null()) return {};
  if (it->is_string()) {
    std::string word;
    for (char c : it->get<std::string>() + ",") {
      if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
        raw.push_back(word);
        word.clear();
      } else {
        word.push_back(c);
      }
    }
  } else if (it->is_array()) {
    for (const auto& e : *it)
      if (e.is_string()) raw.push_back(e.get<std::string>());
  }
  std::vector<std::string> out;
  for (const std::string& w : raw) {
    const std::string k = lower(trim(w));
    if (!k.empty() && k != "none") out.push_back(k);
  }
  return out;
}

// Python's str(float): "120.0", "92.5".
std::string python_float(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e16) {
    std::ostringstream s;
    s << int64_t(v) << ".0";
    return s.str();
  }
  std::ostringstream s;
  s.precision(17);
  s << v;
  // Shortest form that reads back the same value, as Python's repr.
  for (int p = 1; p <= 17; ++p) {
    std::ostringstream t;
    t.precision(p);
    t << v;
    if (std::strtod(t.str().c_str(), nullptr) == v) return t.str();
  }
  return s.str();
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string metadata_text(const MusicInfo& m) {
  std::vector<std::string> pairs;
  if (!m.key.empty()) pairs.push_back("key: " + m.key);
  if (m.bpm) pairs.push_back("bpm: " + python_float(*m.bpm));
  if (!m.genre.empty()) pairs.push_back("genre: " + m.genre);
  if (!m.moods.empty()) pairs.push_back("moods: " + join(m.moods, ", "));
  if (!m.keywords.empty()) pairs.push_back("keywords: " + join(m.keywords, ", "));
  if (!m.instrument.empty()) pairs.push_back("instrument: " + m.instrument);
  return join(pairs, ". ");
}

}  // namespace

bool MusicInfo::has_text() const {
  return !description.empty() || !key.empty() || bpm.has_value() || !genre.empty() || !moods.empty() ||
         !keywords.empty() || !instrument.empty();
}

MusicInfo music_info_from_json(const nlohmann::json& j, const std::string& source) {
  MG_CHECK(j.is_object(), source, ": the metadata must be a JSON object (audiocraft's fields: description, genre, "
           "moods, keywords, bpm, key, instrument, ...)");
  MusicInfo m;
  m.description = get_string(j, "description");
  m.title = get_string(j, "title");
  m.artist = get_string(j, "artist");
  m.genre = get_keyword(j, "genre");
  m.name = get_keyword(j, "name");
  m.instrument = get_keyword(j, "instrument");
  m.key = get_musical_key(j);
  m.bpm = get_bpm(j);
  m.moods = get_keyword_list(j, "moods");
  m.keywords = get_keyword_list(j, "keywords");
  return m;
}

std::string music_info_text(const MusicInfo& info, TextMode mode) {
  const std::string meta = metadata_text(info);
  std::string desc = info.description;
  if (desc.empty()) return meta;
  if (mode == TextMode::Description) return desc;
  while (!desc.empty() && desc.back() == '.') desc.pop_back();
  return trim(desc + ". " + meta);
}

TextMode parse_text_mode(const std::string& name) {
  if (name == "merged") return TextMode::Merged;
  if (name == "description") return TextMode::Description;
  throw Error("unknown text mode '" + name + "': use merged (description + genre, moods, ...) or description");
}

}  // namespace mg
