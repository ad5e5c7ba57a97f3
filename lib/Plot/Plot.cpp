//===- Plot.cpp - Loss curves as a PNG ------------------------------------===//
//
// The font is a table of 5-column glyphs written as strings of '#' (ink) and
// '.' (paper), seven rows for most characters and nine for those with a
// descender. Ticks are at 1, 2, 2.5 or 5 times a power of ten. Lines are
// drawn with Bresenham's algorithm and a square brush, clipped to the plot
// area.
//
//===----------------------------------------------------------------------===//

#include "kiln/Plot/Plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace kiln::plot {

namespace {

//===----------------------------------------------------------------------===//
// The font
//===----------------------------------------------------------------------===//

constexpr int kGlyphWidth = 5;
constexpr int kCapHeight = 7;
/// The pixel scale of all text: 5x7 glyphs become 10x14.
constexpr int kTextScale = 2;
constexpr int kAdvance = (kGlyphWidth + 1) * kTextScale;

struct Glyph {
  char character;
  const char *rows; ///< 7 or 9 rows of 5, top to bottom.
};

// clang-format off
constexpr Glyph kFont[] = {
    {' ', "....." "....." "....." "....." "....." "....." "....."},
    {'0', ".###." "#...#" "#..##" "#.#.#" "##..#" "#...#" ".###."},
    {'1', "..#.." ".##.." "..#.." "..#.." "..#.." "..#.." ".###."},
    {'2', ".###." "#...#" "....#" "...#." "..#.." ".#..." "#####"},
    {'3', ".###." "#...#" "....#" "..##." "....#" "#...#" ".###."},
    {'4', "...#." "..##." ".#.#." "#..#." "#####" "...#." "...#."},
    {'5', "#####" "#...." "####." "....#" "....#" "#...#" ".###."},
    {'6', "..##." ".#..." "#...." "####." "#...#" "#...#" ".###."},
    {'7', "#####" "....#" "...#." "..#.." ".#..." ".#..." ".#..."},
    {'8', ".###." "#...#" "#...#" ".###." "#...#" "#...#" ".###."},
    {'9', ".###." "#...#" "#...#" ".####" "....#" "...#." ".##.."},
    {'A', ".###." "#...#" "#...#" "#####" "#...#" "#...#" "#...#"},
    {'B', "####." "#...#" "#...#" "####." "#...#" "#...#" "####."},
    {'C', ".###." "#...#" "#...." "#...." "#...." "#...#" ".###."},
    {'D', "####." "#...#" "#...#" "#...#" "#...#" "#...#" "####."},
    {'E', "#####" "#...." "#...." "####." "#...." "#...." "#####"},
    {'F', "#####" "#...." "#...." "####." "#...." "#...." "#...."},
    {'G', ".###." "#...#" "#...." "#.###" "#...#" "#...#" ".####"},
    {'H', "#...#" "#...#" "#...#" "#####" "#...#" "#...#" "#...#"},
    {'I', ".###." "..#.." "..#.." "..#.." "..#.." "..#.." ".###."},
    {'J', "..###" "...#." "...#." "...#." "...#." "#..#." ".##.."},
    {'K', "#...#" "#..#." "#.#.." "##..." "#.#.." "#..#." "#...#"},
    {'L', "#...." "#...." "#...." "#...." "#...." "#...." "#####"},
    {'M', "#...#" "##.##" "#.#.#" "#.#.#" "#...#" "#...#" "#...#"},
    {'N', "#...#" "#...#" "##..#" "#.#.#" "#..##" "#...#" "#...#"},
    {'O', ".###." "#...#" "#...#" "#...#" "#...#" "#...#" ".###."},
    {'P', "####." "#...#" "#...#" "####." "#...." "#...." "#...."},
    {'Q', ".###." "#...#" "#...#" "#...#" "#.#.#" "#..#." ".##.#"},
    {'R', "####." "#...#" "#...#" "####." "#.#.." "#..#." "#...#"},
    {'S', ".####" "#...." "#...." ".###." "....#" "....#" "####."},
    {'T', "#####" "..#.." "..#.." "..#.." "..#.." "..#.." "..#.."},
    {'U', "#...#" "#...#" "#...#" "#...#" "#...#" "#...#" ".###."},
    {'V', "#...#" "#...#" "#...#" "#...#" "#...#" ".#.#." "..#.."},
    {'W', "#...#" "#...#" "#...#" "#.#.#" "#.#.#" "#.#.#" ".#.#."},
    {'X', "#...#" "#...#" ".#.#." "..#.." ".#.#." "#...#" "#...#"},
    {'Y', "#...#" "#...#" ".#.#." "..#.." "..#.." "..#.." "..#.."},
    {'Z', "#####" "....#" "...#." "..#.." ".#..." "#...." "#####"},
    {'a', "....." "....." ".###." "....#" ".####" "#...#" ".####"},
    {'b', "#...." "#...." "#.##." "##..#" "#...#" "#...#" "####."},
    {'c', "....." "....." ".###." "#...." "#...." "#...#" ".###."},
    {'d', "....#" "....#" ".##.#" "#..##" "#...#" "#...#" ".####"},
    {'e', "....." "....." ".###." "#...#" "#####" "#...." ".###."},
    {'f', "..##." ".#..#" ".#..." "###.." ".#..." ".#..." ".#..."},
    {'g', "....." "....." ".####" "#...#" "#...#" "#...#" ".####"
          "....#" ".###."},
    {'h', "#...." "#...." "#.##." "##..#" "#...#" "#...#" "#...#"},
    {'i', "..#.." "....." ".##.." "..#.." "..#.." "..#.." ".###."},
    {'j', "...#." "....." "..##." "...#." "...#." "...#." "...#."
          "#..#." ".##.."},
    {'k', "#...." "#...." "#..#." "#.#.." "##..." "#.#.." "#..#."},
    {'l', ".##.." "..#.." "..#.." "..#.." "..#.." "..#.." ".###."},
    {'m', "....." "....." "##.#." "#.#.#" "#.#.#" "#...#" "#...#"},
    {'n', "....." "....." "#.##." "##..#" "#...#" "#...#" "#...#"},
    {'o', "....." "....." ".###." "#...#" "#...#" "#...#" ".###."},
    {'p', "....." "....." "####." "#...#" "#...#" "#...#" "####."
          "#...." "#...."},
    {'q', "....." "....." ".####" "#...#" "#...#" "#...#" ".####"
          "....#" "....#"},
    {'r', "....." "....." "#.##." "##..#" "#...." "#...." "#...."},
    {'s', "....." "....." ".###." "#...." ".###." "....#" "####."},
    {'t', ".#..." ".#..." "###.." ".#..." ".#..." ".#..#" "..##."},
    {'u', "....." "....." "#...#" "#...#" "#...#" "#..##" ".##.#"},
    {'v', "....." "....." "#...#" "#...#" "#...#" ".#.#." "..#.."},
    {'w', "....." "....." "#...#" "#...#" "#.#.#" "#.#.#" ".#.#."},
    {'x', "....." "....." "#...#" ".#.#." "..#.." ".#.#." "#...#"},
    {'y', "....." "....." "#...#" "#...#" "#...#" "#...#" ".####"
          "....#" ".###."},
    {'z', "....." "....." "#####" "...#." "..#.." ".#..." "#####"},
    {'.', "....." "....." "....." "....." "....." ".##.." ".##.."},
    {',', "....." "....." "....." "....." ".##.." "..#.." ".#..."},
    {'-', "....." "....." "....." ".###." "....." "....." "....."},
    {'+', "....." "..#.." "..#.." "#####" "..#.." "..#.." "....."},
    {'%', "##..." "##..#" "...#." "..#.." ".#..." "#..##" "...##"},
    {'(', "...#." "..#.." ".#..." ".#..." ".#..." "..#.." "...#."},
    {')', ".#..." "..#.." "...#." "...#." "...#." "..#.." ".#..."},
    {'[', ".###." ".#..." ".#..." ".#..." ".#..." ".#..." ".###."},
    {']', ".###." "...#." "...#." "...#." "...#." "...#." ".###."},
    {'/', "....." "....#" "...#." "..#.." ".#..." "#...." "....."},
    {':', "....." ".##.." ".##.." "....." ".##.." ".##.." "....."},
    {'_', "....." "....." "....." "....." "....." "....." "#####"},
    {'=', "....." "....." "#####" "....." "#####" "....." "....."},
    {'#', ".#.#." ".#.#." "#####" ".#.#." "#####" ".#.#." ".#.#."},
    {'*', "....." "..#.." "#.#.#" ".###." "#.#.#" "..#.." "....."},
    {'\'', "..#.." "..#.." ".#..." "....." "....." "....." "....."},
    {'|', "..#.." "..#.." "..#.." "..#.." "..#.." "..#.." "..#.."},
    {'!', "..#.." "..#.." "..#.." "..#.." "..#.." "....." "..#.."},
    {'?', ".###." "#...#" "....#" "...#." "..#.." "....." "..#.."},
};
// clang-format on

const Glyph &glyphFor(char c) {
  static const Glyph *const fallback = [] {
    for (const Glyph &glyph : kFont)
      if (glyph.character == '?')
        return &glyph;
    return &kFont[0];
  }();
  for (const Glyph &glyph : kFont)
    if (glyph.character == c)
      return glyph;
  return *fallback;
}

/// `text` as the font can draw it: each non-ASCII character becomes '?'.
std::string drawableText(const std::string &text) {
  std::string result;
  for (unsigned char c : text) {
    if ((c & 0xC0) == 0x80)
      continue; // A UTF-8 continuation byte, the lead already became '?'.
    result.push_back(c < 0x80 ? static_cast<char>(c) : '?');
  }
  return result;
}

int textWidth(const std::string &text) {
  std::string drawable = drawableText(text);
  return drawable.empty()
             ? 0
             : static_cast<int>(drawable.size()) * kAdvance - kTextScale;
}

/// Calls `plot(u, v)` for each ink pixel of `text` at kTextScale, u along
/// the text from its start, v down from the top of the capitals.
template <typename Plot>
void forEachInkPixel(const std::string &text, Plot plot) {
  std::string drawable = drawableText(text);
  for (size_t i = 0; i < drawable.size(); ++i) {
    const Glyph &glyph = glyphFor(drawable[i]);
    int rows = static_cast<int>(std::strlen(glyph.rows)) / kGlyphWidth;
    for (int row = 0; row < rows; ++row)
      for (int column = 0; column < kGlyphWidth; ++column) {
        if (glyph.rows[row * kGlyphWidth + column] != '#')
          continue;
        int u = static_cast<int>(i) * kAdvance + column * kTextScale;
        for (int dv = 0; dv < kTextScale; ++dv)
          for (int du = 0; du < kTextScale; ++du)
            plot(u + du, row * kTextScale + dv);
      }
  }
}

/// Draws `text` left to right with the top of its capitals at `top`.
void drawText(RgbImage &image, int left, int top, const std::string &text,
              Rgb colour) {
  forEachInkPixel(text,
                  [&](int u, int v) { image.set(left + u, top + v, colour); });
}

/// Draws `text` bottom to top (turned a quarter left), the top of its
/// capitals facing `left`, starting at `bottom`.
void drawTextUpwards(RgbImage &image, int left, int bottom,
                     const std::string &text, Rgb colour) {
  forEachInkPixel(
      text, [&](int u, int v) { image.set(left + v, bottom - u, colour); });
}

//===----------------------------------------------------------------------===//
// Axes
//===----------------------------------------------------------------------===//

/// Round tick values covering a range, which they widen to.
struct Axis {
  double low = 0, high = 1, step = 0.2;
  std::vector<double> ticks;
  std::vector<std::string> labels;
};

/// Decimal places that print `step` (and its multiples) exactly.
int decimalsFor(double step) {
  for (int decimals = 0; decimals < 10; ++decimals) {
    double scaled = step * std::pow(10.0, decimals);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * scaled)
      return decimals;
  }
  return 10;
}

