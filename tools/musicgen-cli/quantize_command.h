// musicgen-cli's `quantize` subcommand: writes a quantized snapshot folder (public C API only).
#pragma once

namespace mgcli {

// `musicgen-cli quantize SRC DST --weights q8|q4`: argv[0] is "quantize". Returns the exit code
// (0 ok, 1 error, CLI11's codes for bad usage).
int quantize_main(int argc, char** argv);

}  // namespace mgcli
