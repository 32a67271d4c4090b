// The melody composer: a description ("A minor; i VI III VII; 8 bars; 90 bpm; ornaments 0.2") and
// a seed -> a monophonic melody, built in three scales as composers do (docs/chroma.md, "Composer"):
//   1. skeleton: a chord tone on every strong beat, chosen for a smooth arched contour;
//   2. intervals: the beats between skeleton notes filled by interval rules (chord tones, passing
//      and neighbour tones of the key, steps preferred, a leap answered by a step back, no leap
//      over an octave, a final cadence onto the tonic);
//   3. ornaments: grace notes, turns, trills and suspensions at a chosen density.
// Deterministic: its own splitmix64 stream (std distributions differ between standard libraries).
// The melody model reads it through the notes -> chroma path of conditioning/chords.h, so the
// chroma equals what --notes gives for composition_notes_text().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "conditioning/chords.h"

namespace mg {

// Why a note is there (bits; a note may carry several).
enum ComposedNoteFlag : uint32_t {
  kNoteChordTone = 1,   // a tone of the chord sounding at its start
  kNotePassing = 2,     // a step between two notes, in the same direction
  kNoteNeighbour = 4,   // a step away from a note and back to it
  kNoteOrnament = 8,    // grace note, trill or turn note, or a suspended note
  kNoteChromatic = 16,  // its pitch class is outside the key's scale
  kNoteSuspension = 32, // held over a strong beat and resolved down by step (also kNoteOrnament)
};

// The seven diatonic modes, as semitone offsets of their scales from the tonic.
enum class Mode { Ionian, Dorian, Phrygian, Lydian, Mixolydian, Aeolian, Locrian };

struct Key {
  int tonic = 0;  // pitch class
  Mode mode = Mode::Ionian;
  std::string name;  // as written, e.g. "A minor"
  std::vector<int> scale() const;  // 7 pitch classes, tonic first
  bool in_scale(int pitch_class) const;
};

struct ComposedNote {
  int pitch = 60;          // MIDI
  double start = 0;        // beats (quarter notes) from the start
  double duration = 1;     // beats
  uint32_t flags = 0;      // ComposedNoteFlag bits
};

struct CompositionSpec {
  Key key;
  std::vector<Chord> progression;  // one chord per bar, cycled over the bars
  int metre_num = 4, metre_den = 4;
  int bars = 4;
  double bpm = 120;        // quarter notes per minute (as MIDI's tempo), in every metre
  double ornaments = 0;    // [0, 1]: chance that an eligible note is ornamented

  double bar_beats() const { return metre_num * 4.0 / metre_den; }
  double strong_spacing() const;  // beats between strong beats (2 in 4/4, 1.5 in 6/8, a bar in 3/4)
  bool is_strong_beat(double beat) const;
  // The chord of `bar`: the progression cycled, the last bar always the tonic chord (the cadence).
  Chord chord_at_bar(int bar) const;
  Chord tonic_chord() const;
};

struct Composition {
  CompositionSpec spec;
  std::vector<ComposedNote> notes;  // contiguous from beat 0, sorted by start
  double total_beats() const { return spec.bars * spec.bar_beats(); }
};

// "A minor", "C major", "F# dorian", "Bb mixolydian", "C", "Am". Throws mg::Error naming the text.
Key parse_key(const std::string& text);
// A roman numeral relative to the key ("i", "VI", "bVII", "V7", "vii°", "viio7", "iiø7", "Imaj7")
// or a chord name ("Am", "F#m7"). Throws mg::Error naming the token.
Chord parse_progression_chord(const std::string& token, const Key& key);
// The description language; errors name the field (and token) with 1-based positions.
CompositionSpec parse_composition(const std::string& description);

Composition compose(const CompositionSpec& spec, uint64_t seed);
Composition compose(const std::string& description, uint64_t seed);

// The notes in the --notes syntax ("69:1 71:0.5 ..."): the chroma path of conditioning/chords.
std::string composition_notes_text(const Composition& c);
Tensor composition_to_chroma(const Composition& c, int64_t frames = 235);
// Standard MIDI File, format 1: a tempo track (tempo, time and key signature) and one note track.
std::vector<uint8_t> composition_midi_bytes(const Composition& c);
// Written to a temporary name in the same folder, then renamed: never half a file.
void write_composition_midi(const Composition& c, const std::string& path);

// The pitch classes a melody over `chord` may use in `key`: the key's scale with each chord tone
// outside it replacing the neighbouring scale degree it alters (E major in A minor raises G to G#).
std::vector<int> chord_scale(const Key& key, const Chord& chord);

}  // namespace mg
