//===- PlotTest.cpp - Loss curves as a PNG --------------------------------===//
//
// PNG files decoded back by a reader here (chunks, CRCs checked with a
// bitwise CRC-32 of its own, IHDR, the IDAT inflated with zlib, which also
// checks the Adler-32, filter bytes) and compared with the image they came
// from; a typical loss plot's file size; a written plot inspected: size,
// background, the curves where they should be, text beside the axes.
//
//===----------------------------------------------------------------------===//

#include "kiln/Plot/Plot.h"
#include "../ScratchDirTest.h"

#include <zlib.h>

#include <cmath>
#include <random>

using namespace kiln::plot;
using kiln::testing::ScratchDirTest;

namespace {

using PlotTest = ScratchDirTest;

/// Bitwise CRC-32, deliberately not zlib's table-driven one the writer uses.
uint32_t referenceCrc32(const std::string &bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

uint32_t be32(const std::string &bytes, size_t at) {
  return (uint32_t(uint8_t(bytes[at])) << 24) |
         (uint32_t(uint8_t(bytes[at + 1])) << 16) |
         (uint32_t(uint8_t(bytes[at + 2])) << 8) |
         uint32_t(uint8_t(bytes[at + 3]));
}

/// A PNG decoded by the test's own reader, or the reason it is not valid.
struct DecodedPng {
  std::string error;
  int width = 0, height = 0;
  std::vector<std::string> chunkTypes;
  int firstBlockType = -1; // BTYPE of the first deflate block.
  std::string pixels;      // RGB, rows top to bottom.

  Rgb at(int x, int y) const {
    size_t i = (static_cast<size_t>(y) * width + x) * 3;
    return {uint8_t(pixels[i]), uint8_t(pixels[i + 1]), uint8_t(pixels[i + 2])};
  }
};

DecodedPng decodePng(const std::string &png) {
  DecodedPng out;
  if (png.substr(0, 8) != std::string("\x89PNG\r\n\x1a\n", 8)) {
    out.error = "bad signature";
    return out;
  }
  std::string idat;
  size_t at = 8;
  while (at < png.size()) {
    if (png.size() - at < 12) {
      out.error = "truncated chunk";
      return out;
    }
    uint32_t length = be32(png, at);
    if (png.size() - at - 12 < length) {
      out.error = "chunk runs past the end";
      return out;
    }
    std::string type = png.substr(at + 4, 4);
    std::string data = png.substr(at + 8, length);
    if (referenceCrc32(type + data) != be32(png, at + 8 + length)) {
      out.error = "bad CRC on " + type;
      return out;
    }
    out.chunkTypes.push_back(type);
    if (type == "IHDR") {
      out.width = static_cast<int>(be32(data, 0));
      out.height = static_cast<int>(be32(data, 4));
      if (data.substr(8) != std::string("\x08\x02\0\0\0", 5)) {
        out.error = "not 8-bit RGB, deflate, no interlace";
        return out;
      }
    } else if (type == "IDAT") {
      idat += data;
    }
    at += 12 + length;
  }
  // zlib: deflate with at most a 32K window and no preset dictionary,
  // inflating to exactly the scanlines, nothing after the Adler-32. The
  // type of the first block tells stored data from compressed.
  if (idat.size() < 6 || (uint8_t(idat[0]) & 0x0F) != 8 ||
      (uint8_t(idat[0]) >> 4) > 7 || (uint8_t(idat[1]) & 0x20) != 0 ||
      ((uint8_t(idat[0]) << 8) | uint8_t(idat[1])) % 31 != 0) {
    out.error = "bad zlib header";
    return out;
  }
  out.firstBlockType = (uint8_t(idat[2]) >> 1) & 3;
  size_t stride = static_cast<size_t>(out.width) * 3 + 1;
  std::string raw(stride * out.height + 1, '\0');
  uLongf rawSize = raw.size();
  uLong idatSize = idat.size();
  int result =
      uncompress2(reinterpret_cast<Bytef *>(raw.data()), &rawSize,
                  reinterpret_cast<const Bytef *>(idat.data()), &idatSize);
  if (result != Z_OK) {
    out.error =
        "zlib cannot inflate the IDAT data (" + std::to_string(result) + ")";
    return out;
  }
  if (idatSize != idat.size()) {
    out.error = "bytes after the zlib stream";
    return out;
  }
  if (rawSize != stride * out.height) {
    out.error = "wrong amount of image data";
    return out;
  }
  for (int y = 0; y < out.height; ++y) {
    if (raw[y * stride] != 0) {
      out.error = "unexpected filter type";
      return out;
    }
    out.pixels += raw.substr(y * stride + 1, stride - 1);
  }
  return out;
}

std::string pixelsOf(const RgbImage &image) {
  return std::string(image.pixels().begin(), image.pixels().end());
}

TEST(PngTest, EncodesSmallImagesExactly) {
  RgbImage image(3, 2, {1, 2, 3});
  image.set(2, 1, {250, 128, 7});
  image.set(5, 5, {0, 0, 0}); // Outside: ignored.
  Expected<std::string> encoded = encodePng(image);
  ASSERT_TRUE(encoded) << encoded.message();
  DecodedPng png = decodePng(*encoded);
  ASSERT_EQ(png.error, "");
  EXPECT_EQ(png.chunkTypes, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  EXPECT_EQ(png.width, 3);
  EXPECT_EQ(png.height, 2);
  EXPECT_EQ(png.at(0, 0), (Rgb{1, 2, 3}));
  EXPECT_EQ(png.at(2, 1), (Rgb{250, 128, 7}));
  EXPECT_EQ(png.pixels, pixelsOf(image));
}

TEST(PngTest, RoundTripsImagesThatDoNotCompress) {
  // Random pixels: deflate cannot shrink them, and the stream is larger
  // than the scanlines.
  std::mt19937 rng(7);
  RgbImage image(301, 203);
  for (int y = 0; y < image.height(); ++y)
    for (int x = 0; x < image.width(); ++x)
      image.set(x, y,
                {uint8_t(rng() & 0xFF), uint8_t(rng() & 0xFF),
                 uint8_t(rng() & 0xFF)});
  Expected<std::string> encoded = encodePng(image);
  ASSERT_TRUE(encoded) << encoded.message();
  DecodedPng png = decodePng(*encoded);
  ASSERT_EQ(png.error, "");
  EXPECT_EQ(png.width, 301);
  EXPECT_EQ(png.height, 203);
  EXPECT_EQ(png.pixels, pixelsOf(image));
}

TEST_F(PlotTest, CompressesATypicalLossPlot) {
  // A 1000-step run: train loss every step, falling from about 11 to 3.3
  // with noise, and eval loss every 100 steps.
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> noise(-0.2, 0.2);
  PlotSeries train{"train loss", {}, {}};
  PlotSeries eval{"eval loss", {}, {}};
  for (int step = 0; step <= 1000; ++step) {
    double loss =
        3.2 + 7.6 * std::exp(-step / 120.0) + 0.4 * std::exp(-step / 600.0);
    if (step > 0) {
      train.x.push_back(step);
      train.y.push_back(loss + noise(rng));
    }
    if (step % 100 == 0) {
      eval.x.push_back(step);
      eval.y.push_back(loss + 0.08);
    }
  }
  PlotOptions options;
  options.title = "loss of runs/gpt2-tiny";
  Expected<RgbImage> image = renderLossPlot({train, eval}, options);
  ASSERT_TRUE(image) << image.message();
  ASSERT_TRUE(writePng(path("loss.png"), *image));
  std::string file = readBytes("loss.png");

  DecodedPng png = decodePng(file);
  ASSERT_EQ(png.error, "");
  EXPECT_NE(png.firstBlockType, 0) << "stored, not compressed";
  EXPECT_EQ(png.pixels, pixelsOf(*image));
  // 1,200,500 bytes of scanlines; written stored (as Kiln once did) the file
  // was 1,200,658 bytes. Compressed it is about 9 KB; allow for other zlib
  // versions.
  EXPECT_LT(file.size(), 40000u);
}

TEST_F(PlotTest, WritesAChartWithCurvesAxesAndLegend) {
  // Train loss falls from 10 to 3 over 1000 steps; eval loss every 100.
  PlotSeries train{"train loss", {}, {}};
  for (int step = 0; step <= 1000; step += 5) {
    train.x.push_back(step);
    train.y.push_back(3 + 7 * std::exp(-step / 150.0));
  }
  PlotSeries eval{"eval loss", {}, {}};
  for (int step = 100; step <= 1000; step += 100) {
    eval.x.push_back(step);
    eval.y.push_back(3.2 + 7 * std::exp(-step / 150.0));
  }
  PlotOptions options;
  options.title = "gpt2-tiny on fortunes";
  ASSERT_TRUE(writeLossPlot(path("loss.png"), {train, eval}, options));
  EXPECT_EQ(listDir(), std::vector<std::string>{"loss.png"});

  DecodedPng png = decodePng(readBytes("loss.png"));
  ASSERT_EQ(png.error, "");
  ASSERT_EQ(png.width, 800);
  ASSERT_EQ(png.height, 500);
  Expected<RgbImage> image = renderLossPlot({train, eval}, options);
  ASSERT_TRUE(image) << image.message();
  EXPECT_EQ(png.pixels, pixelsOf(*image));
  const Rgb white{255, 255, 255};
  EXPECT_EQ(png.at(0, 0), white);
  EXPECT_EQ(png.at(799, 499), white);

  // The train curve: found in most columns it spans, falling to the right
  // (y grows downwards), never rising by more than its brush.
  const Rgb trainColour = plotColour(0);
  int columnsWithCurve = 0, firstColumn = -1, lastColumn = -1;
  double previousY = -1;
  int rises = 0;
  for (int x = 0; x < png.width; ++x) {
    int lowest = -1;
    for (int y = 0; y < png.height; ++y)
      if (png.at(x, y) == trainColour)
        lowest = y;
    if (lowest < 0)
      continue;
    // Skip the legend's sample line in the top right.
    if (x > 560 && lowest < 120)
      continue;
    ++columnsWithCurve;
    if (firstColumn < 0)
      firstColumn = x;
    lastColumn = x;
    if (previousY >= 0 && lowest < previousY - 2)
      ++rises;
    previousY = lowest;
  }
  ASSERT_GT(lastColumn - firstColumn, 500);
  EXPECT_GT(columnsWithCurve, (lastColumn - firstColumn) * 9 / 10);
  EXPECT_EQ(rises, 0);

  // The eval curve and its markers are there too, in their own colour.
  const Rgb evalColour = plotColour(1);
  EXPECT_NE(trainColour, evalColour);
  int evalPixels = 0;
  for (int y = 0; y < png.height; ++y)
    for (int x = 0; x < png.width; ++x)
      evalPixels += png.at(x, y) == evalColour;
  EXPECT_GT(evalPixels, 10 * 49);

  // Dark text left of the plot area (y tick labels, y title) and below it
  // (x tick labels, x title), and the legend's text in the top right.
  auto darkPixelsIn = [&](int x0, int y0, int x1, int y1) {
    int count = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        Rgb c = png.at(x, y);
        count += c.r < 60 && c.g < 60 && c.b < 60;
      }
    return count;
  };
  EXPECT_GT(darkPixelsIn(0, 60, 40, 440), 100);    // y title.
  EXPECT_GT(darkPixelsIn(40, 60, 90, 440), 300);   // y tick labels.
  EXPECT_GT(darkPixelsIn(0, 470, 800, 500), 100);  // x title.
  EXPECT_GT(darkPixelsIn(90, 430, 800, 470), 300); // x tick labels.
  EXPECT_GT(darkPixelsIn(600, 50, 790, 120), 200); // Legend names.
  EXPECT_GT(darkPixelsIn(200, 0, 600, 40), 200);   // Title.
}

TEST_F(PlotTest, HandlesEmptyAndDegenerateData) {
  Expected<RgbImage> empty = renderLossPlot({}, PlotOptions());
  ASSERT_TRUE(empty) << empty.message();
  EXPECT_EQ(empty->width(), 800);

  PlotSeries flat{"flat", {0, 1, 2}, {2.0, 2.0, 2.0}};
  PlotSeries single{"one point", {5}, {1.0}};
  PlotSeries gaps{"gaps", {0, 1, 2, 3}, {1.0, NAN, INFINITY, 2.0}};
  for (const PlotSeries &s : {flat, single, gaps}) {
    Expected<RgbImage> image = renderLossPlot({s}, PlotOptions());
    ASSERT_TRUE(image) << s.name << ": " << image.message();
    int coloured = 0;
    for (int y = 0; y < image->height(); ++y)
      for (int x = 0; x < image->width(); ++x)
        coloured += image->get(x, y) == plotColour(0);
    EXPECT_GT(coloured, 20) << s.name;
  }
}

TEST_F(PlotTest, ReportsBadInput) {
  PlotSeries mismatched{"bad", {0, 1}, {1.0}};
  Status status = writeLossPlot(path("bad.png"), {mismatched}, PlotOptions());
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("'bad' has 2 x values but 1 y values"),
            std::string::npos)
      << status.message();

  PlotOptions tiny;
  tiny.width = 100;
  status = writeLossPlot(path("tiny.png"), {}, tiny);
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("100x500"), std::string::npos);

  status = writeLossPlot(path("no-dir/loss.png"), {}, PlotOptions());
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("no-dir/loss.png"), std::string::npos);
  EXPECT_TRUE(listDir().empty());
}

} // namespace