std::string tickLabel(double value, double step) {
  char text[64];
  if (std::fabs(value) < step * 1e-6)
    value = 0;
  // Thousands get a "k" when every tick is a whole number of them.
  if (step >= 1000 && std::fmod(step, 1000) == 0) {
    std::snprintf(text, sizeof(text), "%.0fk", value / 1000);
    if (value == 0)
      std::snprintf(text, sizeof(text), "0");
    return text;
  }
  std::snprintf(text, sizeof(text), "%.*f", decimalsFor(step), value);
  return text;
}

Axis makeAxis(double low, double high, int maxTicks) {
  if (!(high > low)) {
    double margin = low == 0 ? 1 : std::fabs(low) * 0.1;
    low -= margin;
    high += margin;
  }
  double raw = (high - low) / maxTicks;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double normalized = raw / magnitude;
  double nice = normalized <= 1     ? 1
                : normalized <= 2   ? 2
                : normalized <= 2.5 ? 2.5
                : normalized <= 5   ? 5
                                    : 10;
  Axis axis;
  axis.step = nice * magnitude;
  double first = std::floor(low / axis.step + 1e-9);
  double last = std::ceil(high / axis.step - 1e-9);
  axis.low = first * axis.step;
  axis.high = last * axis.step;
  for (double k = first; k <= last + 0.5; k += 1) {
    axis.ticks.push_back(k * axis.step);
    axis.labels.push_back(tickLabel(k * axis.step, axis.step));
  }
  return axis;
}

