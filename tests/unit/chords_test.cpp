// conditioning/chords: chord symbols, note lists and MIDI files -> the one-hot chroma frames the
// melody model reads, and conditioning/chroma_png (the picture of that condition).
//
// Trap pinned here: frames are sampled at their CENTRE time t * 4096 / 32000 s (the reference STFT
// is centred), at 7.8125 frames/s, not at the 50 Hz token rate; a chord boundary therefore falls
// between frames 3 and 4 at 120 bpm (0.5 s per beat = 3.906 frames).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "conditioning/chords.h"
#include "conditioning/chroma.h"
#include "conditioning/chroma_png.h"
#include "test_util.h"

namespace {

// The argmax pitch class of every frame.
std::vector<int> classes(const mg::Tensor& chroma) {
  EXPECT_EQ(chroma.ndim(), 2);
  EXPECT_EQ(chroma.dim(1), 12);
  std::vector<int> out;
  for (int64_t t = 0; t < chroma.dim(0); ++t) {
    int hot = -1, count = 0;
    for (int c = 0; c < 12; ++c)
      if (chroma.f32()[t * 12 + c] != 0.0f) {
        hot = c;
        ++count;
        EXPECT_EQ(chroma.f32()[t * 12 + c], 1.0f);
      }
    EXPECT_EQ(count, 1) << "frame " << t << " is not one-hot";
    out.push_back(hot);
  }
  return out;
}

// "C C# D" -> pitch classes.
std::vector<int> pcs(const std::string& names) {
  static const char* kNames[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
  std::vector<int> out;
  size_t pos = 0;
  while (pos < names.size()) {
    const size_t end = names.find(' ', pos);
    const std::string tok = names.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? names.size() : end + 1;
    if (tok.empty()) continue;
    int pc = -1;
    for (int i = 0; i < 12; ++i)
      if (tok == kNames[i]) pc = i;
    EXPECT_GE(pc, 0) << tok;
    out.push_back(pc);
  }
  return out;
}

using mgtest::error_of;

#define EXPECT_ERROR_HAS(stmt, ...)                                              \
  do {                                                                           \
    const std::string msg_ = error_of([&] { stmt; });                            \
    for (const char* part : {__VA_ARGS__})                                       \
      EXPECT_NE(msg_.find(part), std::string::npos) << "'" << part << "' not in: " << msg_; \
  } while (0)

TEST(ChordSymbols, Qualities) {
  EXPECT_EQ(mg::parse_chord("C").tones, pcs("C E G"));
  EXPECT_EQ(mg::parse_chord("Am").tones, pcs("A C E"));
  EXPECT_EQ(mg::parse_chord("F7").tones, pcs("F A C D#"));
  EXPECT_EQ(mg::parse_chord("Bbmaj7").tones, pcs("A# D F A"));
  EXPECT_EQ(mg::parse_chord("F#m7").tones, pcs("F# A C# E"));
  EXPECT_EQ(mg::parse_chord("Bdim").tones, pcs("B D F"));
  EXPECT_EQ(mg::parse_chord("Caug").tones, pcs("C E G#"));
  EXPECT_EQ(mg::parse_chord("Dsus2").tones, pcs("D E A"));
  EXPECT_EQ(mg::parse_chord("Dsus4").tones, pcs("D G A"));
  EXPECT_EQ(mg::parse_chord("C6").tones, pcs("C E G A"));
  EXPECT_EQ(mg::parse_chord("Am6").tones, pcs("A C E F#"));
  EXPECT_EQ(mg::parse_chord("G9").tones, pcs("G B D F A"));
  EXPECT_EQ(mg::parse_chord("Cadd9").tones, pcs("C E G D"));
  EXPECT_EQ(mg::parse_chord("Ebm").tones, pcs("D# F# A#"));
  const mg::Chord slash = mg::parse_chord("C/E");
  EXPECT_EQ(slash.root, 0);
  EXPECT_EQ(slash.bass, 4);
  EXPECT_EQ(mg::parse_chord("Am:2").beats, 2.0);
}

// "C G Am F", 120 bpm, 4 beats per chord: one tone per beat, bass first (C E G C | G B D G | ...),
// each beat = 0.5 s; frame t shows beat floor(t * 0.128 / 0.5).
TEST(ChordFrames, PopProgression) {
  const mg::Tensor c = mg::chords_to_chroma("C G Am F");
  ASSERT_EQ(c.shape, (mg::Shape{235, 12}));
  const std::vector<int> got = classes(c);
  const std::vector<int> first20(got.begin(), got.begin() + 20);
  EXPECT_EQ(first20, pcs("C C C C E E E E G G G G C C C C G G G G"));  // beat 4 (G) starts at 2.0 s = frame 15.6
  const std::vector<int> beats = pcs("C E G C G B D G A C E A F A C F");
  for (int64_t t = 0; t < 235; ++t) {
    const int64_t beat = (t * 256 / 1000) % 16;  // t * 4096 * 120 / (60 * 32000) = 0.256 t, looped every 8 s
    EXPECT_EQ(got[size_t(t)], beats[size_t(beat)]) << "frame " << t;
  }
  // frames = 0: one pass only, ceil(8 s * 7.8125) = 63 frames.
  EXPECT_EQ(mg::chords_to_chroma("C G Am F", {}, 0).dim(0), 63);
}

// Slash bass on the downbeat, per-chord durations, 60 bpm (a beat = 7.8125 frames), 7th chords.
TEST(ChordFrames, SlashBassAndDurations) {
  mg::ChordOptions o;
  o.bpm = 60;
  const std::vector<int> got = classes(mg::chords_to_chroma("C/E:2 | G7", o, 0));
  // 6 beats = 6 s -> 47 frames: E (beat 0), C (beat 1), then G B D F.
  const std::vector<int> beats = pcs("E C G B D F");
  ASSERT_EQ(got.size(), 47u);
  for (size_t t = 0; t < got.size(); ++t) EXPECT_EQ(got[t], beats[t * 4096 / 32000]) << "frame " << t;
}

TEST(ChordFrames, TwoBeatsPerChord) {
  mg::ChordOptions o;
  o.bpm = 100;
  o.beats_per_chord = 2;
  // A beat = 0.6 s; frame t at 0.128 t s is beat floor(0.128 t / 0.6) = floor(16 t / 75).
  const std::vector<int> got = classes(mg::chords_to_chroma("Dm7 G7 Cmaj7", o));
  const std::vector<int> beats = pcs("D F G B C E");
  for (size_t t = 0; t < got.size(); ++t) EXPECT_EQ(got[t], beats[(t * 16 / 75) % 6]) << "frame " << t;
}

// Notes with durations and a rest (a rest holds the previous pitch class: the one-hot cannot be
// silent, and silence would read as C).
TEST(NoteFrames, DurationsAndRest) {
  const mg::PitchTimeline line = mg::notes_to_timeline("C4 E4:0.5 r:0.5 G#3:2 60", 120);
  EXPECT_DOUBLE_EQ(line.duration, 2.5);
  ASSERT_EQ(line.spans.size(), 4u);
  const std::vector<int> got = classes(mg::timeline_to_chroma(line, 0));
  ASSERT_EQ(got.size(), 20u);  // ceil(2.5 * 7.8125)
  // beats: C [0,1) E [1,1.5) hold [1.5,2) G# [2,4) C [4,5); frame t at beat 0.256 t.
  EXPECT_EQ(got, pcs("C C C C E E E E G# G# G# G# G# G# G# G# C C C C"));
  EXPECT_EQ(mg::notes_to_timeline("B#3 Cb4 C-1 G9").spans[0].pitch_class, 0);
}

TEST(ChordErrors, NamesTokenAndPosition) {
  EXPECT_ERROR_HAS(mg::parse_chord_progression("C G Hm F"), "chord 3 of 4", "'Hm'");
  EXPECT_ERROR_HAS(mg::parse_chord_progression("C Gxyz"), "chord 2 of 2", "'Gxyz'", "quality 'xyz'");
  EXPECT_ERROR_HAS(mg::parse_chord_progression("C/H"), "chord 1 of 1", "bass");
  EXPECT_ERROR_HAS(mg::parse_chord_progression("C Am:0"), "chord 2", "'Am:0'", "duration");
  EXPECT_ERROR_HAS(mg::parse_chord_progression("C Am:x"), "chord 2", "not a number");
  EXPECT_ERROR_HAS(mg::parse_chord_progression(""), "empty");
  EXPECT_ERROR_HAS(mg::parse_chord_progression(" | , \n# only a comment\n"), "empty");
  mg::ChordOptions slow, fast, beats;
  slow.bpm = 19.9;
  fast.bpm = 401;
  beats.beats_per_chord = 0;
  EXPECT_ERROR_HAS(mg::chords_to_chroma("C", slow), "bpm 19.9", "20..400");
  EXPECT_ERROR_HAS(mg::chords_to_chroma("C", fast), "bpm 401");
  EXPECT_ERROR_HAS(mg::chords_to_chroma("C", beats), "beats per chord");
  mg::ChordOptions edge;
  edge.bpm = 20;
  EXPECT_NO_THROW(mg::chords_to_chroma("C", edge));
  edge.bpm = 400;
  EXPECT_NO_THROW(mg::chords_to_chroma("C", edge));
  // Comments and bar lines in a text file.
  EXPECT_EQ(mg::parse_chord_progression("# verse\n| C | F#m7 |\n| Bb7, C/E |  # end\n").size(), 4u);
}

TEST(NoteErrors, NamesTokenAndPosition) {
  EXPECT_ERROR_HAS(mg::notes_to_timeline("C4 G#9 C4"), "note 2 of 3", "'G#9'", "MIDI note 128", "0..127");
  EXPECT_ERROR_HAS(mg::notes_to_timeline("C4 E4 C-2"), "note 3 of 3", "MIDI note -12");
  EXPECT_ERROR_HAS(mg::notes_to_timeline("128"), "note 1 of 1", "MIDI note 128");
  EXPECT_ERROR_HAS(mg::notes_to_timeline("C4 E"), "note 2", "'E'", "octave");
  EXPECT_ERROR_HAS(mg::notes_to_timeline("C4 x4"), "note 2", "not a note");
  EXPECT_ERROR_HAS(mg::notes_to_timeline("C4:-1"), "note 1", "duration");
  EXPECT_ERROR_HAS(mg::notes_to_timeline("   "), "empty");
  EXPECT_ERROR_HAS(mg::notes_to_timeline("C4", 500), "bpm 500");
}

// A small Standard MIDI File, format 1, 480 ticks per quarter: track 1 holds the tempo (100 bpm =
// 600000 us), track 2 the notes with running status and note-on velocity 0 as note-off.
std::vector<uint8_t> small_midi() {
  std::vector<uint8_t> f = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 1, 0, 2, 0x01, 0xE0};
  const std::vector<uint8_t> t1 = {0x00, 0xFF, 0x51, 0x03, 0x09, 0x27, 0xC0,  // tempo 600000
                                   0x00, 0xFF, 0x2F, 0x00};
  const std::vector<uint8_t> t2 = {
      0x00, 0x90, 60, 100,        // C4 on
      0x83, 0x60, 60, 0,          // +480: C4 off (running status, velocity 0)
      0x00, 64, 90,               // E4 on } a chord: the top voice (G4) wins
      0x00, 67, 90,               // G4 on }
      0x00, 0x99, 36, 100,        // a kick drum on channel 10: ignored
      0x83, 0x60, 0x80, 64, 0,    // +480: E4 off (explicit note-off)
      0x00, 67, 0,                // G4 off (running status 0x80)
      0x00, 0xC0, 5,              // program change (1 data byte)
      0x00, 0x90, 57, 80,         // A3 on
      0x87, 0x40, 57, 0,          // +960: A3 off
      0x00, 0xFF, 0x2F, 0x00};
  auto chunk = [&f](const std::vector<uint8_t>& body) {
    const uint32_t n = uint32_t(body.size());
    f.insert(f.end(), {'M', 'T', 'r', 'k', uint8_t(n >> 24), uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)});
    f.insert(f.end(), body.begin(), body.end());
  };
  chunk(t1);
  chunk(t2);
  return f;
}

