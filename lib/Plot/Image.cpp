//===- Image.cpp - Reading images -----------------------------------------===//
//
// PNG through libpng's simplified API (png_image): it validates the stream
// (chunk CRCs, zlib, the header) and converts any PNG to 8-bit RGB; the
// dimensions it reports are checked against kMaxImagePixels before the
// pixel buffer is allocated. PPM is parsed here: "P6", width, height and
// maxval separated by whitespace (with # comments), one whitespace byte,
// then exactly width x height x 3 bytes.
//
//===----------------------------------------------------------------------===//

#include "kiln/Plot/Image.h"
#include "kiln/Runtime/File.h"

#include <png.h>
#include <sys/stat.h>

#include <cctype>
#include <cstring>

namespace kiln::plot {

namespace {

Status imageError(const std::string &name, const std::string &problem) {
  return Status::error("image '" + name + "': " + problem);
}

Expected<RgbImage> decodePng(const std::string &bytes,
                             const std::string &name) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
    return imageError(name, std::string("not a valid PNG (") + image.message +
                                ")");
  int64_t pixels = static_cast<int64_t>(image.width) * image.height;
  if (image.width == 0 || image.height == 0 || pixels > kMaxImagePixels) {
    png_image_free(&image);
    return imageError(name, "is " + std::to_string(image.width) + "x" +
                                std::to_string(image.height) +
                                " pixels; at most " +
                                std::to_string(kMaxImagePixels) +
                                " pixels are read");
  }
  image.format = PNG_FORMAT_RGB;
  RgbImage out(static_cast<int>(image.width), static_cast<int>(image.height));
  // Transparent pixels are composited on black.
  png_color background = {0, 0, 0};
  std::vector<uint8_t> pixelsOut(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, &background, pixelsOut.data(),
                             /*row_stride=*/0, /*colormap=*/nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    return imageError(name, "corrupt PNG data (" + message + ")");
  }
  for (int y = 0; y < out.height(); ++y)
    for (int x = 0; x < out.width(); ++x) {
      const uint8_t *p = &pixelsOut[(static_cast<size_t>(y) * out.width() + x) * 3];
      out.set(x, y, Rgb{p[0], p[1], p[2]});
    }
  return out;
}

/// The next header number of a PPM, skipping whitespace and comments.
bool ppmNumber(const std::string &bytes, size_t &at, int64_t &value) {
  while (at < bytes.size()) {
    if (bytes[at] == '#') {
      while (at < bytes.size() && bytes[at] != '\n')
        ++at;
    } else if (std::isspace(static_cast<unsigned char>(bytes[at]))) {
      ++at;
    } else {
      break;
    }
  }
  if (at >= bytes.size() || !std::isdigit(static_cast<unsigned char>(bytes[at])))
    return false;
  value = 0;
  while (at < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[at]))) {
    value = value * 10 + (bytes[at] - '0');
    if (value > kMaxImagePixels)
      return false;
    ++at;
  }
  return true;
}

Expected<RgbImage> decodePpm(const std::string &bytes,
                             const std::string &name) {
  size_t at = 2;
  int64_t width = 0, height = 0, maxval = 0;
  if (!ppmNumber(bytes, at, width) || !ppmNumber(bytes, at, height) ||
      !ppmNumber(bytes, at, maxval))
    return imageError(name, "a PPM header needs width, height and maxval");
  if (width < 1 || height < 1 || width * height > kMaxImagePixels)
    return imageError(name, "is " + std::to_string(width) + "x" +
                                std::to_string(height) +
                                " pixels; at most " +
                                std::to_string(kMaxImagePixels) +
                                " pixels are read");
  if (maxval < 1 || maxval > 255)
    return imageError(name, "PPM maxval " + std::to_string(maxval) +
                                " is not supported (1 to 255: one byte a "
                                "sample)");
  if (at >= bytes.size() || !std::isspace(static_cast<unsigned char>(bytes[at])))
    return imageError(name, "no whitespace after the PPM header");
  ++at;
  size_t expected = static_cast<size_t>(width * height * 3);
  if (bytes.size() - at != expected)
    return imageError(name, "PPM pixel data is " +
                                std::to_string(bytes.size() - at) +
                                " bytes; " + std::to_string(width) + "x" +
                                std::to_string(height) + " RGB needs " +
                                std::to_string(expected));
  RgbImage out(static_cast<int>(width), static_cast<int>(height));
  auto scale = [&](char c) {
    return static_cast<uint8_t>(
        (static_cast<unsigned>(static_cast<unsigned char>(c)) * 255 +
         maxval / 2) / maxval);
  };
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      const char *p = &bytes[at + static_cast<size_t>((y * width + x) * 3)];
      out.set(static_cast<int>(x), static_cast<int>(y),
              Rgb{scale(p[0]), scale(p[1]), scale(p[2])});
    }
  return out;
}

} // namespace

Expected<RgbImage> decodeImage(const std::string &bytes,
                               const std::string &name) {
  if (bytes.size() >= 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0)
    return decodePng(bytes, name);
  if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] == '6')
    return decodePpm(bytes, name);
  return imageError(name, "is neither a PNG nor a binary PPM (P6) file");
}

Expected<RgbImage> readImage(const std::string &path) {
  // A PNG of kMaxImagePixels compresses to far less than this; the cap keeps
  // a huge file from being read whole.
  constexpr uint64_t kMaxImageFileBytes = uint64_t(1) << 30;
  struct stat info;
  if (::stat(path.c_str(), &info) == 0 &&
      static_cast<uint64_t>(info.st_size) > kMaxImageFileBytes)
    return imageError(path, "is " + std::to_string(info.st_size) +
                                " bytes; image files of at most " +
                                std::to_string(kMaxImageFileBytes) +
                                " bytes are read");
  Expected<std::string> bytes = runtime::readFile(path, "image");
  if (!bytes)
    return bytes.status();
  return decodeImage(*bytes, path);
}

} // namespace kiln::plot