//===----------------------------------------------------------------------===//
// Drawing
//===----------------------------------------------------------------------===//

constexpr Rgb kWhite = {255, 255, 255};
constexpr Rgb kInk = {20, 20, 20};
constexpr Rgb kFrame = {60, 60, 60};
constexpr Rgb kGrid = {225, 225, 225};
constexpr Rgb kLegendBorder = {170, 170, 170};

/// The plot area in pixels, inclusive, and the data range it shows.
struct Frame {
  int left, top, right, bottom;
  Axis x, y;

  double toPixelX(double value) const {
    return left + (value - x.low) / (x.high - x.low) * (right - left);
  }
  double toPixelY(double value) const {
    return bottom - (value - y.low) / (y.high - y.low) * (bottom - top);
  }
  bool inside(int px, int py) const {
    return px >= left && px <= right && py >= top && py <= bottom;
  }
};

/// A square brush of `size` pixels at (x, y), clipped to the frame.
void stamp(RgbImage &image, const Frame &frame, int x, int y, int size,
           Rgb colour) {
  int begin = -(size - 1) / 2;
  for (int dy = begin; dy < begin + size; ++dy)
    for (int dx = begin; dx < begin + size; ++dx)
      if (frame.inside(x + dx, y + dy))
        image.set(x + dx, y + dy, colour);
}

