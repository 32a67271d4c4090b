// Chords, notes and MIDI files -> the chroma MusicGen-melody reads (beyond the references, which
// only take audio; audiocraft issues #20 and #531 asked for this). Everything becomes a timeline of
// single pitch classes, then one one-hot frame per chroma frame (7.8125 per second: hop 4096 at
// 32 kHz), looped to fill the 235-frame prefix as the model loops a short melody.
//
// Why one pitch class at a time: the model reads the ARGMAX one-hot of the chroma, so a frame can
// show one pitch class only. A chord is therefore spelled out as a broken chord, one tone per beat:
// the bass (the root, or the slash bass) on the chord's first beat, then the other chord tones in
// chord order (3rd, 5th, 7th, 9th...), cycling: C = C E G C, C7 = C E G Bb, C/E = E C G E, with 2
// beats per chord C = C E. docs/chroma.md gives the reasons (tones of a real melody last several
// frames; a root pedal would make C, Cm and C7 the same condition).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/tensor.h"

namespace mg {

constexpr double kMinBpm = 20.0;
constexpr double kMaxBpm = 400.0;
constexpr double kMaxBeats = 64.0;  // longest chord or note, in beats

// A parsed chord symbol: pitch classes 0 = C .. 11 = B.
struct Chord {
  std::string symbol;       // as written, e.g. "F#m7/C#"
  int root = 0;
  int bass = 0;             // = root unless a slash bass is given
  std::vector<int> tones;   // chord tones in chord order (root first), pitch classes
  double beats = 0;         // 0 = the progression's beats-per-chord; set by "Am:2"
};

// One pitch class sounding over [start, end) seconds.
struct PitchSpan {
  double start = 0, end = 0;
  int pitch_class = 0;
};

// A monophonic line of pitch classes. Gaps are allowed: a frame in a gap keeps the previous pitch
// class (the one-hot cannot say "silence"; real silence reads as bin 0, C), or bin 0 before the
// first span.
struct PitchTimeline {
  std::vector<PitchSpan> spans;  // sorted by start, non-overlapping
  double duration = 0;           // seconds; the loop length
};

struct ChordOptions {
  double bpm = 120;             // 20..400
  double beats_per_chord = 4;   // (0, 64]; 4 = one chord per 4/4 bar
};

// "C", "F#m7", "Bbmaj7", "C/E", "Am:2" (the chord lasts 2 beats). Qualities: major (""), m / min /
// -, 7, maj7 / M7, m7 / min7, dim, dim7, m7b5, aug / +, sus2, sus4 / sus, 7sus4, 6, m6, 9, maj9, m9,
// add9, madd9, 5. Throws mg::Error naming the token when it is not a chord.
Chord parse_chord(const std::string& token);

// Whitespace-, comma- or bar-line- ("|") separated chords; "#" starts a comment to the end of the
// line (for text files). Errors name the token and its 1-based position; an empty progression is
// an error.
std::vector<Chord> parse_chord_progression(const std::string& text);

PitchTimeline chords_to_timeline(const std::vector<Chord>& chords, const ChordOptions& options = {});

// Notes: "C4", "F#3:0.5", "Bb5:2", "60:1" (MIDI number), "r:1" (rest: holds the previous pitch).
// The number after ':' is the duration in beats (default 1). Octaves as in MIDI (C4 = 60, C-1 = 0);
// a note outside MIDI 0..127 is an error naming the token and its 1-based position.
PitchTimeline notes_to_timeline(const std::string& text, double bpm = 120);

// Standard MIDI File (format 0 or 1, PPQ or SMPTE timing, tempo changes honoured) -> the top voice
// ("skyline": at any moment the highest sounding note, the usual melody heuristic; drums on
// channel 10 are skipped). Throws mg::Error naming the file/offset for a malformed file.
PitchTimeline midi_to_timeline(const std::vector<uint8_t>& bytes, const std::string& what = "MIDI data");
PitchTimeline read_midi_file(const std::string& path);

// Every pitched note of a MIDI file (all voices, channel 10 skipped), sorted by start then key:
// seconds from the tempo map, and beats (quarter notes: ticks / PPQ; NaN for SMPTE time).
struct MidiNoteEvent {
  int key = 0;
  double start = 0, end = 0;  // seconds
  double start_beat = std::numeric_limits<double>::quiet_NaN(), end_beat = std::numeric_limits<double>::quiet_NaN();
};
std::vector<MidiNoteEvent> midi_to_notes(const std::vector<uint8_t>& bytes, const std::string& what = "MIDI data");
std::vector<MidiNoteEvent> read_midi_notes(const std::string& path);

// One-hot f32 [frames, 12]: frame t shows the pitch class sounding at t * hop / sample_rate seconds
// (the frame centre: the chroma is computed centred), with time taken modulo the timeline's
// duration so the line loops. frames <= 0 means just one pass: ceil(duration * 7.8125) frames.
Tensor timeline_to_chroma(const PitchTimeline& line, int64_t frames = 235);

// Conveniences for the CLI and the C API: text -> 235-frame one-hot chroma.
Tensor chords_to_chroma(const std::string& text, const ChordOptions& options = {}, int64_t frames = 235);
Tensor notes_to_chroma(const std::string& text, double bpm = 120, int64_t frames = 235);

// Reads a whole text file (chords or notes, whichever the caller parses it as).
std::string read_text_file(const std::string& path);

// "C", "C#", ..., "B" for 0..11.
const char* pitch_class_name(int pc);
// Parses a pitch-class name at s[pos]: A-G then up to two '#' or 'b'. Returns -1 when s[pos] is not
// A-G; advances pos past what it read.
int parse_pitch_class(const std::string& s, size_t& pos);
// The whole of `text` as a finite decimal number (std::stod syntax); false otherwise.
bool parse_finite_number(const std::string& text, double& value);

}  // namespace mg
