// The C API of include/musicgen.h: a thin boundary that turns every exception into a status and
// a message kept in the context.
#include "musicgen.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>

#include "codec/audio_file.h"
#include "codec/normalize.h"
#include "codec/convert_audio.h"
#include "conditioning/chords.h"
#include "conditioning/chroma.h"
#include "conditioning/chroma_png.h"
#include "lm/generate.h"
#include "lm/stream.h"

struct musicgen_context {
  musicgen_context_params params;
  std::unique_ptr<mg::Backend> backend;
  std::unique_ptr<mg::MusicGen> model;
  std::string error;
};

namespace {

musicgen_status fail(musicgen_context* ctx, musicgen_status s, const std::string& msg) {
  if (ctx) ctx->error = msg;
  return s;
}

// Runs f, mapping exceptions to statuses. The message already says what and where.
template <typename F>
musicgen_status guarded(musicgen_context* ctx, musicgen_status kind, F&& f) {
  if (!ctx) return MUSICGEN_ERR_INVALID_ARGUMENT;
  ctx->error.clear();
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return fail(ctx, MUSICGEN_ERR_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return fail(ctx, kind, e.what());
  }
}

}  // namespace

extern "C" {

musicgen_context_params musicgen_context_default_params(void) {
  musicgen_context_params p;
  p.device = MUSICGEN_DEVICE_AUTO;
  p.n_threads = 0;
  p.weights = MUSICGEN_WEIGHTS_F32;
  return p;
}

musicgen_params musicgen_default_params(void) {
  musicgen_params p;
  std::memset(&p, 0, sizeof(p));
  p.prompt = nullptr;
  p.duration_s = 10.0f;
  p.top_k = 250;
  p.top_p = 0.0f;
  p.temperature = 1.0f;
  p.guidance_scale = 3.0f;
  p.greedy = 0;
  p.seed = 0;
  p.normalize = MUSICGEN_NORMALIZE_PEAK;
  p.extend_stride_s = 18.0f;
  return p;
}

musicgen_context* musicgen_init(const musicgen_context_params* params) {
  musicgen_context* ctx = new (std::nothrow) musicgen_context();
  if (ctx) ctx->params = params ? *params : musicgen_context_default_params();
  return ctx;
}

void musicgen_free(musicgen_context* ctx) { delete ctx; }

musicgen_status musicgen_load(musicgen_context* ctx, const char* model_dir) {
  return guarded(ctx, MUSICGEN_ERR_MODEL, [&]() {
    if (!model_dir || !*model_dir) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "no model folder given");
    if (!std::filesystem::is_directory(model_dir))
      return fail(ctx, MUSICGEN_ERR_MODEL, std::string("model folder not found: ") + model_dir +
                                               " (download one with: weights/download.sh musicgen-small)");
    ctx->model.reset();
    const musicgen_device dev = ctx->params.device;
    if (dev == MUSICGEN_DEVICE_CUDA || (dev == MUSICGEN_DEVICE_AUTO && mg::cuda_available())) {
      try {
        ctx->backend = mg::make_cuda_backend(0);
      } catch (const std::exception& e) {
        return fail(ctx, MUSICGEN_ERR_DEVICE, e.what());
      }
    } else {
      ctx->backend = mg::make_cpu_backend(ctx->params.n_threads);
    }
    const mg::DType wd = ctx->params.weights == MUSICGEN_WEIGHTS_F16    ? mg::DType::F16
                         : ctx->params.weights == MUSICGEN_WEIGHTS_BF16 ? mg::DType::BF16
                                                                        : mg::DType::F32;
    ctx->model = mg::MusicGen::load(*ctx->backend, model_dir, wd);
    return MUSICGEN_OK;
  });
}

int musicgen_sample_rate(const musicgen_context* ctx) { return ctx && ctx->model ? ctx->model->sample_rate() : 0; }
int musicgen_channels(const musicgen_context* ctx) { return ctx && ctx->model ? ctx->model->channels() : 0; }
float musicgen_max_window(const musicgen_context* ctx) {
  return ctx && ctx->model ? float(ctx->model->max_duration_s()) : 0.0f;
}
const char* musicgen_device_name(const musicgen_context* ctx) {
  return ctx && ctx->backend ? mg::device_name(ctx->backend->device()) : "none";
}

}  // extern "C"