TEST(MidiFile, ParsesNotesTempoAndTopVoice) {
  const std::string path = mgtest::temp_dir() + "/small.mid";
  const std::vector<uint8_t> bytes = small_midi();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), long(bytes.size()));
  const mg::PitchTimeline line = mg::read_midi_file(path);
  ASSERT_EQ(line.spans.size(), 3u);
  EXPECT_EQ(line.spans[0].pitch_class, 0);  // C4
  EXPECT_DOUBLE_EQ(line.spans[0].start, 0.0);
  EXPECT_DOUBLE_EQ(line.spans[0].end, 0.6);
  EXPECT_EQ(line.spans[1].pitch_class, 7);  // G4 above E4
  EXPECT_DOUBLE_EQ(line.spans[1].end, 1.2);
  EXPECT_EQ(line.spans[2].pitch_class, 9);  // A3
  EXPECT_DOUBLE_EQ(line.spans[2].end, 2.4);
  EXPECT_DOUBLE_EQ(line.duration, 2.4);
  const std::vector<int> got = classes(mg::timeline_to_chroma(line, 0));
  ASSERT_EQ(got.size(), 19u);  // ceil(2.4 * 7.8125)
  EXPECT_EQ(got, pcs("C C C C C G G G G G A A A A A A A A A"));
}

