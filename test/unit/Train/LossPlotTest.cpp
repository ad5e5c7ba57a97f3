//===- LossPlotTest.cpp - A run's metrics as loss curves ------------------===//
//
// lossSeriesFromMetrics on rows with and without losses, and plotRun from a
// run directory's metrics.jsonl to its loss.png (drawn by libkiln_plot,
// whose own tests decode the PNG; here it is only recognised as one).
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/LossPlot.h"
#include "TrainTestFiles.h"
#include "kiln/Train/Pretrain.h"

using namespace kiln::train;
using kiln::plot::PlotSeries;
using kiln::train::testing::ScratchDirTest;

namespace {

using LossPlotTest = ScratchDirTest;

TEST(PlotSeriesTest, ComesFromMetricsRows) {
  std::vector<MetricsRow> rows(4);
  rows[0].set("step", 0).set("loss", 9.0);
  rows[1].set("step", 10).set("loss", 5.0).set("eval_loss", 5.5);
  rows[2].set("event", "resumed");
  rows[3].set("step", 20).set("loss", 4.0);
  std::vector<PlotSeries> series = lossSeriesFromMetrics(rows);
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].name, "train loss");
  EXPECT_EQ(series[0].x, (std::vector<double>{0, 10, 20}));
  EXPECT_EQ(series[0].y, (std::vector<double>{9, 5, 4}));
  EXPECT_EQ(series[1].name, "eval loss");
  EXPECT_EQ(series[1].x, (std::vector<double>{10}));
  EXPECT_TRUE(lossSeriesFromMetrics({}).empty());
}

TEST_F(LossPlotTest, PlotsARunDirectory) {
  Expected<MetricsWriter> writer = MetricsWriter::open(metricsPath(dir));
  ASSERT_TRUE(writer) << writer.message();
  ASSERT_TRUE(writer->write(MetricsRow().set("event", "started")));
  std::string png;
  Status status = plotRun(dir, &png);
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("no losses to plot"), std::string::npos)
      << status.message();

  for (int step = 1; step <= 200; ++step) {
    MetricsRow row;
    row.set("step", step).set("loss", 8.0 / (1 + step / 20.0));
    if (step % 50 == 0)
      row.set("eval_loss", 8.5 / (1 + step / 20.0));
    ASSERT_TRUE(writer->write(row));
  }
  ASSERT_TRUE(plotRun(dir, &png));
  EXPECT_EQ(png, lossPlotPath(dir));
  std::string bytes = readBytes("loss.png");
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // Compressed: an 800x500 plot is 1.2 MB of pixels.
  EXPECT_LT(bytes.size(), 100000u);
}

} // namespace
