// Data movement: pad1d (constant / reflect / replicate, as torch.nn.functional.pad), transpose of
// the last two dims (32x32 tiles through shared memory, so that both the reads and the writes are
// coalesced) and narrow_last (a column window of every row).
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

constexpr int kBlock = 256;
constexpr int kTile = 32, kTileRows = 8;  // a 32x32 tile moved by 32x8 threads

__global__ void pad1d_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t T,
                             int64_t left, int64_t Tout, PadMode kind, float value) {
  const int64_t total = rows * Tout;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / Tout;
    int64_t src = i % Tout - left;
    if (src < 0 || src >= T) {
      if (kind == PadMode::Constant) {
        y[i] = value;
        continue;
      }
      if (kind == PadMode::Reflect) src = src < 0 ? -src : 2 * (T - 1) - src;  // edge not repeated
      else src = src < 0 ? 0 : T - 1;
    }
    y[i] = x[r * T + src];
  }
}

// x[z, A, B] -> y[z, B, A]. Tile (ty, tx) covers rows [ty*32, +32) and columns [tx*32, +32) of x.
template <typename E>
__global__ void transpose_kernel(const E* __restrict__ x, E* __restrict__ y, int64_t batch, int64_t A, int64_t B) {
  __shared__ E tile[kTile][kTile + 1];  // +1: column reads hit 32 different banks
  const int64_t tiles_a = ceil_div(A, kTile), tiles_b = ceil_div(B, kTile);
  for (int64_t z = blockIdx.z; z < batch; z += gridDim.z) {
    const E* xz = x + z * A * B;
    E* yz = y + z * A * B;
    for (int64_t ta = blockIdx.y; ta < tiles_a; ta += gridDim.y) {
      for (int64_t tb = blockIdx.x; tb < tiles_b; tb += gridDim.x) {
        const int64_t a0 = ta * kTile, b0 = tb * kTile;
        for (int r = threadIdx.y; r < kTile; r += kTileRows) {
          const int64_t a = a0 + r, b = b0 + threadIdx.x;
          if (a < A && b < B) tile[r][threadIdx.x] = xz[a * B + b];
        }
        __syncthreads();
        for (int r = threadIdx.y; r < kTile; r += kTileRows) {
          const int64_t b = b0 + r, a = a0 + threadIdx.x;
          if (a < A && b < B) yz[b * A + a] = tile[threadIdx.x][r];
        }
        __syncthreads();  // the tile is reused by this block's next iteration
      }
    }
  }
}

template <typename E>
__global__ void narrow_last_kernel(const E* __restrict__ x, E* __restrict__ y, int64_t rows, int64_t T, int64_t start,
                                   int64_t len) {
  const int64_t total = rows * len;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[(i / len) * T + start + i % len];
}

template <typename E>
void narrow_last_as(cudaStream_t s, const void* x, void* y, int64_t rows, int64_t T, int64_t start, int64_t len) {
  narrow_last_kernel<E><<<grid_for(rows * len, kBlock), kBlock, 0, s>>>(static_cast<const E*>(x), static_cast<E*>(y),
                                                                        rows, T, start, len);
}

template <typename E>
void transpose_as(cudaStream_t s, const void* x, void* y, int64_t batch, int64_t A, int64_t B) {
  dim3 grid(static_cast<unsigned>(std::min<int64_t>(ceil_div(B, kTile), 1 << 20)),
            static_cast<unsigned>(std::min<int64_t>(ceil_div(A, kTile), 65535)),
            static_cast<unsigned>(std::min<int64_t>(batch, 65535)));
  transpose_kernel<E><<<grid, dim3(kTile, kTileRows), 0, s>>>(static_cast<const E*>(x), static_cast<E*>(y),
                                                              batch, A, B);
}

}  // namespace

void pad1d(cudaStream_t s, const float* x, float* y, int64_t rows, int64_t T, int64_t left, int64_t right,
           PadMode kind, float value) {
  const int64_t Tout = left + T + right;
  if (rows == 0 || Tout == 0) return;
  pad1d_kernel<<<grid_for(rows * Tout, kBlock), kBlock, 0, s>>>(x, y, rows, T, left, Tout, kind, value);
  CUDA_CHECK_LAUNCH();
}

void transpose(cudaStream_t s, const void* x, void* y, int64_t batch, int64_t A, int64_t B, int elem_size) {
  if (batch == 0 || A == 0 || B == 0) return;
  switch (elem_size) {
    case 2: transpose_as<uint16_t>(s, x, y, batch, A, B); break;
    case 4: transpose_as<uint32_t>(s, x, y, batch, A, B); break;
    case 8: transpose_as<uint64_t>(s, x, y, batch, A, B); break;
    default: throw Error(strcat("cuda transpose: unsupported element size ", elem_size));
  }
  CUDA_CHECK_LAUNCH();
}

void narrow_last(cudaStream_t s, const void* x, void* y, int64_t rows, int64_t T, int64_t start, int64_t len,
                 int elem_size) {
  if (rows == 0 || len == 0) return;
  switch (elem_size) {
    case 2: narrow_last_as<uint16_t>(s, x, y, rows, T, start, len); break;
    case 4: narrow_last_as<uint32_t>(s, x, y, rows, T, start, len); break;
    case 8: narrow_last_as<uint64_t>(s, x, y, rows, T, start, len); break;
    default: throw Error(strcat("cuda narrow_last: unsupported element size ", elem_size));
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
