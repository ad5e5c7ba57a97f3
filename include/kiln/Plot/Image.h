//===- Image.h - Reading images -----------------------------------------*- C++ -*-===//
//
// Images a user gives a model: PNG (any bit depth and colour type, read
// through libpng's simplified API and converted to 8-bit RGB, alpha
// composited on black) and binary PPM (P6, maxval up to 255). The file is
// untrusted: its size, the header's dimensions and the decoded size are
// checked before anything is allocated, and a corrupt or truncated file is
// an error naming it, never a crash.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PLOT_IMAGE_H
#define KILN_PLOT_IMAGE_H

#include "kiln/Plot/Png.h"

#include <string>

namespace kiln::plot {

/// The most pixels a read image may have (a 16384 x 16384 image).
constexpr int64_t kMaxImagePixels = int64_t(1) << 28;

/// Reads a PNG or binary PPM file (told apart by their first bytes).
Expected<RgbImage> readImage(const std::string &path);

/// Decodes PNG or PPM bytes; `name` names the image in messages.
Expected<RgbImage> decodeImage(const std::string &bytes,
                               const std::string &name);

} // namespace kiln::plot

#endif // KILN_PLOT_IMAGE_H
