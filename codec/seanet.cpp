// SEANet encoder/decoder. Mirrors HF's modeling_encodec.py (EncodecConv1d, EncodecConvTranspose1d,
// EncodecResnetBlock, EncodecLSTM, EncodecEncoder, EncodecDecoder) layer by layer, so that layer
// index i here is `layers.<i>` in the checkpoint.
#include "codec/seanet.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace mg {

PadAmount seanet_conv_padding(int kernel, int stride, int dilation, bool causal, int64_t length) {
  MG_CHECK(kernel >= 1 && stride >= 1 && dilation >= 1 && length >= 0, "seanet_conv_padding: kernel ", kernel,
           ", stride ", stride, ", dilation ", dilation, ", length ", length);
  const int padding_total = (kernel - 1) * dilation + 1 - stride;
  // The reference's extra padding, ideal_length - length with n_frames = (length - k_eff +
  // padding_total) / stride + 1 and ideal_length = (ceil(n_frames) - 1) * stride + k_eff -
  // padding_total, reduces to this since k_eff - padding_total = stride.
  const int64_t frames = (length + stride - 1) / stride;
  const int extra = int(frames * stride - length);
  if (causal) return {padding_total, extra};
  const int right = padding_total / 2;  // the odd sample goes to the left
  return {padding_total - right, right + extra};
}

PadAmount seanet_convtr_trim(int kernel, int stride, bool causal, double trim_right_ratio) {
  MG_CHECK(kernel >= stride && stride >= 1, "seanet_convtr_trim: kernel ", kernel, " shorter than stride ", stride);
  const int padding_total = kernel - stride;
  const int right = causal ? int(std::ceil(padding_total * trim_right_ratio)) : padding_total / 2;
  return {padding_total - right, right};
}

namespace {

// Weight norm W = g * v / ||v|| with the norm over every dim but 0 (torch's weight_norm, dim=0), for
// Conv1d (v[Cout, Cin, K]) and ConvTranspose1d (v[Cin, Cout, K]) alike. The norm is taken in double
// and rounded once, the closest float to what torch._weight_norm computes; then v * (g / norm).
Tensor fold_weight_norm(const Tensor& g, const Tensor& v) {
  std::vector<float> gv = g.to_vector(), vv = v.to_vector();
  const int64_t rows = v.dim(0), per = v.numel() / rows;
  Tensor w = Tensor::empty(DType::F32, v.shape);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < per; ++i) ss += double(vv[r * per + i]) * vv[r * per + i];
    const float factor = gv[r] / float(std::sqrt(ss));
    for (int64_t i = 0; i < per; ++i) w.f32()[r * per + i] = vv[r * per + i] * factor;
  }
  return w;
}

// The conv weight at `p` (e.g. "encoder.layers.0.conv"), under any of the spellings checkpoints use:
// weight_g/weight_v (HF files, encodec .th), parametrizations.weight.original0/1 (torch >= 2.1
// state dicts), or a plain weight (time_group_norm models have no weight norm).
Tensor load_conv_weight(const WeightStore& w, const std::string& p, const EncodecConfig& cfg,
                        const Shape& shape) {
  if (cfg.norm_type == EncodecNorm::WeightNorm) {
    const Shape gshape = {shape[0], 1, 1};
    if (w.has(p + ".weight_g")) return fold_weight_norm(w.get(p + ".weight_g", gshape), w.get(p + ".weight_v", shape));
    if (w.has(p + ".parametrizations.weight.original0"))
      return fold_weight_norm(w.get(p + ".parametrizations.weight.original0", gshape),
                              w.get(p + ".parametrizations.weight.original1", shape));
    throw Error(strcat("weight-normed conv '", p, "' not found in ", w.source(), ": expected ", p,
                       ".weight_g/.weight_v or ", p, ".parametrizations.weight.original0/1"));
  }
  return w.get(p + ".weight", shape).as_f32();
}

// The conv bias, and the GroupNorm affine of a time_group_norm model: the same names for
// EncodecConv1d and EncodecConvTranspose1d.
template <typename Conv>
void load_bias_and_norm(Backend& be, const WeightStore& w, const std::string& p, int64_t cout, Conv& c) {
  c.bias = be.upload(w.get(p + ".conv.bias", {cout}).as_f32());
  if (c.group_norm) {
    c.norm_weight = be.upload(w.get(p + ".norm.weight", {cout}).as_f32());
    c.norm_bias = be.upload(w.get(p + ".norm.bias", {cout}).as_f32());
  }
}

