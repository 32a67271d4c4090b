// Chord symbols, note lists, Standard MIDI Files and the timeline -> chroma rendering. See chords.h
// for the syntax and docs/chroma.md for why chords are spelled out one tone per beat.
#include "conditioning/chords.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>

#include "conditioning/chroma.h"

namespace mg {
namespace {

const char* const kPitchNames[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};

// Chord qualities as intervals above the root, in chord order (root, 3rd, 5th, 7th, extensions):
// that order is the order in which the tones are spelled out over the chord's beats.
struct Quality {
  const char* name;
  std::vector<int> intervals;
};
const std::vector<Quality>& qualities() {
  static const std::vector<Quality> q = {
      {"", {0, 4, 7}},          {"maj", {0, 4, 7}},          {"M", {0, 4, 7}},
      {"m", {0, 3, 7}},         {"min", {0, 3, 7}},          {"-", {0, 3, 7}},
      {"7", {0, 4, 7, 10}},     {"maj7", {0, 4, 7, 11}},     {"M7", {0, 4, 7, 11}},
      {"m7", {0, 3, 7, 10}},    {"min7", {0, 3, 7, 10}},     {"-7", {0, 3, 7, 10}},
      {"dim", {0, 3, 6}},       {"o", {0, 3, 6}},            {"dim7", {0, 3, 6, 9}},
      {"o7", {0, 3, 6, 9}},     {"m7b5", {0, 3, 6, 10}},     {"aug", {0, 4, 8}},
      {"+", {0, 4, 8}},         {"sus2", {0, 2, 7}},         {"sus4", {0, 5, 7}},
      {"sus", {0, 5, 7}},       {"7sus4", {0, 5, 7, 10}},    {"6", {0, 4, 7, 9}},
      {"m6", {0, 3, 7, 9}},     {"9", {0, 4, 7, 10, 14}},    {"maj9", {0, 4, 7, 11, 14}},
      {"m9", {0, 3, 7, 10, 14}}, {"add9", {0, 4, 7, 14}},    {"madd9", {0, 3, 7, 14}},
      {"5", {0, 7}},
  };
  return q;
}

bool is_separator(char c) { return std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '|'; }

// Splits on whitespace, commas and bar lines; a '#' that begins a word comments out the rest of
// the line (a '#' inside a word is a sharp: "F#m").
std::vector<std::string> tokenize(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '#' && cur.empty()) {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (is_separator(c)) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// The text after ':' in "name:beats" -> beats in (0, kMaxBeats].
double parse_beats(const std::string& token, const std::string& text) {
  if (text.empty()) throw Error(strcat("'", token, "': missing duration after ':'"));
  double v = 0;
  if (!parse_finite_number(text, v))
    throw Error(strcat("'", token, "': duration '", text, "' is not a number of beats"));
  if (!(v > 0 && v <= kMaxBeats))
    throw Error(strcat("'", token, "': duration ", v, " beats is outside (0, ", kMaxBeats, "]"));
  return v;
}

void check_bpm(double bpm, const char* who) {
  MG_CHECK(std::isfinite(bpm) && bpm >= kMinBpm && bpm <= kMaxBpm, who, ": bpm ", bpm, " is outside ", kMinBpm, "..",
           kMaxBpm);
}

// Re-throws a token's error with its 1-based position and the kind of list it is in.
[[noreturn]] void rethrow_at(const char* who, const char* kind, size_t index, size_t count, const std::string& token,
                             const std::exception& e) {
  throw Error(strcat(who, ": ", kind, " ", index + 1, " of ", count, " ('", token, "'): ", e.what()));
}

}  // namespace

// Parses a pitch-class name at s[pos]: A-G then up to two '#' or 'b'. Returns -1 when s[pos] is not
// A-G; advances pos past what it read.
int parse_pitch_class(const std::string& s, size_t& pos) {
  static const int kNatural[7] = {9, 11, 0, 2, 4, 5, 7};  // A B C D E F G
  if (pos >= s.size() || s[pos] < 'A' || s[pos] > 'G') return -1;
  int pc = kNatural[s[pos] - 'A'];
  ++pos;
  for (int k = 0; k < 2 && pos < s.size() && (s[pos] == '#' || s[pos] == 'b'); ++k, ++pos) pc += s[pos] == '#' ? 1 : -1;
  return ((pc % 12) + 12) % 12;
}

bool parse_finite_number(const std::string& text, double& value) {
  size_t used = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  return !text.empty() && used == text.size() && std::isfinite(value);
}

const char* pitch_class_name(int pc) { return kPitchNames[((pc % 12) + 12) % 12]; }

Chord parse_chord(const std::string& token) {
  Chord c;
  c.symbol = token;
  std::string body = token;
  const size_t colon = token.find(':');
  if (colon != std::string::npos) {
    body = token.substr(0, colon);
    c.beats = parse_beats(token, token.substr(colon + 1));
  }
  size_t pos = 0;
  c.root = parse_pitch_class(body, pos);
  if (c.root < 0)
    throw Error(strcat("unknown chord symbol '", body, "': a chord starts with its root A-G (then # or b)"));
  const size_t slash = body.find('/', pos);
  const std::string quality = body.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
  const Quality* q = nullptr;
  for (const Quality& cand : qualities())
    if (quality == cand.name) q = &cand;
  if (!q) throw Error(strcat("unknown chord symbol '", body, "': quality '", quality, "' is not one of m 7 maj7 m7 ",
                             "dim dim7 m7b5 aug sus2 sus4 7sus4 6 m6 9 maj9 m9 add9 madd9 5"));
  for (int iv : q->intervals) {
    const int pc = (c.root + iv) % 12;
    if (std::find(c.tones.begin(), c.tones.end(), pc) == c.tones.end()) c.tones.push_back(pc);
  }
  c.bass = c.root;
  if (slash != std::string::npos) {
    size_t bpos = slash + 1;
    c.bass = parse_pitch_class(body, bpos);
    if (c.bass < 0 || bpos != body.size())
      throw Error(strcat("unknown chord symbol '", body, "': the bass after '/' must be a note name (A-G, # or b)"));
  }
  return c;
}

std::vector<Chord> parse_chord_progression(const std::string& text) {
  const std::vector<std::string> tokens = tokenize(text);
  if (tokens.empty()) throw Error("chords: the progression is empty (give chords such as \"C G Am F\")");
  std::vector<Chord> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    try {
      out.push_back(parse_chord(tokens[i]));
    } catch (const std::exception& e) {
      rethrow_at("chords", "chord", i, tokens.size(), tokens[i], e);
    }
  }
  return out;
}

PitchTimeline chords_to_timeline(const std::vector<Chord>& chords, const ChordOptions& options) {
  check_bpm(options.bpm, "chords");
  MG_CHECK(std::isfinite(options.beats_per_chord) && options.beats_per_chord > 0 &&
               options.beats_per_chord <= kMaxBeats,
           "chords: beats per chord ", options.beats_per_chord, " is outside (0, ", kMaxBeats, "]");
  MG_CHECK(!chords.empty(), "chords: the progression is empty");
  const double spb = 60.0 / options.bpm;
  PitchTimeline line;
  double beat = 0;
  for (const Chord& c : chords) {
    const double beats = c.beats > 0 ? c.beats : options.beats_per_chord;
    // The bass on the downbeat, then the other chord tones in chord order, one per beat, cycling.
    std::vector<int> order = {c.bass};
    for (int pc : c.tones)
      if (pc != c.bass) order.push_back(pc);
    for (int k = 0; k < int(std::ceil(beats - 1e-9)); ++k) {
      const double b0 = beat + k, b1 = beat + std::min(double(k + 1), beats);
      line.spans.push_back({b0 * spb, b1 * spb, order[size_t(k) % order.size()]});
    }
    beat += beats;
  }
  line.duration = beat * spb;
  return line;
}

PitchTimeline notes_to_timeline(const std::string& text, double bpm) {
  check_bpm(bpm, "notes");
  const std::vector<std::string> tokens = tokenize(text);
  if (tokens.empty()) throw Error("notes: the note list is empty (give notes such as \"C4 E4:0.5 G4:2\")");
  const double spb = 60.0 / bpm;
  PitchTimeline line;
  double beat = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& tok = tokens[i];
    try {
      const size_t colon = tok.find(':');
      const std::string name = tok.substr(0, colon);
      const double beats = colon == std::string::npos ? 1.0 : parse_beats(tok, tok.substr(colon + 1));
      if (name == "r" || name == "R") {  // rest: no span, the previous pitch class holds
        beat += beats;
        continue;
      }
      long midi = 0;
      size_t pos = 0;
      const int pc = parse_pitch_class(name, pos);
      std::string number = pc < 0 ? name : name.substr(pos);
      size_t used = 0;
      try {
        midi = std::stol(number, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (number.empty() || used != number.size())
        throw Error(pc < 0 ? strcat("'", name, "' is not a note (expected e.g. C4, F#3, Bb5, a MIDI number or r)")
                           : strcat("'", name, "' has no octave number (e.g. C4 = MIDI 60)"));
      if (pc >= 0) {
        // The octave counts from the letter's natural C: B#3 is C4, Cb4 is B3.
        size_t p0 = 0;
        const int natural = parse_pitch_class(name.substr(0, 1), p0);
        int acc = 0;
        for (size_t k = 1; k < pos; ++k) acc += name[k] == '#' ? 1 : -1;
        // An octave far outside MIDI's -1..9 is refused before the arithmetic: "C5555555555555555555"
        // overflowed (midi + 1) * 12 (found by fuzzing). -2 and 10..12 still reach the range check
        // below with their MIDI number in the message, as before.
        if (midi < -2 || midi > 12) throw Error(strcat("MIDI note of octave ", midi, " is outside 0..127"));
        midi = (midi + 1) * 12 + natural + acc;
      }
      if (midi < 0 || midi > 127) throw Error(strcat("MIDI note ", midi, " is outside 0..127"));
      line.spans.push_back({beat * spb, (beat + beats) * spb, int(midi % 12)});
      beat += beats;
    } catch (const std::exception& e) {
      rethrow_at("notes", "note", i, tokens.size(), tok, e);
    }
  }
  line.duration = beat * spb;
  return line;
}

Tensor timeline_to_chroma(const PitchTimeline& line, int64_t frames) {
  MG_CHECK(std::isfinite(line.duration) && line.duration > 0, "timeline_to_chroma: the timeline is empty");
  const ChromaParams p;
  const double rate = chroma_frame_rate(p);
  if (frames <= 0) frames = std::max<int64_t>(1, int64_t(std::ceil(line.duration * rate - 1e-9)));
  MG_CHECK(frames <= 1000000, "timeline_to_chroma: ", frames, " frames is too many");
  Tensor out = Tensor::zeros(DType::F32, {frames, 12});
  float* o = out.f32();
  for (int64_t t = 0; t < frames; ++t) {
    // The centre of frame t (the STFT is centred), folded into one pass of the loop.
    double time = double(t * p.hop) / double(p.sample_rate);
    time -= std::floor(time / line.duration + 1e-12) * line.duration;
    // The last span that has started by `time` (it holds through a following gap); none = bin 0.
    int pc = 0;
    auto it = std::upper_bound(line.spans.begin(), line.spans.end(), time + 1e-9,
                               [](double v, const PitchSpan& s) { return v < s.start; });
    if (it != line.spans.begin()) pc = std::prev(it)->pitch_class;
    o[t * 12 + pc] = 1.0f;
  }
  return out;
}

Tensor chords_to_chroma(const std::string& text, const ChordOptions& options, int64_t frames) {
  return timeline_to_chroma(chords_to_timeline(parse_chord_progression(text), options), frames);
}

Tensor notes_to_chroma(const std::string& text, double bpm, int64_t frames) {
  return timeline_to_chroma(notes_to_timeline(text, bpm), frames);
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(strcat("read_text_file: cannot open '", path, "'"));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(strcat("read_text_file: error reading '", path, "'"));
  return ss.str();
}

// ---- Standard MIDI Files -------------------------------------------------------------------

namespace {

// Big-endian reads with bounds checks; every error names the source and the byte offset.
class MidiReader {
 public:
  MidiReader(const std::vector<uint8_t>& b, const std::string& what) : b_(b), what_(what) {}
  size_t pos() const { return pos_; }
  void seek(size_t p) { pos_ = p; }
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(strcat("MIDI: ", what_, ": ", msg, " at byte ", pos_));
  }
  void need(size_t n, size_t limit) const {
    if (n > limit || pos_ > limit - n) fail("truncated data");
  }
  uint8_t u8(size_t limit) {
    need(1, limit);
    return b_[pos_++];
  }
  uint32_t be(int n, size_t limit) {
    need(size_t(n), limit);
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | b_[pos_++];
    return v;
  }
  uint32_t vlq(size_t limit) {  // variable-length quantity: at most 4 bytes
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const uint8_t c = u8(limit);
      v = (v << 7) | (c & 0x7F);
      if (!(c & 0x80)) return v;
    }
    fail("variable-length number longer than 4 bytes");
  }
  bool tag(const char* t, size_t limit) {
    need(4, limit);
    const bool eq = std::equal(t, t + 4, b_.begin() + long(pos_));
    pos_ += 4;
    return eq;
  }

 private:
  const std::vector<uint8_t>& b_;
  std::string what_;
  size_t pos_ = 0;
};

struct MidiNote {
  uint64_t on = 0, off = 0;  // ticks
  int key = 0;
};
struct MidiTempo {
  uint64_t tick = 0;
  uint32_t usec_per_quarter = 500000;
};

// One MTrk chunk's events [start, end): notes (channel 10 skipped) and tempo changes.
void read_track(MidiReader& r, size_t end, std::vector<MidiNote>& notes, std::vector<MidiTempo>& tempi) {
  uint64_t tick = 0;
  uint8_t running = 0;
  std::vector<std::vector<uint64_t>> open(16 * 128);  // per (channel, key): onsets not yet closed
  while (r.pos() < end) {
    tick += r.vlq(end);
    uint8_t status = r.u8(end);
    if (status < 0x80) {  // running status: this byte was the first data byte
      if (!running) r.fail("data byte without a running status");
      r.seek(r.pos() - 1);
      status = running;
    }
    if (status == 0xFF) {  // meta event: cancels running status
      running = 0;
      const uint8_t type = r.u8(end);
      const uint32_t len = r.vlq(end);
      r.need(len, end);
      if (type == 0x51) {
        if (len != 3) r.fail("tempo event of length " + std::to_string(len) + " (expected 3)");
        const uint32_t us = r.be(3, end);
        if (us == 0) r.fail("tempo of 0 microseconds per quarter note");
        tempi.push_back({tick, us});
      } else {
        r.seek(r.pos() + len);
      }
      if (type == 0x2F) break;  // end of track
    } else if (status == 0xF0 || status == 0xF7) {  // sysex
      running = 0;
      const uint32_t len = r.vlq(end);
      r.need(len, end);
      r.seek(r.pos() + len);
    } else if (status >= 0xF0) {
      r.fail(strcat("unexpected status byte 0x", std::hex, int(status)));
    } else {
      running = status;
      const int kind = status & 0xF0, channel = status & 0x0F;
      const int n = (kind == 0xC0 || kind == 0xD0) ? 1 : 2;
      uint8_t d[2] = {0, 0};
      for (int i = 0; i < n; ++i) {
        d[i] = r.u8(end);
        if (d[i] & 0x80) r.fail("data byte above 127 in a channel message");
      }
      if (channel == 9 || (kind != 0x80 && kind != 0x90)) continue;  // drums, controllers, ...
      std::vector<uint64_t>& onsets = open[size_t(channel) * 128 + d[0]];
      if (kind == 0x90 && d[1] > 0) {
        onsets.push_back(tick);
      } else if (!onsets.empty()) {  // note off (or note on with velocity 0): first in, first out
        if (tick > onsets.front()) notes.push_back({onsets.front(), tick, d[0]});
        onsets.erase(onsets.begin());
      }
    }
  }
  // Notes never switched off end with the track.
  for (size_t i = 0; i < open.size(); ++i)
    for (uint64_t on : open[i])
      if (tick > on) notes.push_back({on, tick, int(i % 128)});
  r.seek(end);
}

// A whole file: every pitched note, and the tick -> seconds map of its tempo map.
struct ParsedMidi {
  std::vector<MidiNote> notes;
  std::function<double(uint64_t)> seconds;
  uint32_t division = 0;
};

ParsedMidi parse_midi(const std::vector<uint8_t>& bytes, const std::string& what) {
  MidiReader r(bytes, what);
  const size_t size = bytes.size();
  if (!r.tag("MThd", size)) r.fail("not a Standard MIDI File (no MThd header)");
  const uint32_t hlen = r.be(4, size);
  if (hlen < 6) r.fail("header chunk shorter than 6 bytes");
  const size_t header_end = r.pos() + hlen;
  const uint32_t format = r.be(2, size), ntracks = r.be(2, size), division = r.be(2, size);
  if (format > 1) r.fail(strcat("format ", format, " is not supported (only 0 and 1)"));
  if (division == 0) r.fail("time division of 0 ticks");
  r.need(header_end - r.pos(), size);
  r.seek(header_end);

  std::vector<MidiNote> notes;
  std::vector<MidiTempo> tempi;
  uint32_t tracks = 0;
  while (r.pos() < size && tracks < ntracks) {
    const bool is_track = r.tag("MTrk", size);
    const uint32_t len = r.be(4, size);
    r.need(len, size);
    const size_t end = r.pos() + len;
    if (is_track) {
      read_track(r, end, notes, tempi);
      ++tracks;
    }
    r.seek(end);  // unknown chunk types are skipped, as the SMF spec asks
  }
  if (tracks < ntracks) r.fail(strcat("the header announces ", ntracks, " tracks but only ", tracks, " are present"));
  if (notes.empty()) throw Error(strcat("MIDI: ", what, ": no pitched notes (channel 10 drums are ignored)"));

  // Ticks -> seconds. SMPTE division: negative frames per second in the high byte, ticks per frame
  // in the low byte (no tempo). PPQ: the tempo map, shared by all tracks (format 1 keeps it in track 1).
  std::function<double(uint64_t)> seconds;
  if (division & 0x8000) {
    const int fps = 256 - int(division >> 8);
    const double rate = (fps == 29 ? 29.97 : double(fps)) * double(division & 0xFF);
    if (rate <= 0) r.fail("SMPTE division with 0 ticks per frame");
    seconds = [rate](uint64_t tick) { return double(tick) / rate; };
  } else {
    std::stable_sort(tempi.begin(), tempi.end(), [](const MidiTempo& a, const MidiTempo& b) { return a.tick < b.tick; });
    if (tempi.empty() || tempi[0].tick > 0) tempi.insert(tempi.begin(), MidiTempo{0, 500000});
    std::vector<double> at(tempi.size(), 0.0);  // seconds at each tempo change
    for (size_t i = 1; i < tempi.size(); ++i)
      at[i] = at[i - 1] + double(tempi[i].tick - tempi[i - 1].tick) * tempi[i - 1].usec_per_quarter * 1e-6 / division;
    seconds = [tempi, at, division](uint64_t tick) {
      size_t i = size_t(std::upper_bound(tempi.begin(), tempi.end(), tick,
                                         [](uint64_t v, const MidiTempo& t) { return v < t.tick; }) -
                        tempi.begin()) - 1;
      return at[i] + double(tick - tempi[i].tick) * tempi[i].usec_per_quarter * 1e-6 / division;
    };
  }
  return {std::move(notes), std::move(seconds), division};
}

}  // namespace

