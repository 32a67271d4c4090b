#include "codec/rvq.h"

namespace mg {

Rvq load_rvq(Backend& be, const WeightStore& w, const EncodecConfig& cfg) {
  Rvq r;
  r.bins = cfg.codebook_size;
  r.dim = cfg.codebook_dim;
  MG_CHECK(r.dim == cfg.hidden_size, "EnCodec config: codebook_dim ", r.dim, " != hidden_size ", cfg.hidden_size,
           " needs codebook projections, which no released EnCodec has");
  const int nq = cfg.num_quantizers();
  for (int q = 0; q < nq; ++q) {
    Tensor e = w.get("quantizer.layers." + std::to_string(q) + ".codebook.embed", {r.bins, r.dim});
    r.codebooks.push_back(be.upload(e.as_f32()));
  }
  return r;
}

Tensor rvq_encode(Backend& be, const Rvq& rvq, const Tensor& emb, int nq) {
  MG_CHECK(emb.ndim() == 3 && emb.dim(0) == 1 && emb.dim(1) == rvq.dim, "rvq_encode: expected [1, ", rvq.dim,
           ", T], got ", shape_str(emb.shape));
  MG_CHECK(nq >= 1 && nq <= int(rvq.codebooks.size()), "rvq_encode: ", nq, " codebooks asked, the model has ",
           rvq.codebooks.size());
  const int64_t T = emb.dim(2);
  Tensor codes = Tensor::empty(DType::I64, {nq, T});
  Tensor residual = be.transpose(emb.reshape({rvq.dim, T}));  // [T, dim]
  for (int q = 0; q < nq; ++q) {
    Tensor ids = be.vq_nearest(residual, rvq.codebooks[q]);
    Tensor host = be.download(ids);
    std::copy(host.ptr<int64_t>(), host.ptr<int64_t>() + T, codes.ptr<int64_t>() + q * T);
    if (q + 1 < nq) residual = be.add(residual, be.scale(be.embedding(rvq.codebooks[q], ids), -1.0f));
  }
  return codes;
}

Tensor rvq_decode(Backend& be, const Rvq& rvq, const Tensor& codes) {
  MG_CHECK(codes.ndim() == 2 && codes.dim(0) >= 1 && codes.dim(0) <= int64_t(rvq.codebooks.size()),
           "rvq_decode: expected codes [K <= ", rvq.codebooks.size(), ", T], got ", shape_str(codes.shape));
  const int64_t K = codes.dim(0), T = codes.dim(1);
  Tensor sum;
  for (int64_t q = 0; q < K; ++q) {
    Tensor ids = be.upload(codes.slice0(q, 1).reshape({T}));
    Tensor e = be.embedding(rvq.codebooks[q], ids);  // [T, dim]
    sum = q == 0 ? e : be.add(sum, e);
  }
  return be.transpose(sum).reshape({1, rvq.dim, T});
}

}  // namespace mg
