// The melody composer in the C API (include/musicgen.h, "the melody composer"): a composition is
// an immutable value, so its accessors are safe from any thread.
#include <string>

#include "api/api_internal.h"
#include "conditioning/composer.h"
#include "musicgen.h"

using mg::capi::fail;
using mg::capi::guard;

struct musicgen_composition {
  mg::Composition composition;
  std::string notes_text;
};

extern "C" {

musicgen_status musicgen_compose(const char* description, uint64_t seed, musicgen_composition** out) {
  if (out) *out = nullptr;
  return guard("musicgen_compose", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!description || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_compose: description and out are required");
    auto c = std::make_unique<musicgen_composition>();
    c->composition = mg::compose(description, seed);
    c->notes_text = mg::composition_notes_text(c->composition);
    *out = c.release();
    return MUSICGEN_OK;
  });
}

void musicgen_composition_free(musicgen_composition* c) { delete c; }

int musicgen_composition_note_count(const musicgen_composition* c) { return c ? int(c->composition.notes.size()) : 0; }

musicgen_status musicgen_composition_note(const musicgen_composition* c, int i, musicgen_composed_note* out) {
  if (!c || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_composition_note: composition and out are required");
  if (i < 0 || size_t(i) >= c->composition.notes.size())
    return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, mg::strcat("musicgen_composition_note: note ", i, " of ",
                                                            c->composition.notes.size(), " does not exist"));
  const mg::ComposedNote& n = c->composition.notes[size_t(i)];
  *out = {n.pitch, n.start, n.duration, n.flags};
  return MUSICGEN_OK;
}

float musicgen_composition_bpm(const musicgen_composition* c) { return c ? float(c->composition.spec.bpm) : 0.0f; }

const char* musicgen_composition_notes_text(const musicgen_composition* c) { return c ? c->notes_text.c_str() : nullptr; }

musicgen_status musicgen_composition_to_chroma(const musicgen_composition* c, float* out) {
  return guard("musicgen_composition_to_chroma", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!c || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_composition_to_chroma: composition and out are required");
    const mg::Tensor chroma = mg::composition_to_chroma(c->composition, MUSICGEN_CHROMA_FRAMES);
    std::copy(chroma.f32(), chroma.f32() + chroma.numel(), out);
    return MUSICGEN_OK;
  });
}

musicgen_status musicgen_composition_write_midi(const musicgen_composition* c, const char* path) {
  return guard("musicgen_composition_write_midi", MUSICGEN_ERROR_IO, [&] {
    if (!c || !path) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_composition_write_midi: composition and path are required");
    mg::write_composition_midi(c->composition, path);
    return MUSICGEN_OK;
  });
}

}  // extern "C"