SConv1d load_sconv(Backend& be, const WeightStore& w, const std::string& p, const EncodecConfig& cfg,
                   int64_t cin, int64_t cout, int kernel, int stride = 1, int dilation = 1) {
  SConv1d c;
  c.kernel = kernel;
  c.stride = stride;
  c.dilation = dilation;
  c.causal = cfg.use_causal_conv;
  c.pad_mode = cfg.pad_mode;
  c.group_norm = cfg.norm_type == EncodecNorm::TimeGroupNorm;
  c.weight = be.upload(load_conv_weight(w, p + ".conv", cfg, {cout, cin, kernel}));
  load_bias_and_norm(be, w, p, cout, c);
  return c;
}

SConvTranspose1d load_sconvtr(Backend& be, const WeightStore& w, const std::string& p, const EncodecConfig& cfg,
                              int64_t cin, int64_t cout, int kernel, int stride) {
  SConvTranspose1d c;
  c.kernel = kernel;
  c.stride = stride;
  c.causal = cfg.use_causal_conv;
  c.trim_right_ratio = cfg.trim_right_ratio;
  c.group_norm = cfg.norm_type == EncodecNorm::TimeGroupNorm;
  c.weight = be.upload(load_conv_weight(w, p + ".conv", cfg, {cin, cout, kernel}));
  load_bias_and_norm(be, w, p, cout, c);
  return c;
}

ResnetBlock load_resblock(Backend& be, const WeightStore& w, const std::string& p, const EncodecConfig& cfg,
                          int64_t dim, int dilation) {
  ResnetBlock r;
  const int64_t hidden = dim / cfg.compress;
  r.conv1 = load_sconv(be, w, p + ".block.1", cfg, dim, hidden, cfg.residual_kernel_size, 1, dilation);
  r.conv2 = load_sconv(be, w, p + ".block.3", cfg, hidden, dim, 1);
  r.conv_shortcut = cfg.use_conv_shortcut;
  if (r.conv_shortcut) r.shortcut = load_sconv(be, w, p + ".shortcut", cfg, dim, dim, 1);
  return r;
}

std::vector<LstmLayerWeights> load_lstm(Backend& be, const WeightStore& w, const std::string& p,
                                        const EncodecConfig& cfg, int64_t dim) {
  std::vector<LstmLayerWeights> layers;
  for (int l = 0; l < cfg.num_lstm_layers; ++l) {
    const std::string s = std::to_string(l);
    LstmLayerWeights lw;
    lw.w_ih = be.upload(w.get(p + ".lstm.weight_ih_l" + s, {4 * dim, dim}).as_f32());
    lw.w_hh = be.upload(w.get(p + ".lstm.weight_hh_l" + s, {4 * dim, dim}).as_f32());
    lw.b_ih = be.upload(w.get(p + ".lstm.bias_ih_l" + s, {4 * dim}).as_f32());
    lw.b_hh = be.upload(w.get(p + ".lstm.bias_hh_l" + s, {4 * dim}).as_f32());
    layers.push_back(std::move(lw));
  }
  return layers;
}

SeanetLayer make(SeanetLayer::Kind k) {
  SeanetLayer l;
  l.kind = k;
  return l;
}

// encodec's pad1d: reflect on an input no longer than the pad first extends it with zeros on the
// right (torch's reflect needs pad < length), reflects, then cuts the zeros' share off again.
Tensor pad1d_streamable(Backend& be, const Tensor& x, int left, int right, PadMode mode) {
  if (mode != PadMode::Reflect) return be.pad1d(x, left, right, mode, 0.0f);
  const int64_t T = x.cols();
  const int max_pad = std::max(left, right);
  if (T > max_pad) return be.pad1d(x, left, right, mode);
  const int extra = int(max_pad - T + 1);
  Tensor y = be.pad1d(be.pad1d(x, 0, extra, PadMode::Constant, 0.0f), left, right, PadMode::Reflect);
  return be.narrow_last(y, 0, y.cols() - extra);
}

