// musicgen._core: the C API (include/musicgen.h, include/encodec.h) as Python objects.
//
// A thin layer: one Python class per C handle, numpy arrays in and out, statuses turned into
// Python exceptions (musicgen/_errors.py decides which), the GIL released around every call that
// computes. Argument checks with friendly messages and the user-facing classes live in
// musicgen/__init__.py; this file only guards what would crash (shapes, NULLs).
//
// Callbacks (abort, progress, stream) run on the thread that called the session, without the GIL:
// each one takes the GIL for the moment it needs it. A Python error raised in a callback (or a
// KeyboardInterrupt from PyErr_CheckSignals) stops the generation through the abort callback and
// is raised again once the C call has returned.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "encodec.h"
#include "musicgen.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using AudioIn = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using CodesIn = nb::ndarray<const int64_t, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

// Raises the Python exception for a failed call: musicgen._errors.from_status picks the class from
// the status, the message (musicgen_last_error of this thread) and the paths the call was given
// (a missing one makes it FileNotFoundError). Call with the GIL held, right after the failure.
[[noreturn]] void raise_status(musicgen_status status, std::vector<std::string> paths = {}) {
  std::string message = musicgen_last_error();
  if (message.empty()) message = musicgen_status_string(status);
  nb::object make = nb::module_::import_("musicgen._errors").attr("from_status");
  nb::object exc = make(int(status), message, paths);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw nb::python_error();
}

// A float32 numpy array that owns a copy of `n` floats (shape given), made with the GIL held.
template <size_t N>
nb::ndarray<nb::numpy, float, nb::ndim<N>> new_float_array(const size_t (&shape)[N]) {
  size_t n = 1;
  for (size_t d : shape) n *= d;
  float* data = new float[n > 0 ? n : 1];
  nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<float*>(p); });
  return nb::ndarray<nb::numpy, float, nb::ndim<N>>(data, N, shape, owner);
}

nb::ndarray<nb::numpy, int64_t, nb::ndim<2>> new_int64_array(size_t rows, size_t cols, const int64_t* src) {
  int64_t* data = new int64_t[rows * cols != 0 ? rows * cols : 1];
  if (rows * cols != 0) std::memcpy(data, src, rows * cols * sizeof(int64_t));
  nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<int64_t*>(p); });
  size_t shape[2] = {rows, cols};
  return nb::ndarray<nb::numpy, int64_t, nb::ndim<2>>(data, 2, shape, owner);
}

// ---- abort flag: set from any thread (e.g. when a stream's consumer goes away) ----

struct AbortFlag {
  std::atomic<bool> value{false};
  void set() { value.store(true); }
  bool is_set() const { return value.load(); }
};

// ---- what the C callbacks see during one call ----

struct CallState {
  bool check_signals = false;  // on the main thread: PyErr_CheckSignals at every abort poll
  AbortFlag* flag = nullptr;
  nb::object progress;  // callable(done, total) or None
  nb::object stream;    // callable(np.ndarray [C, n]) or None
  std::optional<nb::python_error> error;  // the first Python error raised in a callback
  bool stop = false;

  // Called with the GIL held, inside a failed Python call: keep the error, stop the generation.
  void keep_error() {
    if (!error) error.emplace();
    else PyErr_Clear();
    stop = true;
  }
  // After the C call, GIL held: a callback's Python error wins over the status.
  void rethrow_if_any() {
    if (error) {
      error->restore();
      error.reset();
      throw nb::python_error();
    }
  }
};

int abort_cb(void* user) {
  auto* s = static_cast<CallState*>(user);
  if (s->stop) return 1;
  if (s->flag && s->flag->is_set()) return 1;
  if (s->check_signals) {
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      s->keep_error();
      return 1;
    }
  }
  return 0;
}

