// musicgen-cli's `train` subcommand: LoRA fine-tuning on a folder of music (public C API only).
#pragma once

namespace mgcli {

// `musicgen-cli train --model DIR --data DIR --out DIR [...]`: argv[0] is "train". Returns the exit
// code (0 ok, 1 error, CLI11's codes for bad usage).
int train_main(int argc, char** argv);

}  // namespace mgcli
