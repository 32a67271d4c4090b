// EnCodec codes that differ, explained: shared by the parity tests (our codes against the
// reference's) and the CUDA model tests (the GPU's codes against the CPU's). Header-only because
// each test binary is one .cpp plus test_util.cpp.
//
// Why codes may differ without a bug: the encoder output matches another implementation only to
// float rounding (~1e-6 relative), and the tiny models' deep codebooks quantise residuals that
// have shrunk to ~1e-4 of the embedding: there two codewords can be closer than that rounding, and
// which one wins is decided by the last bits (cuBLAS and the CPU sum in different orders). So for
// each frame whose codes differ, the first differing codebook is checked to be such a near-tie:
// the RVQ is walked from the embedding with the WANTED codes (codebooks read straight from the
// checkpoint), and the two candidates' distances -(|r|^2 - 2 r.e + |e|^2) must differ by less than
// what a 1e-5 relative perturbation of the frame's embedding can change them by. Later codebooks of
// that frame quantise a different residual and are not compared. Exact ties (equal distances) are
// named as such. Any other difference is a real one.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "codec/encodec.h"
#include "kernels/ops.h"
#include "weights/safetensors.h"

namespace mgtest {

struct CodeReport {
  int64_t frames_differing = 0, exact_ties = 0, near_ties = 0, real = 0;
  std::string first_real;  // the first real difference, described
};

// i32 or i64 codes as i64.
inline std::vector<int64_t> code_values(const mg::Tensor& t) {
  std::vector<int64_t> v(size_t(t.numel()));
  if (t.dtype == mg::DType::I64) std::memcpy(v.data(), t.data, v.size() * 8);
  else for (size_t i = 0; i < v.size(); ++i) v[i] = t.ptr<int32_t>()[i];
  return v;
}

// got / want: [K, T] codes of one segment; emb: that segment's encoder output [D, T] (host f32);
// model_dir: the checkpoint whose quantizer.layers.<k>.codebook.embed are read.
inline CodeReport compare_codes(const std::string& model_dir, const mg::Tensor& emb, const mg::Tensor& got,
                                const mg::Tensor& want) {
  CodeReport rep;
  const std::vector<int64_t> g = code_values(got), w = code_values(want);
  const int64_t K = want.dim(0), T = want.dim(1), D = emb.dim(0);
  const mg::WeightStore ws = mg::WeightStore::open(model_dir);
  std::vector<mg::Tensor> books;
  for (int64_t k = 0; k < K; ++k) books.push_back(ws.get("quantizer.layers." + std::to_string(k) + ".codebook.embed"));
  for (int64_t t = 0; t < T; ++t) {
    int64_t k0 = -1;
    for (int64_t k = 0; k < K && k0 < 0; ++k)
      if (g[k * T + t] != w[k * T + t]) k0 = k;
    if (k0 < 0) continue;
    ++rep.frames_differing;
    std::vector<float> r(static_cast<size_t>(D), 0.0f);
    double emb_norm = 0;
    for (int64_t d = 0; d < D; ++d) {
      r[size_t(d)] = emb.f32()[d * T + t];
      emb_norm += double(r[size_t(d)]) * r[size_t(d)];
    }
    emb_norm = std::sqrt(emb_norm);
    for (int64_t k = 0; k < k0; ++k)
      for (int64_t d = 0; d < D; ++d) r[size_t(d)] -= books[size_t(k)].f32()[w[k * T + t] * D + d];
    const float* book = books[size_t(k0)].f32();
    auto dist = [&](int64_t j) {
      double r2 = 0, re = 0, e2 = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double e = book[j * D + d];
        r2 += double(r[size_t(d)]) * r[size_t(d)];
        re += double(r[size_t(d)]) * e;
        e2 += e * e;
      }
      return -((r2 - 2.0 * re) + e2);
    };
    const double dg = dist(g[k0 * T + t]), dw = dist(w[k0 * T + t]);
    // d(dist)/d(r) = -2 (r - e): a perturbation delta of r moves it by at most 2 |r - e| |delta|.
    double span = 0;
    for (int64_t j : {g[k0 * T + t], w[k0 * T + t]}) {
      double n = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double v = r[size_t(d)] - book[j * D + d];
        n += v * v;
      }
      span = std::max(span, std::sqrt(n));
    }
    const double tol = 2.0 * 2.0 * span * 1e-5 * emb_norm;
    if (dg == dw) {
      ++rep.exact_ties;
    } else if (std::fabs(dg - dw) <= tol) {
      ++rep.near_ties;
    } else if (rep.real++ == 0) {
      std::ostringstream os;
      os << "frame " << t << ", codebook " << k0 << ": got " << g[k0 * T + t] << ", wanted " << w[k0 * T + t]
         << ", distances " << dg << " vs " << dw << " (gap " << dg - dw << " > tolerance " << tol << ")";
      rep.first_real = os.str();
    }
  }
  return rep;
}

// The encoder output of segment s of `input` ([C, L] host) as encode() computes it (segmented and
// RMS-normalised as the config says), run on `be` (the model's backend) and brought to the host as
// [D, T].
inline mg::Tensor segment_embedding(mg::Backend& be, const mg::EncodecModel& m, const mg::Tensor& input, size_t s) {
  const mg::EncodecConfig& cfg = m.config();
  const int64_t C = input.dim(0), L = input.dim(1);
  const int64_t off = cfg.chunk_length() ? int64_t(s) * *cfg.chunk_stride() : 0;
  const int64_t n = cfg.chunk_length() ? std::min(*cfg.chunk_length(), L - off) : L;
  mg::Tensor seg = mg::Tensor::empty(mg::DType::F32, {1, C, n});
  for (int64_t c = 0; c < C; ++c)
    std::memcpy(seg.f32() + c * n, input.f32() + c * L + off, size_t(n) * sizeof(float));
  if (cfg.normalize) mg::normalize_segment(seg);
  mg::Tensor e = be.download(m.encode_embeddings(be, seg));
  return e.reshape({e.dim(1), e.dim(2)});
}

}  // namespace mgtest