void drawLine(RgbImage &image, const Frame &frame, double x0, double y0,
              double x1, double y1, Rgb colour) {
  // Keep far-off coordinates small enough for int arithmetic.
  auto clampCoordinate = [](double v) {
    return static_cast<int>(std::lround(std::clamp(v, -1e6, 1e6)));
  };
  int ax = clampCoordinate(x0), ay = clampCoordinate(y0);
  int bx = clampCoordinate(x1), by = clampCoordinate(y1);
  int dx = std::abs(bx - ax), sx = ax < bx ? 1 : -1;
  int dy = -std::abs(by - ay), sy = ay < by ? 1 : -1;
  int error = dx + dy;
  while (true) {
    stamp(image, frame, ax, ay, 2, colour);
    if (ax == bx && ay == by)
      break;
    int twice = 2 * error;
    if (twice >= dy) {
      error += dy;
      ax += sx;
    }
    if (twice <= dx) {
      error += dx;
      ay += sy;
    }
  }
}

void drawSeries(RgbImage &image, const Frame &frame, const PlotSeries &series,
                Rgb colour, bool markers) {
  bool havePrevious = false;
  double previousX = 0, previousY = 0;
  for (size_t i = 0; i < series.x.size(); ++i) {
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) {
      havePrevious = false;
      continue;
    }
    double px = frame.toPixelX(series.x[i]);
    double py = frame.toPixelY(series.y[i]);
    if (havePrevious)
      drawLine(image, frame, previousX, previousY, px, py, colour);
    else
      stamp(image, frame, static_cast<int>(std::lround(px)),
            static_cast<int>(std::lround(py)), 2, colour);
    if (markers)
      stamp(image, frame, static_cast<int>(std::lround(px)),
            static_cast<int>(std::lround(py)), 7, colour);
    previousX = px;
    previousY = py;
    havePrevious = true;
  }
}

