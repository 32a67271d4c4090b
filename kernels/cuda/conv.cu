// conv1d (im2col + sgemm) and conv_transpose1d (sgemm + col2im), PyTorch layouts, no implicit
// padding (callers pad with pad1d). Both work per batch item and in time chunks, so that the
// column buffer stays under kMaxColFloats whatever the audio length: a 30 s clip at 32 kHz
// through a 32-channel, kernel-7 conv would otherwise need a 200 MB im2col buffer.
#include <algorithm>
#include <climits>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

constexpr int64_t kMaxColFloats = int64_t(1) << 24;  // 64 MB of column buffer at most
constexpr int kBlock = 256;

#define MG_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

int64_t chunk_len(int64_t rows, int64_t len) { return std::max<int64_t>(1, std::min(len, kMaxColFloats / rows)); }

int to_int(int64_t v, const char* what) {
  MG_CHECK(v <= INT_MAX, "cuda conv: ", what, " = ", v, " exceeds cuBLAS's int range");
  return static_cast<int>(v);
}

// col[(ci*K + k), tt] = x[ci, (t0 + tt)*stride + k*dilation] for tt < Tc (x is one batch item).
__global__ void im2col_kernel(const float* __restrict__ x, float* __restrict__ col, int64_t Cin, int64_t T,
                              int64_t K, int stride, int dilation, int64_t t0, int64_t Tc) {
  const int64_t total = Cin * K * Tc;
  MG_GRID_STRIDE(i, total) {
    const int64_t tt = i % Tc, row = i / Tc;
    const int64_t ci = row / K, k = row % K;
    col[i] = x[ci * T + (t0 + tt) * stride + k * dilation];
  }
}

// y[b, c, t] = bias ? bias[c] : 0 over the whole output (conv_transpose1d accumulates into it).
__global__ void fill_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t C, int64_t T,
                                 int64_t total) {
  MG_GRID_STRIDE(i, total) y[i] = bias ? bias[(i / T) % C] : 0.0f;
}

__global__ void add_channel_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t C,
                                        int64_t T, int64_t total) {
  MG_GRID_STRIDE(i, total) y[i] += bias[(i / T) % C];
}

// For the input chunk [t0, t0 + Tc): y[co, j] += sum over k with j = t*stride + k of
// col[(co*K + k), t - t0]. Each output element is owned by one thread (a gather, no atomics);
// chunks run one after another on the stream, so their overlaps add up in order.
__global__ void col2im_kernel(const float* __restrict__ col, float* __restrict__ y, int64_t Cout, int64_t K,
                              int stride, int64_t t0, int64_t Tc, int64_t Tout) {
  const int64_t j0 = t0 * stride;
  const int64_t span = (Tc - 1) * stride + K;  // outputs touched by this chunk
  const int64_t total = Cout * span;
  MG_GRID_STRIDE(i, total) {
    const int64_t co = i / span, j = j0 + i % span;
    if (j >= Tout) continue;
    float acc = 0.0f;
    for (int64_t k = j % stride; k < K; k += stride) {
      const int64_t t = (j - k) / stride;
      if (t < t0) break;  // t only decreases as k grows
      if (t < t0 + Tc) acc += col[(co * K + k) * Tc + (t - t0)];
    }
    y[co * Tout + j] += acc;
  }
}

}  // namespace

// A pointwise conv (K = 1, stride 1) needs no im2col: x[b] is already the column matrix.
static bool conv1d_is_pointwise(int64_t K, int stride) { return K == 1 && stride == 1; }

int64_t conv1d_scratch_floats(int64_t Cin, int64_t K, int stride, int64_t Tout) {
  if (Cin * K == 0 || Tout == 0 || conv1d_is_pointwise(K, stride)) return 0;
  return Cin * K * chunk_len(Cin * K, Tout);
}

