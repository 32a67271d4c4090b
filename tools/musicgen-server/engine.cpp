#include "engine.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "audio_bytes.h"
#include "codec/audio_file.h"
#include "codec/normalize.h"
#include "conditioning/melody_windows.h"
#include "kernels/host_buffer_cache.h"
#include "lm/batched_step.h"
#include "lm/sequence_stepper.h"
#include "lm/stream.h"

namespace mgserver {

namespace {
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

mg::Tensor TextCache::get(const mg::MusicGen& model, mg::Backend& be, const std::string& prompt) {
  if (prompt.empty()) return mg::Tensor();
  auto it = index_.find(prompt);
  if (it != index_.end()) {
    entries_.splice(entries_.begin(), entries_, it->second);
    return it->second->second;
  }
  mg::Tensor text = model.project_text(be, model.text_hidden_states(be, model.tokenize(prompt)));
  put(prompt, text);
  return text;
}

void TextCache::put(const std::string& prompt, const mg::Tensor& text) {
  entries_.emplace_front(prompt, text);
  index_[prompt] = entries_.begin();
  if (entries_.size() > capacity_) {
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
}

std::vector<mg::Tensor> TextCache::get_all(const mg::MusicGen& model, mg::Backend& be,
                                           const std::vector<std::string>& prompts) {
  std::vector<std::string> missing;  // distinct, in order
  for (const std::string& p : prompts)
    if (!p.empty() && !index_.count(p) && std::find(missing.begin(), missing.end(), p) == missing.end())
      missing.push_back(p);
  if (missing.size() > 1) {
    std::vector<std::vector<int>> ids;
    for (const std::string& p : missing) ids.push_back(model.tokenize(p));
    std::vector<mg::Tensor> hidden = model.text_hidden_states(be, ids);
    for (size_t i = 0; i < missing.size(); ++i) put(missing[i], model.project_text(be, hidden[i]));
  }
  std::vector<mg::Tensor> texts;
  for (const std::string& p : prompts) texts.push_back(get(model, be, p));
  return texts;
}

struct Engine::Active {
  std::shared_ptr<Job> job;
  std::unique_ptr<mg::StreamingDecoder> streamer;  // streaming requests
  std::unique_ptr<mg::MusicGen::SequenceStepper> stepper;
  bool failed = false;
};

Engine::Engine(const mg::MusicGen& model, mg::Backend& be, mg::Backend& decode_be, const EngineOptions& opt,
               Metrics& metrics)
    : model_(model), be_(be), decode_be_(decode_be), opt_(opt), metrics_(metrics), texts_(size_t(opt.text_cache_entries)),
      step_lanes_(be, opt.threads,
                  be.device() == mg::Device::CPU ? std::min(opt.step_lanes, std::max(1, opt.threads)) : 0),
      shared_backend_(&be == &decode_be) {
  scheduler_ = std::thread([this] { schedule_loop(); });
  finisher_ = std::thread([this] { finish_loop(); });
}

Engine::~Engine() { shutdown(); }

std::shared_ptr<Job> Engine::submit(GenerationRequest r, Clock::time_point deadline) {
  auto job = std::make_shared<Job>(std::move(r), Clock::now(), deadline);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) throw HttpError(503, "unavailable_error", "the server is shutting down; retry on another replica");
    if (int(waiting_.size()) >= opt_.max_queue)
      throw HttpError(429, "queue_full_error",
                      "the queue is full (" + std::to_string(opt_.max_queue) + " requests waiting, " +
                          std::to_string(running_) + " running); retry after the Retry-After seconds");
    job->id = next_id_++;
    waiting_.push_back(job);
  }
  publish_queue();
  cv_.notify_all();
  return job;
}

void Engine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !scheduler_.joinable()) return;
    stopping_ = true;
    for (auto& job : waiting_) {
      job->finish_error(503, "unavailable_error", "the server is shutting down; the request was not started", "rejected");
    }
    waiting_.clear();
  }
  cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  {
    std::lock_guard<std::mutex> lock(finish_mu_);
    finish_stop_ = true;
  }
  finish_cv_.notify_all();
  if (finisher_.joinable()) finisher_.join();
}