PadAmount conv_padding(const SConv1d& c, int64_t length) {
  return seanet_conv_padding(c.kernel, c.stride, c.dilation, c.causal, length);
}

PadAmount convtr_trim(const SConvTranspose1d& c) {
  return seanet_convtr_trim(c.kernel, c.stride, c.causal, c.trim_right_ratio);
}

// sconv1d_forward with the ELU before it (elu) and a residual after it (y = residual + conv)
// folded into the backend's conv, so none of them is a separate pass over the activations.
Tensor sconv1d_fused(Backend& be, const SConv1d& c, const Tensor& x, bool elu, const Tensor* residual) {
  const auto [left, right] = conv_padding(c, x.cols());
  Conv1dFusion f;
  f.elu = elu;
  f.residual = c.group_norm ? nullptr : residual;  // GroupNorm comes between the conv and the add
  Tensor in = x;
  if (c.pad_mode == PadMode::Reflect && x.cols() <= std::max(left, right)) {
    // encodec's zero-extend-then-reflect path for an input no longer than the pad: explicit.
    in = pad1d_streamable(be, elu ? be.elu(x) : x, left, right, c.pad_mode);
    f.elu = false;
  } else {
    f.pad_left = left;
    f.pad_right = right;
    f.pad_mode = c.pad_mode;
  }
  Tensor y = be.conv1d(in, c.weight, &c.bias, c.stride, c.dilation, f);
  if (c.group_norm) {
    y = be.group_norm(y, 1, c.norm_weight, c.norm_bias, 1e-5f);
    if (residual) y = be.add(*residual, y);
  }
  return y;
}

// sconv_transpose1d_forward with the ELU before it folded into the backend's op.
Tensor sconv_transpose1d_fused(Backend& be, const SConvTranspose1d& c, const Tensor& x, bool elu) {
  const auto [left, right] = convtr_trim(c);
  ConvTranspose1dFusion f;
  f.elu = elu;
  if (!c.group_norm) {
    f.trim_left = left;
    f.trim_right = right;
    return be.conv_transpose1d(x, c.weight, &c.bias, c.stride, f);
  }
  // GroupNorm sees the untrimmed output, as in the reference.
  Tensor y = be.conv_transpose1d(x, c.weight, &c.bias, c.stride, f);
  y = be.group_norm(y, 1, c.norm_weight, c.norm_bias, 1e-5f);
  return be.narrow_last(y, left, y.cols() - left - right);
}

}  // namespace

Tensor sconv1d_forward(Backend& be, const SConv1d& c, const Tensor& x) {
  return sconv1d_fused(be, c, x, false, nullptr);
}

Tensor sconv_transpose1d_forward(Backend& be, const SConvTranspose1d& c, const Tensor& x) {
  return sconv_transpose1d_fused(be, c, x, false);
}

namespace {

// shortcut(x) + conv2(elu(conv1(elu(x)))), the ELUs and the add inside the convs.
Tensor resblock_forward(Backend& be, const ResnetBlock& r, const Tensor& x) {
  Tensor h = sconv1d_fused(be, r.conv1, x, true, nullptr);
  Tensor skip = r.conv_shortcut ? sconv1d_forward(be, r.shortcut, x) : x;
  return sconv1d_fused(be, r.conv2, h, true, &skip);
}

// EncodecLSTM: [1, C, T] -> time-major rows, stacked layers from zero state, plus the input (skip).
Tensor lstm_forward(Backend& be, const SeanetLayer& layer, const Tensor& x) {
  const int64_t C = x.dim(1), T = x.dim(2);
  Tensor y = seanet_lstm_forward(be, layer, be.transpose(x.reshape({C, T})), nullptr);  // [T, C] rows
  return be.transpose(y).reshape({1, C, T});
}

}  // namespace

