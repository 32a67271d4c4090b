// The model and session half of include/musicgen.h: a thin boundary. Parameters are checked and
// turned into mg::GenerateParams, the work runs on the session's backend, and guard()
// (api/api_internal.h) turns anything thrown into a status and the per-thread message.
#include "musicgen.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/api_internal.h"
#include "api/weights_choice.h"
#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "codec/normalize.h"
#include "conditioning/melody_windows.h"
#include "lm/device_self_check.h"
#include "lm/generate.h"
#include "lm/stream.h"

using mg::capi::AbortedError;
using mg::capi::ArgumentError;
using mg::capi::fail;
using mg::capi::guard;

struct musicgen_model {
  mutable mg::capi::ModelDevice device;
  std::unique_ptr<mg::MusicGen> model;
  mutable encodec_model codec;  // a view of model->codec() on `device` (musicgen_model_codec)
};

struct musicgen_session {
  const musicgen_model* model;
  mg::capi::SessionBackend backend;
  musicgen_session(const musicgen_model* m, int n_threads) : model(m), backend(m->device, n_threads) {}
  const mg::MusicGen& lm() const { return *model->model; }
};

namespace {

// The longest generation: an hour of codes is ~180,000 steps and the whole sequence is kept in
// memory, so a duration typed with extra zeros must be refused up front, not run for days.
constexpr double kMaxDurationS = MUSICGEN_MAX_DURATION_S;
// temperature and guidance_scale: released settings are ~1 and ~3; far above, logits overflow.
constexpr double kMaxScale = MUSICGEN_MAX_SCALE;

// Planar samples -> an AudioBuffer, checked (no NaN, a rate, samples); `what` names it in errors.
mg::AudioBuffer planar_buffer(const float* samples, int64_t n, int channels, int rate, const char* what) {
  if (n <= 0 || channels <= 0 || rate <= 0) throw ArgumentError(mg::strcat(what, " needs samples, channels and a rate"));
  mg::AudioBuffer in;
  in.sample_rate = rate;
  for (int c = 0; c < channels; ++c) in.channels.emplace_back(samples + c * n, samples + (c + 1) * n);
  mg::check_audio_buffer(in, what);
  return in;
}

// The sampling and length parameters, checked.
void check_sampling(const musicgen_generate_params& p, double window) {
  if (!(p.duration_s > 0)) throw ArgumentError("duration must be > 0 seconds");
  if (p.duration_s > kMaxDurationS)
    throw ArgumentError(mg::strcat("duration must be at most ", kMaxDurationS, " seconds (one hour), found ",
                                   p.duration_s));
  // Written as "not inside" so that a NaN is refused, not read as "off" or as some setting.
  if (p.top_k < 0) throw ArgumentError(mg::strcat("top_k must be >= 0, found ", p.top_k));
  if (!(p.top_p >= 0 && p.top_p <= 1)) throw ArgumentError(mg::strcat("top_p must be in [0, 1], found ", p.top_p));
  if (!(p.temperature >= 0 && p.temperature <= kMaxScale))
    throw ArgumentError(mg::strcat("temperature must be in [0, ", kMaxScale, "], found ", p.temperature));
  if (!(p.guidance_scale >= 0 && p.guidance_scale <= kMaxScale))
    throw ArgumentError(mg::strcat("guidance_scale must be in [0, ", kMaxScale, "], found ", p.guidance_scale));
  if (p.drop_prompt && !p.prompt_audio)
    throw ArgumentError("drop_prompt needs a prompt audio (continuation): there is no prompt to drop");
  if (!p.greedy && p.temperature > 0 && p.top_k == 0 && p.top_p == 0)
    throw ArgumentError("top_k is 0 and top_p is 0: sampling from all 2048 codes is almost never wanted; "
                        "set top_k (250 is audiocraft's default) or top_p");
  if (!(p.extend_stride_s > 0))  // checked even when unused, so that a NaN never passes unnoticed
    throw ArgumentError(mg::strcat("extend_stride_s must be > 0 s, found ", p.extend_stride_s));
  if (p.duration_s > window + 1e-6 && !(p.extend_stride_s < window))
    throw ArgumentError(mg::strcat("extend_stride_s must be in (0, ", window, ") s to generate more than ", window, " s"));
}

// A chroma matrix [frames][12] of finite values: a NaN would spread through the whole generation.
void check_chroma(const float* chroma, int64_t frames) {
  if (frames > int64_t(kMaxDurationS * 100))
    throw ArgumentError(mg::strcat("chroma has ", frames, " frames, more than an hour of any frame rate"));
  for (int64_t i = 0; i < frames * 12; ++i)
    if (!std::isfinite(chroma[i]))
      throw ArgumentError(mg::strcat("chroma must hold finite values: frame ", i / 12, ", bin ", i % 12, " is ",
                                     chroma[i]));
}

// The melody condition (melody models): audio re-sliced per window, or a chroma matrix.
void set_melody(const mg::MusicGen& m, const musicgen_generate_params& p, mg::GenerateParams& g) {
  if ((p.melody_audio || p.chroma) && !m.config().melody)
    throw ArgumentError("a melody was given but this model does not take one: use a musicgen-melody snapshot");
  if (p.melody_audio) {
    const mg::AudioBuffer in = planar_buffer(p.melody_audio, p.melody_samples, p.melody_channels, p.melody_rate,
                                             "melody audio");
    g.chroma_for_window = mg::melody_audio_windows(in, m.max_duration_s(), p.duration_s > m.max_duration_s() + 1e-6);
  } else if (p.chroma) {
    if (p.chroma_frames <= 0) throw ArgumentError("chroma needs at least one frame");
    check_chroma(p.chroma, p.chroma_frames);
    g.chroma_for_window =
        mg::chroma_matrix_windows(std::vector<float>(p.chroma, p.chroma + p.chroma_frames * 12), p.chroma_frames);
  }
}

// Continuation: the prompt audio, converted to the model's rate and channels, encoded on `be`.
void set_audio_prompt(mg::Backend& be, const mg::MusicGen& m, const musicgen_generate_params& p,
                      mg::GenerateParams& g) {
  if (!p.prompt_audio) return;
  const mg::AudioBuffer conv = mg::convert_audio(
      planar_buffer(p.prompt_audio, p.prompt_audio_samples, p.prompt_audio_channels, p.prompt_audio_rate,
                    "prompt audio"),
      m.sample_rate(), m.channels());
  mg::Tensor t = mg::Tensor::empty(mg::DType::F32, {int64_t(conv.num_channels()), conv.num_frames()});
  for (int c = 0; c < conv.num_channels(); ++c)
    std::copy(conv.channels[c].begin(), conv.channels[c].end(), t.f32() + c * conv.num_frames());
  g.audio_prompt = m.encode_audio(be, t);
  const double prompt_s = double(g.audio_prompt[0].size()) / m.config().frame_rate();
  if (prompt_s > p.duration_s)
    throw ArgumentError(mg::strcat("the prompt audio (", prompt_s, " s) is longer than the requested duration (",
                                   p.duration_s, " s): ask for a longer duration"));
}

// The C parameters as GenerateParams (the prompt audio encoded on the session's backend).
mg::GenerateParams generate_params(musicgen_session* s, const musicgen_generate_params& p) {
  const mg::MusicGen& m = s->lm();
  check_sampling(p, m.max_duration_s());
  mg::GenerateParams g;
  g.prompt = p.prompt ? p.prompt : "";
  g.duration_s = p.duration_s;
  g.max_window_s = m.max_duration_s();
  g.extend_stride_s = p.extend_stride_s;
  g.guidance_scale = p.guidance_scale;
  g.sampler.greedy = p.greedy != 0;
  g.sampler.top_k = p.top_k;
  g.sampler.top_p = p.top_p;
  g.sampler.temperature = p.temperature;
  g.seed = p.seed;
  g.keep_prompt = !p.drop_prompt;
  set_melody(m, p, g);
  set_audio_prompt(s->backend.get(), m, p, g);
  return g;
}

// Planar host audio [C, L] -> the caller's musicgen_audio, normalised as asked.
void deliver(mg::Tensor audio, int sample_rate, musicgen_normalize normalize, musicgen_audio* out) {
  mg::NormalizeParams np;
  np.strategy = static_cast<mg::NormalizeStrategy>(normalize);
  mg::normalize_audio(audio, sample_rate, np);
  float* buf = static_cast<float*>(std::malloc(audio.nbytes()));
  if (!buf) throw std::bad_alloc();
  std::memcpy(buf, audio.data, audio.nbytes());
  out->samples = buf;
  out->channels = int(audio.dim(0));
  out->n_samples = audio.dim(1);
  out->sample_rate = sample_rate;
}

// Generates every sequence of the request (prompts x takes) on the session's backend, with the
// callbacks wired in: progress/abort after each step, streaming of sequence 0.
std::vector<mg::Codes> run_generation(musicgen_session* s, const musicgen_generate_params& p,
                                      const std::vector<std::string>* prompts, int takes) {
  auto lock = s->backend.lock();
  mg::Backend& be = s->backend.get();
  mg::GenerateParams g = generate_params(s, p);
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
        s->lm(), be, [&](const std::vector<std::vector<float>>& a, int64_t n) {
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
    codes = s->lm().generate_batch(be, g);
  } catch (const mg::Error&) {
    if (aborted) throw AbortedError("generation aborted by the abort callback");
    throw;
  }
  if (stream) stream->finish();
  return codes;
}

// Codes [K][T] -> audio on the session's backend, normalised, into `out`.
void decode_into(musicgen_session* s, const mg::Codes& codes, musicgen_normalize normalize, musicgen_audio* out) {
  mg::Tensor audio;
  {
    auto lock = s->backend.lock();
    audio = s->lm().decode_audio(s->backend.get(), codes);
  }
  deliver(std::move(audio), s->lm().sample_rate(), normalize, out);
}

musicgen_status generate(musicgen_session* s, const musicgen_generate_params* params,
                         const std::vector<std::string>* prompts, int takes, musicgen_audio* out, size_t n_out,
                         const char* where) {
  if (out) std::memset(out, 0, sizeof(musicgen_audio) * n_out);
  return guard(where, MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!s || !params || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, mg::strcat(where, ": session, params and out are required"));
    const std::vector<mg::Codes> codes = run_generation(s, *params, prompts, takes);
    try {
      for (size_t i = 0; i < codes.size() && i < n_out; ++i) decode_into(s, codes[i], params->normalize, &out[i]);
    } catch (...) {
      for (size_t i = 0; i < n_out; ++i) musicgen_audio_free(&out[i]);
      throw;
    }
    return MUSICGEN_OK;
  });
}