void progress_cb(int64_t done, int64_t total, void* user) {
  auto* s = static_cast<CallState*>(user);
  if (s->stop || !s->progress.is_valid() || s->progress.is_none()) return;
  nb::gil_scoped_acquire gil;
  try {
    s->progress(done, total);
  } catch (nb::python_error& e) {
    e.restore();
    s->keep_error();
  }
}

void stream_cb(const float* samples, int64_t n, int channels, void* user) {
  auto* s = static_cast<CallState*>(user);
  if (s->stop || !s->stream.is_valid() || s->stream.is_none()) return;
  nb::gil_scoped_acquire gil;
  try {
    auto arr = new_float_array<2>({size_t(channels), size_t(n)});
    std::memcpy(arr.data(), samples, size_t(channels) * size_t(n) * sizeof(float));
    s->stream(arr);
  } catch (nb::python_error& e) {
    e.restore();
    s->keep_error();
  }
}

// ---- owned C objects ----

struct AudioGuard {  // musicgen_audio filled by the library
  musicgen_audio a{};
  ~AudioGuard() { musicgen_audio_free(&a); }
};
struct EncAudio {  // encodec_audio*
  encodec_audio* p = nullptr;
  ~EncAudio() { encodec_audio_free(p); }
};

// numpy [C, T] -> a new encodec_audio (GIL held: reads the array).
EncAudio make_encodec_audio(const AudioIn& audio, int sample_rate) {
  EncAudio out;
  const int channels = int(audio.shape(0));
  const int64_t frames = int64_t(audio.shape(1));
  musicgen_status st = encodec_audio_create(sample_rate, channels, frames, &out.p);
  if (st != MUSICGEN_OK) raise_status(st);
  for (int c = 0; c < channels; ++c)
    std::memcpy(encodec_audio_channel_data(out.p, c), audio.data() + size_t(c) * size_t(frames),
                size_t(frames) * sizeof(float));
  return out;
}

nb::tuple encodec_audio_to_numpy(const encodec_audio* a) {
  const int channels = encodec_audio_channels(a);
  const int64_t frames = encodec_audio_frames(a);
  auto arr = new_float_array<2>({size_t(channels), size_t(frames)});
  for (int c = 0; c < channels; ++c)
    std::memcpy(arr.data() + size_t(c) * size_t(frames), encodec_audio_channel_data_const(a, c),
                size_t(frames) * sizeof(float));
  return nb::make_tuple(arr, encodec_audio_sample_rate(a));
}

// ---- MusicGen ----