namespace {

// Checks the parameters and turns them into GenerateParams (continuation audio encoded here).
musicgen_status prepare(musicgen_context* ctx, const musicgen_params& p, mg::GenerateParams& g) {
  if (!ctx->model) return fail(ctx, MUSICGEN_ERR_MODEL, "no model loaded: call musicgen_load first");
  if (!(p.duration_s > 0)) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "duration must be > 0 seconds");
  if (p.top_k < 0 || p.top_p < 0 || p.top_p > 1 || p.temperature < 0)
    return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "top_k must be >= 0, top_p in [0, 1], temperature >= 0");
  if (!p.greedy && p.temperature > 0 && p.top_k == 0 && p.top_p == 0)
    return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT,
                "top_k is 0 and top_p is 0: sampling from all 2048 codes is almost never wanted; "
                "set top_k (250 is audiocraft's default) or top_p");
  const double window = ctx->model->max_duration_s();
  if (p.duration_s > window + 1e-6 && !(p.extend_stride_s > 0 && p.extend_stride_s < window))
    return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT,
                mg::strcat("extend_stride_s must be in (0, ", window, ") s to generate more than ", window, " s"));
  g.prompt = p.prompt ? p.prompt : "";
  g.duration_s = p.duration_s;
  g.max_window_s = window;
  g.extend_stride_s = p.extend_stride_s;
  g.guidance_scale = p.guidance_scale;
  g.sampler.greedy = p.greedy != 0;
  g.sampler.top_k = p.top_k;
  g.sampler.top_p = p.top_p;
  g.sampler.temperature = p.temperature;
  g.seed = p.seed;
  g.keep_prompt = !p.drop_prompt;
  if ((p.melody_audio || p.chroma) && !ctx->model->config().melody)
    return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT,
                "a melody was given but this model does not take one: use a musicgen-melody snapshot");
  if (p.melody_audio) {
    if (p.melody_samples <= 0 || p.melody_channels <= 0 || p.melody_rate <= 0)
      return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "melody audio needs samples, channels and a rate");
    mg::AudioBuffer in;
    in.sample_rate = p.melody_rate;
    for (int c = 0; c < p.melody_channels; ++c)
      in.channels.emplace_back(p.melody_audio + c * p.melody_samples, p.melody_audio + (c + 1) * p.melody_samples);
    mg::check_audio_buffer(in, "melody audio");
    // One window: the chroma of the whole melody (then tiled/cut to 235 frames). Long generation:
    // audiocraft re-slices the audio per window, 30 s from offset * rate, wrapping around.
    auto mono = std::make_shared<std::vector<float>>(mg::convert_audio(in, 32000, 1).channels[0]);
    const double window = ctx->model->max_duration_s();
    const bool long_gen = p.duration_s > window + 1e-6;
    g.chroma_for_window = [mono, window, long_gen](double offset_s) {
      const int64_t n = int64_t(mono->size()), start = int64_t(offset_s * 32000), len = int64_t(window * 32000);
      std::vector<float> slice(size_t(long_gen ? len : n));
      for (size_t i = 0; i < slice.size(); ++i) slice[i] = (*mono)[size_t((start + int64_t(i)) % n)];
      return mg::chroma_one_hot(slice);
    };
  } else if (p.chroma) {
    if (p.chroma_frames <= 0) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "chroma needs at least one frame");
    std::vector<float> c(p.chroma, p.chroma + p.chroma_frames * 12);
    const int64_t frames = p.chroma_frames;
    // Long generation: the window at offset t starts at chroma frame t * 7.8125, wrapping around.
    g.chroma_for_window = [c, frames](double offset_s) {
      const int64_t start = int64_t(offset_s * mg::chroma_frame_rate());
      mg::Tensor t = mg::Tensor::empty(mg::DType::F32, {frames, 12});
      for (int64_t i = 0; i < frames; ++i)
        std::copy(c.begin() + ((start + i) % frames) * 12, c.begin() + ((start + i) % frames + 1) * 12, t.f32() + i * 12);
      return t;
    };
  }
  if (p.prompt_audio) {
    if (p.prompt_audio_samples <= 0 || p.prompt_audio_channels <= 0 || p.prompt_audio_rate <= 0)
      return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "prompt audio needs samples, channels and a rate");
    mg::AudioBuffer in;
    in.sample_rate = p.prompt_audio_rate;
    for (int c = 0; c < p.prompt_audio_channels; ++c)
      in.channels.emplace_back(p.prompt_audio + c * p.prompt_audio_samples,
                               p.prompt_audio + (c + 1) * p.prompt_audio_samples);
    mg::check_audio_buffer(in, "prompt audio");
    mg::AudioBuffer conv = mg::convert_audio(in, ctx->model->sample_rate(), ctx->model->channels());
    mg::Tensor t = mg::Tensor::empty(mg::DType::F32, {int64_t(conv.num_channels()), conv.num_frames()});
    for (int c = 0; c < conv.num_channels(); ++c)
      std::copy(conv.channels[c].begin(), conv.channels[c].end(), t.f32() + c * conv.num_frames());
    g.audio_prompt = ctx->model->encode_audio(t);
    const double prompt_s = double(g.audio_prompt[0].size()) / ctx->model->config().frame_rate();
    if (prompt_s > p.duration_s)
      return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT,
                  mg::strcat("the prompt audio (", prompt_s, " s) is longer than the requested duration (", p.duration_s,
                             " s): ask for a longer duration"));
  }
  return MUSICGEN_OK;
}

