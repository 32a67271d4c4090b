// musicgen.h: the decoder weight choice (musicgen_weights -> DType) and musicgen_quantize_snapshot.
#include <filesystem>

#include "api/api_internal.h"
#include "api/weights_choice.h"
#include "lm/quantize_snapshot.h"

namespace mg::capi {

mg::DType decoder_weights_dtype(musicgen_weights w) {
  switch (w) {
    case MUSICGEN_WEIGHTS_F32: return mg::DType::F32;
    case MUSICGEN_WEIGHTS_F16: return mg::DType::F16;
    case MUSICGEN_WEIGHTS_BF16: return mg::DType::BF16;
    case MUSICGEN_WEIGHTS_Q8: return mg::DType::Q8_0;
    case MUSICGEN_WEIGHTS_Q4: return mg::DType::Q4_0;
  }
  throw ArgumentError(mg::strcat("unknown weights value ", int(w),
                                 " (MUSICGEN_WEIGHTS_F32, _F16, _BF16, _Q8 or _Q4)"));
}

}  // namespace mg::capi

extern "C" musicgen_status musicgen_quantize_snapshot(const char* src_dir, const char* dst_dir,
                                                      musicgen_weights scheme) {
  return mg::capi::guard("musicgen_quantize_snapshot", MUSICGEN_ERROR_IO, [&] {
    if (!src_dir || !*src_dir || !dst_dir || !*dst_dir)
      return mg::capi::fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_quantize_snapshot: no source or destination folder given");
    if (scheme != MUSICGEN_WEIGHTS_Q8 && scheme != MUSICGEN_WEIGHTS_Q4)
      return mg::capi::fail(MUSICGEN_ERROR_INVALID_ARGUMENT,
                            mg::strcat("musicgen_quantize_snapshot: scheme ", int(scheme),
                                       " is not a quantized one (MUSICGEN_WEIGHTS_Q8 or MUSICGEN_WEIGHTS_Q4)"));
    if (!std::filesystem::is_directory(src_dir))
      return mg::capi::fail(MUSICGEN_ERROR_MODEL, std::string("model folder not found: ") + src_dir);
    mg::quantize_snapshot(src_dir, dst_dir, mg::capi::decoder_weights_dtype(scheme));
    return MUSICGEN_OK;
  });
}
