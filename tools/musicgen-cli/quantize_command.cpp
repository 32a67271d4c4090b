#include "quantize_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "musicgen.h"

namespace mgcli {

int quantize_main(int argc, char** argv) {
  CLI::App app("Write a quantized snapshot: the decoder's projections and LM heads as q8_0 or q4_0 blocks, "
               "everything else copied unchanged. Load it with the same --weights.",
               "musicgen-cli quantize");
  std::string src, dst, weights;
  app.add_option("SRC", src, "MusicGen snapshot folder (f32, f16 or bf16 weights)")->required();
  app.add_option("DST", dst, "New folder to write (must not exist)")->required();
  app.add_option("--weights", weights, "Quantization scheme: q8 (q8_0, ~1/4 of f32) or q4 (q4_0, ~1/7)")
      ->required()
      ->check(CLI::IsMember({"q8", "q4"}));
  CLI11_PARSE(app, argc, argv);
  const musicgen_weights scheme = weights == "q8" ? MUSICGEN_WEIGHTS_Q8 : MUSICGEN_WEIGHTS_Q4;
  if (musicgen_quantize_snapshot(src.c_str(), dst.c_str(), scheme) != MUSICGEN_OK) {
    std::fprintf(stderr, "error: %s\n", musicgen_last_error());
    return 1;
  }
  std::fprintf(stderr, "wrote %s (%s)\n", dst.c_str(), weights == "q8" ? "q8_0" : "q4_0");
  return 0;
}

}  // namespace mgcli
