// The melody composer end to end: musicgen-cli --compose on the tiny melody model (the composed
// chroma conditions it, --compose-midi writes the melody), and the C API (musicgen_compose and its
// accessors, the chroma equal to musicgen_chroma_from_notes of the notes, errors with positions).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "conditioning/chords.h"
#include "musicgen.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kMelody = mgtest::data_dir() + "/models/musicgen_melody_tiny";
const std::string kModel = mgtest::data_dir() + "/models/musicgen_tiny";

TEST(ComposeCli, ComposesAndGenerates) {
  const std::string out = mgtest::temp_dir() + "/composed.wav", mid = mgtest::temp_dir() + "/composed.mid";
  fs::remove(mid);
  mgtest::RunResult r = mgtest::run_command(kCli, "--model " + kMelody +
      " --compose \"A minor; i VI III VII; 8 bars; 90 bpm; ornaments 0.2\" --seed 3 -p \"cinematic strings\" -d 0.5 "
      "--compose-midi " + mid + " -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_NE(r.err.find("composed "), std::string::npos) << r.err;
  // The MIDI file holds the composition the C API makes for the same seed.
  musicgen_composition* c = nullptr;
  ASSERT_EQ(musicgen_compose("A minor; i VI III VII; 8 bars; 90 bpm; ornaments 0.2", 3, &c), MUSICGEN_OK);
  const std::vector<mg::MidiNoteEvent> back = mg::read_midi_notes(mid);
  ASSERT_EQ(int(back.size()), musicgen_composition_note_count(c));
  for (int i = 0; i < musicgen_composition_note_count(c); ++i) {
    musicgen_composed_note n;
    ASSERT_EQ(musicgen_composition_note(c, i, &n), MUSICGEN_OK);
    EXPECT_EQ(back[size_t(i)].key, n.pitch);
    EXPECT_NEAR(back[size_t(i)].start_beat, n.start_beat, 1e-9);
  }
  musicgen_composition_free(c);
}

TEST(ComposeCli, ErrorsBeforeTheModelLoads) {
  mgtest::RunResult r = mgtest::run_command(kCli, "--model /nonexistent --compose \"A minor; i VI X VII\" -d 0.5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("chord 3 of 4 ('X')"), std::string::npos) << r.err;
  r = mgtest::run_command(kCli, "--model " + kMelody + " --compose \"C major\" --chords \"C G\" -d 0.5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--compose"), std::string::npos) << r.err;
  r = mgtest::run_command(kCli, "--model " + kModel + " --compose \"C major\" -d 0.5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("melod"), std::string::npos) << r.err;
  r = mgtest::run_command(kCli, "--model " + kMelody + " --compose-midi x.mid -d 0.5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("needs --compose"), std::string::npos) << r.err;
}

TEST(ComposeApi, ChromaIsTheNotesChroma) {
  musicgen_composition* c = nullptr;
  ASSERT_EQ(musicgen_compose("D dorian; 3/4; 8 bars; 100 bpm; ornaments 0.5", 11, &c), MUSICGEN_OK);
  std::vector<float> a(MUSICGEN_CHROMA_FRAMES * 12), b(a.size());
  ASSERT_EQ(musicgen_composition_to_chroma(c, a.data()), MUSICGEN_OK);
  ASSERT_EQ(musicgen_chroma_from_notes(musicgen_composition_notes_text(c), musicgen_composition_bpm(c), b.data()),
            MUSICGEN_OK);
  EXPECT_EQ(a, b);
  musicgen_composed_note n;
  EXPECT_EQ(musicgen_composition_note(c, -1, &n), MUSICGEN_ERROR_INVALID_ARGUMENT);
  musicgen_composition_free(c);
  musicgen_composition_free(nullptr);

  c = reinterpret_cast<musicgen_composition*>(1);
  EXPECT_EQ(musicgen_compose("A minor; 8 bars; 500 bpm", 0, &c), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(c, nullptr);
  EXPECT_NE(std::string(musicgen_last_error()).find("field 3 of 3 ('500 bpm')"), std::string::npos)
      << musicgen_last_error();
}

}  // namespace