int Engine::retry_after_seconds() const {
  const double mean = metrics_.mean_latency();
  std::lock_guard<std::mutex> lock(mu_);
  const double waves = double(waiting_.size()) / std::max(1, opt_.max_batch);
  return std::max(1, int(std::ceil(std::max(1.0, mean) * std::max(1.0, waves))));
}

int Engine::active_sequences() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

void Engine::publish_queue() {
  std::lock_guard<std::mutex> lock(mu_);
  metrics_.set_queue(running_, int(waiting_.size()));
}

// The request's generation parameters and its stepper (T5 text from the cache; melody models: the
// chroma prefix runs here). Throws mg::Error for a request the model cannot run.
std::unique_ptr<Engine::Active> Engine::start(const std::shared_ptr<Job>& job, const mg::Tensor& text) {
  const GenerationRequest& r = job->req;
  auto a = std::make_unique<Active>();
  a->job = job;
  mg::GenerateParams p;
  p.prompt = r.prompt;
  p.duration_s = r.duration;
  p.max_window_s = model_.max_duration_s();
  p.guidance_scale = r.cfg;
  p.sampler.greedy = r.greedy;
  p.sampler.top_k = r.top_k;
  p.sampler.top_p = r.top_p;
  p.sampler.temperature = r.temperature;
  p.seed = r.seed;
  if (!r.chroma.empty()) {
    p.chroma_for_window = mg::chroma_matrix_windows(r.chroma, int64_t(r.chroma.size() / 12));
  } else if (!r.melody.empty()) {
    mg::AudioBuffer in;
    in.sample_rate = r.melody_rate;
    for (int c = 0; c < r.melody_channels; ++c)
      in.channels.emplace_back(r.melody.begin() + c * r.melody_samples, r.melody.begin() + (c + 1) * r.melody_samples);
    p.chroma_for_window = mg::melody_audio_windows(in, model_.max_duration_s(), r.duration > model_.max_duration_s() + 1e-6);
  }
  if (r.stream) {
    Job* j = job.get();
    Metrics* metrics = &metrics_;
    a->streamer = std::make_unique<mg::StreamingDecoder>(
        model_, be_, [j, metrics](const std::vector<std::vector<float>>& audio, int64_t n) {
          std::vector<float> planar;
          for (const auto& ch : audio) planar.insert(planar.end(), ch.begin(), ch.begin() + n);
          std::string pcm;
          append_pcm16(planar.data(), n, int(audio.size()), pcm);
          if (j->add_stream_audio(pcm)) metrics->time_to_first_audio(seconds_since(j->arrival));
        });
    mg::StreamingDecoder* s = a->streamer.get();
    p.on_frame = [s](int, int64_t, const std::vector<int>& codes) { s->push(codes); };
  }
  a->stepper = std::make_unique<mg::MusicGen::SequenceStepper>(model_, be_, std::move(p), text,
                                                               take_kv_block(r.duration));
  return a;
}

void Engine::admit(std::vector<std::shared_ptr<Job>>& joining) {
  if (joining.empty()) return;
  // The joining requests' prompts go through the text encoder together (one read of its weights);
  // if that fails, each prompt again alone, so that the error is the failing request's own.
  std::vector<mg::Tensor> texts(joining.size());
  try {
    std::vector<std::string> prompts;
    for (auto& job : joining) prompts.push_back(job->req.prompt);
    texts = texts_.get_all(model_, be_, prompts);
  } catch (const std::exception&) {
    texts.assign(joining.size(), mg::Tensor());
  }
  for (size_t i = 0; i < joining.size(); ++i) {
    auto& job = joining[i];
    metrics_.queue_wait(seconds_since(job->arrival));
    {
      std::lock_guard<std::mutex> lock(job->mu);
      job->state = Job::State::running;
    }
    try {
      // get() of an empty prompt is the undefined (unconditional) text, as get_all gave it.
      const mg::Tensor text = texts[i].defined() ? texts[i] : texts_.get(model_, be_, job->req.prompt);
      active_.push_back(start(job, text));
    } catch (const std::exception& e) {
      job->finish_error(400, "invalid_request_error", e.what(), "error");
    }
  }
  joining.clear();
}

void Engine::drop_cancelled() {
  const Clock::time_point now = Clock::now();
  for (auto& a : active_) {
    if (a->job->cancelled) {
      a->job->finish_error(499, "cancelled", "the client closed the connection", "cancelled");
      a->failed = true;
    } else if (now > a->job->deadline) {
      a->job->finish_error(504, "timeout_error", "the request ran past the server's --timeout", "timeout");
      a->failed = true;
    }
  }
}

