// The composer's theory and its description language: keys and modes, roman numerals, chord
// scales, and "A minor; i VI III VII; 8 bars; 90 bpm; ornaments 0.2" -> CompositionSpec.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <sstream>

#include "conditioning/composer.h"

namespace mg {
namespace {

const int kModeSteps[7][7] = {
    {0, 2, 4, 5, 7, 9, 11},  // ionian (major)
    {0, 2, 3, 5, 7, 9, 10},  // dorian
    {0, 1, 3, 5, 7, 8, 10},  // phrygian
    {0, 2, 4, 6, 7, 9, 11},  // lydian
    {0, 2, 4, 5, 7, 9, 10},  // mixolydian
    {0, 2, 3, 5, 7, 8, 10},  // aeolian (natural minor)
    {0, 1, 3, 5, 6, 8, 10},  // locrian
};

struct ModeName {
  const char* name;
  Mode mode;
};
const ModeName kModeNames[] = {
    {"major", Mode::Ionian},    {"ionian", Mode::Ionian},         {"minor", Mode::Aeolian},
    {"aeolian", Mode::Aeolian}, {"dorian", Mode::Dorian},         {"phrygian", Mode::Phrygian},
    {"lydian", Mode::Lydian},   {"mixolydian", Mode::Mixolydian}, {"locrian", Mode::Locrian},
};

// The default progression of each mode: a common cadence that ends on its tonic.
const char* default_progression(Mode m) {
  switch (m) {
    case Mode::Ionian: return "I IV V I";
    case Mode::Dorian: return "i IV VII i";
    case Mode::Phrygian: return "i iv II i";
    case Mode::Lydian: return "I II V I";
    case Mode::Mixolydian: return "I VII IV I";
    case Mode::Aeolian: return "i iv V i";
    case Mode::Locrian: return "io iv II io";
  }
  return "I IV V I";
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// A pitch-class name A-G (either case) with up to two '#'/'b' at the start of s; -1 if none.
int parse_tonic(const std::string& s, size_t& pos) {
  std::string t = s;
  if (!t.empty()) t[0] = char(std::toupper(static_cast<unsigned char>(t[0])));
  pos = 0;
  return parse_pitch_class(t, pos);
}

double parse_number(const std::string& text, const std::string& what) {
  double v = 0;
  if (!parse_finite_number(text, v)) throw Error(strcat("'", text, "' is not a number (", what, ")"));
  return v;
}

// "8 bars" / "bars 8" / "1 bar" style fields: the number next to the word.
bool number_field(const std::vector<std::string>& w, const char* a, const char* b, std::string& number) {
  if (w.size() != 2) return false;
  const std::string w0 = lower(w[0]), w1 = lower(w[1]);
  if (w1 == a || w1 == b) number = w[0];
  else if (w0 == a || w0 == b) number = w[1];
  else return false;
  return true;
}

// A chord's triad or seventh from the numeral's case and suffix.
std::vector<int> numeral_intervals(bool upper, const std::string& suffix, const std::string& token) {
  if (suffix.empty()) return upper ? std::vector<int>{0, 4, 7} : std::vector<int>{0, 3, 7};
  if (suffix == "7") return upper ? std::vector<int>{0, 4, 7, 10} : std::vector<int>{0, 3, 7, 10};
  if (suffix == "maj7" || suffix == "M7") return upper ? std::vector<int>{0, 4, 7, 11} : std::vector<int>{0, 3, 7, 11};
  if (suffix == "o" || suffix == "dim" || suffix == "\xC2\xB0") return {0, 3, 6};
  if (suffix == "o7" || suffix == "dim7" || suffix == "\xC2\xB0" "7") return {0, 3, 6, 9};
  if (suffix == "\xC3\xB8" "7" || suffix == "\xC3\xB8" || suffix == "m7b5") return {0, 3, 6, 10};
  if (suffix == "+" || suffix == "aug") return {0, 4, 8};
  throw Error(strcat("'", token, "': unknown numeral suffix '", suffix,
                     "' (expected none, 7, maj7, o/dim/\xC2\xB0, o7, \xC3\xB8" "7/m7b5, +/aug)"));
}

}  // namespace

std::vector<int> Key::scale() const {
  std::vector<int> s;
  for (int step : kModeSteps[int(mode)]) s.push_back((tonic + step) % 12);
  return s;
}

bool Key::in_scale(int pc) const {
  const std::vector<int> s = scale();
  return std::find(s.begin(), s.end(), ((pc % 12) + 12) % 12) != s.end();
}

double CompositionSpec::strong_spacing() const {
  if (metre_den == 8) return 1.5;               // compound metres: dotted-quarter beats
  if (metre_num == 4 || metre_num == 2) return 2.0;  // 4/4, 2/2: beats 1 and 3 (2/4: the downbeat)
  return bar_beats();                          // 3/4: the downbeat
}

bool CompositionSpec::is_strong_beat(double beat) const {
  const double s = strong_spacing();
  const double r = std::fmod(std::fmod(beat, bar_beats()), s);
  return std::fabs(r) < 1e-9 || std::fabs(r - s) < 1e-9;
}

Chord CompositionSpec::tonic_chord() const {
  return parse_progression_chord(key.mode == Mode::Locrian ? "io"
                                 : (key.mode == Mode::Ionian || key.mode == Mode::Lydian || key.mode == Mode::Mixolydian)
                                     ? "I"
                                     : "i",
                                 key);
}

Chord CompositionSpec::chord_at_bar(int bar) const {
  const Chord& c = progression[size_t(bar) % progression.size()];
  return bar == bars - 1 && c.root != key.tonic ? tonic_chord() : c;
}

Key parse_key(const std::string& text) {
  const std::vector<std::string> w = words(text);
  Key k;
  k.name = trim(text);
  size_t pos = 0;
  const int tonic = w.empty() ? -1 : parse_tonic(w[0], pos);
  if (tonic < 0 || w.size() > 2)
    throw Error(strcat("unknown key '", k.name, "' (expected a tonic A-G with # or b and a mode: major, minor, ",
                       "dorian, phrygian, lydian, mixolydian, locrian, e.g. \"A minor\")"));
  k.tonic = tonic;
  std::string mode = w.size() == 2 ? lower(w[1]) : "";
  const std::string rest = w[0].substr(pos);
  if (!rest.empty()) {  // "Am", "Cmaj"
    if (w.size() == 2 || (rest != "m" && rest != "maj"))
      throw Error(strcat("unknown key '", k.name, "': '", w[0], "' is not a tonic (A-G, then # or b)"));
    mode = rest == "m" ? "minor" : "major";
  }
  if (mode.empty()) mode = "major";
  for (const ModeName& m : kModeNames)
    if (mode == m.name) {
      k.mode = m.mode;
      return k;
    }
  throw Error(strcat("unknown key '", k.name, "': mode '", mode,
                     "' is not one of major, minor, ionian, dorian, phrygian, lydian, mixolydian, aeolian, locrian"));
}

Chord parse_progression_chord(const std::string& token, const Key& key) {
  size_t pos = 0;
  int acc = 0;
  while (pos < token.size() && (token[pos] == 'b' || token[pos] == '#') && pos + 1 < token.size() &&
         std::strchr("IViv", token[pos + 1]))
    acc += token[pos++] == '#' ? 1 : -1;
  const size_t start = pos;
  while (pos < token.size() && std::strchr("IViv", token[pos])) ++pos;
  const std::string numeral = token.substr(start, pos - start);
  if (numeral.empty()) {
    if (!token.empty() && token[0] >= 'A' && token[0] <= 'G') return parse_chord(token);
    throw Error(strcat("'", token, "' is not a roman numeral (I..VII, lowercase for minor) or a chord name (Am, F#7)"));
  }
  static const char* kNumerals[7] = {"i", "ii", "iii", "iv", "v", "vi", "vii"};
  const std::string low = lower(numeral);
  int degree = -1;
  for (int d = 0; d < 7; ++d)
    if (low == kNumerals[d]) degree = d;
  const bool upper = std::all_of(numeral.begin(), numeral.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
  const bool lower_case = std::all_of(numeral.begin(), numeral.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)); });
  if (degree < 0 || !(upper || lower_case))
    throw Error(strcat("'", token, "': '", numeral, "' is not a roman numeral I..VII (all upper case for major, ",
                       "all lower case for minor)"));
  Chord c;
  c.symbol = token;
  c.root = ((key.scale()[size_t(degree)] + acc) % 12 + 12) % 12;
  c.bass = c.root;
  for (int iv : numeral_intervals(upper, token.substr(pos), token)) c.tones.push_back((c.root + iv) % 12);
  return c;
}