void drawLegend(RgbImage &image, const Frame &frame,
                const std::vector<PlotSeries> &series) {
  constexpr int kPadding = 10, kSample = 28, kGap = 8, kRow = 24;
  int widest = 0, entries = 0;
  for (const PlotSeries &s : series)
    if (!s.name.empty()) {
      widest = std::max(widest, textWidth(s.name));
      ++entries;
    }
  if (entries == 0)
    return;
  int width = kPadding + kSample + kGap + widest + kPadding;
  int height = 2 * kPadding + entries * kRow - (kRow - kCapHeight * kTextScale);
  int right = frame.right - 10, top = frame.top + 10;
  int left = right - width, bottom = top + height;
  image.fill(left, top, right, bottom, kWhite);
  image.fill(left, top, right, top + 1, kLegendBorder);
  image.fill(left, bottom - 1, right, bottom, kLegendBorder);
  image.fill(left, top, left + 1, bottom, kLegendBorder);
  image.fill(right - 1, top, right, bottom, kLegendBorder);
  int row = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].name.empty())
      continue;
    int textTop = top + kPadding + row * kRow;
    int lineY = textTop + kCapHeight * kTextScale / 2;
    image.fill(left + kPadding, lineY - 1, left + kPadding + kSample, lineY + 2,
               plotColour(i));
    drawText(image, left + kPadding + kSample + kGap, textTop, series[i].name,
             kInk);
    ++row;
  }
}

} // namespace

