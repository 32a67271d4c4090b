// The benchmarks' paired measurements, run on the tiny model as a user would run them: bench-musicgen
// --probe-every (read probes between decode windows) prints its window table and a RESULT line
// whose old keys keep their meaning beside the new ones; bench-server-step --rounds prints each
// round, the medians and the compute bound; bench-ops peak prints the FMA peak. Small buffers and
// few steps keep it fast; nothing here checks a speed (tests never time anything), only that the
// figures are there, are finite and are consistent with each other, and that bad options are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kBenchMusicgen = MG_BINARY_DIR "/tools/bench-musicgen/bench-musicgen";

std::string tiny_model() { return mgtest::data_dir() + "/models/musicgen_tiny"; }

// The key=value pairs of the line that starts with "RESULT " (empty when there is none).
std::map<std::string, std::string> result_line(const std::string& out) {
  std::map<std::string, std::string> kv;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("RESULT ", 0) != 0) continue;
    std::istringstream words(line.substr(7));
    std::string w;
    while (words >> w) {
      const size_t eq = w.find('=');
      if (eq != std::string::npos) kv[w.substr(0, eq)] = w.substr(eq + 1);
    }
  }
  return kv;
}

// The value of `key` as a finite number; fails the test (and returns NaN) otherwise.
double number(const std::map<std::string, std::string>& kv, const std::string& key) {
  const auto it = kv.find(key);
  if (it == kv.end()) {
    ADD_FAILURE() << "RESULT has no " << key;
    return NAN;
  }
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  EXPECT_TRUE(*end == '\0' && std::isfinite(v)) << key << "=" << it->second;
  return v;
}

int count_of(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

class BenchMusicgenProbe : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kBenchMusicgen)) << kBenchMusicgen
                                            << " is not built (cmake --build <dir> --target bench-musicgen)";
  }
  static mgtest::RunResult run(const std::string& args) {
    return mgtest::run_command(kBenchMusicgen, "--model " + tiny_model() + " --threads 2 --no-audio " + args);
  }
};

TEST_F(BenchMusicgenProbe, WindowsOfFiveOverTwelveStepsGiveATableAndAValidResultLine) {
  // Steps 2..12 in windows of 5: 2-6, 7-11 and a last one of step 12 alone; 4 probes around them.
  const auto r = run("--steps 12 --probe-every 5 --probe-mb 64 --probe-passes 1");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("read probe every 5 steps: 64 MiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("paired roofline"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2-6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("7-11"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("12-12"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("median over 3 windows"), std::string::npos) << r.out;
  ASSERT_EQ(count_of(r.out, "\nRESULT "), 1) << r.out;
  const auto kv = result_line(r.out);
  // The old keys, with their old meaning: steps/s is the steady state, probes left out of it.
  EXPECT_EQ(kv.at("steps"), "12");
  EXPECT_EQ(kv.at("step_mode"), "recorded");
  EXPECT_EQ(kv.at("mode"), "file");
  const double step_ms = number(kv, "step_ms"), sps = number(kv, "steps_per_s");
  EXPECT_GT(step_ms, 0.0);
  // Both are printed rounded (step_ms to 0.0005 ms, steps/s to 0.00005): on the tiny model a step
  // takes ~0.25 ms, so step_ms's rounding alone moves the product by up to ~0.2%.
  EXPECT_NEAR(sps * step_ms, 1000.0, 0.0005 * sps + 0.00005 * step_ms + 0.0005 * 0.00005);
  EXPECT_GT(number(kv, "weight_gb_per_step"), 0.0);
  EXPECT_GT(number(kv, "peak_rss_mb"), 0.0);
  // Probe time is not generation time: generate_s + probe_s is the wall time, so generate_s alone
  // must leave room for probe_s (4 probes of 2 x 64 MiB each: many times 12 tiny steps).
  const double gen_s = number(kv, "generate_s"), probe_s = number(kv, "probe_s");
  EXPECT_GT(probe_s, 0.0);
  EXPECT_NEAR(number(kv, "first_audio_s"), gen_s, 0.002);  // a file: the generation (no audio decode)
  // The new keys.
  EXPECT_EQ(kv.at("probe_every"), "5");
  EXPECT_EQ(kv.at("probe_windows"), "3");
  for (const char* what : {"probe_gbps", "paired_roofline_pct", "paired_roofline_with_kv_pct"}) {
    const std::string k = what;
    const double lo = number(kv, k + "_min"), med = number(kv, k + "_median"), hi = number(kv, k + "_max");
    EXPECT_GT(lo, 0.0) << k;
    EXPECT_LE(lo, med) << k;
    EXPECT_LE(med, hi) << k;
  }
  EXPECT_GE(number(kv, "paired_roofline_with_kv_pct_median"), number(kv, "paired_roofline_pct_median"));
}

TEST_F(BenchMusicgenProbe, StreamingAndEagerStepsKeepTheirKeysWithProbes) {
  const auto r = run("--steps 12 --probe-every 4 --probe-mb 64 --probe-passes 1 --stream --eager");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const auto kv = result_line(r.out);
  EXPECT_EQ(kv.at("mode"), "stream");
  EXPECT_EQ(kv.at("step_mode"), "eager");
  EXPECT_EQ(kv.at("probe_windows"), "3");  // 2-5, 6-9, 10-12
  EXPECT_LE(number(kv, "first_audio_s"), number(kv, "generate_s") + 1e-3);
  EXPECT_NE(r.out.find("stream: first audio after"), std::string::npos) << r.out;
}

TEST_F(BenchMusicgenProbe, WithoutProbesTheResultLineHasNoProbeKeys) {
  const auto r = run("--steps 5");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(r.out.find("paired roofline"), std::string::npos) << r.out;
  const auto kv = result_line(r.out);
  EXPECT_EQ(kv.count("steps_per_s"), 1u);
  EXPECT_EQ(kv.count("probe_every"), 0u);
  EXPECT_EQ(kv.count("paired_roofline_pct_median"), 0u);
}

TEST_F(BenchMusicgenProbe, BadProbeOptionsAreRefusedWithTheirName) {
  for (const char* bad : {"--probe-every -1", "--probe-every 5x", "--probe-every 2.5", "--probe-mb 1",
                          "--probe-passes 0", "--probe-every 5 --device cuda"}) {
    const auto r = run(std::string("--steps 5 ") + bad);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_NE((r.err + r.out).find("--probe-"), std::string::npos) << bad << ": " << r.err << r.out;
  }
}

}  // namespace