std::vector<int> chord_scale(const Key& key, const Chord& chord) {
  std::vector<int> s = key.scale();
  for (int pc : chord.tones) {
    if (std::find(s.begin(), s.end(), pc) != s.end()) continue;
    // Replace the scale degree a semitone above or below (never the tonic, never a chord tone);
    // of the two, the one that leaves no run of three semitones (F# in C: F, not G).
    int best = -1, best_runs = 1 << 20;
    for (int delta : {-1, +1}) {  // raising (G -> G#) first on a tie
      const int from = (pc + delta + 12) % 12;
      auto it = std::find(s.begin(), s.end(), from);
      if (it == s.end() || from == key.tonic ||
          std::find(chord.tones.begin(), chord.tones.end(), from) != chord.tones.end())
        continue;
      std::vector<int> t = s;
      t[size_t(it - s.begin())] = pc;
      std::sort(t.begin(), t.end());
      int runs = 0;
      for (size_t i = 0; i < t.size(); ++i) {
        const int a = t[i], b = t[(i + 1) % t.size()], c = t[(i + 2) % t.size()];
        runs += ((b - a + 12) % 12 == 1) && ((c - b + 12) % 12 == 1);
      }
      if (runs < best_runs) best_runs = runs, best = int(it - s.begin());
    }
    if (best >= 0) s[size_t(best)] = pc;
    else s.push_back(pc);  // nothing to replace (a dense chord): add it
  }
  std::sort(s.begin(), s.end());
  return s;
}