Rgb plotColour(size_t index) {
  static const Rgb palette[] = {
      {31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
      {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
  };
  return palette[index % (sizeof(palette) / sizeof(palette[0]))];
}

Expected<RgbImage> renderLossPlot(const std::vector<PlotSeries> &series,
                                  const PlotOptions &options) {
  if (options.width < 200 || options.height < 150 || options.width > 8000 ||
      options.height > 8000)
    return Status::error("a plot must be between 200x150 and 8000x8000 "
                         "pixels, not " +
                         std::to_string(options.width) + "x" +
                         std::to_string(options.height));
  double xMin = std::numeric_limits<double>::infinity(), xMax = -xMin;
  double yMin = xMin, yMax = -xMin;
  for (const PlotSeries &s : series) {
    if (s.x.size() != s.y.size())
      return Status::error("plot series '" + s.name + "' has " +
                           std::to_string(s.x.size()) + " x values but " +
                           std::to_string(s.y.size()) + " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]))
        continue;
      xMin = std::min(xMin, s.x[i]);
      xMax = std::max(xMax, s.x[i]);
      yMin = std::min(yMin, s.y[i]);
      yMax = std::max(yMax, s.y[i]);
    }
  }
  if (!(xMin <= xMax)) {
    xMin = yMin = 0;
    xMax = yMax = 1;
  }
  double yMargin = (yMax - yMin) * 0.03;

  const int textHeight = kCapHeight * kTextScale;
  const int padding = 12, tickLength = 5;
  Frame frame{};
  frame.x = makeAxis(xMin, xMax, std::max(2, options.width / 110));
  frame.y = makeAxis(yMin - yMargin, yMax + yMargin,
                     std::max(2, options.height / 70));

  int widestYLabel = 0;
  for (const std::string &label : frame.y.labels)
    widestYLabel = std::max(widestYLabel, textWidth(label));
  int yTitleWidth = options.yLabel.empty() ? 0 : textHeight + 12;
  int xTitleHeight = options.xLabel.empty() ? 0 : textHeight + 10;
  int titleHeight = options.title.empty() ? 0 : textHeight + 14;
  int lastXLabel =
      frame.x.labels.empty() ? 0 : textWidth(frame.x.labels.back());

  frame.left = padding + yTitleWidth + widestYLabel + tickLength + 6;
  frame.top = padding + titleHeight + textHeight / 2;
  frame.right = options.width - std::max(padding + 8, padding + lastXLabel / 2);
  frame.bottom =
      options.height - padding - xTitleHeight - textHeight - tickLength - 8;
  if (frame.right - frame.left < 40 || frame.bottom - frame.top < 40)
    return Status::error("a plot of " + std::to_string(options.width) + "x" +
                         std::to_string(options.height) +
                         " pixels leaves no room for the curves");

  RgbImage image(options.width, options.height, kWhite);

  // Grid lines at the ticks, under everything else.
  for (double tick : frame.x.ticks) {
    int px = static_cast<int>(std::lround(frame.toPixelX(tick)));
    image.fill(px, frame.top, px + 1, frame.bottom + 1, kGrid);
  }
  for (double tick : frame.y.ticks) {
    int py = static_cast<int>(std::lround(frame.toPixelY(tick)));
    image.fill(frame.left, py, frame.right + 1, py + 1, kGrid);
  }

  for (size_t i = 0; i < series.size(); ++i)
    drawSeries(image, frame, series[i], plotColour(i),
               series[i].x.size() <= options.markerMaxPoints);

  // The frame, the ticks and their labels.
  image.fill(frame.left, frame.top, frame.right + 1, frame.top + 1, kFrame);
  image.fill(frame.left, frame.bottom, frame.right + 1, frame.bottom + 1,
             kFrame);
  image.fill(frame.left, frame.top, frame.left + 1, frame.bottom + 1, kFrame);
  image.fill(frame.right, frame.top, frame.right + 1, frame.bottom + 1, kFrame);
  for (size_t i = 0; i < frame.x.ticks.size(); ++i) {
    int px = static_cast<int>(std::lround(frame.toPixelX(frame.x.ticks[i])));
    image.fill(px, frame.bottom + 1, px + 1, frame.bottom + 1 + tickLength,
               kFrame);
    const std::string &label = frame.x.labels[i];
    drawText(image, px - textWidth(label) / 2, frame.bottom + tickLength + 5,
             label, kInk);
  }
  for (size_t i = 0; i < frame.y.ticks.size(); ++i) {
    int py = static_cast<int>(std::lround(frame.toPixelY(frame.y.ticks[i])));
    image.fill(frame.left - tickLength, py, frame.left, py + 1, kFrame);
    const std::string &label = frame.y.labels[i];
    drawText(image, frame.left - tickLength - 5 - textWidth(label),
             py - textHeight / 2, label, kInk);
  }

  // Titles.
  if (!options.xLabel.empty())
    drawText(image,
             (frame.left + frame.right) / 2 - textWidth(options.xLabel) / 2,
             options.height - padding - textHeight, options.xLabel, kInk);
  if (!options.yLabel.empty())
    drawTextUpwards(image, padding,
                    (frame.top + frame.bottom) / 2 +
                        textWidth(options.yLabel) / 2,
                    options.yLabel, kInk);
  if (!options.title.empty())
    drawText(image,
             (frame.left + frame.right) / 2 - textWidth(options.title) / 2,
             padding, options.title, kInk);

  drawLegend(image, frame, series);
  return image;
}

Status writeLossPlot(const std::string &pngPath,
                     const std::vector<PlotSeries> &series,
                     const PlotOptions &options) {
  Expected<RgbImage> image = renderLossPlot(series, options);
  if (!image)
    return image.status();
  return writePng(pngPath, *image);
}

} // namespace kiln::plot
