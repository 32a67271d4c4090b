#include "conditioning/melody_windows.h"

#include <algorithm>
#include <memory>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "conditioning/chroma.h"

namespace mg {

ChromaForWindow melody_audio_windows(const AudioBuffer& melody, double window_s, bool long_generation) {
  const int rate = ChromaParams{}.sample_rate;
  auto mono = std::make_shared<const std::vector<float>>(convert_audio(melody, rate, 1).channels[0]);
  return [mono, rate, window_s, long_generation](double offset_s) {
    const int64_t n = int64_t(mono->size());
    const int64_t start = int64_t(offset_s * rate), len = long_generation ? int64_t(window_s * rate) : n;
    std::vector<float> slice(static_cast<size_t>(len));
    for (size_t i = 0; i < slice.size(); ++i) slice[i] = (*mono)[size_t((start + int64_t(i)) % n)];
    return chroma_one_hot(slice);
  };
}

ChromaForWindow chroma_matrix_windows(std::vector<float> chroma, int64_t frames) {
  auto c = std::make_shared<const std::vector<float>>(std::move(chroma));
  return [c, frames](double offset_s) {
    const int64_t start = int64_t(offset_s * chroma_frame_rate());
    Tensor t = Tensor::empty(DType::F32, {frames, 12});
    for (int64_t i = 0; i < frames; ++i) {
      const int64_t row = (start + i) % frames;
      std::copy(c->begin() + row * 12, c->begin() + (row + 1) * 12, t.f32() + i * 12);
    }
    return t;
  };
}

}  // namespace mg