void Engine::step_all() {
  std::vector<mg::MusicGen::SequenceStepper*> steppers;  // those due a shared step
  for (auto& a : active_) {
    if (a->failed || a->stepper->done()) continue;
    if (a->stepper->needs_solo_step()) {  // a later window's first step: several columns, alone
      const Clock::time_point t0 = Clock::now();
      a->stepper->solo_step();
      metrics_.decode_step(1, seconds_since(t0), "solo");
    } else {
      steppers.push_back(a->stepper.get());
    }
  }
  if (steppers.empty()) return;
  const Clock::time_point t0 = Clock::now();
  const auto in = mg::MusicGen::SequenceStepper::shared_step_inputs(steppers);
  // Each request's draw runs in its lane (lm/step_lanes.h); what follows it (patterns, streaming,
  // the next window) here, on the loop's backend.
  std::vector<mg::Tensor> tokens(steppers.size());
  step_lanes_.step(model_.decoder(), in.states, in.ids, [&](size_t i, const mg::Tensor& logits, mg::Backend& be) {
    tokens[i] = steppers[i]->sample_shared_step(logits, be);
  });
  for (size_t i = 0; i < steppers.size(); ++i) steppers[i]->finish_sampled_step(tokens[i]);
  metrics_.decode_step(int(steppers.size()), seconds_since(t0), mg::step_mode_name(step_lanes_.last_mode()));
}

void Engine::retire_finished() {
  std::deque<std::pair<std::shared_ptr<Job>, mg::Codes>> finished;
  for (auto& a : active_) {
    if (a->failed || !a->stepper->done()) continue;
    if (a->streamer) {
      a->streamer->finish();
      Job& j = *a->job;
      j.finish_ok({}, 0, model_.channels(), model_.sample_rate());
    } else {
      finished.emplace_back(a->job, a->stepper->codes());
    }
    keep_kv_block(a->stepper->take_kv_block());
    a->failed = true;  // leaves below
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(), [](const auto& a) { return a->failed; }), active_.end());
  if (finished.empty()) return;
  {
    std::lock_guard<std::mutex> lock(finish_mu_);
    for (auto& f : finished) to_decode_.push_back(std::move(f));
  }
  finish_cv_.notify_one();
}

// Moves waiting requests into `joining` while there are free slots. Called with mu_ held.
void Engine::take_waiting(std::vector<std::shared_ptr<Job>>& joining) {
  while (!waiting_.empty() && int(active_.size() + joining.size()) < opt_.max_batch) {
    joining.push_back(waiting_.front());
    waiting_.pop_front();
  }
  running_ = int(active_.size() + joining.size());
  metrics_.set_queue(running_, int(waiting_.size()));
}

// Requests that gave up while waiting never start.
void Engine::drop_gone(std::vector<std::shared_ptr<Job>>& joining) {
  joining.erase(std::remove_if(joining.begin(), joining.end(),
                               [&](const std::shared_ptr<Job>& j) {
                                 const bool gone = j->cancelled || Clock::now() > j->deadline;
                                 if (gone) {
                                   if (j->cancelled) j->finish_error(499, "cancelled", "the client closed the connection", "cancelled");
                                   else j->finish_error(504, "timeout_error", "the request waited past the server's --timeout", "timeout");
                                 }
                                 return gone;
                               }),
                joining.end());
}

// The smallest kept KV block that holds a request of `duration_s` with CFG (its first window),
// taken out of the pool; undefined when none is large enough (the stepper then allocates).
mg::Tensor Engine::take_kv_block(double duration_s) {
  const mg::MusicgenDecoder& dec = model_.decoder();
  const double window_s = std::min(duration_s, model_.max_duration_s());
  const size_t need =
      mg::decoder_kv_bytes(dec, 2, model_.frames_for(window_s) + model_.config().max_delay());
  auto best = kv_blocks_.end();
  for (auto it = kv_blocks_.begin(); it != kv_blocks_.end(); ++it)
    if (it->nbytes() >= need && (best == kv_blocks_.end() || it->nbytes() < best->nbytes())) best = it;
  if (best == kv_blocks_.end()) return mg::Tensor();
  mg::Tensor block = *best;
  kv_blocks_.erase(best);
  return block;
}

