// Helpers shared by the tests: where the data is, error measures, and skipping politely.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/tensor.h"

namespace mgtest {

std::string source_dir();          // the project root (tests run with it as working dir)
std::string data_dir();            // <root>/tests/data
std::string golden_dir();          // <root>/tests/data/golden
// The folder of real music that some tests decode: MUSICGEN_TEST_AUDIO_DIR from the environment,
// else the CMake cache variable of the same name (default <root>/../shared/data/audio). "" when it
// is not a folder; tests that need it fail then (MG_REQUIRE_TEST_AUDIO), they never skip.
std::string test_audio_dir();
std::string test_audio_dir_setting();  // the folder asked for, for error messages
std::string temp_dir();            // a fresh empty folder under the build dir for this process
std::string test_case_dir();       // a fresh empty folder under temp_dir() named after the running test

// ||a - b||_2 / ||b||_2 over all elements (b is the reference). Both are read as f32.
double rel_err(const mg::Tensor& a, const mg::Tensor& b);
// Columns [0, n) of a host [C, T] tensor (any dtype), as a new [C, n] tensor.
mg::Tensor first_cols(const mg::Tensor& x, int64_t n);
double rel_err(const std::vector<float>& a, const std::vector<float>& b);
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

// Runs `program args` through the shell (args already quoted where needed), capturing stdout and
// stderr separately. exit_code is -1 when the program did not exit normally.
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};
RunResult run_command(const std::string& program, const std::string& args);
std::string slurp(const std::string& path);  // a whole file as bytes ("" when unreadable)
// A 16-bit mono PCM WAV at `path` whose header says `rate` Hz and `declared_bytes` of samples,
// followed by `real_bytes` of a quiet saw; a larger `file_bytes` extends the file sparsely (zeros
// that take no disk): hostile and huge inputs made on the fly.
void write_wav_file(const std::string& path, uint32_t rate, uint32_t declared_bytes, uint32_t real_bytes,
                    int64_t file_bytes = 0);

// The message of the mg::Error that fn throws, or "(no error)" when it throws none.
std::string error_of(const std::function<void()>& fn);

// An environment variable set or unset for a test's scope, given back as it was when it ends (so a
// setting a developer exported stays theirs, whatever the test asserted in between).
class ScopedEnv {
 public:
  explicit ScopedEnv(std::string name);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  void set(const std::string& value) const;
  void unset() const;

 private:
  std::string name_, saved_;
  bool was_set_;
};

// Deterministic non-zero random data in [-1, 1) (never zeros: a kernel that writes nothing must fail).
std::vector<float> random_vector(size_t n, uint32_t seed);
mg::Tensor random_tensor(const mg::Shape& s, uint32_t seed, float scale = 1.0f);

}  // namespace mgtest

// Fails the running test when the real-music folder is absent: a missing fixture is a broken
// checkout, not a reason to pass.
#define MG_REQUIRE_TEST_AUDIO(dir)                                                                       \
  do {                                                                                                  \
    if ((dir).empty())                                                                                  \
      FAIL() << "the real-music test folder '" << mgtest::test_audio_dir_setting()                       \
             << "' is absent: set MUSICGEN_TEST_AUDIO_DIR (environment or CMake) to a folder holding "   \
                "the files tests/README.md lists";                                                      \
  } while (0)

// Chroma pictures need libpng, which is optional (MUSICGEN_PNG); a build without it has them refused.
#ifdef MUSICGEN_HAVE_PNG
#define MG_SKIP_WITHOUT_PNG() \
  do {                        \
  } while (0)
#else
#define MG_SKIP_WITHOUT_PNG() GTEST_SKIP() << "built without libpng (MUSICGEN_PNG): no chroma pictures"
#endif
