// Renders the chroma into an RGB buffer (cells, axis labels in a 5x7 bitmap font, second ticks) and
// writes it with libpng. libpng reports errors by longjmp: write_rgb_png keeps only plain C objects
// alive across its setjmp and turns a failure into an mg::Error after cleaning up. libpng is optional
// (MUSICGEN_PNG): without it the picture is refused with an error that says so.
#include "conditioning/chroma_png.h"

#ifdef MUSICGEN_HAVE_PNG
#include <png.h>
#endif

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "codec/atomic_file.h"

namespace mg {
namespace {

struct Rgb {
  uint8_t r, g, b;
};

constexpr Rgb kBackground = {255, 255, 255};
constexpr Rgb kInk = {40, 40, 40};
constexpr Rgb kFrame = {120, 120, 120};

// 5x7 glyphs, one 5-bit row mask per line (bit 4 = leftmost pixel).
struct Glyph {
  char c;
  uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}}, {'C', {14, 17, 16, 16, 16, 17, 14}},
    {'D', {30, 17, 17, 17, 17, 17, 30}}, {'E', {31, 16, 16, 30, 16, 16, 31}}, {'F', {31, 16, 16, 30, 16, 16, 16}},
    {'G', {14, 17, 16, 23, 17, 17, 15}}, {'#', {10, 10, 31, 10, 31, 10, 10}}, {'0', {14, 17, 19, 21, 25, 17, 14}},
    {'1', {4, 12, 4, 4, 4, 4, 14}},      {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
    {'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},   {'6', {6, 8, 16, 30, 17, 17, 14}},
    {'7', {31, 1, 2, 4, 8, 8, 8}},       {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
    {'s', {0, 0, 15, 16, 14, 1, 30}},
};
constexpr int kGlyphW = 5, kGlyphH = 7, kAdvance = 6;

const char* const kNoteNames[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};

// Viridis at nine evenly spaced points, linearly interpolated.
Rgb viridis(float v) {
  static constexpr Rgb kStops[9] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
                                    {39, 173, 129}, {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
  if (!(v > 0.0f)) v = 0.0f;  // NaN too
  v = std::min(v, 1.0f) * 8.0f;
  const int i = std::min(int(v), 7);
  const float f = v - float(i);
  auto mix = [f](uint8_t a, uint8_t b) { return uint8_t(std::lround(a + (b - a) * f)); };
  return {mix(kStops[i].r, kStops[i + 1].r), mix(kStops[i].g, kStops[i + 1].g), mix(kStops[i].b, kStops[i + 1].b)};
}

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(size_t(w) * size_t(h) * 3) {
    for (size_t i = 0; i < px_.size(); i += 3) {
      px_[i] = kBackground.r;
      px_[i + 1] = kBackground.g;
      px_[i + 2] = kBackground.b;
    }
  }
  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    uint8_t* p = &px_[(size_t(y) * size_t(w_) + size_t(x)) * 3];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
  void fill(int x, int y, int w, int h, Rgb c) {
    for (int j = 0; j < h; ++j)
      for (int i = 0; i < w; ++i) set(x + i, y + j, c);
  }
  static int text_width(const std::string& s) { return s.empty() ? 0 : int(s.size()) * kAdvance - 1; }
  void text(int x, int y, const std::string& s, Rgb c) {  // (x, y) = top-left of the first glyph
    for (char ch : s) {
      for (const Glyph& g : kFont) {
        if (g.c != ch) continue;
        for (int r = 0; r < kGlyphH; ++r)
          for (int b = 0; b < kGlyphW; ++b)
            if (g.rows[r] & (1 << (kGlyphW - 1 - b))) set(x + b, y + r, c);
      }
      x += kAdvance;
    }
  }
  int width() const { return w_; }
  int height() const { return h_; }
  const std::vector<uint8_t>& pixels() const { return px_; }

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

constexpr int kLeft = 24, kTop = 8, kRight = 18, kBottom = 22;

#ifdef MUSICGEN_HAVE_PNG
// libpng's output goes through the AtomicFile, each write checked. On a failure the callback
// leaves by png_error (a longjmp to write_rgb_png's setjmp); its own frame holds no C++ objects.
void png_write_cb(png_structp png, png_bytep data, size_t n) {
  if (!static_cast<AtomicFile*>(png_get_io_ptr(png))->write(data, n)) png_error(png, "write failed");
}
void png_flush_cb(png_structp) {}
// Quiet: the AtomicFile keeps the reason, and the mg::Error reports it.
void png_error_cb(png_structp png, png_const_charp) { png_longjmp(png, 1); }
void png_warning_cb(png_structp, png_const_charp) {}

// Writes 8-bit RGB rows. Only C objects live across setjmp (libpng's error path longjmps here).
bool write_rgb_png(AtomicFile* out, int w, int h, const png_bytep* rows) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_error_cb, png_warning_cb);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, png_uint_32(w), png_uint_32(h), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, const_cast<png_bytepp>(rows));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

// The canvas as a PNG file at `path`, through AtomicFile (temporary file, checked writes, rename).
void write_canvas_png(const std::string& path, const Canvas& cv) {
  std::vector<png_bytep> rows(size_t(cv.height()));
  for (int y = 0; y < cv.height(); ++y)
    rows[size_t(y)] = const_cast<png_bytep>(cv.pixels().data() + size_t(y) * size_t(cv.width()) * 3);
  try {
    AtomicFile out(path);
    if (!write_rgb_png(&out, cv.width(), cv.height(), rows.data())) out.fail("libpng failed");
    out.commit();
  } catch (const Error& e) {
    throw Error(strcat("write_chroma_png: ", e.what()));
  }
}
#else
void write_canvas_png(const std::string& path, const Canvas&) {
  throw Error(strcat("write_chroma_png: cannot write '", path, "': this libmusicgen was built without libpng ",
                     "(install libpng's development files and rebuild with MUSICGEN_PNG=AUTO or ON)"));
}
#endif

}  // namespace

ChromaPngLayout chroma_png_layout(int64_t frames, const ChromaPngOptions& o) {
  MG_CHECK(o.cell_width > 0 && o.cell_height >= kGlyphH && o.frame_rate > 0, "chroma_png: bad options (cell ",
           o.cell_width, "x", o.cell_height, ", frame rate ", o.frame_rate, ")");
  MG_CHECK(frames > 0 && frames * o.cell_width <= 100000, "chroma_png: ", frames, " frames cannot be drawn");
  ChromaPngLayout l;
  l.plot_x = kLeft;
  l.plot_y = kTop;
  l.width = kLeft + int(frames) * o.cell_width + kRight;
  l.height = kTop + 12 * o.cell_height + kBottom;
  // The shortest "nice" spacing whose labels stay at least 36 px apart.
  for (double s : {1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0}) {
    l.tick_seconds = s;
    if (s * o.frame_rate * o.cell_width >= 36) break;
  }
  return l;
}

void write_chroma_png(const std::string& path, const Tensor& chroma, const ChromaPngOptions& o) {
  MG_CHECK(chroma.ndim() == 2 && chroma.dim(1) == 12 && chroma.dtype == DType::F32 && chroma.device == Device::CPU,
           "write_chroma_png(", path, "): expected a CPU f32 [T, 12] chroma, got ", shape_str(chroma.shape));
  const int64_t frames = chroma.dim(0);
  const ChromaPngLayout l = chroma_png_layout(frames, o);
  Canvas cv(l.width, l.height);
  const int plot_w = int(frames) * o.cell_width, plot_h = 12 * o.cell_height;

  for (int64_t t = 0; t < frames; ++t)
    for (int pc = 0; pc < 12; ++pc) {
      const int y = l.plot_y + (11 - pc) * o.cell_height;  // C at the bottom
      cv.fill(l.plot_x + int(t) * o.cell_width, y, o.cell_width, o.cell_height, viridis(chroma.f32()[t * 12 + pc]));
    }
  for (int pc = 0; pc < 12; ++pc) {
    const std::string name = kNoteNames[pc];
    const int y = l.plot_y + (11 - pc) * o.cell_height + (o.cell_height - kGlyphH) / 2;
    cv.text(l.plot_x - 4 - Canvas::text_width(name), y, name, kInk);
  }
  // Frame around the grid, then second ticks with labels below it.
  cv.fill(l.plot_x - 1, l.plot_y - 1, plot_w + 2, 1, kFrame);
  cv.fill(l.plot_x - 1, l.plot_y + plot_h, plot_w + 2, 1, kFrame);
  cv.fill(l.plot_x - 1, l.plot_y - 1, 1, plot_h + 2, kFrame);
  cv.fill(l.plot_x + plot_w, l.plot_y - 1, 1, plot_h + 2, kFrame);
  const double seconds = double(frames) / o.frame_rate;
  for (int k = 0; k * l.tick_seconds <= seconds + 1e-9; ++k) {
    const double s = k * l.tick_seconds;
    const int x = l.plot_x + int(std::lround(s * o.frame_rate * o.cell_width));
    cv.fill(x, l.plot_y + plot_h + 1, 1, 4, kInk);
    const std::string label = std::to_string(int(std::lround(s))) + "s";
    cv.text(x - Canvas::text_width(label) / 2, l.plot_y + plot_h + 7, label, kInk);
  }

  write_canvas_png(path, cv);
}

}  // namespace mg
