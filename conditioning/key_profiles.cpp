// Krumhansl-Schmuckler key finding (see key_profiles.h).
#include "conditioning/key_profiles.h"

#include <cctype>
#include <cmath>

#include "conditioning/chords.h"

namespace mg {
namespace {

double pearson(const std::array<double, 12>& x, const std::array<double, 12>& profile, int tonic) {
  double mx = 0, my = 0;
  for (int i = 0; i < 12; ++i) mx += x[size_t(i)], my += profile[size_t(i)];
  mx /= 12, my /= 12;
  double sxy = 0, sxx = 0, syy = 0;
  for (int i = 0; i < 12; ++i) {
    const double a = x[size_t(i)] - mx, b = profile[size_t((i - tonic + 12) % 12)] - my;
    sxy += a * b, sxx += a * a, syy += b * b;
  }
  return sxx > 1e-12 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

}  // namespace

std::string KeyEstimate::name() const { return std::string(pitch_class_name(tonic)) + (minor ? " minor" : " major"); }

const std::array<double, 12>& key_profile(bool minor) {
  static const std::array<double, 12> kMajor = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
  static const std::array<double, 12> kMinor = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17};
  return minor ? kMinor : kMajor;
}

KeyEstimate estimate_key(const std::array<double, 12>& chroma) {
  double r[24];
  for (int m = 0; m < 2; ++m)
    for (int t = 0; t < 12; ++t) r[m * 12 + t] = pearson(chroma, key_profile(m == 1), t);
  int best = 0, second = 1;
  if (r[second] > r[best]) std::swap(best, second);
  for (int i = 2; i < 24; ++i) {
    if (r[i] > r[best]) second = best, best = i;
    else if (r[i] > r[second]) second = i;
  }
  KeyEstimate k;
  k.tonic = best % 12;
  k.minor = best >= 12;
  k.correlation = r[best];
  k.margin = r[best] - r[second];
  k.second_tonic = second % 12;
  k.second_minor = second >= 12;
  return k;
}

bool parse_key_name(const std::string& text, int* tonic, bool* minor) {
  static const int kLetter[7] = {9, 11, 0, 2, 4, 5, 7};  // A..G
  size_t i = 0;
  while (i < text.size() && std::isspace((unsigned char)text[i])) ++i;
  if (i >= text.size()) return false;
  const char c = char(std::toupper((unsigned char)text[i]));
  if (c < 'A' || c > 'G') return false;
  int pc = kLetter[c - 'A'];
  ++i;
  if (i < text.size() && (text[i] == '#' || text[i] == 'b')) pc += text[i] == '#' ? 1 : -1, ++i;
  std::string rest;
  for (; i < text.size(); ++i)
    if (!std::isspace((unsigned char)text[i])) rest += char(std::tolower((unsigned char)text[i]));
  bool is_minor;
  if (rest.empty() || rest == "major" || rest == "maj") is_minor = false;
  else if (rest == "m" || rest == "min" || rest == "minor") is_minor = true;
  else return false;
  *tonic = (pc + 12) % 12;
  *minor = is_minor;
  return true;
}

}  // namespace mg