TEST(MidiFile, Errors) {
  std::vector<uint8_t> m = small_midi();
  EXPECT_ERROR_HAS(mg::midi_to_timeline({'R', 'I', 'F', 'F', 0, 0, 0, 6}, "x.mid"), "x.mid", "MThd");
  std::vector<uint8_t> fmt2 = m;
  fmt2[9] = 2;
  EXPECT_ERROR_HAS(mg::midi_to_timeline(fmt2), "format 2");
  std::vector<uint8_t> cut(m.begin(), m.end() - 7);
  EXPECT_ERROR_HAS(mg::midi_to_timeline(cut), "truncated", "at byte");
  std::vector<uint8_t> drums_only = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, 0x01, 0xE0,
                                     'M', 'T', 'r', 'k', 0, 0, 0, 12,
                                     0x00, 0x99, 36, 100, 0x60, 0x89, 36, 0, 0x00, 0xFF, 0x2F, 0x00};
  EXPECT_ERROR_HAS(mg::midi_to_timeline(drums_only), "no pitched notes");
  EXPECT_ERROR_HAS(mg::read_midi_file("/nonexistent/x.mid"), "cannot open");
}

// Writes the chroma picture of a progression to the build dir and checks it is a PNG of the
// documented size (tests/parity/chroma_test.cpp writes the bach.mp3 picture the same way; that one
// is committed as docs/images/bach_chroma.png).
TEST(ChromaPng, WritesPicture) {
  MG_SKIP_WITHOUT_PNG();
  const std::string path = mgtest::temp_dir() + "/progression.png";
  const mg::Tensor c = mg::chords_to_chroma("C G Am F");
  mg::write_chroma_png(path, c);
  std::ifstream f(path, std::ios::binary);
  ASSERT_TRUE(f.good());
  unsigned char sig[24] = {};
  f.read(reinterpret_cast<char*>(sig), 24);
  EXPECT_EQ(sig[1], 'P');
  EXPECT_EQ(sig[2], 'N');
  EXPECT_EQ(sig[3], 'G');
  const mg::ChromaPngLayout layout = mg::chroma_png_layout(c.dim(0), {});
  const uint32_t w = (uint32_t(sig[16]) << 24) | (uint32_t(sig[17]) << 16) | (uint32_t(sig[18]) << 8) | sig[19];
  const uint32_t h = (uint32_t(sig[20]) << 24) | (uint32_t(sig[21]) << 16) | (uint32_t(sig[22]) << 8) | sig[23];
  EXPECT_EQ(int(w), layout.width);
  EXPECT_EQ(int(h), layout.height);
  EXPECT_ERROR_HAS(mg::write_chroma_png("/nonexistent/dir/x.png", c), "/nonexistent/dir/x.png");
  EXPECT_ERROR_HAS(mg::write_chroma_png(path, mg::Tensor::zeros(mg::DType::F32, {4, 7})), "[4, 7]");
}

#ifndef MUSICGEN_HAVE_PNG
// A build without libpng refuses the picture with an error that says why, never a crash or a
// silent missing file.
TEST(ChromaPng, WithoutLibpngSaysSo) {
  EXPECT_ERROR_HAS(mg::write_chroma_png(mgtest::temp_dir() + "/x.png", mg::chords_to_chroma("C G")), "without libpng");
}
#endif

}  // namespace