// Normalises and copies one sequence's audio into a caller-owned buffer.
musicgen_status deliver(musicgen_context* ctx, const musicgen_params& p, const mg::Codes& codes, musicgen_audio* out) {
  mg::Tensor audio = ctx->model->decode_audio(codes);
  mg::NormalizeParams np;
  np.strategy = static_cast<mg::NormalizeStrategy>(p.normalize);
  mg::normalize_audio(audio, ctx->model->sample_rate(), np);
  float* buf = static_cast<float*>(std::malloc(audio.nbytes()));
  if (!buf) return fail(ctx, MUSICGEN_ERR_INTERNAL, "out of memory for the output audio");
  std::memcpy(buf, audio.data, audio.nbytes());
  out->samples = buf;
  out->channels = int(audio.dim(0));
  out->n_samples = audio.dim(1);
  out->sample_rate = ctx->model->sample_rate();
  return MUSICGEN_OK;
}

musicgen_status run(musicgen_context* ctx, const musicgen_params* params, const std::vector<std::string>* prompts,
                    int takes, musicgen_audio* out, size_t n_out) {
  return guarded(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, [&]() {
    if (!params || !out) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "params and out are required");
    std::memset(out, 0, sizeof(musicgen_audio) * n_out);
    const musicgen_params& p = *params;
    mg::GenerateParams g;
    musicgen_status st = prepare(ctx, p, g);
    if (st != MUSICGEN_OK) return st;
    if (prompts) g.prompts = *prompts;
    g.takes = takes;
    bool aborted = false;
    g.progress = [&](int64_t done, int64_t total) {
      if (p.progress) p.progress(done, total, p.progress_user_data);
      if (p.abort && p.abort(p.abort_user_data)) aborted = true;
      return !aborted;
    };
    std::unique_ptr<mg::StreamingDecoder> stream;
    if (p.stream) {
      stream = std::make_unique<mg::StreamingDecoder>(
          *ctx->model, [&](const std::vector<std::vector<float>>& a, int64_t n) {
            std::vector<float> planar;
            for (const auto& ch : a) planar.insert(planar.end(), ch.begin(), ch.begin() + n);
            p.stream(planar.data(), n, int(a.size()), p.stream_user_data);
          });
      g.on_frame = [&](int seq, int64_t, const std::vector<int>& codes) {
        if (seq == 0) stream->push(codes);
      };
    }
    std::vector<mg::Codes> codes;
    try {
      codes = ctx->model->generate_batch(g);
    } catch (const mg::Error&) {
      if (aborted) return fail(ctx, MUSICGEN_ERR_ABORTED, "generation aborted by the abort callback");
      throw;
    }
    if (stream) stream->finish();
    for (size_t i = 0; i < codes.size() && i < n_out; ++i) {
      st = deliver(ctx, p, codes[i], &out[i]);
      if (st != MUSICGEN_OK) {
        for (size_t j = 0; j < i; ++j) musicgen_audio_free(&out[j]);
        return st;
      }
    }
    return MUSICGEN_OK;
  });
}

}  // namespace

extern "C" {

musicgen_status musicgen_generate(musicgen_context* ctx, const musicgen_params* params, musicgen_audio* out) {
  return run(ctx, params, nullptr, 1, out, 1);
}

musicgen_status musicgen_generate_batch(musicgen_context* ctx, const musicgen_params* params,
                                        const char* const* prompts, int n_prompts, int takes, musicgen_audio* out) {
  if (ctx && (n_prompts < 1 || takes < 1 || !prompts))
    return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "a batch needs at least one prompt and one take");
  std::vector<std::string> list;
  for (int i = 0; ctx && i < n_prompts; ++i) list.push_back(prompts[i] ? prompts[i] : "");
  return run(ctx, params, &list, takes, out, size_t(n_prompts) * size_t(takes));
}

void musicgen_audio_free(musicgen_audio* audio) {
  if (!audio) return;
  std::free(audio->samples);
  audio->samples = nullptr;
  audio->n_samples = 0;
}

