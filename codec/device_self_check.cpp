// See device_self_check.h.
#include "codec/device_self_check.h"

#include "kernels/device_check.h"

namespace mg {

Tensor self_check_codec_frame(const EncodecConfig& cfg) {
  const int K = cfg.num_quantizers();
  Tensor codes = Tensor::zeros(DType::I64, {K, 1});
  for (int k = 0; k < K; ++k) codes.ptr<int64_t>()[k] = (97 * int64_t(k) + 13) % cfg.codebook_size;
  return codes;
}

void check_codec_on_device(const EncodecModel& model, Backend& device, const std::string& path) {
  const Tensor codes = self_check_codec_frame(model.config());
  std::vector<float> got = device.download(model.decode_segment(device, codes)).to_vector();
  device.synchronize();
  auto cpu = make_cpu_backend(0);
  const std::unique_ptr<EncodecModel> reference = EncodecModel::load(*cpu, path);
  const std::vector<float> want = cpu->download(reference->decode_segment(*cpu, codes)).to_vector();
  expect_matches_cpu("one EnCodec frame decoded by the loaded model", device, std::move(got), want,
                     cuda::Fault::CodecCheck);
}

}  // namespace mg
