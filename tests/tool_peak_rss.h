// Runs a program and measures its peak resident memory, for the tests that bound what a tool
// needs on long inputs. posix_spawn (no copy of this process's memory, unlike fork) so that the
// figure is the program's own.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <string>
#include <vector>

extern char** environ;

namespace mgtest {

// Under AddressSanitizer (scripts/sanitize.sh) a process's resident memory is mostly the
// sanitizer's (shadow memory, a 256 MB quarantine of freed blocks): bounds on it mean nothing there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPeakRssIsMeaningful = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPeakRssIsMeaningful = false;
#else
constexpr bool kPeakRssIsMeaningful = true;
#endif
#else
constexpr bool kPeakRssIsMeaningful = true;
#endif

struct PeakRun {
  int exit_code = -1;  // -1: did not start or did not exit normally
  long peak_mb = -1;   // ru_maxrss of the program, in MB
};

inline PeakRun run_peak_rss(const std::string& program, const std::vector<std::string>& args) {
  std::vector<std::string> all = {program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  PeakRun r;
  if (rc != 0) return r;
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) != pid) return r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.peak_mb = ru.ru_maxrss / 1024;
  return r;
}

// What a streaming tool may hold beyond its fixed cost: the same commands on a long input and on a
// 10-second one of the same kind, long - short < kStreamingGrowthMb. The fixed cost (the program's
// libraries, the model, and CUDA's runtime libraries in a CUDA build: ~215 MB of resident pages that a
// CPU build does not have) is thus not counted; what grows with the input's length is. The
// whole-file path grew by ~250 MB for 20 minutes of 24 kHz audio and by 1.5-2.65 GB for 2 hours.
constexpr long kStreamingGrowthMb = 40;

// The tool's encodec-tool compress, decompress and convert runs on `wav` (24 kHz mono), in order.
struct ToolPeaks {
  PeakRun compress, decompress, convert;
};
inline ToolPeaks encodec_tool_peaks(const std::string& tool, const std::string& model, const std::string& wav,
                                    const std::string& out_prefix, const std::vector<std::string>& extra = {}) {
  auto args = [&](std::vector<std::string> a) {
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  ToolPeaks p;
  p.compress = run_peak_rss(tool, args({"compress", wav, out_prefix + ".ecdc", "-m", model}));
  p.decompress = run_peak_rss(tool, args({"decompress", out_prefix + ".ecdc", out_prefix + ".flac", "-m", model}));
  p.convert = run_peak_rss(tool, {"convert", wav, out_prefix + "32k.flac", "-r", "32000"});
  return p;
}

}  // namespace mgtest