// A finished request's KV block, kept for the next request: at most --max-batch of them, the
// oldest dropped first (they follow the recent requests' lengths).
void Engine::keep_kv_block(mg::Tensor block) {
  if (!block.defined()) return;
  kv_blocks_.push_back(std::move(block));
  if (int(kv_blocks_.size()) > opt_.max_batch) kv_blocks_.erase(kv_blocks_.begin());
}

void Engine::schedule_loop() {
  std::vector<std::shared_ptr<Job>> joining;
  for (;;) {
    bool idle;
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle = waiting_.empty() && active_.empty();
    }
    if (idle) kv_blocks_.clear();  // an idle server holds no KV caches
    {
      std::unique_lock<std::mutex> lock(mu_);
      running_ = int(active_.size());
      metrics_.set_queue(running_, int(waiting_.size()));
      cv_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !active_.empty(); });
      if (stopping_ && waiting_.empty() && active_.empty()) break;
      take_waiting(joining);
    }
    drop_gone(joining);
    std::unique_lock<std::mutex> device(device_mu_, std::defer_lock);
    if (shared_backend_) device.lock();
    // Requests that arrived while the text encoder ran for the joining ones join now, not a step
    // later: requests sent together start (and finish) at the same step, so their steps are all
    // shared and no finished request's EnCodec decode runs beside the others' last steps.
    while (!joining.empty()) {
      admit(joining);
      {
        std::lock_guard<std::mutex> lock(mu_);
        take_waiting(joining);
      }
      drop_gone(joining);
    }
    drop_cancelled();
    try {
      step_all();
    } catch (const std::exception& e) {
      for (auto& a : active_)
        if (!a->failed) {
          a->job->finish_error(500, "server_error", std::string("generation failed: ") + e.what(), "error");
          a->failed = true;
        }
    }
    retire_finished();
  }
  publish_queue();
}

void Engine::finish_loop() {
  // While answers wait to be decoded, each decode takes over the large buffers of the one before
  // (kernels/host_buffer_cache.h) instead of faulting its activations in afresh: requests that end
  // together (a batch) queue up here together. The scope ends whenever the queue is empty, so an
  // idle server keeps no buffers.
  std::optional<mg::HostBufferReuse> reuse;
  for (;;) {
    std::pair<std::shared_ptr<Job>, mg::Codes> item;
    {
      std::unique_lock<std::mutex> lock(finish_mu_);
      finish_cv_.wait(lock, [&] { return finish_stop_ || !to_decode_.empty(); });
      if (to_decode_.empty()) return;
      item = std::move(to_decode_.front());
      to_decode_.pop_front();
    }
    if (!reuse) reuse.emplace();
    {
      // One at a time on all the finisher's threads: on 2 cores, 8 decodes of 2 s took 0.98 s this
      // way and 1.10 s as two 1-thread decodes side by side (docs/PERFORMANCE.md, server section).
      std::unique_lock<std::mutex> device(device_mu_, std::defer_lock);
      if (shared_backend_) device.lock();
      decode_one(*item.first, item.second);
    }
    bool idle = false;
    {
      std::lock_guard<std::mutex> lock(finish_mu_);
      idle = to_decode_.empty();
    }
    if (idle) reuse.reset();  // freed outside the lock the decode loop hands answers in under
  }
}

// The audio of a finished request, normalized.
void Engine::decode_one(Job& job, const mg::Codes& codes) {
  try {
    mg::Tensor audio = model_.decode_audio(decode_be_, codes);
    if (audio.device != mg::Device::CPU) audio = decode_be_.download(audio);
    mg::NormalizeParams np;
    np.strategy = static_cast<mg::NormalizeStrategy>(job.req.normalize);
    mg::normalize_audio(audio, model_.sample_rate(), np);
    std::vector<float> planar(audio.f32(), audio.f32() + audio.numel());
    job.finish_ok(std::move(planar), audio.dim(1), int(audio.dim(0)), model_.sample_rate());
  } catch (const std::exception& e) {
    job.finish_error(500, "server_error", std::string("decoding the audio failed: ") + e.what(), "error");
  }
}

}  // namespace mgserver
