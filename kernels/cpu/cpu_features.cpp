#include "kernels/cpu/cpu_features.h"

#include <cstdlib>
#include <string>

namespace mg::cpu {

const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::Avx512: return "avx512-vnni";
    case KernelPath::Avx2: return "avx2";
    case KernelPath::Portable: break;
  }
  return "portable";
}

bool kernel_path_supported(KernelPath p) {
  static const bool avx512 = cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
                             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                             __builtin_cpu_supports("avx512vnni");
  switch (p) {
    case KernelPath::Avx512: return avx512;
    case KernelPath::Avx2: return cpu_has_avx2();
    case KernelPath::Portable: break;
  }
  return true;
}

namespace {

KernelPath resolve_path() {
  const char* env = std::getenv("MUSICGEN_CPU_PATH");
  if (!env || !*env) {
    if (kernel_path_supported(KernelPath::Avx512)) return KernelPath::Avx512;
    return kernel_path_supported(KernelPath::Avx2) ? KernelPath::Avx2 : KernelPath::Portable;
  }
  const std::string v = env;
  KernelPath p;
  if (v == "portable") p = KernelPath::Portable;
  else if (v == "avx2") p = KernelPath::Avx2;
  else if (v == "avx512") p = KernelPath::Avx512;
  else throw Error("MUSICGEN_CPU_PATH='" + v + "' is not a CPU kernel path: use portable, avx2 or avx512 (or unset it)");
  MG_CHECK(kernel_path_supported(p), "MUSICGEN_CPU_PATH=", v, ": this processor cannot run the ", kernel_path_name(p),
           " kernels (", v == "avx512" ? "it needs AVX-512 F, BW, VL and VNNI" : "it needs AVX2, FMA and F16C",
           "); unset it or choose a lower path");
  return p;
}

}  // namespace

KernelPath selected_kernel_path() {
  static const KernelPath p = resolve_path();
  return p;
}

KernelPath kernel_path_for(const Exec& ex) {
  KernelPath p = selected_kernel_path();
  if (!ex.allow_simd) return KernelPath::Portable;
  if (!ex.allow_avx512 && p == KernelPath::Avx512) return KernelPath::Avx2;
  return p;
}

}  // namespace mg::cpu
