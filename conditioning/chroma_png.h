// A picture of a chroma condition (what the melody model is given): 12 rows, C at the bottom and B
// at the top like a piano roll, note names on the left axis in a tiny built-in bitmap font, time
// across with second ticks, each cell coloured by its value (0 dark blue .. 1 yellow, viridis).
// Written with libpng; a build without it (MUSICGEN_PNG=OFF) throws mg::Error saying so.
#pragma once

#include <string>

#include "kernels/tensor.h"

namespace mg {

struct ChromaPngOptions {
  int cell_width = 4;            // pixels per chroma frame
  int cell_height = 14;          // pixels per pitch class
  double frame_rate = 7.8125;    // chroma frames per second (32000 / 4096), for the time axis
};

struct ChromaPngLayout {
  int width = 0, height = 0;     // the whole image
  int plot_x = 0, plot_y = 0;    // top-left of the cell grid
  double tick_seconds = 1;       // spacing of the labelled time ticks
};

ChromaPngLayout chroma_png_layout(int64_t frames, const ChromaPngOptions& options);

// chroma: f32 [T, 12] on the CPU, values in [0, 1] (one-hot or the pre-argmax features; values
// outside are clamped). The file is written under a temporary name and renamed, so a failure never
// leaves a partial PNG; throws mg::Error naming the path.
void write_chroma_png(const std::string& path, const Tensor& chroma, const ChromaPngOptions& options = {});

}  // namespace mg