Tensor seanet_forward_range(Backend& be, const Seanet& net, size_t begin, size_t end, const Tensor& x) {
  MG_CHECK(begin <= end && end <= net.layers.size(), "seanet_forward_range: layers [", begin, ", ", end,
           ") out of ", net.layers.size());
  Tensor h = x;
  for (size_t i = begin; i < end; ++i) {
    const SeanetLayer& l = net.layers[i];
    // An ELU layer right before a conv in the range is done by that conv as it reads its input.
    const bool elu_in = i > begin && net.layers[i - 1].kind == SeanetLayer::Elu;
    switch (l.kind) {
      case SeanetLayer::Conv: h = sconv1d_fused(be, l.conv, h, elu_in, nullptr); break;
      case SeanetLayer::ConvTranspose: h = sconv_transpose1d_fused(be, l.convtr, h, elu_in); break;
      case SeanetLayer::Resnet: h = resblock_forward(be, l.res, h); break;
      case SeanetLayer::Lstm: h = lstm_forward(be, l, h); break;
      case SeanetLayer::Elu: {
        const bool folded = i + 1 < end && (net.layers[i + 1].kind == SeanetLayer::Conv ||
                                            net.layers[i + 1].kind == SeanetLayer::ConvTranspose);
        if (!folded) h = be.elu(h, 1.0f);
        break;
      }
    }
  }
  return h;
}

Tensor seanet_forward(Backend& be, const Seanet& net, const Tensor& x) {
  return seanet_forward_range(be, net, 0, net.layers.size(), x);
}

size_t seanet_lstm_index(const Seanet& net) {
  size_t found = net.layers.size();
  for (size_t i = 0; i < net.layers.size(); ++i)
    if (net.layers[i].kind == SeanetLayer::Lstm) {
      MG_CHECK(found == net.layers.size(), "SEANet has more than one LSTM layer");
      found = i;
    }
  MG_CHECK(found < net.layers.size(), "SEANet has no LSTM layer");
  return found;
}

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The inputs [lo, hi] of layer `l` that outputs [lo, hi] depend on (before any edge padding).
void input_span(const SeanetLayer& l, int64_t& lo, int64_t& hi) {
  auto conv = [&](const SConv1d& c) {
    const int pl = conv_padding(c, 0).left, span = (c.kernel - 1) * c.dilation + 1;
    lo = int64_t(c.stride) * lo - pl;
    hi = int64_t(c.stride) * hi - pl + span - 1;
  };
  switch (l.kind) {
    case SeanetLayer::Conv: conv(l.conv); break;
    case SeanetLayer::Resnet: conv(l.res.conv1); break;  // conv2 and the shortcut are 1x1
    case SeanetLayer::ConvTranspose: {
      const int64_t tl = convtr_trim(l.convtr).left, k = l.convtr.kernel, s = l.convtr.stride;
      lo = -floor_div(-(lo + tl - k + 1), s);  // ceil
      hi = floor_div(hi + tl, s);
      break;
    }
    case SeanetLayer::Elu: break;
    case SeanetLayer::Lstm: throw Error("seanet_timing: an LSTM has no finite receptive field");
  }
}

}  // namespace

SeanetTiming seanet_timing(const Seanet& net, size_t begin, size_t end) {
  MG_CHECK(begin <= end && end <= net.layers.size(), "seanet_timing: bad layer range");
  SeanetTiming t;
  for (size_t i = begin; i < end; ++i) {
    const SeanetLayer& l = net.layers[i];
    if (l.kind == SeanetLayer::Conv) t.down *= l.conv.stride;
    if (l.kind == SeanetLayer::ConvTranspose) t.up *= l.convtr.stride;
  }
  MG_CHECK(t.down == 1 || t.up == 1, "seanet_timing: layers [", begin, ", ", end, ") both down- and up-sample");
  // Walk back from one output (for up-sampling: each phase of one coarse step) to its inputs.
  for (int64_t p = 0; p < t.up; ++p) {
    int64_t lo = p, hi = p;
    for (size_t i = end; i-- > begin;) input_span(net.layers[i], lo, hi);
    // Nominal inputs of output p: [0, down) coarse step 0 for down-sampling, input 0 for up.
    const int64_t left = -floor_div(lo, t.down);                       // coarse steps before
    const int64_t right = floor_div(hi, t.down);                        // coarse steps after
    t.margin = std::max({t.margin, left, right});
  }
  return t;
}

