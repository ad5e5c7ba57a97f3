//===- Plot.h - Loss curves as a PNG ----------------------------*- C++ -*-===//
//
// Line plots drawn to a PNG with no plotting library, for the loss curves
// of `kiln pretrain` and `kiln plot` (libkiln_train turns a run's metrics
// into series; this library knows nothing of training). A white canvas, a
// framed plot area with light grid lines, tick marks and numeric labels at
// round values on both axes, axis titles, an optional title, and a legend
// naming each series in its colour. Text uses a small built-in 5x7 bitmap
// font (ASCII letters, digits and common punctuation), drawn at twice its
// size.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PLOT_PLOT_H
#define KILN_PLOT_PLOT_H

#include "kiln/Plot/Png.h"
#include "kiln/Runtime/Status.h"

#include <string>
#include <vector>

namespace kiln::plot {

using runtime::Expected;
using runtime::Status;

/// One curve: points (x[i], y[i]) joined in order. Non-finite points are
/// skipped and break the line.
struct PlotSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

struct PlotOptions {
  int width = 800;
  int height = 500;
  std::string title;
  std::string xLabel = "step";
  std::string yLabel = "loss";
  /// Series with at most this many points also get a square marker at
  /// each point, so that a sparse series (eval loss) stays visible.
  size_t markerMaxPoints = 50;
};

/// The colour of the `index`-th series (a fixed palette, cycling).
Rgb plotColour(size_t index);

/// Draws `series` as described above. Axis ranges cover every finite point
/// and are widened to round tick values; with no finite point the axes run
/// from 0 to 1. Errors when the size is below 200x150 or above 8000x8000,
/// or the x and y of a series differ in length.
Expected<RgbImage> renderLossPlot(const std::vector<PlotSeries> &series,
                                  const PlotOptions &options);

/// renderLossPlot, written to `pngPath` atomically.
Status writeLossPlot(const std::string &pngPath,
                     const std::vector<PlotSeries> &series,
                     const PlotOptions &options);

} // namespace kiln::plot

#endif // KILN_PLOT_PLOT_H
