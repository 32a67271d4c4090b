// An overfitting check on real music: LoRA on the tiny model, trained for a few seconds on the
// segments of one song, must at least halve the loss on those same segments. (Random weights: this
// shows the optimisation works end to end — data, codes, loss, gradients, AdamW — not any musical
// quality.)
#include <gtest/gtest.h>

#include <filesystem>

#include "kernels/cpu/threadpool.h"
#include "lm/generate.h"
#include "test_util.h"
#include "train/trainer.h"

namespace {

namespace fs = std::filesystem;
namespace tr = mg::train;

TEST(TrainOverfit, LoraHalvesTheLossOnOneSong) {
  const std::string audio = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(audio);
  const std::string dir = mgtest::test_case_dir();
  fs::create_directories(dir + "/data");
  for (const char* f : {"electro_2.mp3", "electro_2.json"})
    fs::create_symlink(fs::path(audio) / f, fs::path(dir) / "data" / f);
  auto be = mg::make_cpu_backend(2);
  const std::string tiny = mgtest::data_dir() + "/models/musicgen_tiny";
  auto model = mg::MusicGen::load(*be, tiny);
  mg::DatasetOptions d;
  d.data = dir + "/data";
  d.cache_dir = dir + "/cache";
  d.segment_seconds = 2.0;
  d.val_fraction = 0.0;
  d.model_key = mg::model_cache_key(tiny);
  const tr::TrainData data = tr::make_train_data(*be, *model, mg::prepare_dataset(*be, *model, d));
  ASSERT_GE(data.train.size(), 4u);

  tr::TrainOptions o;
  o.lora.r = 16;
  o.lora.lora_alpha = 32.0f;
  o.lora.targets = mg::all_lora_modules();
  o.adamw.lr = 3e-2f;
  o.steps = 40;
  o.warmup = 5;
  o.batch = 4;
  o.cond_dropout = 0.0;
  const tr::LoraTrainingModel tm(model->decoder(), model->config().delays());
  mg::cpu::ThreadPool pool(2);
  mg::cpu::Exec ex;
  ex.pool = &pool;
  tr::TrainState st;
  st.params = mg::init_lora_adapter(o.lora, model->config().decoder, true, 0);
  const double before = tr::validation_loss(ex, tm, o, data.train, st.params);
  for (int i = 0; i < o.steps; ++i) tr::train_step(ex, tm, o, data, st);
  const double after = tr::validation_loss(ex, tm, o, data.train, st.params);
  EXPECT_LT(after, 0.5 * before) << "training loss " << before << " -> " << after;
  std::printf("training loss on %zu segments: %.4f -> %.4f after %lld steps\n", data.train.size(), before, after,
              (long long)o.steps);
}

}  // namespace
