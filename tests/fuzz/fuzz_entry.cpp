// The fuzz entry points (fuzz_entry.h). Parsers that only take a path (safetensors, the sharded
// index, config.json, audio) get the bytes through a file in a private folder under /dev/shm
// (memory, so the fuzzer's speed is not the disk's); the others get the bytes directly.
#include "fuzz_entry.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "codec/audio_file.h"
#include "codec/ecdc.h"
#include "codec/encodec_config.h"
#include "conditioning/chords.h"
#include "conditioning/composer.h"
#include "conditioning/t5.h"
#include "kernels/common.h"
#include "lm/musicgen_config.h"
#include "weights/json_config.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;

namespace {

// A folder of this process's own, removed at exit (replays and fuzzers run in parallel).
const std::string& scratch_dir() {
  // Never destroyed: the exit handler below still needs the name after static destructors ran.
  static const std::string& dir = *new std::string([] {
    std::string base = fs::is_directory("/dev/shm") ? "/dev/shm" : fs::temp_directory_path().string();
    std::string tmpl = base + "/mg-fuzz-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch_dir(), ec);
    });
    return std::string(buf.data());
  }());
  return dir;
}

std::string write_file(const std::string& name, const void* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), std::streamsize(size));
  out.close();
  if (!out) std::abort();  // /dev/shm full: not a finding in the library, stop loudly
  return path;
}

// Reads every byte of a tensor view: a view past the mapping's end is found here, not later.
void touch(const mg::Tensor& t) {
  const auto* p = t.ptr<uint8_t>();
  volatile uint8_t sink = 0;
  size_t n = t.nbytes();
  for (size_t i = 0; i < n; i += 4096) sink = sink + p[i];
  if (n > 0) sink = sink + p[n - 1];
}

template <typename F>
void guarded(F&& f) {
  try {
    f();
  } catch (const mg::Error&) {
    // The parser refused the input with a message: the expected answer to garbage.
  }
}

std::string text(const uint8_t* data, size_t size) { return std::string(reinterpret_cast<const char*>(data), size); }

void use_timeline(const mg::PitchTimeline& line) {
  if (!line.spans.empty()) (void)mg::timeline_to_chroma(line, 235);
}

}  // namespace

void mg_fuzz_safetensors(const uint8_t* data, size_t size) {
  const std::string path = write_file("model.safetensors", data, size);
  guarded([&] {
    auto f = mg::SafeTensorsFile::open(path);
    for (const std::string& name : f->names()) guarded([&] { touch(f->get(name)); });
  });
}

void mg_fuzz_safetensors_index(const uint8_t* data, size_t size) {
  // One valid shard for the index to point at: {"w": F32 [2]}.
  static const bool shard_written = [] {
    const std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = char((header.size() >> (8 * i)) & 0xff);
    bytes += header + std::string(8, '\0');
    write_file("model-00001-of-00001.safetensors", bytes.data(), bytes.size());
    return true;
  }();
  (void)shard_written;
  const std::string path = write_file("model.safetensors.index.json", data, size);
  guarded([&] {
    mg::WeightStore ws = mg::WeightStore::open(path);
    for (const std::string& name : ws.names()) guarded([&] { touch(ws.get(name)); });
  });
}

void mg_fuzz_config_musicgen(const uint8_t* data, size_t size) {
  const std::string path = write_file("config.json", data, size);
  guarded([&] {
    mg::MusicgenConfig c = mg::load_musicgen_config(path);
    (void)c.delays();
    (void)c.max_delay();
    (void)c.frame_rate();
  });
}

void mg_fuzz_config_encodec(const uint8_t* data, size_t size) {
  guarded([&] {
    mg::EncodecConfig c = mg::load_encodec_config(mg::JsonConfig::parse(text(data, size), "fuzz config.json"));
    (void)c.frame_rate();
    (void)c.chunk_stride();
    guarded([&] { (void)mg::ecdc_model_name(c); });
  });
}

void mg_fuzz_config_t5(const uint8_t* data, size_t size) {
  guarded([&] { (void)mg::t5_config_from_json(mg::JsonConfig::parse(text(data, size), "fuzz t5 config")); });
}

void mg_fuzz_ecdc(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  guarded([&] { (void)mg::ecdc_read_header(bytes); });
  guarded([&] { (void)mg::ecdc_read(bytes); });
}

void mg_fuzz_audio(const uint8_t* data, size_t size) {
  // libsndfile finds the container from the bytes; the extension only names the file.
  const std::string path = write_file("input.wav", data, size);
  guarded([&] { (void)mg::read_audio(path); });
}

void mg_fuzz_midi(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  guarded([&] { use_timeline(mg::midi_to_timeline(bytes)); });
  guarded([&] { (void)mg::midi_to_notes(bytes); });
}

void mg_fuzz_chords(const uint8_t* data, size_t size) {
  guarded([&] { use_timeline(mg::chords_to_timeline(mg::parse_chord_progression(text(data, size)))); });
}

void mg_fuzz_notes(const uint8_t* data, size_t size) {
  guarded([&] { use_timeline(mg::notes_to_timeline(text(data, size))); });
}

void mg_fuzz_composer(const uint8_t* data, size_t size) {
  guarded([&] {
    mg::Composition c = mg::compose(mg::parse_composition(text(data, size)), 1);
    (void)mg::composition_notes_text(c);
    (void)mg::composition_to_chroma(c);
    // The MIDI the composer writes must read back.
    (void)mg::midi_to_notes(mg::composition_midi_bytes(c), "composed MIDI");
  });
}

MgFuzzEntry mg_fuzz_entry(const std::string& target) {
  static const std::map<std::string, MgFuzzEntry> entries = {
      {"safetensors", mg_fuzz_safetensors}, {"safetensors_index", mg_fuzz_safetensors_index},
      {"config_musicgen", mg_fuzz_config_musicgen}, {"config_encodec", mg_fuzz_config_encodec},
      {"config_t5", mg_fuzz_config_t5}, {"ecdc", mg_fuzz_ecdc}, {"audio", mg_fuzz_audio},
      {"midi", mg_fuzz_midi}, {"chords", mg_fuzz_chords}, {"notes", mg_fuzz_notes},
      {"composer", mg_fuzz_composer}};
  auto it = entries.find(target);
  return it == entries.end() ? nullptr : it->second;
}
