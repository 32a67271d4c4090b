// The CUDA architectures a build holds kernels for (CMake's CMAKE_CUDA_ARCHITECTURES, compiled in
// as MG_CUDA_ARCHITECTURES), and whether a device of a given compute capability can run them: what
// the start-up message says when it cannot. Plain C++ (no CUDA header), compiled in every build
// and pinned by tests/unit/cuda_policy_test.cpp.
//
// CMake's entries: "80" (machine code for sm_80 and PTX for compute_80), "80-real" (machine code
// only), "80-virtual" (PTX only), a suffix "a" (90a: arch-specific features, runs on exactly 9.0)
// or "f" (family: same major, this minor or newer), and "all", "all-major", "native", which cannot
// be judged here (the probe kernel decides alone). Machine code for sm_XY runs on X.Y and on later
// minors of the same major; PTX for compute_XY is compiled by the driver for X.Y and anything newer.
#pragma once

#include <string>
#include <vector>

namespace mg {
namespace cuda {

struct ArchEntry {
  int cc = 0;          // 10 * major + minor: 86 for sm_86 (120 for sm_120)
  char variant = 0;    // 0, 'a' (exactly this capability) or 'f' (this family)
  bool sass = false;   // machine code
  bool ptx = false;    // PTX the driver compiles
};

struct ArchList {
  std::string text;  // as given
  std::vector<ArchEntry> entries;
  bool opaque = false;  // "all", "native", ...: nothing to judge from
};

// Entries separated by ';', ',' or spaces. Throws mg::Error on an entry it cannot read.
ArchList parse_arch_list(const std::string& text);
// The architectures this library was built with (MG_CUDA_ARCHITECTURES; opaque when unknown).
const ArchList& built_arch_list();

// True when some entry runs on a device of compute capability major.minor (always for opaque).
bool runs_on(const ArchList& list, int major, int minor);
// "machine code for sm_80, sm_86; PTX for compute_90 (the driver compiles it for 9.0 and newer)".
std::string describe(const ArchList& list);
// The error a device without kernels gets: names the device, its compute capability, what the
// build holds, why the probe failed (`cause`, may be empty) and what to do.
std::string no_kernels_message(int device, const std::string& device_name, int major, int minor,
                               const ArchList& list, const std::string& cause);

}  // namespace cuda
}  // namespace mg
