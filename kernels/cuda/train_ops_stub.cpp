// The GPU training ops (train_ops_cuda.h) in a build without CUDA: each says so. With CUDA the .cu
// files define them and this file compiles to nothing.
#ifndef MUSICGEN_HAVE_CUDA

#include "kernels/common.h"
#include "kernels/cuda/train_ops_cuda.h"

namespace mg::cuda::train {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  throw Error(strcat("GPU training op ", op, ": this libmusicgen was built without CUDA (MUSICGEN_CUDA=ON builds it)"));
}
}  // namespace

void linear_forward(const float*, int64_t, const float*, int64_t, int64_t, int64_t, float*, int64_t, float) {
  no_cuda("linear_forward");
}
void linear_backward_input(const float*, int64_t, const float*, int64_t, int64_t, int64_t, float*, int64_t) {
  no_cuda("linear_backward_input");
}
void lora_forward(const float*, int64_t, const float*, const float*, int64_t, int64_t, int64_t, int64_t, float, float*,
                  int64_t, float*) {
  no_cuda("lora_forward");
}
void lora_backward(const float*, int64_t, const float*, int64_t, const float*, const float*, const float*, int64_t,
                   int64_t, int64_t, int64_t, float, float*, float*, float*, int64_t) {
  no_cuda("lora_backward");
}
void attention_forward(const float*, int64_t, const float*, int64_t, const float*, int64_t, int64_t, int64_t, int,
                       int64_t, float, bool, float*, int64_t, float*) {
  no_cuda("attention_forward");
}
void attention_backward(const float*, int64_t, const float*, int64_t, const float*, int64_t, const float*, int64_t,
                        const float*, int64_t, int64_t, int, int64_t, float, float*, int64_t, float*, int64_t, float*,
                        int64_t) {
  no_cuda("attention_backward");
}
void layer_norm_forward(const float*, const float*, const float*, int64_t, int64_t, float, float*, float*, float*) {
  no_cuda("layer_norm_forward");
}
void layer_norm_backward(const float*, const float*, const float*, const float*, const float*, int64_t, int64_t,
                         float*) {
  no_cuda("layer_norm_backward");
}
void gelu_forward(const float*, float*, int64_t) { no_cuda("gelu_forward"); }
void gelu_backward(const float*, const float*, float*, int64_t) { no_cuda("gelu_backward"); }
double cross_entropy_forward_backward(const float*, const int32_t*, int64_t, int, int64_t, float, float*) {
  no_cuda("cross_entropy_forward_backward");
}

}  // namespace mg::cuda::train

#endif
