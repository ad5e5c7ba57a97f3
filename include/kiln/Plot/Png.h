//===- Png.h - RGB images and a PNG writer ----------------------*- C++ -*-===//
//
// An in-memory 8-bit RGB image and its PNG file: 8-bit RGB, no interlace,
// every row with filter 0 (none), one IDAT whose zlib stream comes from
// zlib's deflate at its best compression. A loss plot, mostly white with a
// few lines, compresses to about 9 KB (800x500 pixels, 1.2 MB raw).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PLOT_PNG_H
#define KILN_PLOT_PNG_H

#include "kiln/Runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::plot {

using runtime::Expected;
using runtime::Status;

/// An 8-bit RGB colour.
struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb &other) const {
    return r == other.r && g == other.g && b == other.b;
  }
  bool operator!=(const Rgb &other) const { return !(*this == other); }
};

/// A width x height RGB image, rows top to bottom, 3 bytes a pixel.
class RgbImage {
public:
  RgbImage(int width, int height, Rgb fill = {255, 255, 255});

  int width() const { return width_; }
  int height() const { return height_; }
  bool contains(int x, int y) const {
    return x >= 0 && y >= 0 && x < width_ && y < height_;
  }
  /// Sets a pixel; pixels outside the image are ignored.
  void set(int x, int y, Rgb colour);
  /// The pixel at (x, y), which must be inside the image.
  Rgb get(int x, int y) const;
  /// Fills the rectangle [x0, x1) x [y0, y1), clipped to the image.
  void fill(int x0, int y0, int x1, int y1, Rgb colour);
  const std::vector<uint8_t> &pixels() const { return pixels_; }

private:
  int width_;
  int height_;
  std::vector<uint8_t> pixels_;
};

/// The PNG file of `image`: signature, IHDR, one IDAT, IEND. Errors only
/// when zlib does (out of memory).
Expected<std::string> encodePng(const RgbImage &image);

/// Writes encodePng(image) to `path` atomically.
Status writePng(const std::string &path, const RgbImage &image);

} // namespace kiln::plot

#endif // KILN_PLOT_PNG_H
