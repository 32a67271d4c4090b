// Key check and transposition of chord and note text (key_check.h).
#include "conditioning/key_check.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <sstream>

#include "kernels/common.h"

namespace mg {
namespace {

const char* const kLetters = "CDEFGAB";
const int kNatural[7] = {0, 2, 4, 5, 7, 9, 11};  // C D E F G A B
const char* const kSharpNames[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
const char* const kFlatNames[12] = {"C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"};
// The semitones from each mode's tonic down to its relative major's (Mode order).
const int kModeOffset[7] = {0, 2, 4, 5, 7, 9, 11};
const char* const kModeWord[7] = {"major", "dorian", "phrygian", "lydian", "mixolydian", "minor", "locrian"};

int pc_mod(int v) { return ((v % 12) + 12) % 12; }

const char* pc_name(int pc, bool flats) { return (flats ? kFlatNames : kSharpNames)[pc_mod(pc)]; }

// A token of chord or note text and where it sits, split by the rules of chords.cpp's tokenizer
// (whitespace, ',' and '|' separate; a '#' that begins a word comments out the rest of the line),
// so that positions match its errors and a rewrite keeps everything between tokens.
struct Token {
  size_t offset = 0;
  std::string text;
};
bool is_separator(char c) { return std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '|'; }
std::vector<Token> tokens_of(const std::string& text) {
  std::vector<Token> out;
  for (size_t i = 0; i < text.size();) {
    if (is_separator(text[i])) {
      ++i;
    } else if (text[i] == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else {
      Token t{i, ""};
      while (i < text.size() && !is_separator(text[i])) t.text += text[i++];
      out.push_back(t);
    }
  }
  return out;
}

// The text with each token replaced by `map(token, index, count)`.
std::string rewrite(const std::string& text, const std::function<std::string(const std::string&, size_t, size_t)>& map) {
  const std::vector<Token> tokens = tokens_of(text);
  std::string out;
  size_t at = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    out += text.substr(at, tokens[i].offset - at) + map(tokens[i].text, i, tokens.size());
    at = tokens[i].offset + tokens[i].text.size();
  }
  return out + text.substr(at);
}

// The length of the note name (letter and up to two accidentals) at s[pos], as chords.cpp reads it.
size_t name_length(const std::string& s, size_t pos) {
  size_t n = 1;
  while (n < 3 && pos + n < s.size() && (s[pos + n] == '#' || s[pos + n] == 'b')) ++n;
  return n;
}

// `pc` spelled on the letter `letter` (0 = C .. 6 = B), with up to two sharps or flats.
std::string spell_on_letter(int letter, int pc) {
  const int d = pc_mod(pc - kNatural[letter % 7]);
  static const char* const kAcc[12] = {"", "#", "##", "", "", "", "", "", "", "", "bb", "b"};
  return std::string(1, kLetters[letter % 7]) + kAcc[d];
}

int letter_of(char c) { return int(std::strchr(kLetters, std::toupper(static_cast<unsigned char>(c))) - kLetters); }

// The pitch class of a name as written ("F#", "Bb", "E##").
int pc_of_name(const std::string& name) {
  int pc = kNatural[letter_of(name[0])];
  for (size_t k = 1; k < name.size(); ++k) pc += name[k] == '#' ? 1 : -1;
  return pc_mod(pc);
}

// The name (letter and accidentals as written) moved by `semitones` and `letters`.
std::string move_name(const std::string& name, int semitones, int letters, bool flats) {
  const int letter = (letter_of(name[0]) + letters) % 7, pc = pc_mod(pc_of_name(name) + semitones);
  const int acc = pc_mod(pc - kNatural[letter]);
  return acc <= 2 || acc >= 10 ? spell_on_letter(letter, pc) : pc_name(pc, flats);
}

// The chord's tones that leave the scale, spelled as the symbol implies: each tone on the letter
// of its degree above the root (a third two letters up, a fifth four...), the slash bass as written.
std::vector<std::string> outside_tones(const Chord& c, const std::string& body, const Key& key) {
  // Interval above the root -> degree (in letters) above it; 9 is a 6th except in a dim7 (bb7).
  static const int kDegree[12] = {0, 1, 1, 2, 2, 3, 4, 4, 4, 5, 6, 6};
  bool has[12] = {};
  for (int pc : c.tones) has[pc_mod(pc - c.root)] = true;
  const bool dim7 = has[3] && has[6] && has[9] && !has[10] && !has[11];
  const int root_letter = letter_of(body[0]);
  std::vector<std::string> out;
  for (int pc : c.tones) {
    if (key.in_scale(pc)) continue;
    const int iv = pc_mod(pc - c.root);
    out.push_back(spell_on_letter(root_letter + ((dim7 && iv == 9) ? 6 : kDegree[iv]), pc));
  }
  const size_t slash = body.find('/');
  const bool bass_is_tone = std::find(c.tones.begin(), c.tones.end(), c.bass) != c.tones.end();
  if (!bass_is_tone && !key.in_scale(c.bass) && slash != std::string::npos)
    out.push_back(body.substr(slash + 1));
  return out;
}

std::string outside_line(const char* kind, size_t i, size_t n, const std::string& token, const Key& key,
                         const std::vector<std::string>& tones) {
  std::string list;
  for (const std::string& t : tones) list += (list.empty() ? "" : ", ") + t;
  return strcat(kind, " ", i + 1, " of ", n, " '", token, "' is outside ", key.name, " (", list, " not in the scale)");
}

}  // namespace

Key parse_key_named(const std::string& text, const std::string& who) {
  std::istringstream in(text);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  try {
    if (w.empty()) throw Error("the key is empty (expected e.g. \"A minor\" or \"D dorian\")");
    return parse_key(text);
  } catch (const std::exception& e) {
    if (w.empty()) throw Error(strcat(who, ": ", e.what()));
    // The first prefix of words that no longer parses holds the offending word.
    size_t bad = 0;
    std::string prefix;
    for (; bad < w.size(); ++bad) {
      prefix += (bad ? " " : "") + w[bad];
      try {
        parse_key(prefix);
      } catch (const std::exception&) {
        break;
      }
    }
    if (bad == w.size()) bad = w.size() - 1;
    throw Error(strcat(who, " '", text, "': word ", bad + 1, " of ", w.size(), " ('", w[bad], "'): ", e.what()));
  }
}

std::vector<std::string> chords_outside_key(const std::string& chords, const Key& key) {
  const std::vector<Chord> parsed = parse_chord_progression(chords);  // errors with positions
  std::vector<std::string> out;
  for (size_t i = 0; i < parsed.size(); ++i) {
    const std::string& sym = parsed[i].symbol;
    const std::vector<std::string> tones = outside_tones(parsed[i], sym.substr(0, sym.find(':')), key);
    if (!tones.empty()) out.push_back(outside_line("chord", i, parsed.size(), sym, key, tones));
  }
  return out;
}

std::vector<std::string> notes_outside_key(const std::string& notes, const Key& key) {
  (void)notes_to_timeline(notes);  // errors with positions
  const std::vector<Token> tokens = tokens_of(notes);
  std::vector<std::string> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string name = tokens[i].text.substr(0, tokens[i].text.find(':'));
    if (name == "r" || name == "R") continue;
    std::string spelled;
    int pc = 0;
    if (name[0] >= 'A' && name[0] <= 'G') {
      spelled = name.substr(0, name_length(name, 0));
      pc = pc_of_name(spelled);
    } else {
      pc = pc_mod(std::stoi(name));
      spelled = pc_name(pc, key_uses_flats(key));
    }
    if (!key.in_scale(pc_mod(pc))) out.push_back(outside_line("note", i, tokens.size(), tokens[i].text, key, {spelled}));
  }
  return out;
}

int transpose_interval(const Key& from, const Key& to) {
  if (from.mode != to.mode)
    throw Error(strcat("cannot transpose from ", from.name, " to ", to.name, ": the modes differ (",
                       kModeWord[int(from.mode)], " and ", kModeWord[int(to.mode)], "); transposing keeps the mode, ",
                       "e.g. ", pc_name(to.tonic, key_uses_flats(to)), " ", kModeWord[int(from.mode)]));
  const int d = pc_mod(to.tonic - from.tonic);
  return d > 6 ? d - 12 : d;
}

int transpose_letters(const Key& from, const Key& to) {
  return ((letter_of(to.name[0]) - letter_of(from.name[0])) % 7 + 7) % 7;
}

bool key_uses_flats(const Key& key) {
  const std::string& n = key.name;
  if (n.size() > 1 && (n[1] == 'b' || n[1] == '#')) return n[1] == 'b';
  const int fifths = pc_mod(pc_mod(key.tonic - kModeOffset[int(key.mode)]) * 7);  // relative major on the circle
  return !(fifths >= 1 && fifths <= 6);
}

std::string transpose_chords(const std::string& chords, int semitones, int letters, bool flats) {
  (void)parse_chord_progression(chords);  // errors with positions
  return rewrite(chords, [&](const std::string& tok, size_t, size_t) {
    const size_t colon = tok.find(':');
    const std::string body = tok.substr(0, colon), beats = colon == std::string::npos ? "" : tok.substr(colon);
    const size_t root_len = name_length(body, 0), slash = body.find('/', root_len);
    std::string out = move_name(body.substr(0, root_len), semitones, letters, flats) +
                      body.substr(root_len, slash - root_len);
    if (slash != std::string::npos) out += "/" + move_name(body.substr(slash + 1), semitones, letters, flats);
    return out + beats;
  });
}

std::string transpose_notes(const std::string& notes, int semitones, int letters, bool flats) {
  (void)notes_to_timeline(notes);  // errors with positions
  return rewrite(notes, [&](const std::string& tok, size_t i, size_t n) {
    const size_t colon = tok.find(':');
    const std::string name = tok.substr(0, colon), beats = colon == std::string::npos ? "" : tok.substr(colon);
    if (name == "r" || name == "R") return tok;
    const bool named = name[0] >= 'A' && name[0] <= 'G';
    const size_t len = named ? name_length(name, 0) : 0;
    int midi = 0;
    if (named) {  // the octave counts from the letter's natural C, as notes_to_timeline reads it
      midi = (std::stoi(name.substr(len)) + 1) * 12 + kNatural[letter_of(name[0])];
      for (size_t k = 1; k < len; ++k) midi += name[k] == '#' ? 1 : -1;
    } else {
      midi = std::stoi(name);
    }
    midi += semitones;
    if (midi < 0 || midi > 127)
      throw Error(strcat("notes: note ", i + 1, " of ", n, " ('", tok, "'): transposed by ", semitones,
                         " semitones it is MIDI note ", midi, ", outside 0..127"));
    if (!named) return std::to_string(midi) + beats;
    const std::string moved = move_name(name.substr(0, len), semitones, letters, flats);
    int offset = kNatural[letter_of(moved[0])];  // the octave of the moved name's own letter
    for (size_t k = 1; k < moved.size(); ++k) offset += moved[k] == '#' ? 1 : -1;
    return moved + std::to_string((midi - offset) / 12 - 1) + beats;
  });
}

}  // namespace mg
