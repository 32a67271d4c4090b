// Multi-head attention forward (keeping the softmax) and backward for training (train_ops.h), one
// sequence at a time: causal self-attention and cross-attention to the text. Per head, with
// P = softmax(scale Q K^T + mask):  dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),
// dQ = scale dS K,  dK = scale dS^T Q.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/train_ops.h"

namespace mg::cpu::train {

using detail::sgemm_serial;

void attention_forward(const Exec& ex, const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
                       int64_t ldv, int64_t Tq, int64_t Tk, int H, int64_t hd, float scale, bool causal, float* out,
                       int64_t ldo, float* probs) {
  detail::parallel_for(ex, H, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      float* P = probs + h * Tq * Tk;
      sgemm_serial(false, true, Tq, Tk, hd, scale, q + h * hd, ldq, k + h * hd, ldk, 0.0f, P, Tk);
      for (int64_t i = 0; i < Tq; ++i) {
        float* row = P + i * Tk;
        const int64_t n = causal ? std::min(Tk, i + 1) : Tk;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
        double sum = 0.0;
        for (int64_t j = 0; j < n; ++j) {
          row[j] = std::exp(row[j] - mx);
          sum += row[j];
        }
        const float inv = float(1.0 / sum);
        for (int64_t j = 0; j < n; ++j) row[j] *= inv;
        for (int64_t j = n; j < Tk; ++j) row[j] = 0.0f;
      }
      sgemm_serial(false, false, Tq, hd, Tk, 1.0f, P, Tk, v + h * hd, ldv, 0.0f, out + h * hd, ldo);
    }
  });
}

void attention_backward(const Exec& ex, const float* dout, int64_t lddo, const float* q, int64_t ldq, const float* k,
                        int64_t ldk, const float* v, int64_t ldv, const float* probs, int64_t Tq, int64_t Tk, int H,
                        int64_t hd, float scale, float* dq, int64_t lddq, float* dk, int64_t lddk, float* dv,
                        int64_t lddv) {
  // Heads write disjoint column blocks of dq/dk/dv, so they run in parallel.
  detail::parallel_for(ex, H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<float> dS(size_t(Tq * Tk));
    for (int64_t h = h0; h < h1; ++h) {
      const float* P = probs + h * Tq * Tk;
      const float* dO = dout + h * hd;
      if (dv) sgemm_serial(true, false, Tk, hd, Tq, 1.0f, P, Tk, dO, lddo, 1.0f, dv + h * hd, lddv);
      if (!dq && !dk) continue;
      sgemm_serial(false, true, Tq, Tk, hd, 1.0f, dO, lddo, v + h * hd, ldv, 0.0f, dS.data(), Tk);  // dP
      for (int64_t i = 0; i < Tq; ++i) {
        float* d = dS.data() + i * Tk;
        const float* p = P + i * Tk;
        double dot = 0.0;
        for (int64_t j = 0; j < Tk; ++j) dot += double(d[j]) * double(p[j]);
        for (int64_t j = 0; j < Tk; ++j) d[j] = p[j] * (d[j] - float(dot));
      }
      if (dq) sgemm_serial(false, false, Tq, hd, Tk, scale, dS.data(), Tk, k + h * hd, ldk, 1.0f, dq + h * hd, lddq);
      if (dk) sgemm_serial(true, false, Tk, hd, Tq, scale, dS.data(), Tk, q + h * hd, ldq, 1.0f, dk + h * hd, lddk);
    }
  });
}

}  // namespace mg::cpu::train
