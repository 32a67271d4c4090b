// musicgen-cli end to end on the tiny model, and every bad input the issue names: each must exit
// non-zero with a message that says what is wrong, and never leave an output file behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "codec/audio_file.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kModel = mgtest::data_dir() + "/models/musicgen_tiny";

struct CliRun {
  int code;
  std::string out;  // stdout and stderr together
};

CliRun run(const std::string& args) {
  mgtest::RunResult r = mgtest::run_command(kCli, args);
  return {r.exit_code, r.out + r.err};
}

TEST(MusicgenCli, GeneratesAWavWithTheTinyModel) {
  const std::string out = mgtest::temp_dir() + "/electro.wav";
  CliRun r = run("--model " + kModel + " --prompt electro -d 1 --seed 7 -o " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  mg::AudioBuffer a = mg::read_audio(out);
  EXPECT_EQ(a.sample_rate, 32000);
  EXPECT_EQ(a.num_channels(), 1);
  EXPECT_EQ(a.num_frames(), 50 * 640);
  // Not a TTY here: no progress bar escape sequences in the output.
  EXPECT_EQ(r.out.find('\r'), std::string::npos) << r.out;
}

TEST(MusicgenCli, SameSeedGivesTheSameAudio) {
  const std::string a = mgtest::temp_dir() + "/a.wav", b = mgtest::temp_dir() + "/b.wav";
  ASSERT_EQ(run("-q --model " + kModel + " -p techno -d 0.5 --seed 3 -o " + a).code, 0);
  ASSERT_EQ(run("-q --model " + kModel + " -p techno -d 0.5 --seed 3 -o " + b).code, 0);
  EXPECT_EQ(mg::read_audio(a).channels, mg::read_audio(b).channels);
}

TEST(MusicgenCli, HelpShowsDefaults) {
  CliRun r = run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* s : {"--prompt", "--duration", "=10", "--top-k", "=250", "--cfg", "=3", "--device", "--normalize"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

void expect_error(const std::string& args, const std::string& needle) {
  const std::string out = mgtest::temp_dir() + "/never.wav";
  fs::remove(out);
  CliRun r = run(args + " -o " + out);
  EXPECT_NE(r.code, 0) << args;
  EXPECT_NE(r.out.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.out;
  EXPECT_FALSE(fs::exists(out)) << args;
}

TEST(MusicgenCli, BadInputsAreClearErrors) {
  expect_error("--model " + kModel + " --bogus-flag", "bogus-flag");
  expect_error("--model " + kModel + " -d 0", "--duration must be > 0");
  expect_error("--model " + kModel + " -d -3", "--duration must be > 0");
  expect_error("--model " + kModel + " -d 31 --extend-stride 30", "--extend-stride");
  expect_error("--model " + kModel + " --takes 0", "--takes");
  expect_error("--model " + kModel + " --prompts-file /nonexistent.txt", "prompts-file");
  expect_error("--model " + kModel + " --continue /nonexistent.wav", "/nonexistent.wav");
  expect_error("--model " + kModel + " --stream out.raw", "--stream takes '-'");
  expect_error("--model " + kModel + " --top-k 0", "--top-k 0");
  expect_error("--model /nonexistent/model", "weights/download.sh");
  // A folder that is not a MusicGen snapshot (an EnCodec one) is refused by name.
  expect_error("--model " + mgtest::data_dir() + "/configs", "config");
}

TEST(MusicgenCli, UnwritableOutputIsRefusedBeforeGenerating) {
  CliRun r = run("--model " + kModel + " -d 0.5 -o /nonexistent-dir/out.wav");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("not writable"), std::string::npos) << r.out;
  r = run("--model " + kModel + " -d 0.5 -o " + mgtest::temp_dir() + "/out.xyz");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find(".wav"), std::string::npos) << r.out;
}

// Above the 30 s window the music goes on window by window (audiocraft's extend_stride).
TEST(MusicgenCli, LongerThanOneWindow) {
  const std::string out = mgtest::temp_dir() + "/long.wav";
  CliRun r = run("-q --model " + kModel + " -p drums -d 31 -o " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(mg::read_audio(out).num_frames(), 31 * 50 * 640);
}

// --prompts-file and --takes: one batch, numbered files.
TEST(MusicgenCli, PromptsFileAndTakesWriteNumberedFiles) {
  const std::string list = mgtest::temp_dir() + "/prompts.txt";
  { std::ofstream(list) << "rock\njazz with a saxophone\n"; }
  const std::string out = mgtest::temp_dir() + "/take.wav";
  CliRun r = run("-q --model " + kModel + " --prompts-file " + list + " --takes 2 -d 0.4 -o " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  for (int i = 1; i <= 4; ++i) EXPECT_TRUE(fs::exists(mgtest::temp_dir() + "/take-" + std::to_string(i) + ".wav")) << i;
  EXPECT_FALSE(fs::exists(mgtest::temp_dir() + "/take-5.wav"));
}

// --continue: the output starts with the prompt audio's length (converted to 32 kHz mono).
TEST(MusicgenCli, ContinuesARecording) {
  const std::string audio = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(audio);
  const std::string out = mgtest::temp_dir() + "/cont.wav";
  CliRun r = run("-q --model " + kModel + " --continue " + audio + "/electronic.mp3 -d 4 -o " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(mg::read_audio(out).num_frames(), 4 * 50 * 640);
  r = run("-q --model " + kModel + " --continue " + audio + "/electronic.mp3 -d 2 -o " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("longer than the requested duration"), std::string::npos) << r.out;
}

// --stream -: a WAV header then 16-bit PCM on stdout while generating.
TEST(MusicgenCli, StreamsWavToStdout) {
  const std::string out = mgtest::temp_dir() + "/streamed.wav";
  std::string cmd = kCli + " -q --model " + kModel + " -p ambient -d 1 --stream - > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(fs::file_size(out), 44u + 50 * 640 * 2);
}

// --stream with -o: the streamed PCM is the written file's audio (normalize none: both are the raw
// decoder output), within one 16-bit step.
TEST(MusicgenCli, StreamedPcmEqualsTheWrittenFile) {
  const std::string dir = mgtest::temp_dir(), raw = dir + "/streamed.s16le", wav = dir + "/whole.wav";
  std::string cmd = kCli + " -q --model " + kModel + " -p ambient -d 2 --seed 3 --normalize none --stream - " +
                    "--stream-format raw -o " + wav + " > " + raw;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const mg::AudioBuffer whole = mg::read_audio(wav);
  const std::string pcm = mgtest::slurp(raw);
  ASSERT_EQ(whole.num_frames(), 100 * 640);
  ASSERT_EQ(pcm.size(), size_t(whole.num_frames()) * 2);
  long worst = 0;
  for (int64_t i = 0; i < whole.num_frames(); ++i) {
    int16_t v = 0;
    std::memcpy(&v, pcm.data() + 2 * i, 2);
    worst = std::max(worst, std::labs(long(v) - std::lround(double(whole.channels[0][size_t(i)]) * 32768.0)));
  }
  EXPECT_LE(worst, 1);
}

const std::string kMelody = mgtest::data_dir() + "/models/musicgen_melody_tiny";

// Melody models: chords, notes and a recording as the condition, and a picture of it.
TEST(MusicgenCli, MelodyFromChordsNotesAndAudio) {
  MG_SKIP_WITHOUT_PNG();
  const std::string out = mgtest::temp_dir() + "/melody.wav", png = mgtest::temp_dir() + "/chroma.png";
  CliRun r = run("-q --model " + kMelody + " -p pop --chords \"C G Am F\" --bpm 100 -d 0.5 --chroma-png " + png +
              " -o " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_GT(fs::file_size(png), 100u);
  r = run("-q --model " + kMelody + " --notes \"C4:1 E4:1 G4:2\" -d 0.5 -o " + out);
  EXPECT_EQ(r.code, 0) << r.out;
  const std::string audio = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(audio);
  r = run("-q --model " + kMelody + " -p classical --melody " + audio + "/bach.mp3 -d 0.5 -o " + out);
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(MusicgenCli, MelodyErrorsNameTheProblem) {
  expect_error("--model " + kMelody + " --chords \"C G Xq7 F\"", "Xq7");
  expect_error("--model " + kMelody + " --chords \"C G\" --bpm 1000", "400");
  expect_error("--model " + kMelody + " --notes \"C4 C12\"", "C12");
  expect_error("--model " + kModel + " --chords \"C G\"", "melody");
  expect_error("--model " + kMelody + " --chords C --notes C4", "one of");
}

}  // namespace