musicgen_status musicgen_write_audio(musicgen_context* ctx, const musicgen_audio* audio, const char* path) {
  return guarded(ctx, MUSICGEN_ERR_IO, [&]() {
    if (!audio || !audio->samples || !path)
      return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "musicgen_write_audio: audio and path are required");
    mg::AudioBuffer buf;
    buf.sample_rate = audio->sample_rate;
    for (int c = 0; c < audio->channels; ++c)
      buf.channels.emplace_back(audio->samples + c * audio->n_samples, audio->samples + (c + 1) * audio->n_samples);
    mg::write_audio(path, buf);
    return MUSICGEN_OK;
  });
}

musicgen_status musicgen_read_audio(musicgen_context* ctx, const char* path, musicgen_audio* out) {
  return guarded(ctx, MUSICGEN_ERR_IO, [&]() {
    if (!path || !out) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "musicgen_read_audio: path and out are required");
    std::memset(out, 0, sizeof(*out));
    mg::AudioBuffer a = mg::read_audio(path);
    const size_t n = size_t(a.num_frames()) * a.num_channels();
    float* buf = static_cast<float*>(std::malloc(n * sizeof(float)));
    if (!buf) return fail(ctx, MUSICGEN_ERR_INTERNAL, "out of memory reading audio");
    for (int c = 0; c < a.num_channels(); ++c) std::copy(a.channels[c].begin(), a.channels[c].end(), buf + c * a.num_frames());
    out->samples = buf;
    out->n_samples = a.num_frames();
    out->channels = a.num_channels();
    out->sample_rate = a.sample_rate;
    return MUSICGEN_OK;
  });
}

namespace {

musicgen_status put_chroma(musicgen_context* ctx, const mg::Tensor& chroma, float* out) {
  if (!out) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "no output buffer for the chroma");
  mg::Tensor fitted = mg::chroma_fit_length(chroma, MUSICGEN_CHROMA_FRAMES);
  std::copy(fitted.f32(), fitted.f32() + fitted.numel(), out);
  return MUSICGEN_OK;
}

}  // namespace

musicgen_status musicgen_chords_to_chroma(musicgen_context* ctx, const char* chords, float bpm, float beats_per_chord,
                                          float* out) {
  return guarded(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, [&]() {
    mg::ChordOptions o;
    o.bpm = bpm;
    o.beats_per_chord = beats_per_chord;
    return put_chroma(ctx, mg::chords_to_chroma(chords ? chords : "", o, MUSICGEN_CHROMA_FRAMES), out);
  });
}

musicgen_status musicgen_notes_to_chroma(musicgen_context* ctx, const char* notes, float bpm, float* out) {
  return guarded(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, [&]() {
    return put_chroma(ctx, mg::notes_to_chroma(notes ? notes : "", bpm, MUSICGEN_CHROMA_FRAMES), out);
  });
}

musicgen_status musicgen_midi_to_chroma(musicgen_context* ctx, const char* midi_path, float* out) {
  return guarded(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, [&]() {
    if (!midi_path) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "no MIDI file given");
    return put_chroma(ctx, mg::timeline_to_chroma(mg::read_midi_file(midi_path), MUSICGEN_CHROMA_FRAMES), out);
  });
}

musicgen_status musicgen_audio_to_chroma(musicgen_context* ctx, const musicgen_audio* audio, float* out) {
  return guarded(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, [&]() {
    if (!audio || !audio->samples) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "no audio given");
    mg::AudioBuffer in;
    in.sample_rate = audio->sample_rate;
    for (int c = 0; c < audio->channels; ++c)
      in.channels.emplace_back(audio->samples + c * audio->n_samples, audio->samples + (c + 1) * audio->n_samples);
    return put_chroma(ctx, mg::melody_chroma(in), out);
  });
}

musicgen_status musicgen_write_chroma_png(musicgen_context* ctx, const float* chroma, int64_t frames, const char* path) {
  return guarded(ctx, MUSICGEN_ERR_IO, [&]() {
    if (!chroma || frames <= 0 || !path) return fail(ctx, MUSICGEN_ERR_INVALID_ARGUMENT, "chroma, frames and path needed");
    mg::write_chroma_png(path, mg::Tensor::from_vector(std::vector<float>(chroma, chroma + frames * 12), {frames, 12}));
    return MUSICGEN_OK;
  });
}

int musicgen_is_melody_model(const musicgen_context* ctx) { return ctx && ctx->model && ctx->model->config().melody; }

const char* musicgen_error(const musicgen_context* ctx) { return ctx ? ctx->error.c_str() : "no context"; }

}  // extern "C"
