// The melody condition of each window of a long generation. audiocraft's sliding window asks for
// the condition of the window starting at `offset_s`: for a melody given as audio it re-slices the
// reference (window-long slices from offset * rate, wrapping around) and takes each slice's chroma;
// a chroma matrix is re-sliced the same way at its frame rate. One window (duration <= window):
// the whole melody's chroma, fitted to the model's prefix later.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/tensor.h"

namespace mg {

struct AudioBuffer;

using ChromaForWindow = std::function<Tensor(double offset_s)>;

// `melody`: any rate and channels (converted to the chroma extractor's rate, mono, as audiocraft).
ChromaForWindow melody_audio_windows(const AudioBuffer& melody, double window_s, bool long_generation);
// `chroma`: [frames][12] at chroma_frame_rate(); the window at offset t starts at frame t * rate.
ChromaForWindow chroma_matrix_windows(std::vector<float> chroma, int64_t frames);

}  // namespace mg
