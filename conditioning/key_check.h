// Chords and notes against a key: which of them leave the key's scale (reported, not refused: a
// borrowed chord or a leading tone is often what the writer wants), and transposition from one key
// to another of the same mode before the text becomes the chroma (docs/chroma.md, "Key check and
// transposition"). Keys are written as in the composer's description language ("A minor",
// "D dorian", "F#m", "Bb").
#pragma once

#include <string>
#include <vector>

#include "conditioning/composer.h"

namespace mg {

// parse_key, with an error that names the key, the offending word and its position:
// "key 'H minor': word 1 of 2 ('H'): unknown key ..." for who = "key".
Key parse_key_named(const std::string& text, const std::string& who);

// One line per chord / note whose pitch classes leave the key's scale, e.g.
// "chord 3 of 4 'Bb' is outside A minor (Bb not in the scale)"; empty when everything fits. A rest
// fits every key. Tones are spelled from the symbol's own letters (E in A minor has G#, not Ab).
// Malformed text throws the errors of parse_chord_progression / notes_to_timeline.
std::vector<std::string> chords_outside_key(const std::string& chords, const Key& key);
std::vector<std::string> notes_outside_key(const std::string& notes, const Key& key);

// The shortest shift from `from`'s tonic to `to`'s, -5..+6 semitones. Throws when the modes
// differ (A minor -> D major would change the music, not move it).
int transpose_interval(const Key& from, const Key& to);

// How many letters the tonic moves from `from` to `to` (0..6): C major -> D major moves every
// letter up one, so E becomes F# and not Gb, and A minor's G# becomes D minor's C#.
int transpose_letters(const Key& from, const Key& to);

// Whether a name in `key` that has no letter to keep (a MIDI number in a report, a transposed name
// that would need three accidentals) is spelled with flats: a tonic written with 'b' or '#' decides;
// otherwise the key signature: sharps for signatures with sharps (G D A E B F# major and their
// modes), flats for the others, C major's included (its usual chromatic chords are bVII, bVI, bIII).
bool key_uses_flats(const Key& key);

// The text with every chord root and slash bass (or every note) moved by `semitones` and its letter
// by `letters`, the accidentals as the pitch needs (up to two; beyond that the sharps or flats of
// `flats`); qualities, durations, separators and comments are kept as written
// ("C/E Am7:2 | G" +2/+1 -> "D/F# Bm7:2 | A"; "C4 60:2 r" +2/+1 -> "D4 62:2 r"). A note moved outside
// MIDI 0..127 is an error naming the token and its position.
std::string transpose_chords(const std::string& chords, int semitones, int letters, bool flats);
std::string transpose_notes(const std::string& notes, int semitones, int letters, bool flats);

}  // namespace mg
