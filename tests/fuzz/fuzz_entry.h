// One entry point per parser: feeds the bytes to the library the way a user's file reaches it.
// A clean mg::Error is a correct answer to a bad input and is swallowed here; anything else (a
// crash, a sanitizer report, another exception type, a huge allocation) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

void mg_fuzz_safetensors(const uint8_t* data, size_t size);        // one model.safetensors
void mg_fuzz_safetensors_index(const uint8_t* data, size_t size);  // model.safetensors.index.json
void mg_fuzz_config_musicgen(const uint8_t* data, size_t size);    // MusicGen / -melody config.json
void mg_fuzz_config_encodec(const uint8_t* data, size_t size);     // EnCodec config.json
void mg_fuzz_config_t5(const uint8_t* data, size_t size);          // a T5 ("text_encoder") object
void mg_fuzz_ecdc(const uint8_t* data, size_t size);               // .ecdc
void mg_fuzz_audio(const uint8_t* data, size_t size);              // wav/flac/ogg/mp3 via libsndfile
void mg_fuzz_midi(const uint8_t* data, size_t size);               // Standard MIDI File
void mg_fuzz_chords(const uint8_t* data, size_t size);             // chord progression text
void mg_fuzz_notes(const uint8_t* data, size_t size);              // note text
void mg_fuzz_composer(const uint8_t* data, size_t size);           // composer description

// The entry point for a target name ("midi", "ecdc", ...), or nullptr: the replay test maps each
// tests/fuzz/regressions/<target>/ folder through it.
using MgFuzzEntry = void (*)(const uint8_t*, size_t);
MgFuzzEntry mg_fuzz_entry(const std::string& target);
