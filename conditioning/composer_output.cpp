// What a composition becomes: the --notes text (and through it the chroma, by the same path as
// --notes), and a Standard MIDI File.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "codec/atomic_file.h"
#include "conditioning/composer.h"

namespace mg {
namespace {

constexpr int kPpq = 480;  // ticks per quarter note: every duration the composer makes is whole ticks

void put_vlq(std::vector<uint8_t>& b, uint32_t v) {
  uint8_t tmp[4];
  int n = 0;
  do {
    tmp[n++] = uint8_t(v & 0x7F);
    v >>= 7;
  } while (v && n < 4);
  while (n-- > 0) b.push_back(uint8_t(tmp[n] | (n > 0 ? 0x80 : 0)));
}

void put_be(std::vector<uint8_t>& b, uint32_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) b.push_back(uint8_t((v >> (8 * i)) & 0xFF));
}

void put_chunk(std::vector<uint8_t>& file, const char* tag, const std::vector<uint8_t>& data) {
  file.insert(file.end(), tag, tag + 4);
  put_be(file, uint32_t(data.size()), 4);
  file.insert(file.end(), data.begin(), data.end());
}

// Sharps (> 0) or flats (< 0) of the key signature: that of the major key sharing the mode's notes.
int key_signature(const Key& k) {
  static const int kIonianOffset[7] = {0, 10, 8, 7, 5, 3, 1};  // mode tonic -> its relative major tonic
  static const int kSharps[12] = {0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5};  // C Db D Eb E F F# G Ab A Bb B
  return kSharps[(k.tonic + kIonianOffset[int(k.mode)]) % 12];
}

uint32_t ticks(double beats) { return uint32_t(std::lround(beats * kPpq)); }

}  // namespace

std::string composition_notes_text(const Composition& c) {
  std::ostringstream s;
  s.precision(17);
  double at = 0;
  for (const ComposedNote& n : c.notes) {
    if (n.start > at + 1e-9) s << "r:" << (n.start - at) << ' ';  // the composer leaves no gaps; kept for safety
    s << n.pitch << ':' << n.duration << ' ';
    at = n.start + n.duration;
  }
  std::string out = s.str();
  if (!out.empty()) out.pop_back();
  return out;
}

Tensor composition_to_chroma(const Composition& c, int64_t frames) {
  return notes_to_chroma(composition_notes_text(c), c.spec.bpm, frames);
}

std::vector<uint8_t> composition_midi_bytes(const Composition& c) {
  // Track 1: the tempo map (tempo, time signature, key signature).
  std::vector<uint8_t> meta;
  put_vlq(meta, 0);
  meta.insert(meta.end(), {0xFF, 0x51, 0x03});
  put_be(meta, uint32_t(std::lround(60e6 / c.spec.bpm)), 3);
  put_vlq(meta, 0);
  int dd = 0;
  for (int d = c.spec.metre_den; d > 1; d /= 2) ++dd;
  const uint8_t clocks = c.spec.metre_den == 8 ? 36 : 24;  // MIDI clocks per metronome click (a dotted quarter in x/8)
  meta.insert(meta.end(), {0xFF, 0x58, 0x04, uint8_t(c.spec.metre_num), uint8_t(dd), clocks, 8});
  put_vlq(meta, 0);
  const bool minor = c.spec.key.mode == Mode::Aeolian;
  meta.insert(meta.end(), {0xFF, 0x59, 0x02, uint8_t(int8_t(key_signature(c.spec.key))), uint8_t(minor ? 1 : 0)});
  put_vlq(meta, 0);
  meta.insert(meta.end(), {0xFF, 0x2F, 0x00});

  // Track 2: the melody on channel 1; each note's off before the next note's on.
  std::vector<uint8_t> notes;
  const std::string name = "melody: " + c.spec.key.name;
  put_vlq(notes, 0);
  notes.insert(notes.end(), {0xFF, 0x03});
  put_vlq(notes, uint32_t(name.size()));
  notes.insert(notes.end(), name.begin(), name.end());
  uint32_t now = 0;
  for (const ComposedNote& n : c.notes) {
    const uint32_t on = ticks(n.start), off = ticks(n.start + n.duration);
    put_vlq(notes, on - std::min(on, now));
    notes.insert(notes.end(), {0x90, uint8_t(n.pitch), uint8_t(n.flags & kNoteOrnament ? 72 : 90)});
    put_vlq(notes, off - on);
    notes.insert(notes.end(), {0x80, uint8_t(n.pitch), 0x40});
    now = off;
  }
  put_vlq(notes, 0);
  notes.insert(notes.end(), {0xFF, 0x2F, 0x00});

  std::vector<uint8_t> file;
  std::vector<uint8_t> header;
  put_be(header, 1, 2);  // format 1
  put_be(header, 2, 2);  // two tracks
  put_be(header, kPpq, 2);
  put_chunk(file, "MThd", header);
  put_chunk(file, "MTrk", meta);
  put_chunk(file, "MTrk", notes);
  return file;
}

void write_composition_midi(const Composition& c, const std::string& path) {
  const std::vector<uint8_t> bytes = composition_midi_bytes(c);
  try {
    write_file_atomic(path, bytes);
  } catch (const Error& e) {
    throw Error(strcat("compose: MIDI file: ", e.what()));
  }
}

}  // namespace mg
