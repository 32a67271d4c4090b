// conditioning/key_check: chords and notes outside a key (noted, with the tones spelled from the
// symbol), transposition between keys of the same mode (roots, slash basses and notes moved, the
// quality and durations kept, sharps or flats from the target key) and its errors; and the same
// through the C API's buffers.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "conditioning/chords.h"
#include "conditioning/key_check.h"
#include "musicgen.h"
#include "test_util.h"

namespace {

using mgtest::error_of;

TEST(KeyCheck, ChordsOutsideTheKey) {
  const mg::Key am = mg::parse_key("A minor");
  const std::vector<std::string> out = mg::chords_outside_key("Am F Bb E7 | G", am);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], "chord 3 of 5 'Bb' is outside A minor (Bb not in the scale)");
  // E7 is V7 of A minor: its third is G# (spelled from E's letter, not Ab).
  EXPECT_EQ(out[1], "chord 4 of 5 'E7' is outside A minor (G# not in the scale)");
  EXPECT_TRUE(mg::chords_outside_key("Am Dm7 G7 Cmaj7 Fmaj7 Bm7b5 E", am).size() == 1);  // only E (G#)
  EXPECT_TRUE(mg::chords_outside_key("Dm G C/E Am:2", mg::parse_key("C major")).empty());
  // A slash bass outside the key is named as written; a dim7's seventh on its own letter.
  const std::vector<std::string> slash = mg::chords_outside_key("C/Bb G#dim7", mg::parse_key("C major"));
  ASSERT_EQ(slash.size(), 2u);
  EXPECT_NE(slash[0].find("(Bb not in"), std::string::npos) << slash[0];
  EXPECT_EQ(slash[1], "chord 2 of 2 'G#dim7' is outside C major (G# not in the scale)");
  // Bdim7's seventh is Ab (a diminished seventh above B), not G#.
  EXPECT_EQ(mg::chords_outside_key("Bdim7", mg::parse_key("C major"))[0],
            "chord 1 of 1 'Bdim7' is outside C major (Ab not in the scale)");
}

TEST(KeyCheck, NotesOutsideTheKey) {
  const std::vector<std::string> out = mg::notes_outside_key("C4 D4:0.5 F#4 r:1 70 B3", mg::parse_key("C major"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], "note 3 of 6 'F#4' is outside C major (F# not in the scale)");
  EXPECT_EQ(out[1], "note 5 of 6 '70' is outside C major (Bb not in the scale)");  // C major spells in flats
  EXPECT_TRUE(mg::notes_outside_key("D4 E4 F4 G4 A4 B4 C5", mg::parse_key("D dorian")).empty());
}

TEST(KeyCheck, TransposesChords) {
  auto tr = [](const std::string& text, const char* from, const char* to) {
    const mg::Key a = mg::parse_key(from), b = mg::parse_key(to);
    return mg::transpose_chords(text, mg::transpose_interval(a, b), mg::transpose_letters(a, b), mg::key_uses_flats(b));
  };
  EXPECT_EQ(tr("C/E G Am F", "C major", "D major"), "D/F# A Bm G");
  EXPECT_EQ(tr("Am7 Dm7:2 | E7/G# Am", "A minor", "D minor"), "Dm7 Gm7:2 | A7/C# Dm");  // +5
  EXPECT_EQ(tr("Am F C G", "A minor", "E minor"), "Em C G D");                           // -5
  EXPECT_EQ(tr("C F G7", "C major", "F# major"), "F# B C#7");                            // +6
  EXPECT_EQ(tr("C F G7", "C major", "Gb major"), "Gb Cb Db7");  // letters move with the tonic
  EXPECT_EQ(tr("Bb Ab/C", "C major", "D major"), "C Bb/D");      // borrowed bVII, bVI stay flat
  EXPECT_EQ(tr("Cm Fm G7", "C minor", "C# minor"), "C#m F#m G#7");
  EXPECT_EQ(tr("D Bm7b5, Gmaj7  # comment C", "D dorian", "C dorian"), "C Am7b5, Fmaj7  # comment C");
  EXPECT_EQ(tr("C", "C major", "Eb major"), "Eb");
  // The chroma of the transposed text is the original's shifted by the interval.
  const mg::Tensor a = mg::chords_to_chroma("C G/B Am F"), b = mg::chords_to_chroma(tr("C G/B Am F", "C", "D"));
  for (int64_t t = 0; t < a.dim(0); ++t)
    for (int c = 0; c < 12; ++c) ASSERT_EQ(a.f32()[t * 12 + c], b.f32()[t * 12 + (c + 2) % 12]) << t;
}

