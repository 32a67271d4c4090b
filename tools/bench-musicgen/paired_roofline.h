// bench-musicgen --probe-every N: the roofline of each window of N decode steps against a read
// bandwidth measured right before and right after it (tools/bench-memory/read_bandwidth.h), so
// that a step time and the bandwidth it is divided by come from the same minute. On a VM whose
// read bandwidth moves by 2x within minutes, a bandwidth measured before the whole run says little
// about the run.
#pragma once

#include <string>
#include <vector>

namespace mgbench {

struct ProbedWindow {
  int first_step = 0, last_step = 0;  // decoder steps in it, 1-based, both included
  double seconds = 0;                 // its steps' wall time, probes excluded
  double gbps = 0;                    // the higher of the probes before and after it
  double kv_bytes_mean = 0;           // KV-cache bytes a step of it reads, on average
  double steps_per_s() const { return (last_step - first_step + 1) / seconds; }
};

struct Spread {
  double median = 0, min = 0, max = 0;
};

struct PairedRoofline {
  std::vector<ProbedWindow> windows;
  std::vector<double> pct, pct_with_kv;  // per window: % of its roofline, weights only / with KV
  Spread gbps, roofline_pct, roofline_with_kv_pct;
};

// stamps: the end of each decoder step (probe time removed); probe_gbps: probe k ran after step
// 1 + k * every (the last one after the last step); the steady-state steps 2..n are cut into
// windows of `every` steps (the last may be shorter). weight_bytes: what a step reads in weights;
// kv_bytes_per_position: what a step reads per cached position (the KV cache of step j holds j).
PairedRoofline pair_windows(const std::vector<double>& stamps, const std::vector<double>& probe_gbps, int every,
                            double weight_bytes, double kv_bytes_per_position);

void print_window_table(const PairedRoofline& r);
// The RESULT keys of the paired roofline (appended to bench-musicgen's RESULT line).
std::string result_keys(const PairedRoofline& r, int every, double probe_s);

}  // namespace mgbench
