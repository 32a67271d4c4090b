// Key check and transposition of chord / note text in the C API (include/musicgen.h).
#include <cstring>
#include <string>
#include <vector>

#include "api/api_internal.h"
#include "conditioning/key_check.h"
#include "musicgen.h"

using mg::capi::fail;
using mg::capi::guard;

namespace {

// Copies `text` with its terminating NUL, or fails naming the size needed.
musicgen_status copy_out(const char* where, const std::string& text, char* out, size_t out_size) {
  if (text.size() + 1 > out_size)
    return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, mg::strcat(where, ": out holds ", out_size, " bytes, ",
                                                            text.size() + 1, " are needed"));
  std::memcpy(out, text.c_str(), text.size() + 1);
  return MUSICGEN_OK;
}

musicgen_status key_check(const char* where, const char* text, const char* key, char* out, size_t out_size,
                          bool notes) {
  return guard(where, MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!text || !key || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, mg::strcat(where, ": text, key and out are required"));
    const mg::Key k = mg::parse_key_named(key, "key");
    const std::vector<std::string> lines = notes ? mg::notes_outside_key(text, k) : mg::chords_outside_key(text, k);
    std::string joined;
    for (const std::string& l : lines) joined += l + "\n";
    return copy_out(where, joined, out, out_size);
  });
}

musicgen_status transpose(const char* where, const char* text, const char* from_key, const char* to_key, char* out,
                          size_t out_size, bool notes) {
  return guard(where, MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!text || !from_key || !to_key || !out)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, mg::strcat(where, ": text, both keys and out are required"));
    const mg::Key from = mg::parse_key_named(from_key, "from key"), to = mg::parse_key_named(to_key, "to key");
    const int d = mg::transpose_interval(from, to), letters = mg::transpose_letters(from, to);
    const bool flats = mg::key_uses_flats(to);
    return copy_out(where, notes ? mg::transpose_notes(text, d, letters, flats) : mg::transpose_chords(text, d, letters, flats),
                    out, out_size);
  });
}

}  // namespace

extern "C" {

musicgen_status musicgen_key_check_chords(const char* chords, const char* key, char* out, size_t out_size) {
  return key_check("musicgen_key_check_chords", chords, key, out, out_size, false);
}

musicgen_status musicgen_key_check_notes(const char* notes, const char* key, char* out, size_t out_size) {
  return key_check("musicgen_key_check_notes", notes, key, out, out_size, true);
}

musicgen_status musicgen_transpose_chords(const char* chords, const char* from_key, const char* to_key, char* out,
                                          size_t out_size) {
  return transpose("musicgen_transpose_chords", chords, from_key, to_key, out, out_size, false);
}

musicgen_status musicgen_transpose_notes(const char* notes, const char* from_key, const char* to_key, char* out,
                                         size_t out_size) {
  return transpose("musicgen_transpose_notes", notes, from_key, to_key, out, out_size, true);
}

}  // extern "C"
