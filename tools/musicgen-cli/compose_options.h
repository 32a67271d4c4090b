// musicgen-cli's melody composer options: --compose "A minor; i VI III VII; 8 bars" makes the
// melody condition (as --notes would), --compose-midi writes it as a MIDI file. Public C API only.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace mgcli {

struct ComposeOptions {
  std::string description;  // --compose
  std::string midi_out;     // --compose-midi
  std::vector<float> chroma;  // filled by compose_melody: MUSICGEN_CHROMA_FRAMES x 12
};

void add_compose_options(CLI::App& app, ComposeOptions& o);

// Composes (before any model is loaded, so a malformed description fails at once), prints the
// notes unless quiet, writes --compose-midi and fills o.chroma. Prints an error and returns false
// on failure; does nothing without --compose.
bool compose_melody(ComposeOptions& o, uint64_t seed, bool quiet);

}  // namespace mgcli
