#include "kernels/cpu/blas.h"

#include <cblas.h>
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "kernels/common.h"

#ifndef MG_OPENBLAS_DIR
#define MG_OPENBLAS_DIR ""
#endif

namespace mg::cpu::blas {

namespace {

struct OpenBlas {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_sgemv) sgemv = nullptr;
  decltype(&openblas_set_num_threads) set_num_threads = nullptr;
  decltype(&openblas_get_num_threads) get_num_threads = nullptr;
  decltype(&openblas_get_corename) corename = nullptr;
  decltype(&openblas_get_config) config = nullptr;
  std::string path;
  bool coretype_set_by_us = false;
};

// The kernel family to ask for on this CPU, or nullptr to leave the choice to OpenBLAS.
const char* coretype_for_this_cpu() {
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

template <typename F>
void bind(void* h, const char* name, F& fn, const std::string& path) {
  fn = reinterpret_cast<F>(dlsym(h, name));
  MG_CHECK(fn != nullptr, "OpenBLAS at '", path, "' has no symbol ", name);
}

OpenBlas load() {
  OpenBlas lib;
  const std::string dir = MG_OPENBLAS_DIR;
  std::vector<std::string> candidates;
  if (!dir.empty()) candidates.push_back(dir + (dir.back() == '/' ? "" : "/") + "libopenblas.so.0");
  candidates.push_back("libopenblas.so.0");
  candidates.push_back("libopenblas.so");
  // Already in the process (linked by the application, or loaded by someone else): use it as is.
  void* h = nullptr;
  for (const std::string& c : candidates)
    if ((h = dlopen(c.c_str(), RTLD_NOW | RTLD_NOLOAD))) {
      lib.path = c;
      break;
    }
  if (!h) {
    const char* want = std::getenv("OPENBLAS_CORETYPE") ? nullptr : coretype_for_this_cpu();
    if (want) setenv("OPENBLAS_CORETYPE", want, 0);
    std::string errors;
    for (const std::string& c : candidates) {
      if ((h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL))) {
        lib.path = c;
        break;
      }
      const char* e = dlerror();
      errors += "\n  " + c + ": " + (e ? e : "not found");
    }
    if (want) unsetenv("OPENBLAS_CORETYPE");
    lib.coretype_set_by_us = want != nullptr;
    MG_CHECK(h != nullptr, "could not load OpenBLAS (the CPU backend's BLAS); install it (Debian/Ubuntu: "
             "apt-get install libopenblas0-pthread). Tried:", errors);
  }
  bind(h, "cblas_sgemm", lib.sgemm, lib.path);
  bind(h, "cblas_sgemv", lib.sgemv, lib.path);
  bind(h, "openblas_set_num_threads", lib.set_num_threads, lib.path);
  bind(h, "openblas_get_num_threads", lib.get_num_threads, lib.path);
  bind(h, "openblas_get_corename", lib.corename, lib.path);
  bind(h, "openblas_get_config", lib.config, lib.path);
  return lib;
}

// Loaded once per process; thread-safe (the first caller loads, the others wait).
const OpenBlas& lib() {
  static std::once_flag once;
  static OpenBlas* l = nullptr;  // never freed: the library stays loaded for the process
  std::call_once(once, [] { l = new OpenBlas(load()); });
  return *l;
}

// OpenBLAS's own threads would split our already-split work again: keep it at one. Its thread
// count is process-wide, so it is checked on every call in case other code changed it.
const OpenBlas& single_threaded() {
  const OpenBlas& l = lib();
  if (l.get_num_threads() != 1) l.set_num_threads(1);
  return l;
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  single_threaded().sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                          int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

void sgemv(int64_t m, int64_t n, float alpha, const float* a, int64_t lda, const float* x, float beta, float* y) {
  single_threaded().sgemv(CblasRowMajor, CblasNoTrans, int(m), int(n), alpha, a, int(lda), x, 1, beta, y, 1);
}

std::string describe() {
  const OpenBlas& l = lib();
  std::string s = l.config();
  s += std::string(" (") + l.corename() + (l.coretype_set_by_us ? ", chosen by libmusicgen" : "") + ") from " + l.path;
  return s;
}

}  // namespace mg::cpu::blas
