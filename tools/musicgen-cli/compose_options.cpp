// --compose / --compose-midi (compose_options.h).
#include "compose_options.h"

#include <cstdio>
#include <memory>

#include "musicgen.h"

namespace mgcli {

void add_compose_options(CLI::App& app, ComposeOptions& o) {
  app.add_option("--compose", o.description,
                 "Melody models: compose the melody to follow, e.g. \"A minor; i VI III VII; 8 bars; 90 bpm; "
                 "ornaments 0.2\" (--seed picks the melody; docs/chroma.md, Composer)");
  app.add_option("--compose-midi", o.midi_out, "With --compose: also write the composed melody as a MIDI file");
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

}  // namespace mgcli
