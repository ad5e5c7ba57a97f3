//===- Png.h - RGB images and a dependency-free PNG writer ------*- C++ -*-===//
//
// The training driver draws its loss plot itself and must not need libpng
// or zlib, so this writes PNG directly: 8-bit RGB, no interlace, every row
// with filter 0, and the zlib stream made of stored (uncompressed) deflate
// blocks, with the CRC-32 and Adler-32 checksums computed here. The files
// are larger than compressed ones (an 800x500 plot is about 1.2 MB) and
// every PNG reader opens them.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_PNG_H
#define KILN_TRAIN_PNG_H

#include "kiln/Runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::train {

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

/// CRC-32 (ISO-HDLC, as PNG uses it) of `size` bytes, continuing `crc`.
uint32_t crc32(const void *data, size_t size, uint32_t crc = 0);

/// Adler-32 (as zlib uses it) of `size` bytes, continuing `adler`.
uint32_t adler32(const void *data, size_t size, uint32_t adler = 1);

/// The PNG file of `image`: signature, IHDR, one IDAT, IEND.
std::string encodePng(const RgbImage &image);

/// Writes encodePng(image) to `path` atomically.
Status writePng(const std::string &path, const RgbImage &image);

} // namespace kiln::train

#endif // KILN_TRAIN_PNG_H