Tensor seanet_lstm_forward(Backend& be, const SeanetLayer& layer, const Tensor& x, LstmState* state) {
  MG_CHECK(layer.kind == SeanetLayer::Lstm && x.ndim() == 2, "seanet_lstm_forward: expected an LSTM layer and x[T, C]");
  const size_t n = layer.lstm.size();
  if (state && state->h.size() != n) {
    state->h.assign(n, Tensor());
    state->c.assign(n, Tensor());
  }
  Tensor h = x;
  for (size_t li = 0; li < n; ++li)
    h = be.lstm(h, layer.lstm[li], state ? &state->h[li] : nullptr, state ? &state->c[li] : nullptr);
  return be.add(h, x);
}

Seanet load_seanet_encoder(Backend& be, const WeightStore& w, const EncodecConfig& cfg) {
  Seanet net;
  auto name = [&](size_t i) { return "encoder.layers." + std::to_string(i); };
  SeanetLayer first = make(SeanetLayer::Conv);
  first.conv = load_sconv(be, w, name(0), cfg, cfg.audio_channels, cfg.num_filters, cfg.kernel_size);
  net.layers.push_back(std::move(first));
  int64_t scale = 1;
  for (auto it = cfg.upsampling_ratios.rbegin(); it != cfg.upsampling_ratios.rend(); ++it) {
    const int ratio = *it;
    const int64_t dim = scale * cfg.num_filters;
    for (int j = 0; j < cfg.num_residual_layers; ++j) {
      SeanetLayer r = make(SeanetLayer::Resnet);
      r.res = load_resblock(be, w, name(net.layers.size()), cfg, dim, int(std::pow(cfg.dilation_growth_rate, j)));
      net.layers.push_back(std::move(r));
    }
    net.layers.push_back(make(SeanetLayer::Elu));
    SeanetLayer down = make(SeanetLayer::Conv);
    down.conv = load_sconv(be, w, name(net.layers.size()), cfg, dim, dim * 2, ratio * 2, ratio);
    net.layers.push_back(std::move(down));
    scale *= 2;
  }
  const int64_t dim = scale * cfg.num_filters;
  SeanetLayer lstm = make(SeanetLayer::Lstm);
  lstm.lstm = load_lstm(be, w, name(net.layers.size()), cfg, dim);
  net.layers.push_back(std::move(lstm));
  net.layers.push_back(make(SeanetLayer::Elu));
  SeanetLayer last = make(SeanetLayer::Conv);
  last.conv = load_sconv(be, w, name(net.layers.size()), cfg, dim, cfg.hidden_size, cfg.last_kernel_size);
  net.layers.push_back(std::move(last));
  return net;
}

Seanet load_seanet_decoder(Backend& be, const WeightStore& w, const EncodecConfig& cfg) {
  Seanet net;
  auto name = [&](size_t i) { return "decoder.layers." + std::to_string(i); };
  int64_t scale = int64_t(1) << cfg.upsampling_ratios.size();
  SeanetLayer first = make(SeanetLayer::Conv);
  first.conv = load_sconv(be, w, name(0), cfg, cfg.hidden_size, scale * cfg.num_filters, cfg.kernel_size);
  net.layers.push_back(std::move(first));
  SeanetLayer lstm = make(SeanetLayer::Lstm);
  lstm.lstm = load_lstm(be, w, name(net.layers.size()), cfg, scale * cfg.num_filters);
  net.layers.push_back(std::move(lstm));
  for (int ratio : cfg.upsampling_ratios) {
    const int64_t dim = scale * cfg.num_filters;
    net.layers.push_back(make(SeanetLayer::Elu));
    SeanetLayer up = make(SeanetLayer::ConvTranspose);
    up.convtr = load_sconvtr(be, w, name(net.layers.size()), cfg, dim, dim / 2, ratio * 2, ratio);
    net.layers.push_back(std::move(up));
    for (int j = 0; j < cfg.num_residual_layers; ++j) {
      SeanetLayer r = make(SeanetLayer::Resnet);
      r.res = load_resblock(be, w, name(net.layers.size()), cfg, dim / 2, int(std::pow(cfg.dilation_growth_rate, j)));
      net.layers.push_back(std::move(r));
    }
    scale /= 2;
  }
  net.layers.push_back(make(SeanetLayer::Elu));
  SeanetLayer last = make(SeanetLayer::Conv);
  last.conv = load_sconv(be, w, name(net.layers.size()), cfg, cfg.num_filters, cfg.audio_channels, cfg.last_kernel_size);
  net.layers.push_back(std::move(last));
  return net;
}

}  // namespace mg
