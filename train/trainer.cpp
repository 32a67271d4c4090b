#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "codec/atomic_file.h"
#include "kernels/common.h"
#include "kernels/cpu/threadpool.h"
#include "train/dataset.h"

namespace mg::train {

TrainData make_train_data(Backend& be, const MusicGen& model, const Dataset& ds) {
  std::map<std::string, Tensor> texts;  // one T5 run per distinct text
  auto text_of = [&](const TrainingSegment& seg) -> Tensor {
    const std::string& t = ds.tracks.at(seg.track).text;
    if (t.empty()) return Tensor();  // the null condition
    auto it = texts.find(t);
    if (it == texts.end()) {
      Tensor h = model.text_hidden_states(be, model.tokenize(t));
      it = texts.emplace(t, be.download(model.project_text(be, h)).as_f32()).first;
    }
    return it->second;
  };
  TrainData d;
  for (const TrainingSegment& s : ds.train) d.train.push_back({s.codes, text_of(s)});
  for (const TrainingSegment& s : ds.validation) d.validation.push_back({s.codes, text_of(s)});
  return d;
}

namespace {

// A uniform double in [0, 1) and an index in [0, n) from the generator, the same on every
// standard library (std's distributions are not specified bit for bit).
double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }
size_t index_below(std::mt19937_64& rng, size_t n) { return size_t(rng() % uint64_t(n)); }

// Segments may differ in length (a file shorter than a segment is one short segment): a batch is
// cut to its shortest member.
std::vector<TrainSample> cut_to_shortest(std::vector<TrainSample> b) {
  size_t T = SIZE_MAX;
  for (const TrainSample& s : b) T = std::min(T, s.codes[0].size());
  for (TrainSample& s : b)
    for (auto& row : s.codes) row.resize(T);
  return b;
}

}  // namespace

double train_step(const cpu::Exec& ex, const LoraTrainingModel& tm, const TrainOptions& o, const TrainData& data,
                  TrainState& st, double* grad_norm) {
  MG_CHECK(!data.train.empty(), "training: no training segments");
  LoraAdapter grads = zero_like(st.params);
  double loss = 0.0;
  const float scale = 1.0f / float(o.accumulate);
  for (int a = 0; a < o.accumulate; ++a) {
    std::vector<TrainSample> b;
    for (int i = 0; i < o.batch; ++i) b.push_back(data.train[index_below(st.rng, data.train.size())]);
    if (uniform01(st.rng) < o.cond_dropout)
      for (TrainSample& s : b) s.text = Tensor();
    loss += scale * tm.forward_backward(ex, st.params, cut_to_shortest(std::move(b)), &grads, scale, &st.rng).loss;
  }
  const double norm = clip_grad_norm(grads, o.clip);
  if (grad_norm) *grad_norm = norm;
  const int64_t warmup = o.warmup >= 0 ? o.warmup : o.steps / 20;
  adamw_step(st.params, grads, st.opt, o.adamw, double(o.adamw.lr) * lr_factor(st.step, warmup, o.steps));
  st.step += 1;
  return loss;
}

double validation_loss(const cpu::Exec& ex, const LoraTrainingModel& tm, const TrainOptions& o,
                       const std::vector<TrainSample>& val, const LoraAdapter& params) {
  if (val.empty()) return std::nan("");
  double sum = 0.0;
  int n = 0;
  for (size_t i = 0; i < val.size(); i += size_t(o.batch)) {
    std::vector<TrainSample> b(val.begin() + i, val.begin() + std::min(val.size(), i + size_t(o.batch)));
    sum += tm.forward_backward(ex, params, cut_to_shortest(std::move(b)), nullptr).loss;
    ++n;
  }
  return sum / n;
}

