// musicgen_common.h: versions, statuses, the per-thread error slot, system info (and the encodec_*
// aliases of them), plus the device plumbing every model and session of both APIs share.
#include <algorithm>
#include <cstdio>
#include <string>

#include "api/api_internal.h"
#include "kernels/device_check.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/threadpool.h"

namespace {

// The C API's error slot: one message per thread, as errno. Not state of the library itself.
thread_local std::string t_last_error;

}  // namespace

namespace mg::capi {

void set_last_error(const std::string& message) { t_last_error = message; }
void clear_last_error() { t_last_error.clear(); }

void check_threads(int n_threads) {
  static_assert(mg::cpu::kMaxThreads == MUSICGEN_MAX_THREADS, "the header's bound is the thread pool's");
  if (n_threads > mg::cpu::kMaxThreads)
    throw ArgumentError(mg::strcat("n_threads must be at most ", mg::cpu::kMaxThreads, " (0: all cores), found ",
                                   n_threads));
}

std::unique_ptr<mg::Backend> make_model_backend(musicgen_device device, int n_threads, bool* cuda) {
  return make_model_backend_with(device, n_threads, cuda, mg::cuda_device_present(), &mg::make_cuda_backend);
}

std::unique_ptr<mg::Backend> make_model_backend_with(musicgen_device device, int n_threads, bool* cuda,
                                                     bool device_present, DeviceFactory make_device) {
  check_threads(n_threads);
  if (device != MUSICGEN_DEVICE_AUTO && device != MUSICGEN_DEVICE_CPU && device != MUSICGEN_DEVICE_CUDA)
    throw ArgumentError(mg::strcat("unknown device ", int(device), " (MUSICGEN_DEVICE_AUTO, _CPU or _CUDA)"));
  *cuda = false;
  if (device == MUSICGEN_DEVICE_CPU || (device == MUSICGEN_DEVICE_AUTO && !device_present))
    return mg::make_cpu_backend(n_threads);
  try {
    std::unique_ptr<mg::Backend> gpu = make_device(0);
    mg::check_device_against_cpu(*gpu);
    *cuda = true;
    return gpu;
  } catch (const mg::Error& e) {
    if (device == MUSICGEN_DEVICE_CUDA) throw DeviceError(e.what());
    warn_device_fallback(e.what());
  }
  return mg::make_cpu_backend(n_threads);
}

void warn_device_fallback(const std::string& why) {
  std::string line = why;
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "libmusicgen: warning: CUDA not used (%s); running on the CPU\n", line.c_str());
}

SessionBackend::SessionBackend(ModelDevice& dev, int n_threads) : dev_(dev) {
  check_threads(n_threads);  // on CUDA too: the same parameters must not pass on one device only
  if (!dev.shared) own_ = mg::make_cpu_backend(n_threads);
}

}  // namespace mg::capi

extern "C" {

int musicgen_api_version(void) { return MUSICGEN_API_VERSION; }

const char* musicgen_version(void) { return "0.1.0"; }

const char* musicgen_status_string(musicgen_status status) {
  switch (status) {
    case MUSICGEN_OK: return "ok";
    case MUSICGEN_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case MUSICGEN_ERROR_IO: return "i/o error";
    case MUSICGEN_ERROR_FORMAT: return "unusable data";
    case MUSICGEN_ERROR_MODEL: return "unusable model";
    case MUSICGEN_ERROR_DEVICE: return "device not available";
    case MUSICGEN_ERROR_ABORTED: return "aborted";
    case MUSICGEN_ERROR_OUT_OF_MEMORY: return "out of memory";
    case MUSICGEN_ERROR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* musicgen_last_error(void) { return t_last_error.c_str(); }

const char* musicgen_system_info(void) {
  thread_local std::string info;
  std::string blas;
  try {
    blas = mg::cpu::blas::describe();
  } catch (const std::exception& e) {
    blas = std::string("not loadable (") + e.what() + ")";
  }
  bool cuda = false;
  try {
    cuda = mg::cuda_available();
  } catch (...) {
  }
  info = std::string("AVX2 = ") + (mg::cpu::cpu_has_avx2() ? "1" : "0") + " | AVX512 = " +
         (mg::cpu::cpu_has_avx512() ? "1" : "0") + " | BLAS = " + blas + " | CUDA = " + (cuda ? "1" : "0");
  // Which kernel family the quantized (q8/q4) CPU linear runs (MUSICGEN_CPU_PATH can force one).
  std::string path;
  try {
    path = mg::cpu::kernel_path_name(mg::cpu::selected_kernel_path());
  } catch (const std::exception& e) {
    path = std::string("refused (") + e.what() + ")";
  }
  info += " | CPU quantized kernels = " + path;
  if (cuda) info += " | CUDA quantized kernels = warp-per-column dequantizing GEMV (q8_0, q4_0)";
  return info.c_str();
}

const char* encodec_version(void) { return musicgen_version(); }
const char* encodec_status_string(musicgen_status status) { return musicgen_status_string(status); }
const char* encodec_last_error(void) { return musicgen_last_error(); }

}  // extern "C"
