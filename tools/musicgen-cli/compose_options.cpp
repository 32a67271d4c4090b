// --compose / --compose-midi (compose_options.h).
#include "compose_options.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "musicgen.h"

namespace mgcli {

void add_compose_options(CLI::App& app, ComposeOptions& o) {
  app.add_option("--compose", o.description,
                 "Melody models: compose the melody to follow, e.g. \"A minor; i VI III VII; 8 bars; 90 bpm; "
                 "ornaments 0.2\" (--seed picks the melody; docs/chroma.md, Composer)");
  app.add_option("--compose-midi", o.midi_out, "With --compose: also write the composed melody as a MIDI file");
  CLI::Option* key = app.add_option("--key", o.key,
                                    "With --chords/--notes: their key, e.g. \"A minor\", \"D dorian\"; chords and notes "
                                    "outside it are noted on stderr");
  app.add_option("--transpose-to", o.transpose_to,
                 "With --key: move --chords/--notes to this key of the same mode (the shortest shift, -5..+6)")
      ->needs(key);
}

bool compose_melody(ComposeOptions& o, uint64_t seed, bool quiet) {
  if (o.description.empty()) {
    if (o.midi_out.empty()) return true;
    std::fprintf(stderr, "musicgen-cli: error: --compose-midi needs --compose\n");
    return false;
  }
  musicgen_composition* raw = nullptr;
  std::unique_ptr<musicgen_composition, void (*)(musicgen_composition*)> c(nullptr, musicgen_composition_free);
  o.chroma.assign(MUSICGEN_CHROMA_FRAMES * 12, 0.0f);
  if (musicgen_compose(o.description.c_str(), seed, &raw) != MUSICGEN_OK ||
      (c.reset(raw), musicgen_composition_to_chroma(c.get(), o.chroma.data())) != MUSICGEN_OK ||
      (!o.midi_out.empty() && musicgen_composition_write_midi(c.get(), o.midi_out.c_str()) != MUSICGEN_OK)) {
    std::fprintf(stderr, "musicgen-cli: error: --compose: %s\n", musicgen_last_error());
    return false;
  }
  if (!quiet) {
    std::fprintf(stderr, "composed %d notes at %.0f bpm (seed %llu): %s\n", musicgen_composition_note_count(c.get()),
                 double(musicgen_composition_bpm(c.get())), (unsigned long long)seed,
                 musicgen_composition_notes_text(c.get()));
    if (!o.midi_out.empty()) std::fprintf(stderr, "wrote %s\n", o.midi_out.c_str());
  }
  return true;
}

namespace {

bool read_file(const std::string& path, std::string& text) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  text = ss.str();
  return bool(in);
}

// The key check and transposition of one text (chords or notes) through the C API's buffers.
// `text` is replaced by its transposition where o.transpose_to is given.
bool key_text(const ComposeOptions& o, bool notes, std::string& text, bool quiet) {
  const char* what = notes ? "note" : "chord";
  std::vector<char> buf(text.size() * 3 + 4096);  // room for the longest possible report lines
  for (;;) {  // grow once if a long report needs more
    const musicgen_status s = notes ? musicgen_key_check_notes(text.c_str(), o.key.c_str(), buf.data(), buf.size())
                                    : musicgen_key_check_chords(text.c_str(), o.key.c_str(), buf.data(), buf.size());
    if (s == MUSICGEN_OK) break;
    if (std::string(musicgen_last_error()).find("are needed") == std::string::npos || buf.size() > (64u << 20)) {
      std::fprintf(stderr, "musicgen-cli: error: --key: %s\n", musicgen_last_error());
      return false;
    }
    buf.resize(buf.size() * 4);
  }
  if (!quiet) {
    std::istringstream lines(buf.data());
    for (std::string line; std::getline(lines, line);) std::fprintf(stderr, "note: %s\n", line.c_str());
  }
  if (o.transpose_to.empty()) return true;
  std::vector<char> out(text.size() * 2 + 64);  // a name grows by at most one character
  const musicgen_status s = notes ? musicgen_transpose_notes(text.c_str(), o.key.c_str(), o.transpose_to.c_str(), out.data(), out.size())
                                  : musicgen_transpose_chords(text.c_str(), o.key.c_str(), o.transpose_to.c_str(), out.data(), out.size());
  if (s != MUSICGEN_OK) {
    std::fprintf(stderr, "musicgen-cli: error: --transpose-to: %s\n", musicgen_last_error());
    return false;
  }
  text = out.data();
  if (!quiet) std::fprintf(stderr, "transposed %ss from %s to %s: %s\n", what, o.key.c_str(), o.transpose_to.c_str(), text.c_str());
  return true;
}

// One of --chords / --chords-file (or the notes pair): the file is read and, when transposed,
// its text moves into the option (that the rest of the CLI reads it from there).
bool key_source(const ComposeOptions& o, bool notes, std::string& text, std::string& file, bool quiet) {
  if (text.empty() && file.empty()) return true;
  if (!text.empty() && !file.empty()) return true;  // two sources: the CLI's own check refuses it
  std::string content = text;
  if (!file.empty() && !read_file(file, content)) {
    std::fprintf(stderr, "musicgen-cli: error: cannot read '%s'\n", file.c_str());
    return false;
  }
  if (!key_text(o, notes, content, quiet)) return false;
  if (!o.transpose_to.empty()) {
    text = content;
    file.clear();
  }
  return true;
}

}  // namespace

bool apply_key(const ComposeOptions& o, std::string& chords, std::string& chords_file, std::string& notes,
               std::string& notes_file, bool quiet) {
  if (o.key.empty()) return true;
  if (chords.empty() && chords_file.empty() && notes.empty() && notes_file.empty()) {
    std::fprintf(stderr, "musicgen-cli: error: --key checks --chords, --chords-file, --notes or --notes-file: give one\n");
    return false;
  }
  return key_source(o, false, chords, chords_file, quiet) && key_source(o, true, notes, notes_file, quiet);
}

}  // namespace mgcli
