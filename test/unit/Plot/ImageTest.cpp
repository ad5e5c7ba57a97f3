//===- ImageTest.cpp - Reading PNG and PPM images --------------------------===//
//
// readImage against the PNG writer (every pixel back), hand-made PPM files
// (comments, maxval scaling), and bad input: truncated and corrupted PNGs,
// PPM headers that lie about their size, other formats, huge dimensions.
//
//===----------------------------------------------------------------------===//

#include "kiln/Plot/Image.h"
#include "../ScratchDirTest.h"

#include <random>

using namespace kiln::plot;

namespace {

class ImageTest : public kiln::testing::ScratchDirTest {};

RgbImage randomImage(int width, int height, unsigned seed) {
  std::mt19937 rng(seed);
  RgbImage image(width, height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      image.set(x, y,
                Rgb{static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()),
                    static_cast<uint8_t>(rng())});
  return image;
}

void expectSame(const RgbImage &a, const RgbImage &b) {
  ASSERT_EQ(a.width(), b.width());
  ASSERT_EQ(a.height(), b.height());
  EXPECT_EQ(a.pixels(), b.pixels());
}

TEST_F(ImageTest, ReadsWhatThePngWriterWrites) {
  RgbImage image = randomImage(13, 7, 1);
  ASSERT_TRUE(writePng(path("a.png"), image));
  Expected<RgbImage> read = readImage(path("a.png"));
  ASSERT_TRUE(read) << read.status().message();
  expectSame(*read, image);
}

TEST_F(ImageTest, ReadsBinaryPpm) {
  // A comment in the header; maxval 255 is taken as is.
  std::string ppm = "P6\n# made by hand\n3 2\n255\n";
  RgbImage image = randomImage(3, 2, 2);
  ppm.append(reinterpret_cast<const char *>(image.pixels().data()),
             image.pixels().size());
  writeBytes("a.ppm", ppm);
  Expected<RgbImage> read = readImage(path("a.ppm"));
  ASSERT_TRUE(read) << read.status().message();
  expectSame(*read, image);

  // maxval 15: samples scaled to 0..255.
  writeBytes("b.ppm", std::string("P6 1 1 15\n") + '\x0f' + '\x00' + '\x07');
  Expected<RgbImage> scaled = readImage(path("b.ppm"));
  ASSERT_TRUE(scaled) << scaled.status().message();
  EXPECT_EQ(scaled->get(0, 0), (Rgb{255, 0, 119}));
}

TEST_F(ImageTest, RefusesBadFiles) {
  auto error = [&](const std::string &name, const std::string &bytes) {
    writeBytes(name, bytes);
    Expected<RgbImage> read = readImage(path(name));
    EXPECT_FALSE(read) << name;
    return read ? std::string() : read.status().message();
  };
  Expected<std::string> png = encodePng(randomImage(8, 8, 3));
  ASSERT_TRUE(png);
  std::string truncated = png->substr(0, png->size() / 2);
  EXPECT_NE(error("truncated.png", truncated).find("PNG"), std::string::npos);
  std::string flipped = *png;
  flipped[flipped.size() / 2] ^= 0x55; // Inside the IDAT: a CRC mismatch.
  EXPECT_NE(error("flipped.png", flipped).find("flipped.png"),
            std::string::npos);
  EXPECT_NE(error("short.ppm", "P6 4 4 255\nabc").find("needs 48"),
            std::string::npos);
  EXPECT_NE(error("huge.ppm", "P6 100000 100000 255\n").find("at most"),
            std::string::npos);
  EXPECT_NE(error("deep.ppm", "P6 1 1 65535\n123456").find("maxval"),
            std::string::npos);
  EXPECT_NE(error("ascii.ppm", "P3 1 1 255\n1 2 3\n").find("neither"),
            std::string::npos);
  EXPECT_NE(error("empty.png", "").find("neither"), std::string::npos);
  Expected<RgbImage> missing = readImage(path("missing.png"));
  EXPECT_FALSE(missing);
}

} // namespace
