// Plain C++ (no CUDA header): see arch_list.h.
#include "kernels/cuda/arch_list.h"

#include <cctype>
#include <sstream>

#include "kernels/common.h"

#ifndef MG_CUDA_ARCHITECTURES
#define MG_CUDA_ARCHITECTURES ""
#endif

namespace mg {
namespace cuda {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

ArchEntry parse_entry(std::string e) {
  ArchEntry a;
  a.sass = a.ptx = true;
  if (ends_with(e, "-real")) {
    a.ptx = false;
    e.resize(e.size() - 5);
  } else if (ends_with(e, "-virtual")) {
    a.sass = false;
    e.resize(e.size() - 8);
  }
  if (!e.empty() && (e.back() == 'a' || e.back() == 'f')) {
    a.variant = e.back();
    e.pop_back();
  }
  bool digits = !e.empty() && e.size() <= 4;
  for (char c : e) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  MG_CHECK(digits, "CUDA architecture list: cannot read the entry '", e, "'");
  a.cc = std::stoi(e);
  MG_CHECK(a.cc >= 10, "CUDA architecture list: '", e, "' is not a compute capability (e.g. 86 for 8.6)");
  return a;
}

bool entry_runs_on(const ArchEntry& a, int cc) {
  if (a.variant == 'a') return cc == a.cc;
  const bool same_family = cc / 10 == a.cc / 10 && cc >= a.cc;
  if (a.sass && same_family) return true;
  if (a.ptx) return a.variant == 'f' ? same_family : cc >= a.cc;
  return false;
}

std::string arch_name(const ArchEntry& a, const char* prefix) {
  std::string s = prefix + std::to_string(a.cc);
  if (a.variant) s += a.variant;
  return s;
}

std::string cc_text(int cc) { return std::to_string(cc / 10) + "." + std::to_string(cc % 10); }

}  // namespace

ArchList parse_arch_list(const std::string& text) {
  ArchList list;
  list.text = text;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    if (cur == "all" || cur == "all-major" || cur == "native")
      list.opaque = true;
    else
      list.entries.push_back(parse_entry(cur));
    cur.clear();
  };
  for (char c : text) {
    if (c == ';' || c == ',' || std::isspace(static_cast<unsigned char>(c)))
      flush();
    else
      cur += c;
  }
  flush();
  if (list.entries.empty()) list.opaque = true;
  return list;
}

const ArchList& built_arch_list() {
  static const ArchList list = [] {
    try {
      return parse_arch_list(MG_CUDA_ARCHITECTURES);
    } catch (const Error&) {
      ArchList unknown;
      unknown.text = MG_CUDA_ARCHITECTURES;
      unknown.opaque = true;
      return unknown;
    }
  }();
  return list;
}

bool runs_on(const ArchList& list, int major, int minor) {
  if (list.opaque) return true;
  for (const ArchEntry& a : list.entries)
    if (entry_runs_on(a, 10 * major + minor)) return true;
  return false;
}

std::string describe(const ArchList& list) {
  std::string sass, ptx, ptx_from;
  for (const ArchEntry& a : list.entries) {
    if (a.sass) sass += (sass.empty() ? "" : ", ") + arch_name(a, "sm_");
    if (a.ptx) {
      ptx += (ptx.empty() ? "" : ", ") + arch_name(a, "compute_");
      ptx_from = a.variant == 'a' ? cc_text(a.cc) + " only" : cc_text(a.cc) + " and newer";
    }
  }
  if (list.entries.empty()) return "architectures '" + list.text + "' (not known in detail)";
  std::string out = sass.empty() ? "no machine code" : "machine code for " + sass;
  out += ptx.empty() ? "; no PTX (so no newer GPU either)"
                     : "; PTX for " + ptx + " (the driver compiles the last for " + ptx_from + ")";
  return out;
}

std::string no_kernels_message(int device, const std::string& device_name, int major, int minor,
                               const ArchList& list, const std::string& cause) {
  std::ostringstream os;
  os << "CUDA device " << device << " (" << device_name << ", compute capability " << major << "." << minor
     << ") cannot run libmusicgen's CUDA kernels: the library was built for CUDA architectures '" << list.text
     << "' (" << describe(list) << ")";
  if (!cause.empty()) os << "; a test kernel failed with: " << cause;
  os << ". Rebuild with -DCMAKE_CUDA_ARCHITECTURES=" << major << minor
     << " (or a list that includes it), or run on the CPU (--device cpu; --device auto falls back to it)";
  return os.str();
}

}  // namespace cuda
}  // namespace mg
