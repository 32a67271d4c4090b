// Built only when the CUDA backend is off (CMake drops this file when nvcc is found): the
// library still links, says no device is there, and explains why when one is asked for.
#include "kernels/ops.h"

namespace mg {

bool cuda_available() { return false; }
bool cuda_device_present() { return false; }

std::unique_ptr<Backend> make_cuda_backend(int) {
  throw Error("CUDA backend requested, but libmusicgen was built without CUDA "
              "(rebuild with -DMUSICGEN_CUDA=ON on a machine with nvcc)");
}

}  // namespace mg
