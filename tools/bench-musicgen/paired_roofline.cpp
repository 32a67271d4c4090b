// The per-window roofline of bench-musicgen --probe-every (paired_roofline.h).
#include "paired_roofline.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace mgbench {

namespace {

Spread spread_of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  const double median = v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
  return {median, v.front(), v.back()};
}

}  // namespace

PairedRoofline pair_windows(const std::vector<double>& stamps, const std::vector<double>& probe_gbps, int every,
                            double weight_bytes, double kv_bytes_per_position) {
  const int n = int(stamps.size());
  const int windows = n > 1 ? (n - 2) / every + 1 : 0;
  if (every < 1 || int(probe_gbps.size()) != windows + 1)
    throw std::logic_error("pair_windows: " + std::to_string(probe_gbps.size()) + " probes for " +
                           std::to_string(windows) + " windows of " + std::to_string(every) + " steps");
  PairedRoofline r;
  for (int k = 0; k < windows; ++k) {
    // Stamp i is the end of step i + 1: window k runs from stamp k * every to the next boundary.
    const int from = k * every, to = std::min((k + 1) * every, n - 1);
    ProbedWindow w;
    w.first_step = from + 2;
    w.last_step = to + 1;
    w.seconds = stamps[size_t(to)] - stamps[size_t(from)];
    // The higher bandwidth: the roofline can then only come out higher than the truth, never lower.
    w.gbps = std::max(probe_gbps[size_t(k)], probe_gbps[size_t(k) + 1]);
    // Step j reads j cached positions: the window's mean, as kv_gb_per_step_mean is steps 2..n's.
    w.kv_bytes_mean = kv_bytes_per_position * 0.5 * double(w.first_step + w.last_step);
    r.windows.push_back(w);
    r.pct.push_back(100.0 * weight_bytes * w.steps_per_s() / (w.gbps * 1e9));
    r.pct_with_kv.push_back(100.0 * (weight_bytes + w.kv_bytes_mean) * w.steps_per_s() / (w.gbps * 1e9));
  }
  r.gbps = spread_of(probe_gbps);
  r.roofline_pct = spread_of(r.pct);
  r.roofline_with_kv_pct = spread_of(r.pct_with_kv);
  return r;
}

void print_window_table(const PairedRoofline& r) {
  std::printf("paired roofline: each window's steps/s against the higher of the read probes before and after it\n");
  std::printf("  %6s %11s %9s %10s %9s %9s\n", "window", "steps", "steps/s", "probe GB/s", "% weights", "% with KV");
  for (size_t k = 0; k < r.windows.size(); ++k) {
    const ProbedWindow& w = r.windows[k];
    std::printf("  %6zu %5d-%-5d %9.2f %10.2f %8.1f%% %8.1f%%\n", k + 1, w.first_step, w.last_step, w.steps_per_s(),
                w.gbps, r.pct[k], r.pct_with_kv[k]);
  }
  std::printf("  median over %zu windows: %.1f%% of the roofline (range %.1f-%.1f%%), with the KV cache %.1f%% "
              "(range %.1f-%.1f%%); probes %.2f GB/s median (range %.2f-%.2f)\n",
              r.windows.size(), r.roofline_pct.median, r.roofline_pct.min, r.roofline_pct.max,
              r.roofline_with_kv_pct.median, r.roofline_with_kv_pct.min, r.roofline_with_kv_pct.max, r.gbps.median,
              r.gbps.min, r.gbps.max);
}

std::string result_keys(const PairedRoofline& r, int every, double probe_s) {
  char s[512];
  std::snprintf(s, sizeof s,
                " probe_every=%d probe_windows=%zu probe_s=%.3f probe_gbps_median=%.2f probe_gbps_min=%.2f "
                "probe_gbps_max=%.2f paired_roofline_pct_median=%.1f paired_roofline_pct_min=%.1f "
                "paired_roofline_pct_max=%.1f paired_roofline_with_kv_pct_median=%.1f "
                "paired_roofline_with_kv_pct_min=%.1f paired_roofline_with_kv_pct_max=%.1f",
                every, r.windows.size(), probe_s, r.gbps.median, r.gbps.min, r.gbps.max, r.roofline_pct.median,
                r.roofline_pct.min, r.roofline_pct.max, r.roofline_with_kv_pct.median, r.roofline_with_kv_pct.min,
                r.roofline_with_kv_pct.max);
  return s;
}

}  // namespace mgbench