// encodec_codes (one segment of K codebooks) -> the model's Codes [K][T].
mg::Codes codes_of(const mg::MusicGen& m, const encodec_codes& c) {
  const int K = m.config().decoder.num_codebooks;
  if (c.codes.segments.size() != 1 || c.codes.num_codebooks != K)
    throw ArgumentError(mg::strcat("these codes have ", c.codes.segments.size(), " segment(s) of ", c.codes.num_codebooks,
                                   " codebooks; this model decodes one segment of ", K));
  const mg::Tensor& t = c.codes.segments[0];
  const int64_t T = t.dim(1);
  mg::Codes codes(K);
  for (int k = 0; k < K; ++k) codes[k].assign(t.ptr<int64_t>() + k * T, t.ptr<int64_t>() + (k + 1) * T);
  return codes;
}

}  // namespace

extern "C" {

musicgen_model_params musicgen_model_default_params(void) {
  musicgen_model_params p;
  p.device = MUSICGEN_DEVICE_AUTO;
  p.weights = MUSICGEN_WEIGHTS_F32;
  p.n_threads = 0;
  p.lora_dir = nullptr;
  p.lora_scale = 1.0f;
  return p;
}

musicgen_session_params musicgen_session_default_params(void) {
  musicgen_session_params p;
  p.n_threads = 0;
  return p;
}

musicgen_generate_params musicgen_generate_default_params(void) {
  musicgen_generate_params p;
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

musicgen_status musicgen_model_load(const char* model_dir, const musicgen_model_params* params, musicgen_model** out) {
  if (out) *out = nullptr;
  return guard("musicgen_model_load", MUSICGEN_ERROR_MODEL, [&] {
    if (!model_dir || !*model_dir || !out)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_model_load: no model folder or no out pointer given");
    if (!std::filesystem::is_directory(model_dir))
      return fail(MUSICGEN_ERROR_MODEL, std::string("model folder not found: ") + model_dir +
                                            " (download one with: weights/download.sh musicgen-small)");
    const musicgen_model_params p = params ? *params : musicgen_model_default_params();
    const mg::DType wd = mg::capi::decoder_weights_dtype(p.weights);  // f32/f16/bf16/q8_0/q4_0
    if (!std::isfinite(p.lora_scale) || std::fabs(p.lora_scale) > MUSICGEN_MAX_SCALE)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_model_load: lora_scale " + std::to_string(p.lora_scale) +
                                                       " must be a finite number in [-" +
                                                       std::to_string(MUSICGEN_MAX_SCALE) + ", " +
                                                       std::to_string(MUSICGEN_MAX_SCALE) + "] (1 = as trained)");
    std::optional<mg::LoraAdapter> lora;
    if (p.lora_dir && *p.lora_dir) lora = mg::load_peft_adapter(p.lora_dir);
    auto m = std::make_unique<musicgen_model>();
    m->model = mg::capi::load_on_device(
        p.device, p.n_threads, m->device,
        [&](mg::Backend& be) { return mg::MusicGen::load(be, model_dir, wd, lora ? &*lora : nullptr, p.lora_scale); },
        [&](const mg::MusicGen& model, mg::Backend& be) { mg::check_musicgen_on_device(model, be, model_dir); });
    m->codec.device = &m->device;
    mg::capi::bind_encodec_model(m->codec, m->model->codec());
    *out = m.release();
    return MUSICGEN_OK;
  });
}

void musicgen_model_free(musicgen_model* model) {
  if (!model) return;
  model->model.reset();  // before the backend that owns its device memory
  delete model;
}

int musicgen_model_sample_rate(const musicgen_model* m) { return m ? m->model->sample_rate() : 0; }
int musicgen_model_channels(const musicgen_model* m) { return m ? m->model->channels() : 0; }
int musicgen_model_num_codebooks(const musicgen_model* m) { return m ? m->model->config().decoder.num_codebooks : 0; }
int musicgen_model_frame_rate(const musicgen_model* m) { return m ? m->model->config().frame_rate() : 0; }
float musicgen_model_max_window(const musicgen_model* m) { return m ? float(m->model->max_duration_s()) : 0.0f; }
const char* musicgen_model_device_name(const musicgen_model* m) {
  return m ? mg::device_name(m->device.backend->device()) : "none";
}
int musicgen_model_is_melody(const musicgen_model* m) { return m && m->model->config().melody ? 1 : 0; }
const encodec_model* musicgen_model_codec(const musicgen_model* m) { return m ? &m->codec : nullptr; }

musicgen_status musicgen_session_create(const musicgen_model* model, const musicgen_session_params* params,
                                        musicgen_session** out) {
  if (out) *out = nullptr;
  return guard("musicgen_session_create", MUSICGEN_ERROR_INTERNAL, [&] {
    if (!model || !out) return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_session_create: model or out is NULL");
    const musicgen_session_params p = params ? *params : musicgen_session_default_params();
    *out = new musicgen_session(model, p.n_threads);
    return MUSICGEN_OK;
  });
}

void musicgen_session_free(musicgen_session* session) { delete session; }

musicgen_status musicgen_session_generate(musicgen_session* s, const musicgen_generate_params* params,
                                          musicgen_audio* out) {
  return generate(s, params, nullptr, 1, out, 1, "musicgen_session_generate");
}

musicgen_status musicgen_session_generate_batch(musicgen_session* s, const musicgen_generate_params* params,
                                                const char* const* prompts, int n_prompts, int takes,
                                                musicgen_audio* out) {
  if (n_prompts < 1 || takes < 1 || !prompts)
    return fail(MUSICGEN_ERROR_INVALID_ARGUMENT,
                mg::strcat("musicgen_session_generate_batch: a batch needs at least one prompt and one take, found ",
                           n_prompts, " prompt(s)", prompts ? "" : " (prompts is NULL)", " and ", takes, " take(s)"));
  std::vector<std::string> list;
  for (int i = 0; i < n_prompts; ++i) list.push_back(prompts[i] ? prompts[i] : "");
  return generate(s, params, &list, takes, out, size_t(n_prompts) * size_t(takes), "musicgen_session_generate_batch");
}

musicgen_status musicgen_session_generate_codes(musicgen_session* s, const musicgen_generate_params* params,
                                                encodec_codes** out) {
  if (out) *out = nullptr;
  return guard("musicgen_session_generate_codes", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!s || !params || !out)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_session_generate_codes: session, params and out are required");
    const mg::Codes codes = run_generation(s, *params, nullptr, 1)[0];
    const int K = int(codes.size());
    const int64_t T = int64_t(codes[0].size());
    auto c = std::make_unique<encodec_codes>();
    mg::Tensor t = mg::Tensor::empty(mg::DType::I64, {K, T});
    for (int k = 0; k < K; ++k) std::copy(codes[k].begin(), codes[k].end(), t.ptr<int64_t>() + k * T);
    c->codes.num_codebooks = K;
    c->codes.segments = {t};
    c->codes.length = T * s->lm().config().audio_encoder.hop_length();  // untrimmed, as decode_audio
    *out = c.release();
    return MUSICGEN_OK;
  });
}

musicgen_status musicgen_session_decode_codes(musicgen_session* s, const encodec_codes* codes,
                                              musicgen_normalize normalize, musicgen_audio* out) {
  if (out) std::memset(out, 0, sizeof(*out));
  return guard("musicgen_session_decode_codes", MUSICGEN_ERROR_INVALID_ARGUMENT, [&] {
    if (!s || !codes || !out)
      return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_session_decode_codes: session, codes and out are required");
    decode_into(s, codes_of(s->lm(), *codes), normalize, out);
    return MUSICGEN_OK;
  });
}

}  // extern "C"