TEST(KeyCheck, TransposesNotes) {
  auto tr = [](const std::string& text, const char* from, const char* to) {
    const mg::Key a = mg::parse_key(from), b = mg::parse_key(to);
    return mg::transpose_notes(text, mg::transpose_interval(a, b), mg::transpose_letters(a, b), mg::key_uses_flats(b));
  };
  EXPECT_EQ(tr("C4 E4:0.5 r:1 60:2 B3", "C major", "D major"), "D4 F#4:0.5 r:1 62:2 C#4");
  EXPECT_EQ(tr("B3 C4", "C major", "Db major"), "C4 Db4");  // the octave follows the letter
  EXPECT_EQ(tr("B3 C4", "C major", "Bb major"), "A3 Bb3");  // -2 crosses the octave below C4
  EXPECT_EQ(tr("A4 C5", "A minor", "D minor"), "D5 F5");
  const std::string e = error_of([&] { tr("C4 G9", "C major", "F# major"); });
  EXPECT_NE(e.find("note 2 of 2 ('G9')"), std::string::npos) << e;
}

TEST(KeyCheck, Errors) {
  std::string e = error_of([] { mg::transpose_interval(mg::parse_key("A minor"), mg::parse_key("D major")); });
  EXPECT_NE(e.find("the modes differ"), std::string::npos) << e;
  EXPECT_NE(e.find("D minor"), std::string::npos) << e;  // the suggestion
  EXPECT_EQ(mg::transpose_interval(mg::parse_key("Am"), mg::parse_key("E aeolian")), -5);
  e = error_of([] { mg::parse_key_named("H minor", "key"); });
  EXPECT_NE(e.find("key 'H minor': word 1 of 2 ('H')"), std::string::npos) << e;
  e = error_of([] { mg::parse_key_named("A minr", "--key"); });
  EXPECT_NE(e.find("word 2 of 2 ('minr')"), std::string::npos) << e;
  e = error_of([] { mg::parse_key_named("A minor please", "--key"); });
  EXPECT_NE(e.find("word 3 of 3 ('please')"), std::string::npos) << e;
  e = error_of([] { mg::parse_key_named("  ", "--key"); });
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  e = error_of([] { mg::chords_outside_key("C Hm", mg::parse_key("C")); });
  EXPECT_NE(e.find("chord 2 of 2 ('Hm')"), std::string::npos) << e;
}

TEST(KeyCheckApi, BuffersAndErrors) {
  char out[256];
  ASSERT_EQ(musicgen_transpose_chords("C/E Am7", "C major", "D major", out, sizeof out), MUSICGEN_OK);
  EXPECT_STREQ(out, "D/F# Bm7");
  ASSERT_EQ(musicgen_transpose_notes("C4:2", "C major", "D major", out, sizeof out), MUSICGEN_OK);
  EXPECT_STREQ(out, "D4:2");
  ASSERT_EQ(musicgen_key_check_chords("Am Bb", "A minor", out, sizeof out), MUSICGEN_OK);
  EXPECT_STREQ(out, "chord 2 of 2 'Bb' is outside A minor (Bb not in the scale)\n");
  ASSERT_EQ(musicgen_key_check_notes("A4 B4", "A minor", out, sizeof out), MUSICGEN_OK);
  EXPECT_STREQ(out, "");
  EXPECT_EQ(musicgen_transpose_chords("C G", "C major", "D major", out, 3), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(musicgen_last_error()).find("4 are needed"), std::string::npos) << musicgen_last_error();
  EXPECT_EQ(musicgen_transpose_chords("C G", "A minor", "D major", out, sizeof out), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(musicgen_last_error()).find("modes differ"), std::string::npos) << musicgen_last_error();
  EXPECT_EQ(musicgen_key_check_chords("C", "X major", out, sizeof out), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(musicgen_last_error()).find("word 1 of 2 ('X')"), std::string::npos) << musicgen_last_error();
}

}  // namespace
