// matmul: c[i] = alpha * a[i] . op(b[i]) through cuBLAS (column-major) on row-major data.
// The row-major trick: a row-major matrix seen as column-major is its transpose, so
// c^T = op(b)^T . a^T is computed with b as cuBLAS's first operand and a as its second.
// Math mode stays CUBLAS_DEFAULT_MATH (set by the backend): full f32, no TF32, because the CPU
// reference is f32 and model parity is measured against PyTorch in f32.
#include <climits>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {

void matmul(cublasHandle_t h, const float* a, int64_t stride_a, const float* b, int64_t stride_b, float* c,
            int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_b, float alpha) {
  if (batch == 0 || M == 0 || N == 0) return;
  MG_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && batch <= INT_MAX,
           "cuda matmul: sizes M=", M, " N=", N, " K=", K, " batch=", batch, " exceed cuBLAS's int range");
  if (K == 0) {  // cuBLAS with k = 0 scales C by beta; write the zeros ourselves
    cudaStream_t s;
    CUBLAS_CHECK(cublasGetStream(h, &s));
    CUDA_CHECK(cudaMemsetAsync(c, 0, size_t(batch * M * N) * sizeof(float), s));
    return;
  }
  const float beta = 0.0f;
  // b row-major [K, N] -> column-major [N, K] with ld N (op N); b row-major [N, K] -> column-major
  // [K, N] with ld K, transposed (op T).
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldb = static_cast<int>(trans_b ? K : N);
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  if (batch == 1) {
    CUBLAS_CHECK(cublasSgemm(h, op_b, CUBLAS_OP_N, m, n, k, &alpha, b, ldb, a, k, &beta, c, m));
  } else {
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, op_b, CUBLAS_OP_N, m, n, k, &alpha, b, ldb, stride_b, a, k,
                                           stride_a, &beta, c, m, M * N, static_cast<int>(batch)));
  }
}

}  // namespace cuda
}  // namespace mg
