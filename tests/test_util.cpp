#include "test_util.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <unistd.h>

namespace fs = std::filesystem;

namespace mgtest {

std::string source_dir() { return MG_SOURCE_DIR; }
std::string data_dir() { return source_dir() + "/tests/data"; }
std::string golden_dir() { return data_dir() + "/golden"; }

std::string test_audio_dir_setting() {
  const char* env = std::getenv("MUSICGEN_TEST_AUDIO_DIR");
  return env && *env ? env : MG_TEST_AUDIO_DIR;
}

std::string test_audio_dir() {
  const fs::path p = test_audio_dir_setting();
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return "";
  return fs::canonical(p, ec).string();
}

std::string temp_dir() {
  static std::string dir;
  if (dir.empty()) {
    fs::path p = fs::path(MG_BINARY_DIR) / "test-tmp" /
                 (std::string(::testing::UnitTest::GetInstance()->original_working_dir()).empty()
                      ? "t"
                      : std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    dir = p.string();
  }
  return dir;
}

std::string test_case_dir() {
  fs::path p = fs::path(temp_dir()) / ::testing::UnitTest::GetInstance()->current_test_info()->name();
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const mg::Error& e) {
    return e.what();
  }
  return "(no error)";
}

ScopedEnv::ScopedEnv(std::string name) : name_(std::move(name)) {
  const char* v = std::getenv(name_.c_str());
  was_set_ = v != nullptr;
  if (was_set_) saved_ = v;
}

ScopedEnv::~ScopedEnv() {
  if (was_set_) setenv(name_.c_str(), saved_.c_str(), 1);
  else unsetenv(name_.c_str());
}

void ScopedEnv::set(const std::string& value) const { setenv(name_.c_str(), value.c_str(), 1); }

void ScopedEnv::unset() const { unsetenv(name_.c_str()); }

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

RunResult run_command(const std::string& program, const std::string& args) {
  const std::string out = temp_dir() + "/stdout.txt", err = temp_dir() + "/stderr.txt";
  const std::string cmd = "'" + program + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

double rel_err(const mg::Tensor& a, const mg::Tensor& b) {
  EXPECT_EQ(mg::shape_str(a.shape), mg::shape_str(b.shape));
  return rel_err(a.to_vector(), b.to_vector());
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

std::vector<float> random_vector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) {
    do { x = u(rng); } while (x == 0.0f);
  }
  return v;
}

mg::Tensor random_tensor(const mg::Shape& s, uint32_t seed, float scale) {
  mg::Tensor t = mg::Tensor::empty(mg::DType::F32, s);
  std::vector<float> v = random_vector(t.numel(), seed);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = v[i] * scale;
  return t;
}

mg::Tensor first_cols(const mg::Tensor& x, int64_t n) {
  const int64_t C = x.dim(0), T = x.dim(1);
  mg::Tensor out = mg::Tensor::empty(x.dtype, {C, n});
  const size_t es = mg::dtype_size(x.dtype);
  for (int64_t c = 0; c < C; ++c)
    std::memcpy(static_cast<char*>(out.data) + c * n * es, static_cast<const char*>(x.data) + c * T * es, n * es);
  return out;
}

}  // namespace mgtest

void mgtest::write_wav_file(const std::string& path, uint32_t rate, uint32_t declared_bytes, uint32_t real_bytes,
                            int64_t file_bytes) {
  std::vector<uint8_t> b;
  auto put = [&](uint32_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
  };
  auto tag = [&](const char* t) { b.insert(b.end(), t, t + 4); };
  tag("RIFF");
  put(36 + declared_bytes, 4);
  tag("WAVE");
  tag("fmt ");
  put(16, 4);
  put(1, 2);  // PCM
  put(1, 2);  // mono
  put(rate, 4);
  put(rate * 2, 4);
  put(2, 2);
  put(16, 2);
  tag("data");
  put(declared_bytes, 4);
  for (uint32_t i = 0; i < real_bytes / 2; ++i) put(uint16_t(int16_t((i % 200) * 10 - 1000)), 2);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  f.close();
  if (file_bytes > int64_t(b.size())) std::filesystem::resize_file(path, uintmax_t(file_bytes));
}
