// OpenBLAS, loaded on first use with dlopen instead of linked, so that we choose its kernels.
//
// Why: OpenBLAS picks its kernels once, in a constructor that runs when the library is loaded,
// from the CPU's model number. On a CPU its version does not know (Debian 12's 0.3.21 on a Sapphire
// Rapids VM here) it falls back to "Prescott" SSE3 kernels: sgemm runs at 30 GFLOP/s instead of
// 160 with its AVX-512 ("SkylakeX") ones. The OPENBLAS_CORETYPE variable overrides the choice but
// is read only at load time, before main() when the library is linked. So unless the user has set
// OPENBLAS_CORETYPE, we set it from the CPU's features just around our dlopen and restore the
// environment after: SkylakeX with AVX-512 F/CD/BW/DQ/VL, Haswell with AVX2 + FMA, else OpenBLAS's
// own choice. If the process has already loaded OpenBLAS (an application linking it), that copy
// and its choice are used as they are.
#pragma once

#include <cstdint>
#include <string>

namespace mg::cpu::blas {

// Row-major C[M, N] = alpha * op(A) . op(B) + beta * C on the calling thread (OpenBLAS is kept
// single-threaded: the callers parallelise).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// Row-major y[M] = alpha * A[M, N] . x[N] + beta * y, on the calling thread.
void sgemv(int64_t m, int64_t n, float alpha, const float* a, int64_t lda, const float* x, float beta, float* y);

// What was loaded, for logs and benchmarks: e.g. "OpenBLAS 0.3.21 (SkylakeX, set by libmusicgen)
// from libopenblas.so.0". Loads the library when it is not loaded yet (throws mg::Error if it can't).
std::string describe();

}  // namespace mg::cpu::blas