void conv1d(cublasHandle_t h, cudaStream_t s, const float* x, const float* w, const float* b, float* y,
            float* scratch, int64_t B, int64_t Cin, int64_t T, int64_t Cout, int64_t K, int stride,
            int dilation, int64_t Tout) {
  if (B == 0 || Cout == 0 || Tout == 0) return;
  const int64_t CK = Cin * K;
  if (CK == 0) {
    CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(B * Cout * Tout) * sizeof(float), s));
  } else {
    const bool direct = conv1d_is_pointwise(K, stride);
    const int64_t Tc_max = direct ? Tout : chunk_len(CK, Tout);
    const float one = 1.0f, zero = 0.0f;
    for (int64_t bi = 0; bi < B; ++bi) {
      const float* xb = x + bi * Cin * T;
      float* yb = y + bi * Cout * Tout;
      for (int64_t t0 = 0; t0 < Tout; t0 += Tc_max) {
        const int64_t Tc = std::min(Tc_max, Tout - t0);
        const float* col = xb;
        int64_t ldcol = T;
        if (!direct) {
          im2col_kernel<<<grid_for(CK * Tc, kBlock), kBlock, 0, s>>>(xb, scratch, Cin, T, K, stride, dilation, t0, Tc);
          CUDA_CHECK_LAUNCH();
          col = scratch;
          ldcol = Tc;
        } else {
          col = xb + t0;
        }
        // Row-major y[Cout, Tc] (ld Tout) = w[Cout, CK] . col[CK, Tc]; column-major that is
        // y^T = col^T . w^T with both operands taken as they lie (op N).
        CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, to_int(Tc, "Tc"), to_int(Cout, "Cout"),
                                 to_int(CK, "Cin*K"), &one, col, to_int(ldcol, "T"), w, int(CK), &zero, yb + t0,
                                 to_int(Tout, "Tout")));
      }
    }
  }
  if (b) {
    const int64_t total = B * Cout * Tout;
    add_channel_bias_kernel<<<grid_for(total, kBlock), kBlock, 0, s>>>(y, b, Cout, Tout, total);
    CUDA_CHECK_LAUNCH();
  }
}

int64_t conv_transpose1d_scratch_floats(int64_t Cout, int64_t K, int64_t T) {
  if (Cout * K == 0 || T == 0) return 0;
  return Cout * K * chunk_len(Cout * K, T);
}

void conv_transpose1d(cublasHandle_t h, cudaStream_t s, const float* x, const float* w, const float* b,
                      float* y, float* scratch, int64_t B, int64_t Cin, int64_t T, int64_t Cout, int64_t K,
                      int stride, int64_t Tout) {
  const int64_t total = B * Cout * Tout;
  if (total == 0) return;
  fill_bias_kernel<<<grid_for(total, kBlock), kBlock, 0, s>>>(y, b, Cout, Tout, total);
  CUDA_CHECK_LAUNCH();
  const int64_t CoK = Cout * K;
  if (T == 0 || Cin == 0 || CoK == 0) return;
  const int64_t Tc_max = chunk_len(CoK, T);
  const float one = 1.0f, zero = 0.0f;
  for (int64_t bi = 0; bi < B; ++bi) {
    const float* xb = x + bi * Cin * T;
    float* yb = y + bi * Cout * Tout;
    for (int64_t t0 = 0; t0 < T; t0 += Tc_max) {
      const int64_t Tc = std::min(Tc_max, T - t0);
      // Row-major col[CoK, Tc] = w[Cin, CoK]^T . x[Cin, t0:t0+Tc]; column-major:
      // col^T[Tc, CoK] = x^T (op N, ld T) . w (column-major view w^T, so op T, ld CoK).
      CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, to_int(Tc, "Tc"), to_int(CoK, "Cout*K"),
                               to_int(Cin, "Cin"), &one, xb + t0, to_int(T, "T"), w, int(CoK), &zero, scratch,
                               int(Tc)));
      const int64_t span = (Tc - 1) * stride + K;
      col2im_kernel<<<grid_for(Cout * span, kBlock), kBlock, 0, s>>>(scratch, yb, Cout, K, stride, t0, Tc, Tout);
      CUDA_CHECK_LAUNCH();
    }
  }
}

}  // namespace cuda
}  // namespace mg
