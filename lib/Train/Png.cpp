//===- Png.cpp - RGB images and a dependency-free PNG writer --------------===//
//
// Stored deflate blocks carry at most 65,535 bytes each; the scanlines
// (a filter byte, then the row's pixels) are cut into as many as needed.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Png.h"
#include "kiln/Runtime/File.h"

#include <algorithm>
#include <array>

namespace kiln::train {

namespace {

constexpr size_t kMaxStoredBlock = 65535;

std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}

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
  appendBE32(png, crc32(png.data() + typeAt, 4 + data.size()));
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

uint32_t crc32(const void *data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = makeCrcTable();
  const auto *bytes = static_cast<const uint8_t *>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i)
    crc = table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t adler32(const void *data, size_t size, uint32_t adler) {
  constexpr uint32_t kModulus = 65521;
  const auto *bytes = static_cast<const uint8_t *>(data);
  uint32_t a = adler & 0xFFFF, b = adler >> 16;
  while (size > 0) {
    // 5552 bytes is the most that cannot overflow b before the modulo.
    size_t run = std::min<size_t>(size, 5552);
    for (size_t i = 0; i < run; ++i) {
      a += bytes[i];
      b += a;
    }
    a %= kModulus;
    b %= kModulus;
    bytes += run;
    size -= run;
  }
  return (b << 16) | a;
}

std::string encodePng(const RgbImage &image) {
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

  // zlib: CMF 0x78 (deflate, 32K window), FLG 0x01 (no dictionary, fastest;
  // 0x7801 is a multiple of 31), stored blocks, Adler-32 big-endian.
  std::string zlib = {'\x78', '\x01'};
  size_t offset = 0;
  do {
    size_t length = std::min(kMaxStoredBlock, raw.size() - offset);
    bool last = offset + length == raw.size();
    zlib.push_back(last ? '\x01' : '\x00'); // BFINAL, BTYPE = 00 (stored).
    zlib.push_back(static_cast<char>(length & 0xFF));
    zlib.push_back(static_cast<char>(length >> 8));
    zlib.push_back(static_cast<char>(~length & 0xFF));
    zlib.push_back(static_cast<char>((~length >> 8) & 0xFF));
    zlib.append(raw, offset, length);
    offset += length;
  } while (offset < raw.size());
  appendBE32(zlib, adler32(raw.data(), raw.size()));

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
  std::string png = encodePng(image);
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, png.data(), png.size(), path);
  });
}

} // namespace kiln::train
