// bench-server-step: the server's shared decode step without HTTP, T5 or EnCodec: N requests (each
// a MusicGen::SequenceStepper, CFG on, as the server holds them) stepped together with
// decoder_step_states, then sampled. Prints per step the wall time and this process's CPU time
// (CPU time does not grow when other processes share the cores: use it on a loaded machine, with
// --threads 1, where no pool worker spins), and the ratio of N requests' request-steps per second
// to one request's. Usage:
//   bench-server-step MODEL_DIR [--threads T] [--requests N] [--steps S] [--weights f32|f16|bf16|q8|q4]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "lm/batched_step.h"
#include "lm/sequence_stepper.h"

namespace {

using Stepper = mg::MusicGen::SequenceStepper;

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

mg::DType weight_dtype(const std::string& w) {
  if (w == "q8") return mg::DType::Q8_0;
  if (w == "q4") return mg::DType::Q4_0;
  if (w == "f16") return mg::DType::F16;
  if (w == "bf16") return mg::DType::BF16;
  if (w != "f32") std::fprintf(stderr, "bench-server-step: unknown --weights %s, using f32\n", w.c_str());
  return mg::DType::F32;
}

struct StepTimes {
  double wall_ms = 0, cpu_ms = 0;
};

// `requests` steppers (10 s each, so that no window ends), `steps` shared steps after one warm-up.
StepTimes run(mg::MusicGen& model, mg::Backend& be, int requests, int steps) {
  std::vector<std::unique_ptr<Stepper>> st;
  for (int i = 0; i < requests; ++i) {
    mg::GenerateParams p;
    p.prompt = "benchmark " + std::to_string(i);
    p.seed = uint64_t(100 + i);
    p.duration_s = 10.0;
    p.guidance_scale = 3.0f;
    p.sampler.top_k = 250;
    p.max_window_s = model.max_duration_s();
    mg::Tensor text = model.project_text(be, model.text_hidden_states(be, model.tokenize(p.prompt)));
    st.push_back(std::make_unique<Stepper>(model, be, p, text));
  }
  const int K = model.config().decoder.num_codebooks;
  double w0 = 0, c0 = 0;
  for (int s = 0; s <= steps; ++s) {
    if (s == 1) {
      w0 = wall_seconds();
      c0 = cpu_seconds();
    }
    std::vector<mg::DecoderState*> states;
    int64_t rows = 0;
    for (auto& x : st) {
      states.push_back(&x->state());
      rows += x->rows();
    }
    mg::Tensor ids = mg::Tensor::empty(mg::DType::I32, {K, rows});
    int64_t r0 = 0;
    for (auto& x : st) {
      x->write_ids(ids.ptr<int32_t>(), rows, r0);
      r0 += x->rows();
    }
    mg::Tensor logits = mg::decoder_step_states(be, model.decoder(), states, be.upload(ids));
    std::vector<mg::Tensor> slices;
    r0 = 0;
    for (auto& x : st) {
      slices.push_back(logits.slice0(r0, x->rows()));
      r0 += x->rows();
    }
    for (size_t i = 0; i < st.size(); ++i) st[i]->finish_shared_step(slices[i]);
  }
  return {(wall_seconds() - w0) / steps * 1e3, (cpu_seconds() - c0) / steps * 1e3};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: %s MODEL_DIR [--threads T] [--requests N] [--steps S] [--weights f32|f16|bf16|q8|q4]\n",
                 argv[0]);
    return 2;
  }
  int threads = 1, requests = 8, steps = 20;
  std::string weights = "f32";
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--requests")) requests = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--weights")) weights = argv[i + 1];
    else {
      std::fprintf(stderr, "bench-server-step: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (requests < 1 || steps < 1) {
    std::fprintf(stderr, "bench-server-step: --requests and --steps must be at least 1\n");
    return 2;
  }
  try {
    auto be = mg::make_cpu_backend(threads);
    auto model = mg::MusicGen::load(*be, argv[1], weight_dtype(weights));
    const StepTimes one = run(*model, *be, 1, steps);
    const StepTimes many = run(*model, *be, requests, steps);
    std::printf("%s weights %s, %d threads, %d steps\n", argv[1], weights.c_str(), threads, steps);
    std::printf("1 request:   step %8.2f ms wall %8.2f ms CPU\n", one.wall_ms, one.cpu_ms);
    std::printf("%d requests: step %8.2f ms wall %8.2f ms CPU\n", requests, many.wall_ms, many.cpu_ms);
    std::printf("request-steps/s, %d vs 1: x%.2f by wall time, x%.2f by CPU time\n", requests,
                requests * one.wall_ms / many.wall_ms, requests * one.cpu_ms / many.cpu_ms);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-server-step: %s\n", e.what());
    return 1;
  }
  return 0;
}
