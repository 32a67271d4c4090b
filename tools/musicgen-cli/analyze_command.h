// musicgen-cli's music analyser: the `analyze` subcommand, and the --report printed after a
// generation (what was asked for against what the analyser finds in the output). Public C API only.
#pragma once

#include <string>

namespace mgcli {

// `musicgen-cli analyze FILE [--json] [--chroma-png out.png]`: argv[0] is "analyze". Returns the
// exit code (0 ok, 1 error, CLI11's codes for bad usage).
int analyze_main(int argc, char** argv);

// What a generation asked for; empty / 0 fields were not asked for and are not compared.
struct ReportRequest {
  std::string key;             // "A minor", "F#m", "Eb"
  std::string chords;          // a --chords progression ("C G Am F7 | Dm/F", "Am:2")
  float bpm = 0;               // --bpm given on the command line
  float chord_bpm = 120;        // the tempo the progression was laid out at
  float beats_per_chord = 4;
};

// Analyses the written file `path` and prints requested vs found to stderr. Never throws: a failed
// analysis is reported as such (the generation itself succeeded). Returns 0, or 1 on failure.
int print_report(const std::string& path, const ReportRequest& request);

}  // namespace mgcli