std::vector<MidiNoteEvent> midi_to_notes(const std::vector<uint8_t>& bytes, const std::string& what) {
  const ParsedMidi m = parse_midi(bytes, what);
  std::vector<MidiNoteEvent> out;
  for (const MidiNote& n : m.notes) {
    MidiNoteEvent e;
    e.key = n.key;
    e.start = m.seconds(n.on);
    e.end = m.seconds(n.off);
    if (!(m.division & 0x8000)) {
      e.start_beat = double(n.on) / m.division;
      e.end_beat = double(n.off) / m.division;
    }
    out.push_back(e);
  }
  std::stable_sort(out.begin(), out.end(), [](const MidiNoteEvent& a, const MidiNoteEvent& b) {
    return a.start != b.start ? a.start < b.start : a.key < b.key;
  });
  return out;
}

std::vector<MidiNoteEvent> read_midi_notes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(strcat("read_midi_notes: cannot open '", path, "'"));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return midi_to_notes(bytes, path);
}

PitchTimeline midi_to_timeline(const std::vector<uint8_t>& bytes, const std::string& what) {
  const ParsedMidi m = parse_midi(bytes, what);
  const std::vector<MidiNote>& notes = m.notes;
  const std::function<double(uint64_t)>& seconds = m.seconds;

  // Skyline: sweep the note boundaries; in each stretch the highest sounding key wins.
  struct Edge {
    uint64_t tick;
    bool on;
    int key;
  };
  std::vector<Edge> edges;
  for (const MidiNote& n : notes) {
    edges.push_back({n.on, true, n.key});
    edges.push_back({n.off, false, n.key});
  }
  std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) {
    return a.tick != b.tick ? a.tick < b.tick : (a.on < b.on);  // offs before ons at the same tick
  });
  std::multiset<int> sounding;
  PitchTimeline line;
  for (size_t i = 0; i < edges.size();) {
    const uint64_t tick = edges[i].tick;
    for (; i < edges.size() && edges[i].tick == tick; ++i) {
      if (edges[i].on) sounding.insert(edges[i].key);
      else sounding.erase(sounding.find(edges[i].key));
    }
    if (sounding.empty() || i == edges.size()) continue;
    const int pc = *sounding.rbegin() % 12;
    const double t0 = seconds(tick), t1 = seconds(edges[i].tick);
    if (!line.spans.empty() && line.spans.back().pitch_class == pc && line.spans.back().end >= t0 - 1e-12)
      line.spans.back().end = t1;
    else
      line.spans.push_back({t0, t1, pc});
  }
  line.duration = seconds(edges.back().tick);
  return line;
}

PitchTimeline read_midi_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(strcat("read_midi_file: cannot open '", path, "'"));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw Error(strcat("read_midi_file: error reading '", path, "'"));
  return midi_to_timeline(bytes, path);
}

}  // namespace mg