// ---- checkpoints: trainer_state.bin = magic, step, the generator's state (text), then for every
// optimiser tensor its size and the m and v floats, all little-endian as this machine writes them
// (a checkpoint resumes on the machine that wrote it).
namespace {

constexpr char kMagic[8] = {'M', 'G', 'T', 'R', 'N', 'S', 'T', '1'};

void put(std::string& s, const void* p, size_t n) { s.append(static_cast<const char*>(p), n); }
template <class T>
void put(std::string& s, T v) { put(s, &v, sizeof v); }

struct Reader {
  const std::string& s;
  size_t at = 0;
  std::string path;
  void get(void* p, size_t n) {
    MG_CHECK(at + n <= s.size(), "checkpoint ", path, " is truncated (", s.size(), " bytes): delete it or train again");
    std::memcpy(p, s.data() + at, n);
    at += n;
  }
  template <class T>
  T get() {
    T v;
    get(&v, sizeof v);
    return v;
  }
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MG_CHECK(f.good(), "cannot read the checkpoint file ", path, ": run without --resume to start a new training");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

void save_checkpoint(const std::string& dir, const TrainState& st) {
  save_peft_adapter(dir, st.params);
  std::string s;
  put(s, kMagic, sizeof kMagic);
  put(s, st.step);
  put(s, st.opt.step);
  std::ostringstream rs;
  rs << st.rng;
  const std::string rng = rs.str();
  put(s, uint64_t(rng.size()));
  put(s, rng.data(), rng.size());
  put(s, uint64_t(st.opt.m.size()));
  for (size_t t = 0; t < st.opt.m.size(); ++t) {
    put(s, uint64_t(st.opt.m[t].size()));
    put(s, st.opt.m[t].data(), st.opt.m[t].size() * sizeof(float));
    put(s, st.opt.v[t].data(), st.opt.v[t].size() * sizeof(float));
  }
  write_file_atomic(dir + "/trainer_state.bin", s.data(), s.size());
}

TrainState load_checkpoint(const std::string& dir) {
  TrainState st;
  st.params = load_peft_adapter(dir);
  const std::string path = dir + "/trainer_state.bin";
  const std::string s = read_all(path);
  Reader r{s, 0, path};
  char magic[8];
  r.get(magic, 8);
  MG_CHECK(std::memcmp(magic, kMagic, 8) == 0, path, " is not a musicgen training state");
  st.step = r.get<int64_t>();
  st.opt.step = r.get<int64_t>();
  std::string rng(r.get<uint64_t>(), '\0');
  r.get(rng.data(), rng.size());
  std::istringstream(rng) >> st.rng;
  const uint64_t n = r.get<uint64_t>();
  MG_CHECK(n == 0 || n == 2 * st.params.weights.size(), path, " holds ", n, " optimiser tensors, the adapter ",
           2 * st.params.weights.size(), ": the checkpoint's files do not belong together");
  for (uint64_t t = 0; t < n; ++t) {
    const uint64_t len = r.get<uint64_t>();
    st.opt.m.emplace_back(len);
    st.opt.v.emplace_back(len);
    r.get(st.opt.m.back().data(), len * sizeof(float));
    r.get(st.opt.v.back().data(), len * sizeof(float));
  }
  return st;
}

void run_training(Backend& be, const MusicGen& model, const std::string& model_path, const TrainOptions& o,
                  const std::function<void(const std::string&)>& log) {
  MG_CHECK(o.steps >= 1 && o.batch >= 1 && o.accumulate >= 1, "train: steps (", o.steps, "), batch (", o.batch,
           ") and accumulation (", o.accumulate, ") must be at least 1");
  MG_CHECK(!o.out.empty(), "train: no output folder given");
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  MG_CHECK(std::filesystem::is_directory(o.out), "train: cannot create the output folder ", o.out, " (",
           ec.message(), "): check the path and its permissions");
  DatasetOptions dopt;
  dopt.data = o.data;
  dopt.cache_dir = o.cache_dir.empty() ? o.out + "/codes-cache" : o.cache_dir;
  dopt.segment_seconds = o.segment_seconds;
  dopt.val_fraction = o.val_fraction;
  dopt.seed = o.seed;
  dopt.model_key = model_cache_key(model_path);
  const Dataset ds = prepare_dataset(be, model, dopt, log);
  MG_CHECK(!ds.train.empty(), "train: the data in ", o.data, " gave no training segment (every file went to ",
           "validation?): add files or lower --val");
  const TrainData data = make_train_data(be, model, ds);
  log("data: " + std::to_string(ds.tracks.size()) + " files, " + std::to_string(data.train.size()) +
      " training and " + std::to_string(data.validation.size()) + " validation segments (" +
      std::to_string(ds.encoded_tracks) + " encoded, " + std::to_string(ds.cached_tracks) + " from the cache)");

  TrainState st;
  const std::string ckpt = o.out + "/checkpoint";
  if (o.resume) {
    st = load_checkpoint(ckpt);
    check_lora_adapter(st.params, model.config().decoder, true);
    log("resumed from " + ckpt + " at step " + std::to_string(st.step));
  } else {
    st.params = init_lora_adapter(o.lora, model.config().decoder, true, o.seed);
    st.params.config.base_model_name_or_path = model_path;
    st.rng.seed(o.seed);
  }
  cpu::ThreadPool pool(o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency())));
  cpu::Exec ex;
  ex.pool = &pool;
  const LoraTrainingModel tm(model.decoder(), model.config().delays());
  auto t0 = std::chrono::steady_clock::now();
  int64_t since = 0;
  double loss_sum = 0.0;
  char line[256];
  while (st.step < o.steps) {
    double norm = 0.0;
    loss_sum += train_step(ex, tm, o, data, st, &norm);
    ++since;
    const bool last = st.step == o.steps;
    if (st.step % o.log_every == 0 || last) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::snprintf(line, sizeof line, "step %lld/%lld  loss %.4f  grad-norm %.3f  lr %.2e  %.2f steps/s",
                    (long long)st.step, (long long)o.steps, loss_sum / since, norm,
                    o.adamw.lr * lr_factor(st.step - 1, o.warmup >= 0 ? o.warmup : o.steps / 20, o.steps),
                    since / std::max(secs, 1e-9));
      log(line);
      t0 = std::chrono::steady_clock::now();
      since = 0;
      loss_sum = 0.0;
    }
    if (!data.validation.empty() && ((o.val_every > 0 && st.step % o.val_every == 0) || last)) {
      std::snprintf(line, sizeof line, "step %lld  validation loss %.4f", (long long)st.step,
                    validation_loss(ex, tm, o, data.validation, st.params));
      log(line);
    }
    if ((o.save_every > 0 && st.step % o.save_every == 0) || last) save_checkpoint(ckpt, st);
  }
  save_peft_adapter(o.out, st.params);
  log("adapter written to " + o.out + " (load it with --lora " + o.out + ")");
}

}  // namespace mg::train