struct Model {
  musicgen_model* p = nullptr;
  Model(const std::string& path, int device, int weights, int threads, const std::string& lora, float lora_scale) {
    musicgen_model_params mp = musicgen_model_default_params();
    mp.device = musicgen_device(device);
    mp.weights = musicgen_weights(weights);
    mp.n_threads = threads;
    mp.lora_dir = lora.empty() ? nullptr : lora.c_str();
    mp.lora_scale = lora_scale;
    musicgen_status st;
    {
      nb::gil_scoped_release release;
      st = musicgen_model_load(path.c_str(), &mp, &p);
    }
    if (st != MUSICGEN_OK) raise_status(st, lora.empty() ? std::vector<std::string>{path} : std::vector<std::string>{path, lora});
  }
  ~Model() { musicgen_model_free(p); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
};

struct Session {
  musicgen_session* p = nullptr;
  nb::object model_ref;  // the model outlives the session
  Session(nb::object model, int threads) : model_ref(model) {
    const Model& m = nb::cast<const Model&>(model);
    musicgen_session_params sp = musicgen_session_default_params();
    sp.n_threads = threads;
    musicgen_status st = musicgen_session_create(m.p, &sp, &p);
    if (st != MUSICGEN_OK) raise_status(st);
  }
  ~Session() { musicgen_session_free(p); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// One generation (or one batch): returns float32 [B, C, T].
nb::object session_generate(Session& self, std::optional<std::vector<std::string>> prompts, int takes,
                            float duration, float extend_stride, int top_k, float top_p, float temperature,
                            float cfg, bool greedy, uint64_t seed, int normalize,
                            std::optional<AudioIn> continuation, int continuation_rate, bool drop_prompt,
                            std::optional<AudioIn> melody, int melody_rate,
                            std::optional<nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>> chroma,
                            nb::object progress, nb::object stream, bool check_signals, AbortFlag* flag) {
  musicgen_generate_params p = musicgen_generate_default_params();
  p.duration_s = duration;
  p.extend_stride_s = extend_stride;
  p.top_k = top_k;
  p.top_p = top_p;
  p.temperature = temperature;
  p.guidance_scale = cfg;
  p.greedy = greedy ? 1 : 0;
  p.seed = seed;
  p.normalize = musicgen_normalize(normalize);
  if (continuation) {
    p.prompt_audio = continuation->data();
    p.prompt_audio_channels = int(continuation->shape(0));
    p.prompt_audio_samples = int64_t(continuation->shape(1));
    p.prompt_audio_rate = continuation_rate;
    p.drop_prompt = drop_prompt ? 1 : 0;
  }
  if (melody) {
    p.melody_audio = melody->data();
    p.melody_channels = int(melody->shape(0));
    p.melody_samples = int64_t(melody->shape(1));
    p.melody_rate = melody_rate;
  }
  if (chroma) {
    if (chroma->shape(1) != 12) throw nb::value_error("chroma must have 12 columns (C..B)");
    p.chroma = chroma->data();
    p.chroma_frames = int64_t(chroma->shape(0));
  }
  CallState state;
  state.check_signals = check_signals;
  state.flag = flag;
  state.progress = progress;
  state.stream = stream;
  p.abort = abort_cb;
  p.abort_user_data = &state;
  if (!progress.is_none()) {
    p.progress = progress_cb;
    p.progress_user_data = &state;
  }
  if (!stream.is_none()) {
    p.stream = stream_cb;
    p.stream_user_data = &state;
  }

  const bool batch = prompts && (prompts->size() != 1 || takes != 1);
  const size_t n_prompts = prompts ? prompts->size() : 1;
  const size_t n_out = batch ? n_prompts * size_t(takes) : 1;
  std::vector<const char*> cprompts;
  if (prompts)
    for (const std::string& s : *prompts) cprompts.push_back(s.c_str());
  if (prompts && !batch) p.prompt = cprompts[0];
  std::vector<musicgen_audio> outs(n_out);
  struct FreeAll {
    std::vector<musicgen_audio>& v;
    ~FreeAll() {
      for (auto& a : v) musicgen_audio_free(&a);
    }
  } free_all{outs};
  for (auto& a : outs) std::memset(&a, 0, sizeof a);

  musicgen_status st;
  {
    nb::gil_scoped_release release;
    st = batch ? musicgen_session_generate_batch(self.p, &p, cprompts.data(), int(n_prompts), takes, outs.data())
               : musicgen_session_generate(self.p, &p, &outs[0]);
  }
  state.rethrow_if_any();
  if (st != MUSICGEN_OK) raise_status(st);

  const size_t C = size_t(outs[0].channels), T = size_t(outs[0].n_samples);
  for (const auto& a : outs)
    if (size_t(a.channels) != C || size_t(a.n_samples) != T)
      throw std::runtime_error("generated sequences of different shapes");
  auto arr = new_float_array<3>({n_out, C, T});
  for (size_t b = 0; b < n_out; ++b) std::memcpy(arr.data() + b * C * T, outs[b].samples, C * T * sizeof(float));
  return nb::make_tuple(arr, outs[0].sample_rate);
}

// ---- EnCodec ----

struct EncModel {
  encodec_model* p = nullptr;
  EncModel(const std::string& path, int device, int threads) {
    encodec_model_params mp = encodec_model_default_params();
    mp.device = musicgen_device(device);
    mp.n_threads = threads;
    musicgen_status st;
    {
      nb::gil_scoped_release release;
      st = encodec_model_load(path.c_str(), &mp, &p);
    }
    if (st != MUSICGEN_OK) raise_status(st, {path});
  }
  ~EncModel() { encodec_model_free(p); }
  EncModel(const EncModel&) = delete;
  EncModel& operator=(const EncModel&) = delete;
};

struct Codes {
  encodec_codes* p = nullptr;
  explicit Codes(encodec_codes* c) : p(c) {}
  ~Codes() { encodec_codes_free(p); }
  Codes(const Codes&) = delete;
  Codes& operator=(const Codes&) = delete;
};

struct EncSession {
  encodec_session* p = nullptr;
  nb::object model_ref;
  EncSession(nb::object model, int threads) : model_ref(model) {
    const EncModel& m = nb::cast<const EncModel&>(model);
    encodec_session_params sp = encodec_session_default_params();
    sp.n_threads = threads;
    musicgen_status st = encodec_session_create(m.p, &sp, &p);
    if (st != MUSICGEN_OK) raise_status(st);
  }
  ~EncSession() { encodec_session_free(p); }
  EncSession(const EncSession&) = delete;
  EncSession& operator=(const EncSession&) = delete;
};

}  // namespace

NB_MODULE(_core, m) {
  // ---- the melody composer: notes as (pitch, start beat, duration beats, flags) tuples ----
  m.def("compose", [](const std::string& description, uint64_t seed) {
    musicgen_composition* c = nullptr;
    musicgen_status st = musicgen_compose(description.c_str(), seed, &c);
    if (st != MUSICGEN_OK) raise_status(st);
    std::unique_ptr<musicgen_composition, void (*)(musicgen_composition*)> owned(c, musicgen_composition_free);
    nb::list notes;
    for (int i = 0; i < musicgen_composition_note_count(c); ++i) {
      musicgen_composed_note n;
      musicgen_composition_note(c, i, &n);
      notes.append(nb::make_tuple(n.pitch, n.start_beat, n.duration_beats, n.flags));
    }
    auto chroma = new_float_array<2>({size_t(MUSICGEN_CHROMA_FRAMES), size_t(12)});
    st = musicgen_composition_to_chroma(c, chroma.data());
    if (st != MUSICGEN_OK) raise_status(st);
    return nb::make_tuple(notes, std::string(musicgen_composition_notes_text(c)), musicgen_composition_bpm(c), chroma);
  }, "description"_a, "seed"_a);
  m.def("composition_write_midi", [](const std::string& description, uint64_t seed, const std::string& path) {
    musicgen_composition* c = nullptr;
    musicgen_status st = musicgen_compose(description.c_str(), seed, &c);
    if (st != MUSICGEN_OK) raise_status(st);
    st = musicgen_composition_write_midi(c, path.c_str());
    musicgen_composition_free(c);
    if (st != MUSICGEN_OK) raise_status(st, {path});
  }, "description"_a, "seed"_a, "path"_a);

  m.doc() = "Low-level bindings of libmusicgen's C API (use the classes of the musicgen package).";
  m.attr("API_VERSION") = MUSICGEN_API_VERSION;
  m.attr("CHROMA_FRAMES") = MUSICGEN_CHROMA_FRAMES;
  m.def("api_version", &musicgen_api_version, "MUSICGEN_API_VERSION of the linked library.");
  m.def("version", [] { return std::string(musicgen_version()); }, "The library version.");
  m.def("system_info", [] {
    nb::gil_scoped_release release;
    return std::string(musicgen_system_info());
  }, "What the CPU and GPU backends use on this machine.");
  m.def("status_string", [](int s) { return std::string(musicgen_status_string(musicgen_status(s))); });
  m.def("quantize_snapshot", [](const std::string& src, const std::string& dst, int scheme) {
    musicgen_status st;
    {
      nb::gil_scoped_release release;
      st = musicgen_quantize_snapshot(src.c_str(), dst.c_str(), musicgen_weights(scheme));
    }
    if (st != MUSICGEN_OK) raise_status(st, {src, dst});
  }, "src"_a, "dst"_a, "scheme"_a, "Writes a quantized snapshot folder (musicgen_quantize_snapshot).");

  nb::class_<AbortFlag>(m, "AbortFlag", "Set from any thread to stop the call it was given to.")
      .def(nb::init<>())
      .def("set", &AbortFlag::set)
      .def("is_set", &AbortFlag::is_set);

  nb::class_<Model>(m, "Model")
      .def(nb::init<const std::string&, int, int, int, const std::string&, float>(), "path"_a, "device"_a, "weights"_a,
           "threads"_a, "lora"_a = "", "lora_scale"_a = 1.0f)
      .def_prop_ro("sample_rate", [](const Model& s) { return musicgen_model_sample_rate(s.p); })
      .def_prop_ro("channels", [](const Model& s) { return musicgen_model_channels(s.p); })
      .def_prop_ro("num_codebooks", [](const Model& s) { return musicgen_model_num_codebooks(s.p); })
      .def_prop_ro("frame_rate", [](const Model& s) { return musicgen_model_frame_rate(s.p); })
      .def_prop_ro("max_window", [](const Model& s) { return musicgen_model_max_window(s.p); })
      .def_prop_ro("device", [](const Model& s) { return std::string(musicgen_model_device_name(s.p)); })
      .def_prop_ro("is_melody", [](const Model& s) { return musicgen_model_is_melody(s.p) != 0; });

  nb::class_<Session>(m, "Session")
      .def(nb::init<nb::object, int>(), "model"_a, "threads"_a)
      .def("generate", &session_generate, "prompts"_a.none(), "takes"_a, "duration"_a, "extend_stride"_a,
           "top_k"_a, "top_p"_a, "temperature"_a, "cfg"_a, "greedy"_a, "seed"_a, "normalize"_a,
           "continuation"_a.none(), "continuation_rate"_a, "drop_prompt"_a, "melody"_a.none(), "melody_rate"_a,
           "chroma"_a.none(), "progress"_a.none(), "stream"_a.none(), "check_signals"_a, "abort_flag"_a.none());

  nb::class_<EncModel>(m, "EncodecModel")
      .def(nb::init<const std::string&, int, int>(), "path"_a, "device"_a, "threads"_a)
      .def_prop_ro("sample_rate", [](const EncModel& s) { return encodec_model_sample_rate(s.p); })
      .def_prop_ro("channels", [](const EncModel& s) { return encodec_model_channels(s.p); })
      .def_prop_ro("name", [](const EncModel& s) { return std::string(encodec_model_name(s.p)); })
      .def_prop_ro("bandwidths", [](const EncModel& s) {
        std::vector<double> v;
        for (int i = 0; i < encodec_model_num_bandwidths(s.p); ++i) v.push_back(encodec_model_bandwidth(s.p, i));
        return v;
      })
      .def("num_codebooks", [](const EncModel& s, double kbps) { return encodec_model_num_codebooks(s.p, kbps); });

  nb::class_<Codes>(m, "Codes")
      .def_static("create", [](CodesIn data, int64_t audio_length) {
        encodec_codes* c = nullptr;
        musicgen_status st = encodec_codes_create(int(data.shape(0)), int64_t(data.shape(1)), data.data(),
                                                  audio_length, &c);
        if (st != MUSICGEN_OK) raise_status(st);
        return new Codes(c);
      }, "data"_a, "audio_length"_a)
      .def_static("read_ecdc", [](const EncModel& model, const std::string& path) {
        encodec_codes* c = nullptr;
        musicgen_status st;
        {
          nb::gil_scoped_release release;
          st = encodec_codes_read_ecdc(model.p, path.c_str(), &c);
        }
        if (st != MUSICGEN_OK) raise_status(st, {path});
        return new Codes(c);
      }, "model"_a, "path"_a)
      .def("write_ecdc", [](const Codes& self, const EncModel& model, const std::string& path) {
        musicgen_status st;
        {
          nb::gil_scoped_release release;
          st = encodec_codes_write_ecdc(model.p, self.p, path.c_str());
        }
        if (st != MUSICGEN_OK) raise_status(st);
      }, "model"_a, "path"_a)
      .def_prop_ro("num_codebooks", [](const Codes& s) { return encodec_codes_num_codebooks(s.p); })
      .def_prop_ro("audio_length", [](const Codes& s) { return encodec_codes_audio_length(s.p); })
      .def_prop_ro("num_segments", [](const Codes& s) { return encodec_codes_num_segments(s.p); })
      .def("segment", [](const Codes& s, int i) {
        if (i < 0 || i >= encodec_codes_num_segments(s.p)) throw nb::index_error("segment out of range");
        return new_int64_array(size_t(encodec_codes_num_codebooks(s.p)), size_t(encodec_codes_num_frames(s.p, i)),
                               encodec_codes_data(s.p, i));
      }, "i"_a)
      .def("scale", [](const Codes& s, int i) {
        if (i < 0 || i >= encodec_codes_num_segments(s.p)) throw nb::index_error("segment out of range");
        return encodec_codes_scale(s.p, i);
      }, "i"_a);

  nb::class_<EncSession>(m, "EncodecSession")
      .def(nb::init<nb::object, int>(), "model"_a, "threads"_a)
      .def("encode", [](EncSession& self, AudioIn audio, int sample_rate, double kbps) {
        EncAudio a = make_encodec_audio(audio, sample_rate);
        encodec_codes* c = nullptr;
        musicgen_status st;
        {
          nb::gil_scoped_release release;
          st = encodec_session_encode(self.p, a.p, kbps, &c);
        }
        if (st != MUSICGEN_OK) raise_status(st);
        return new Codes(c);
      }, "audio"_a, "sample_rate"_a, "kbps"_a)
      .def("decode", [](EncSession& self, const Codes& codes) {
        EncAudio a;
        musicgen_status st;
        {
          nb::gil_scoped_release release;
          st = encodec_session_decode(self.p, codes.p, &a.p);
        }
        if (st != MUSICGEN_OK) raise_status(st);
        return encodec_audio_to_numpy(a.p);
      }, "codes"_a)
      .def("compress", [](EncSession& self, AudioIn audio, int sample_rate, double kbps) {
        EncAudio a = make_encodec_audio(audio, sample_rate);
        uint8_t* data = nullptr;
        size_t size = 0;
        musicgen_status st;
        {
          nb::gil_scoped_release release;
          st = encodec_session_compress(self.p, a.p, kbps, &data, &size);
        }
        if (st != MUSICGEN_OK) raise_status(st);
        nb::bytes out(reinterpret_cast<const char*>(data), size);
        encodec_bytes_free(data);
        return out;
      }, "audio"_a, "sample_rate"_a, "kbps"_a)
      .def("decompress", [](EncSession& self, nb::bytes data) {
        EncAudio a;
        musicgen_status st;
        {
          nb::gil_scoped_release release;  // `data` is immutable and referenced by the caller
          st = encodec_session_decompress(self.p, reinterpret_cast<const uint8_t*>(data.c_str()), data.size(), &a.p);
        }
        if (st != MUSICGEN_OK) raise_status(st);
        return encodec_audio_to_numpy(a.p);
      }, "data"_a)
      .def("compress_file", [](EncSession& self, const std::string& in, const std::string& out, double kbps) {
        musicgen_status st;
        {
          nb::gil_scoped_release release;
          st = encodec_session_compress_file(self.p, in.c_str(), out.c_str(), kbps);
        }
        if (st != MUSICGEN_OK) raise_status(st, {in});
      }, "path"_a, "out"_a, "kbps"_a)
      .def("decompress_file", [](EncSession& self, const std::string& in, const std::string& out, int subtype) {
        musicgen_status st;
        {
          nb::gil_scoped_release release;
          st = encodec_session_decompress_file(self.p, in.c_str(), out.c_str(), encodec_subtype(subtype));
        }
        if (st != MUSICGEN_OK) raise_status(st, {in});
      }, "path"_a, "out"_a, "subtype"_a);

  // ---- audio files and chroma helpers ----
  m.def("read_audio", [](const std::string& path) {
    EncAudio a;
    musicgen_status st;
    {
      nb::gil_scoped_release release;
      st = encodec_audio_read(path.c_str(), &a.p);
    }
    if (st != MUSICGEN_OK) raise_status(st, {path});
    return encodec_audio_to_numpy(a.p);
  }, "path"_a);
  m.def("write_audio", [](const std::string& path, AudioIn audio, int sample_rate, int subtype) {
    EncAudio a = make_encodec_audio(audio, sample_rate);
    musicgen_status st;
    {
      nb::gil_scoped_release release;
      st = encodec_audio_write(path.c_str(), a.p, encodec_subtype(subtype));
    }
    if (st != MUSICGEN_OK) raise_status(st);
  }, "path"_a, "audio"_a, "sample_rate"_a, "subtype"_a);
  m.def("chroma_from_chords", [](const std::string& chords, float bpm, float beats_per_chord) {
    auto arr = new_float_array<2>({size_t(MUSICGEN_CHROMA_FRAMES), size_t(12)});
    musicgen_status st = musicgen_chroma_from_chords(chords.c_str(), bpm, beats_per_chord, arr.data());
    if (st != MUSICGEN_OK) raise_status(st);
    return arr;
  }, "chords"_a, "bpm"_a, "beats_per_chord"_a);
  m.def("chroma_from_notes", [](const std::string& notes, float bpm) {
    auto arr = new_float_array<2>({size_t(MUSICGEN_CHROMA_FRAMES), size_t(12)});
    musicgen_status st = musicgen_chroma_from_notes(notes.c_str(), bpm, arr.data());
    if (st != MUSICGEN_OK) raise_status(st);
    return arr;
  }, "notes"_a, "bpm"_a);
  m.def("chroma_from_midi", [](const std::string& path) {
    auto arr = new_float_array<2>({size_t(MUSICGEN_CHROMA_FRAMES), size_t(12)});
    musicgen_status st = musicgen_chroma_from_midi(path.c_str(), arr.data());
    if (st != MUSICGEN_OK) raise_status(st, {path});
    return arr;
  }, "path"_a);

  // ---- the music analyser: its JSON, which musicgen.analyze turns into a dict ----
  m.def("analyze_file", [](const std::string& path) {
    musicgen_analysis* a = nullptr;
    musicgen_status st;
    {
      nb::gil_scoped_release release;
      st = musicgen_analyze_file(path.c_str(), &a);
    }
    if (st != MUSICGEN_OK) raise_status(st, {path});
    std::string json = musicgen_analysis_to_json(a);
    musicgen_analysis_free(a);
    return json;
  }, "path"_a);
  m.def("analyze_audio", [](AudioIn audio, int sample_rate) {
    musicgen_analysis* a = nullptr;
    musicgen_status st;
    {
      nb::gil_scoped_release release;
      st = musicgen_analyze_audio(audio.data(), int64_t(audio.shape(1)), int(audio.shape(0)), sample_rate, &a);
    }
    if (st != MUSICGEN_OK) raise_status(st);
    std::string json = musicgen_analysis_to_json(a);
    musicgen_analysis_free(a);
    return json;
  }, "audio"_a, "sample_rate"_a);
}