CompositionSpec parse_composition(const std::string& description) {
  std::vector<std::string> fields;
  {
    std::string cur;
    for (char c : description) {
      if (c == ';') fields.push_back(cur), cur.clear();
      else cur += c;
    }
    fields.push_back(cur);
    if (fields.size() > 1 && trim(fields.back()).empty()) fields.pop_back();  // a trailing ';'
  }
  const size_t n = fields.size();
  auto at = [&](size_t i) { return strcat("compose: field ", i + 1, " of ", n, " ('", trim(fields[i]), "'): "); };
  CompositionSpec spec;
  if (trim(fields[0]).empty()) throw Error("compose: the description is empty (expected e.g. \"A minor; i VI III VII; 8 bars\")");
  try {
    spec.key = parse_key(fields[0]);
  } catch (const std::exception& e) {
    throw Error(at(0) + e.what());
  }
  bool seen[5] = {false, false, false, false, false};  // progression, metre, bars, bpm, ornaments
  auto once = [&](int what, size_t i, const char* name) {
    if (seen[what]) throw Error(strcat(at(i), name, " is given twice"));
    seen[what] = true;
  };
  for (size_t i = 1; i < n; ++i) {
    const std::string f = trim(fields[i]);
    const std::vector<std::string> w = words(f);
    if (w.empty()) throw Error(at(i) + "empty field");
    std::string num;
    try {
      if (number_field(w, "bars", "bar", num)) {
        once(2, i, "bars");
        const double v = parse_number(num, "bars");
        if (!(v >= 1 && v <= 256 && v == std::floor(v))) throw Error(strcat("bars '", num, "' must be a whole number 1..256"));
        spec.bars = int(v);
      } else if (number_field(w, "bpm", "bpm", num)) {
        once(3, i, "bpm");
        const double v = parse_number(num, "bpm");
        if (!(v >= kMinBpm && v <= kMaxBpm)) throw Error(strcat("bpm '", num, "' is outside ", kMinBpm, "..", kMaxBpm));
        spec.bpm = v;
      } else if (number_field(w, "ornaments", "ornament", num)) {
        once(4, i, "ornaments");
        const double v = parse_number(num, "ornament density");
        if (!(v >= 0 && v <= 1)) throw Error(strcat("ornaments '", num, "' is outside [0, 1]"));
        spec.ornaments = v;
      } else if (w.size() <= 2 && w.back().find('/') != std::string::npos &&
                 (w.size() == 1 || lower(w[0]) == "metre" || lower(w[0]) == "meter" || lower(w[0]) == "time")) {
        once(1, i, "the metre");
        const std::string& m = w.back();
        static const char* kMetres[] = {"2/4", "3/4", "4/4", "2/2", "6/8", "9/8", "12/8"};
        if (std::find_if(std::begin(kMetres), std::end(kMetres), [&](const char* k) { return m == k; }) == std::end(kMetres))
          throw Error(strcat("metre '", m, "' is not one of 2/4 3/4 4/4 2/2 6/8 9/8 12/8"));
        spec.metre_num = std::stoi(m.substr(0, m.find('/')));
        spec.metre_den = std::stoi(m.substr(m.find('/') + 1));
      } else {
        const std::string& first = w[0];
        const bool numeral = std::strchr("IVivb#", first[0]) != nullptr, name = first[0] >= 'A' && first[0] <= 'G';
        if (!numeral && !name)
          throw Error(strcat("unknown field '", f, "' (expected a progression such as \"i VI III VII\" or \"Am F C G\", ",
                             "\"N bars\", \"N bpm\", \"ornaments X\" or a metre such as 3/4)"));
        once(0, i, "the progression");
        for (size_t k = 0; k < w.size(); ++k) {
          try {
            spec.progression.push_back(parse_progression_chord(w[k], spec.key));
          } catch (const std::exception& e) {
            throw Error(strcat("chord ", k + 1, " of ", w.size(), " ('", w[k], "'): ", e.what()));
          }
        }
      }
    } catch (const std::exception& e) {
      const std::string msg = e.what();
      throw Error(msg.rfind("compose:", 0) == 0 ? msg : at(i) + msg);
    }
  }
  if (spec.progression.empty()) {
    for (const std::string& t : words(default_progression(spec.key.mode)))
      spec.progression.push_back(parse_progression_chord(t, spec.key));
  }
  return spec;
}

}  // namespace mg
