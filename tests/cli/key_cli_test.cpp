// musicgen-cli --key / --transpose-to on the tiny melody model: chords and notes outside the key
// are noted on stderr (exit 0), --transpose-to changes the chroma to that of the transposed text
// (compared through --chroma-png), and the errors name what is wrong before the model loads.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kMelody = mgtest::data_dir() + "/models/musicgen_melody_tiny";

mgtest::RunResult run(const std::string& args) {
  return mgtest::run_command(kCli, "--model " + kMelody + " -d 0.2 " + args);
}

TEST(KeyCli, NotesChordsOutsideTheKey) {
  const std::string out = mgtest::temp_dir() + "/key_check.wav";
  mgtest::RunResult r = run("--chords \"Am F Bb E\" --key \"A minor\" -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("note: chord 3 of 4 'Bb' is outside A minor (Bb not in the scale)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("note: chord 4 of 4 'E' is outside A minor (G# not in the scale)"), std::string::npos) << r.err;
  r = run("--notes \"D4 E4 F#4 G4\" --key \"D dorian\" -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("note: note 3 of 4 'F#4' is outside D dorian (F# not in the scale)"), std::string::npos) << r.err;
}

TEST(KeyCli, TransposeChangesTheChroma) {
  const std::string dir = mgtest::temp_dir(), out = dir + "/key_tr.wav";
  const std::string plain = dir + "/key_plain.png", moved = dir + "/key_moved.png", direct = dir + "/key_direct.png";
  const std::string file = dir + "/key_chords.txt", from_file = dir + "/key_file.png";
  ASSERT_EQ(run("--chords \"C G/B Am F\" --chroma-png " + plain + " -o " + out).exit_code, 0);
  mgtest::RunResult r = run("--chords \"C G/B Am F\" --key \"C major\" --transpose-to \"D major\" --chroma-png " + moved +
                            " -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("D A/C# Bm G"), std::string::npos) << r.err;
  ASSERT_EQ(run("--chords \"D A/C# Bm G\" --chroma-png " + direct + " -o " + out).exit_code, 0);
  EXPECT_NE(mgtest::slurp(plain), mgtest::slurp(moved));
  EXPECT_EQ(mgtest::slurp(direct), mgtest::slurp(moved));
  // A chords file is transposed too.
  std::ofstream(file) << "C G/B  # the verse\nAm F\n";
  ASSERT_EQ(run("--chords-file " + file + " --key C --transpose-to D --chroma-png " + from_file + " -o " + out).exit_code, 0);
  EXPECT_EQ(mgtest::slurp(direct), mgtest::slurp(from_file));
}

TEST(KeyCli, Errors) {
  mgtest::RunResult r = run("--chords C --key \"A minor\" --transpose-to \"D major\" -o x.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("modes differ"), std::string::npos) << r.err;
  r = run("--chords C --key \"H minor\" -o x.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("word 1 of 2 ('H')"), std::string::npos) << r.err;
  r = run("--chords C --transpose-to D -o x.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--key"), std::string::npos) << r.err;
  r = run("--key C -o x.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--chords"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists("x.wav"));
}

}  // namespace
