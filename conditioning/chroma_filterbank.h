// The chroma filter bank of librosa.filters.chroma (librosa 0.10, the defaults audiocraft and HF's
// MusicgenMelodyFeatureExtractor use): Gaussian bumps over the log-frequency axis folded onto 12
// pitch classes, each FFT column L2-normalised, weighted by a Gaussian over octaves centred on
// octave 5 (about 880 Hz), rows rolled to start at C. Built in float64 and cast to float32 at the
// end, as both references do (HF: `torch.from_numpy(chroma_filter_bank(...)).float()`).
#pragma once

#include "kernels/tensor.h"

namespace mg {

struct ChromaFilterBankParams {
  int sample_rate = 32000;
  int n_fft = 16384;
  int n_chroma = 12;
  double tuning = 0.0;        // deviation from A440 in fractions of a chroma bin
  double octave_center = 5.0; // librosa ctroct
  double octave_width = 2.0;  // librosa octwidth (Gaussian half-width in octaves); <= 0 disables
  bool start_at_c = true;     // librosa base_c: row 0 is C (otherwise A)
};

// f32 [n_chroma, n_fft / 2 + 1]. Throws mg::Error for non-positive sizes or rate.
Tensor chroma_filter_bank(const ChromaFilterBankParams& p = {});

}  // namespace mg
