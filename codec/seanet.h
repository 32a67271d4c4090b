// SEANet encoder and decoder (EnCodec's convolutional halves), as HF's EncodecEncoder /
// EncodecDecoder and encodec's seanet.py: one layer list built from config.json, so the 24, 32 and
// 48 kHz models share every line. Weight norm is folded once at load; padding follows the
// reference's "streamable" rules (seanet_conv_padding, seanet_convtr_trim below).
#pragma once

#include <string>
#include <vector>

#include "codec/encodec_config.h"
#include "kernels/ops.h"
#include "weights/safetensors.h"

namespace mg {

// EncodecConv1d: pad (causal or split, pad_mode), conv, optional GroupNorm(1, C).
struct SConv1d {
  Tensor weight;  // [Cout, Cin, K], weight norm folded
  Tensor bias;    // [Cout]
  Tensor norm_weight, norm_bias;  // time_group_norm only
  int kernel = 1, stride = 1, dilation = 1;
  bool causal = false;
  bool group_norm = false;
  PadMode pad_mode = PadMode::Reflect;
};

// EncodecConvTranspose1d: conv transpose, optional GroupNorm, fixed trim.
struct SConvTranspose1d {
  Tensor weight;  // [Cin, Cout, K]
  Tensor bias;    // [Cout]
  Tensor norm_weight, norm_bias;
  int kernel = 1, stride = 1;
  bool causal = false;
  bool group_norm = false;
  double trim_right_ratio = 1.0;
};

// How many samples a conv pads on each side, or a transposed conv trims off each side.
struct PadAmount {
  int left = 0, right = 0;
  bool operator==(const PadAmount& o) const { return left == o.left && right == o.right; }
};

// The padding of EncodecConv1d / encodec's SConv1d for an input of `length` samples (the pad
// mode decides only what the padded values are, not how many). The effective kernel
// (kernel - 1) * dilation + 1 minus the stride is split: all on the left when causal (no output
// sees the future), else half right and the odd sample left. On top, the right gets
// ceil(length / stride) * stride - length so the last window is complete (the reference's
// get_extra_padding_for_conv1d): every input sample reaches an output, the output has
// ceil(length / stride) frames. The left amount does not depend on `length`.
PadAmount seanet_conv_padding(int kernel, int stride, int dilation, bool causal, int64_t length);

// The trim of EncodecConvTranspose1d / SConvTranspose1d: kernel - stride samples come off, so the
// output is exactly length * stride. Causal: ceil(total * trim_right_ratio) on the right (1.0:
// all of it, a streamed output never changes once produced), the rest on the left; non-causal:
// half right, the odd sample left.
PadAmount seanet_convtr_trim(int kernel, int stride, bool causal, double trim_right_ratio);

// EncodecResnetBlock: shortcut(x) + conv2(elu(conv1(elu(x)))).
struct ResnetBlock {
  SConv1d conv1, conv2;
  bool conv_shortcut = false;
  SConv1d shortcut;
};

struct SeanetLayer {
  enum Kind { Conv, ConvTranspose, Resnet, Lstm, Elu } kind = Elu;
  SConv1d conv;
  SConvTranspose1d convtr;
  ResnetBlock res;
  std::vector<LstmLayerWeights> lstm;  // EncodecLSTM: stacked layers + skip
};

struct Seanet {
  std::vector<SeanetLayer> layers;  // index i is HF's `layers.<i>`
};

// `weights` is seen through the model's prefix (e.g. "encoder." is added here).
Seanet load_seanet_encoder(Backend& be, const WeightStore& weights, const EncodecConfig& cfg);
Seanet load_seanet_decoder(Backend& be, const WeightStore& weights, const EncodecConfig& cfg);

// x[1, C, T] -> output of the whole layer list.
Tensor seanet_forward(Backend& be, const Seanet& net, const Tensor& x);
// Layers [begin, end) only.
Tensor seanet_forward_range(Backend& be, const Seanet& net, size_t begin, size_t end, const Tensor& x);

// Where the LSTM sits in the layer list (every EnCodec SEANet has exactly one); error otherwise.
size_t seanet_lstm_index(const Seanet& net);

// How a run of LSTM-free layers [begin, end) maps time, for windowed processing: the layers
// either down-sample by `down` (strided convs) or up-sample by `up` (transposed convs), never both,
// and an output at index j depends only on inputs within `margin` coarse steps (frames of the
// lower rate) of the inputs that nominally map to j. Computed from the kernels, strides and
// paddings, so a window extended by `margin` coarse steps on each side gives exact outputs.
struct SeanetTiming {
  int64_t down = 1;
  int64_t up = 1;
  int64_t margin = 0;
};
SeanetTiming seanet_timing(const Seanet& net, size_t begin, size_t end);

// EncodecLSTM (stacked layers + skip) continued from a carried state, for long inputs processed
// chunk by chunk: the backend's LSTM op starts each layer from the state the previous chunk left,
// so the result over consecutive chunks is the whole-sequence recurrence (the input projection,
// one GEMM per chunk, may round differently for another chunk length). x: [T, C] on the device;
// returns lstm(x) + x. A null state: the whole sequence from zero state.
struct LstmState {
  std::vector<Tensor> h, c;  // per layer, [H] on the backend's device; undefined = zero state
};
Tensor seanet_lstm_forward(Backend& be, const SeanetLayer& lstm, const Tensor& x, LstmState* state);

// Exposed for tests: the padded conv and the transposed conv with trim.
Tensor sconv1d_forward(Backend& be, const SConv1d& conv, const Tensor& x);
Tensor sconv_transpose1d_forward(Backend& be, const SConvTranspose1d& conv, const Tensor& x);

}  // namespace mg
