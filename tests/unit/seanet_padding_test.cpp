// SEANet's padding rules (codec/seanet.h: seanet_conv_padding, seanet_convtr_trim), the ones
// audiocraft/encodec's SConv1d and SConvTranspose1d apply. The whole-file pass and the windowed
// pass's receptive fields both read them, so a wrong amount shifts every EnCodec output.
// Rules pinned here:
//  - conv: (kernel - 1) * dilation + 1 - stride padded; causal puts it all on the left,
//    non-causal splits it with the odd sample on the left;
//  - conv, stride > 1: extra right padding up to a whole number of strides, so the output has
//    ceil(length / stride) frames and the left amount never depends on the length;
//  - transposed conv: kernel - stride trimmed; causal trims ceil(total * trim_right_ratio) on the
//    right, non-causal splits with the odd sample on the left; output = length * stride.
#include <gtest/gtest.h>

#include "codec/seanet.h"
#include "test_util.h"

namespace {

using mg::PadAmount;
using mg::seanet_conv_padding;
using mg::seanet_convtr_trim;

PadAmount pad(int left, int right) { return PadAmount{left, right}; }

TEST(SeanetPadding, NonCausalSplitsWithTheOddSampleOnTheLeft) {
  EXPECT_EQ(seanet_conv_padding(7, 1, 1, false, 100), pad(3, 3));
  EXPECT_EQ(seanet_conv_padding(4, 1, 1, false, 100), pad(2, 1));
  EXPECT_EQ(seanet_conv_padding(1, 1, 1, false, 100), pad(0, 0));
}

TEST(SeanetPadding, CausalPadsOnlyTheLeft) {
  EXPECT_EQ(seanet_conv_padding(7, 1, 1, true, 100), pad(6, 0));
  EXPECT_EQ(seanet_conv_padding(4, 1, 1, true, 100), pad(3, 0));
  EXPECT_EQ(seanet_conv_padding(1, 1, 1, true, 100), pad(0, 0));
}

TEST(SeanetPadding, DilationWidensTheKernel) {
  // kernel 3, dilation 3: effective kernel 7, so 6 samples of padding.
  EXPECT_EQ(seanet_conv_padding(3, 1, 3, false, 50), pad(3, 3));
  EXPECT_EQ(seanet_conv_padding(3, 1, 3, true, 50), pad(6, 0));
  // kernel 3, dilation 2: effective kernel 5.
  EXPECT_EQ(seanet_conv_padding(3, 1, 2, false, 50), pad(2, 2));
}

TEST(SeanetPadding, StrideAddsRightPaddingToCompleteTheLastWindow) {
  // kernel 8, stride 4 (a down-sampling conv of ratio 4): 4 samples, plus up to a multiple of 4.
  EXPECT_EQ(seanet_conv_padding(8, 4, 1, false, 12), pad(2, 2));
  EXPECT_EQ(seanet_conv_padding(8, 4, 1, false, 10), pad(2, 4));
  EXPECT_EQ(seanet_conv_padding(8, 4, 1, false, 13), pad(2, 5));
  EXPECT_EQ(seanet_conv_padding(8, 4, 1, true, 10), pad(4, 2));
  EXPECT_EQ(seanet_conv_padding(8, 4, 1, true, 1), pad(4, 3));
}

TEST(SeanetPadding, ConvOutputHasCeilLengthOverStrideFrames) {
  for (bool causal : {false, true})
    for (int stride : {1, 2, 3, 4, 5, 8})
      for (int dilation : {1, 2}) {
        const int kernel = stride == 1 ? 7 : 2 * stride, k_eff = (kernel - 1) * dilation + 1;
        int left0 = -1;
        for (int64_t length = 1; length < 40; ++length) {
          const PadAmount p = seanet_conv_padding(kernel, stride, dilation, causal, length);
          const int64_t frames = (length + p.left + p.right - k_eff) / stride + 1;
          EXPECT_EQ(frames, (length + stride - 1) / stride) << "stride " << stride << " length " << length;
          EXPECT_EQ((length + p.left + p.right - k_eff) % stride, 0) << "the last window is complete";
          if (left0 < 0) left0 = p.left;
          EXPECT_EQ(p.left, left0) << "the left padding does not depend on the length";
        }
      }
}

TEST(SeanetPadding, TransposedNonCausalTrimsBothSides) {
  EXPECT_EQ(seanet_convtr_trim(16, 8, false, 1.0), pad(4, 4));
  EXPECT_EQ(seanet_convtr_trim(5, 2, false, 1.0), pad(2, 1));  // the odd sample on the left
  EXPECT_EQ(seanet_convtr_trim(4, 4, false, 1.0), pad(0, 0));
}

TEST(SeanetPadding, TransposedCausalTrimsByTheRightRatio) {
  EXPECT_EQ(seanet_convtr_trim(16, 8, true, 1.0), pad(0, 8));   // everything on the right
  EXPECT_EQ(seanet_convtr_trim(16, 8, true, 0.5), pad(4, 4));
  EXPECT_EQ(seanet_convtr_trim(16, 8, true, 0.3), pad(5, 3));   // ceil(8 * 0.3) = 3 on the right
  EXPECT_EQ(seanet_convtr_trim(16, 8, true, 0.0), pad(8, 0));
}

TEST(SeanetPadding, ForwardPassesUseTheseAmounts) {
  // The layers' output lengths follow the rules: ceil(L / stride) for the conv, L * stride for the
  // transposed conv.
  auto be = mg::make_cpu_backend(1);
  mg::SConv1d conv;
  conv.kernel = 8;
  conv.stride = 4;
  conv.pad_mode = mg::PadMode::Constant;
  conv.weight = mgtest::random_tensor({3, 2, 8}, 1);
  conv.bias = mgtest::random_tensor({3}, 2);
  mg::SConvTranspose1d convtr;
  convtr.kernel = 8;
  convtr.stride = 4;
  convtr.weight = mgtest::random_tensor({2, 3, 8}, 3);
  convtr.bias = mgtest::random_tensor({3}, 4);
  for (bool causal : {false, true}) {
    conv.causal = convtr.causal = causal;
    for (int64_t L : {5, 8, 13, 16}) {
      EXPECT_EQ(mg::sconv1d_forward(*be, conv, mgtest::random_tensor({1, 2, L}, 5)).dim(2), (L + 3) / 4);
      EXPECT_EQ(mg::sconv_transpose1d_forward(*be, convtr, mgtest::random_tensor({1, 2, L}, 6)).dim(2), L * 4);
    }
  }
}

}  // namespace