namespace {

const std::string kBenchServerStep = MG_BINARY_DIR "/tools/bench-server/bench-server-step";
const std::string kBenchOps = MG_BINARY_DIR "/tools/bench-ops/bench-ops";
const std::string kBenchMemory = MG_BINARY_DIR "/tools/bench-memory/bench-memory";

// bench-server-step --rounds: the 1- and N-request timings alternate, each round printed, then the
// medians and the compute bound from an FMA peak measured in the same process.
TEST(BenchServerStepRounds, EachRoundIsPrintedThenTheMediansAndTheComputeBound) {
  ASSERT_TRUE(fs::exists(kBenchServerStep)) << kBenchServerStep << " is not built";
  const auto r = mgtest::run_command(kBenchServerStep,
                                     tiny_model() + " --threads 2 --requests 3 --steps 2 --rounds 3");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  for (const char* line : {"round 1/3: 1 request", "round 2/3: 1 request", "round 3/3: 1 request",
                           "1 request:   step", "3 requests: step", "(median of the rounds)",
                           "request-steps/s, 3 vs 1: x", "medians of the rounds' ratios",
                           "compute bound: 2 x 6 rows x ", "steps so far shared/paced/free "})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  EXPECT_EQ(count_of(r.out, "round "), 3) << r.out;
  // One request's step is at least the bound here (a tiny model): the ceiling is N itself.
  if (r.out.find("f32 FMA peak") != std::string::npos)
    EXPECT_NE(r.out.find("ratio ceiling 3 x t1 / max(bound, t1) = x3.00"), std::string::npos) << r.out;
  for (const char* bad : {"--rounds 0", "--rounds 2x", "--rounds"}) {
    const auto b = mgtest::run_command(kBenchServerStep, tiny_model() + " " + bad);
    EXPECT_EQ(b.exit_code, 2) << bad;
    EXPECT_NE(b.err.find("--rounds"), std::string::npos) << bad << ": " << b.err;
  }
}

// bench-memory --handoff: one line, "core_handoff_ns N", N > 0 where two CPUs can be pinned, else -1
// (bench_server.py parses it around each round to sort its rounds by the vCPUs' placement).
TEST(BenchMemoryHandoff, PrintsOneNumberOfNanoseconds) {
  ASSERT_TRUE(fs::exists(kBenchMemory)) << kBenchMemory << " is not built";
  const auto r = mgtest::run_command(kBenchMemory, "--handoff");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ASSERT_EQ(r.out.rfind("core_handoff_ns ", 0), 0u) << r.out;
  EXPECT_EQ(count_of(r.out, "\n"), 1) << r.out;
  const double ns = std::strtod(r.out.c_str() + std::string("core_handoff_ns ").size(), nullptr);
  EXPECT_TRUE(ns == -1.0 || (ns > 0.0 && ns < 1e6)) << r.out;
}

// bench-ops peak: GFLOP/s on 1 thread and on 2, both finite and positive where the CPU has FMA.
TEST(BenchOpsPeak, PrintsTheFmaPeakOnOneAndOnTwoThreads) {
  ASSERT_TRUE(fs::exists(kBenchOps)) << kBenchOps << " is not built";
  const auto r = mgtest::run_command(kBenchOps, "peak 2 0.03");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  if (r.out.find("no FMA on this CPU") != std::string::npos) GTEST_SKIP() << "no FMA here";
  for (const char* rows : {"1 thread ", "2 threads "}) {
    const size_t at = r.out.find(rows);
    ASSERT_NE(at, std::string::npos) << rows << "\n" << r.out;
    const double gflops = std::strtod(r.out.c_str() + at + std::string(rows).size(), nullptr);
    EXPECT_TRUE(std::isfinite(gflops) && gflops > 0.0) << rows << ": " << r.out;
  }
  for (const char* bad : {"peak 0", "peak 2 abc", "peak 2 0", "peak 2 0.1 extra"}) {
    const auto b = mgtest::run_command(kBenchOps, bad);
    EXPECT_EQ(b.exit_code, 2) << bad << ": " << b.out << b.err;
  }
}

}  // namespace
