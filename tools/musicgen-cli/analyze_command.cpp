// musicgen-cli analyze and --report (see analyze_command.h).
#include "analyze_command.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "musicgen.h"

namespace mgcli {
namespace {

using Analysis = std::unique_ptr<musicgen_analysis, void (*)(musicgen_analysis*)>;

Analysis analyze(const std::string& path) {
  musicgen_analysis* raw = nullptr;
  if (musicgen_analyze_file(path.c_str(), &raw) != MUSICGEN_OK) return Analysis(nullptr, musicgen_analysis_free);
  return Analysis(raw, musicgen_analysis_free);
}

std::string key_text(const musicgen_analysis* a) {
  const std::string key = musicgen_analysis_key(a);
  return key.empty() ? "none (no pitch content)" : key + " " + musicgen_analysis_mode(a);
}

std::string tempo_text(const musicgen_analysis* a) {
  char buf[128];
  if (musicgen_analysis_bpm(a) <= 0) return "none (no beat found)";
  std::snprintf(buf, sizeof buf, "%.1f bpm", musicgen_analysis_bpm(a));
  std::string s = buf;
  if (musicgen_analysis_octave_ambiguous(a)) {
    std::snprintf(buf, sizeof buf, " (octave ambiguous: %.1f bpm fits nearly as well)", musicgen_analysis_alternative_bpm(a));
    s += buf;
  }
  return s;
}

void print_human(const std::string& path, const musicgen_analysis* a) {
  std::printf("%s\n", path.c_str());
  std::printf("  key:    %s (confidence %.2f)\n", key_text(a).c_str(), musicgen_analysis_key_confidence(a));
  std::printf("  tempo:  %s\n", tempo_text(a).c_str());
  std::printf("  chords:\n");
  for (int i = 0; i < musicgen_analysis_chord_count(a); ++i)
    std::printf("    %7.2f - %7.2f  %s\n", musicgen_analysis_chord_start(a, i), musicgen_analysis_chord_end(a, i),
                musicgen_analysis_chord_label(a, i));
}

// A chord or key symbol -> the analyser's label ("C", "F#m"): root letter, accidental, and minor
// when the quality starts with "m" but not "maj" (or reads "minor"). "" when it is no chord.
std::string triad_label(std::string token) {
  static const int kLetter[7] = {9, 11, 0, 2, 4, 5, 7};
  static const char* kNames[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
  const size_t cut = token.find_first_of(":/");
  if (cut != std::string::npos) token = token.substr(0, cut);
  if (token.empty()) return "";
  const char c = char(std::toupper((unsigned char)token[0]));
  if (c < 'A' || c > 'G') return "";
  int pc = kLetter[c - 'A'];
  size_t i = 1;
  if (i < token.size() && (token[i] == '#' || token[i] == 'b')) pc += token[i] == '#' ? 1 : -1, ++i;
  std::string q;
  for (; i < token.size(); ++i)
    if (!std::isspace((unsigned char)token[i])) q += token[i];
  const bool minor = q == "minor" || q == "min" || (!q.empty() && q[0] == 'm' && q.rfind("maj", 0) != 0) ||
                     (!q.empty() && q[0] == '-');
  return std::string(kNames[(pc + 12) % 12]) + (minor ? "m" : "");
}

struct TimedLabel {
  std::string label;
  double beats;
};

// The requested progression as triad labels with lengths in beats ("Am:2" lasts 2 beats).
std::vector<TimedLabel> requested_chords(const std::string& text, float beats_per_chord) {
  std::vector<TimedLabel> out;
  std::string token;
  auto flush = [&] {
    if (!token.empty() && token != "|") {
      const size_t colon = token.find(':');
      const double beats = colon == std::string::npos ? beats_per_chord : std::atof(token.c_str() + colon + 1);
      const std::string label = triad_label(token);
      if (!label.empty() && beats > 0) out.push_back({label, beats});
    }
    token.clear();
  };
  bool comment = false;
  for (char ch : text) {
    if (ch == '\n') comment = false;
    if (ch == '#' && token.empty()) comment = true;
    if (comment) continue;
    if (std::isspace((unsigned char)ch) || ch == ',' || ch == '|') flush();
    else token += ch;
  }
  flush();
  return out;
}

// The share of the output's time whose found chord equals the requested chord sounding then (the
// progression loops, as the melody condition does).
double chord_agreement(const musicgen_analysis* a, const std::vector<TimedLabel>& req, float bpm) {
  double total_beats = 0;
  for (const TimedLabel& t : req) total_beats += t.beats;
  if (req.empty() || bpm <= 0 || total_beats <= 0) return 0;
  const double beat_s = 60.0 / bpm;
  double agree = 0, total = 0;
  for (int i = 0; i < musicgen_analysis_chord_count(a); ++i) {
    const double s = musicgen_analysis_chord_start(a, i), e = musicgen_analysis_chord_end(a, i);
    for (double t = s; t < e; t += 0.05) {  // 50 ms steps
      double pos = std::fmod(t / beat_s, total_beats);
      size_t k = 0;
      while (k + 1 < req.size() && pos >= req[k].beats) pos -= req[k].beats, ++k;
      agree += req[k].label == musicgen_analysis_chord_label(a, i);
      total += 1;
    }
  }
  return total > 0 ? agree / total : 0;
}

}  // namespace

int analyze_main(int argc, char** argv) {
  CLI::App app{"Analyse a recording: key, tempo and chords (docs/analysis.md)", "musicgen-cli analyze"};
  std::string file, png;
  bool json = false;
  app.add_option("FILE", file, "Audio file (wav, flac, ogg, mp3; any rate and channels)")->required();
  app.add_flag("--json", json, "Print the analysis as JSON");
  app.add_option("--chroma-png", png, "Also write a picture of the analysis chroma");
  CLI11_PARSE(app, argc, argv);
  musicgen_analysis* raw = nullptr;
  if (musicgen_analyze_file(file.c_str(), &raw) != MUSICGEN_OK) {
    std::fprintf(stderr, "musicgen-cli: error: %s\n", musicgen_last_error());
    return 1;
  }
  Analysis a(raw, musicgen_analysis_free);
  if (json) std::printf("%s\n", musicgen_analysis_to_json(a.get()));
  else print_human(file, a.get());
  if (!png.empty()) {
    if (musicgen_analysis_write_chroma_png(a.get(), png.c_str()) != MUSICGEN_OK) {
      std::fprintf(stderr, "musicgen-cli: error: %s\n", musicgen_last_error());
      return 1;
    }
    std::fprintf(stderr, "wrote %s\n", png.c_str());
  }
  return 0;
}

int print_report(const std::string& path, const ReportRequest& r) {
  Analysis a = analyze(path);
  if (!a) {
    std::fprintf(stderr, "report: cannot analyse %s: %s\n", path.c_str(), musicgen_last_error());
    return 1;
  }
  std::fprintf(stderr, "report for %s (requested -> found):\n", path.c_str());
  if (!r.key.empty()) {
    const std::string want = triad_label(r.key), got = triad_label(musicgen_analysis_key(a.get()) +
                                                                   std::string(" ") + musicgen_analysis_mode(a.get()));
    std::fprintf(stderr, "  key:    %s -> %s (confidence %.2f)%s\n", r.key.c_str(), key_text(a.get()).c_str(),
                 musicgen_analysis_key_confidence(a.get()), want == got ? "  match" : "  differs");
  } else {
    std::fprintf(stderr, "  key:    (not requested) -> %s (confidence %.2f)\n", key_text(a.get()).c_str(),
                 musicgen_analysis_key_confidence(a.get()));
  }
  const float found = musicgen_analysis_bpm(a.get());
  if (r.bpm > 0) {
    const double ratio = found > 0 ? found / r.bpm : 0;
    const char* verdict = std::fabs(ratio - 1) <= 0.02                                  ? "  match (within 2%)"
                          : std::fabs(ratio - 2) <= 0.04 || std::fabs(ratio - 0.5) <= 0.01 ? "  octave off (double/half)"
                                                                                         : "  differs";
    std::fprintf(stderr, "  tempo:  %.1f bpm -> %s%s\n", r.bpm, tempo_text(a.get()).c_str(), verdict);
  } else {
    std::fprintf(stderr, "  tempo:  (not requested) -> %s\n", tempo_text(a.get()).c_str());
  }
  std::string found_chords;
  for (int i = 0; i < musicgen_analysis_chord_count(a.get()) && i < 16; ++i)
    found_chords += std::string(i ? " " : "") + musicgen_analysis_chord_label(a.get(), i);
  if (musicgen_analysis_chord_count(a.get()) > 16) found_chords += " ...";
  if (!r.chords.empty()) {
    const std::vector<TimedLabel> req = requested_chords(r.chords, r.beats_per_chord);
    std::fprintf(stderr, "  chords: %s -> %s\n", r.chords.c_str(), found_chords.c_str());
    std::fprintf(stderr, "          %.0f%% of the time the found chord is the requested one\n",
                 100.0 * chord_agreement(a.get(), req, r.chord_bpm));
  } else {
    std::fprintf(stderr, "  chords: (not requested) -> %s\n", found_chords.c_str());
  }
  return 0;
}

}  // namespace mgcli
