//===- LossPlot.cpp - A run's metrics as loss curves ----------------------===//
//
// lossSeriesFromMetrics and plotRun: metrics.jsonl read back, its losses
// turned into series, and libkiln_plot asked to draw them to loss.png.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/LossPlot.h"
#include "kiln/Train/Pretrain.h"

#include <optional>
#include <utility>

using kiln::plot::PlotOptions;
using kiln::plot::PlotSeries;
using kiln::runtime::Expected;
using kiln::runtime::Status;

std::vector<PlotSeries>
kiln::train::lossSeriesFromMetrics(const std::vector<MetricsRow> &rows) {
  PlotSeries train{"train loss", {}, {}};
  PlotSeries eval{"eval loss", {}, {}};
  for (const MetricsRow &row : rows) {
    std::optional<double> step = row.number("step");
    if (!step)
      continue;
    if (std::optional<double> loss = row.number("loss")) {
      train.x.push_back(*step);
      train.y.push_back(*loss);
    }
    if (std::optional<double> loss = row.number("eval_loss")) {
      eval.x.push_back(*step);
      eval.y.push_back(*loss);
    }
  }
  std::vector<PlotSeries> series;
  if (!train.x.empty())
    series.push_back(std::move(train));
  if (!eval.x.empty())
    series.push_back(std::move(eval));
  return series;
}

Status kiln::train::plotRun(const std::string &runDir, std::string *pngPath) {
  Expected<std::vector<MetricsRow>> rows = readMetrics(metricsPath(runDir));
  if (!rows)
    return rows.status();
  std::vector<PlotSeries> series = lossSeriesFromMetrics(*rows);
  if (series.empty())
    return Status::error("'" + metricsPath(runDir) +
                         "' has no losses to plot yet");
  PlotOptions options;
  options.title = "loss of " + runDir;
  std::string path = lossPlotPath(runDir);
  if (Status s = plot::writeLossPlot(path, series, options); !s)
    return s;
  if (pngPath)
    *pngPath = path;
  return Status::ok();
}

Status kiln::train::plotRuns(const std::vector<std::string> &runDirs,
                             const std::string &metric,
                             const std::string &pngPath) {
  std::vector<PlotSeries> series;
  for (const std::string &runDir : runDirs) {
    Expected<std::vector<MetricsRow>> rows = readMetrics(metricsPath(runDir));
    if (!rows)
      return rows.status();
    std::string name = runDir;
    while (name.size() > 1 && name.back() == '/')
      name.pop_back();
    if (size_t slash = name.rfind('/'); slash != std::string::npos)
      name = name.substr(slash + 1);
    PlotSeries curve{name + " " + metric, {}, {}};
    for (const MetricsRow &row : *rows) {
      std::optional<double> step = row.number("step");
      std::optional<double> value = row.number(metric);
      if (step && value) {
        curve.x.push_back(*step);
        curve.y.push_back(*value);
      }
    }
    if (curve.x.empty())
      return Status::error("'" + metricsPath(runDir) + "' has no '" + metric +
                           "' to plot");
    series.push_back(std::move(curve));
  }
  PlotOptions options;
  options.title = metric + " by step";
  options.yLabel = metric;
  return plot::writeLossPlot(pngPath, series, options);
}
