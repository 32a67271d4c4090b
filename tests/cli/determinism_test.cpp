// Determinism (docs/USER_GUIDE.md): the same seed, settings and device give byte-identical output
// across runs and across thread counts 1, 2 and 4, greedy and sampled, through musicgen-cli (the
// WAV file's bytes) and through the C API (the float samples), on the tiny model and the CPU.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "musicgen.h"
#include "test_util.h"

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kModel = mgtest::data_dir() + "/models/musicgen_tiny";

std::string cli_output(const std::string& mode, int threads, const std::string& name) {
  const std::string out = mgtest::temp_dir() + "/" + name + ".wav";
  const mgtest::RunResult r = mgtest::run_command(
      kCli, "-q --device cpu --model " + kModel + " -p 'techno, 120 bpm' -d 0.6 " + mode + " --threads " +
                std::to_string(threads) + " -o " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return mgtest::slurp(out);
}

std::vector<float> api_output(bool greedy, int threads) {
  musicgen_model_params mp = musicgen_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  mp.n_threads = threads;
  musicgen_model* m = nullptr;
  EXPECT_EQ(musicgen_model_load(kModel.c_str(), &mp, &m), MUSICGEN_OK) << musicgen_last_error();
  if (!m) return {};
  musicgen_session_params sp = musicgen_session_default_params();
  sp.n_threads = threads;
  musicgen_session* s = nullptr;
  EXPECT_EQ(musicgen_session_create(m, &sp, &s), MUSICGEN_OK);
  musicgen_generate_params gp = musicgen_generate_default_params();
  gp.prompt = "ambient pads";
  gp.duration_s = 0.6f;
  gp.greedy = greedy;
  gp.seed = 1234;
  musicgen_audio a{};
  EXPECT_EQ(musicgen_session_generate(s, &gp, &a), MUSICGEN_OK) << musicgen_last_error();
  std::vector<float> out(a.samples, a.samples + a.n_samples * a.channels);
  musicgen_audio_free(&a);
  musicgen_session_free(s);
  musicgen_model_free(m);
  return out;
}

}  // namespace

TEST(Determinism, CliIsByteIdenticalAcrossRunsAndThreadCounts) {
  for (const std::string mode : {"--greedy", "--seed 42"}) {
    const std::string first = cli_output(mode, 1, "t1");
    ASSERT_GT(first.size(), 44u) << mode;
    EXPECT_EQ(cli_output(mode, 1, "t1_again"), first) << mode << ": two runs differ";
    EXPECT_EQ(cli_output(mode, 2, "t2"), first) << mode << ": 2 threads differ from 1";
    EXPECT_EQ(cli_output(mode, 4, "t4"), first) << mode << ": 4 threads differ from 1";
  }
  EXPECT_NE(cli_output("--seed 42", 2, "s42"), cli_output("--seed 43", 2, "s43")) << "the seed is not used";
}

TEST(Determinism, CApiIsBitIdenticalAcrossRunsAndThreadCounts) {
  for (const bool greedy : {true, false}) {
    const std::vector<float> first = api_output(greedy, 1);
    ASSERT_FALSE(first.empty());
    for (const int threads : {1, 2, 4}) {
      const std::vector<float> again = api_output(greedy, threads);
      ASSERT_EQ(again.size(), first.size());
      EXPECT_EQ(std::memcmp(again.data(), first.data(), first.size() * sizeof(float)), 0)
          << (greedy ? "greedy" : "sampled") << ", " << threads << " threads differ from 1";
    }
  }
}
