// musicgen-cli's melody composer options: --compose "A minor; i VI III VII; 8 bars" makes the
// melody condition (as --notes would), --compose-midi writes it as a MIDI file; --key checks
// --chords / --notes against a key and --transpose-to moves them to another. Public C API only.
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
  std::string key;           // --key: the key --chords / --notes are written in
  std::string transpose_to;  // --transpose-to: the key they are moved to
};

void add_compose_options(CLI::App& app, ComposeOptions& o);

// Composes (before any model is loaded, so a malformed description fails at once), prints the
// notes unless quiet, writes --compose-midi and fills o.chroma. Prints an error and returns false
// on failure; does nothing without --compose.
bool compose_melody(ComposeOptions& o, uint64_t seed, bool quiet);

// --key / --transpose-to, before any model is loaded: notes on stderr for each chord or note
// outside --key (allowed: borrowed chords and leading tones are music too), then, with
// --transpose-to, the chords and notes rewritten in the new key. A --chords-file / --notes-file
// that is transposed is read here and its text moved into chords / notes (the file name cleared),
// so that the chroma and --report see the transposed text. Prints an error and returns false on
// failure; does nothing without --key.
bool apply_key(const ComposeOptions& o, std::string& chords, std::string& chords_file, std::string& notes,
               std::string& notes_file, bool quiet);

}  // namespace mgcli
