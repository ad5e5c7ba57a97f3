//===- LossPlot.h - A run's metrics as loss curves --------------*- C++ -*-===//
//
// The one place libkiln_train meets libkiln_plot: the loss series of a
// run's metrics rows. plotRun (Pretrain.h), which writes `<run>/loss.png`,
// is built on it; the drawing and the PNG are libkiln_plot's
// (kiln/Plot/Plot.h).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_LOSSPLOT_H
#define KILN_TRAIN_LOSSPLOT_H

#include "kiln/Plot/Plot.h"
#include "kiln/Train/Metrics.h"

#include <vector>

namespace kiln::train {

/// The "train loss" (key "loss") and "eval loss" (key "eval_loss") series of
/// metrics rows, against their "step"; a series with no points is left out.
std::vector<plot::PlotSeries>
lossSeriesFromMetrics(const std::vector<MetricsRow> &rows);

} // namespace kiln::train

#endif // KILN_TRAIN_LOSSPLOT_H
