//===- ActivationHistogramTest.cpp - |x| histograms for calibration -------===//
//
// The histogram behind kiln calibrate --range percentile|mse: growing the
// range merges whole bins (the counts equal binning every value into the
// final range at once), the percentile interpolates inside a bin and stops
// at the maximum, and the MSE threshold is the bin edge of least expected
// error, which clips a rare outlier and keeps a uniform range whole.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/ActivationHistogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using kiln::train::ActivationHistogram;
using kiln::train::parseRangeMethod;
using kiln::train::RangeMethod;

namespace {

TEST(ActivationHistogramTest, GrowingMergesWholeBins) {
  ActivationHistogram grown(8), direct(8);
  std::vector<float> first = {0.5f, -1.0f, 0.1f}, second = {-3.0f, 2.2f};
  grown.add(first.data(), first.size());
  EXPECT_EQ(grown.upper(), 1.0);
  grown.add(second.data(), second.size());
  // 3 / 1 needs three times the range: bins of 0.375.
  EXPECT_EQ(grown.upper(), 3.0);
  EXPECT_EQ(grown.max(), 3.0);
  EXPECT_EQ(grown.total(), 5u);
  std::vector<float> all = {0.5f, -1.0f, 0.1f, -3.0f, 2.2f};
  direct.add(all.data(), all.size());
  EXPECT_EQ(grown.counts(), direct.counts());
  EXPECT_EQ(grown.counts(), (std::vector<uint64_t>{1, 1, 1, 0, 0, 1, 0, 1}));
}

TEST(ActivationHistogramTest, ZerosBeforeTheFirstValueStayInBinZero) {
  ActivationHistogram h(4);
  std::vector<float> zeros(6, 0.0f), later = {2.0f};
  h.add(zeros.data(), zeros.size());
  EXPECT_EQ(h.upper(), 0.0);
  EXPECT_EQ(h.percentile(50), 0.0);
  EXPECT_EQ(h.mseThreshold(), 0.0);
  h.add(later.data(), later.size());
  EXPECT_EQ(h.counts(), (std::vector<uint64_t>{6, 0, 0, 1}));
}

TEST(ActivationHistogramTest, PercentileInterpolatesAndStopsAtTheMaximum) {
  // 0.5, 1.5, ..., 999.5: one value per bin of width 1.
  ActivationHistogram h(1000);
  std::vector<float> values;
  for (int i = 0; i < 1000; ++i)
    values.push_back(static_cast<float>(i) + 0.5f);
  values.push_back(1000.0f); // the range [0, 1000], the top bin holds two
  h.add(values.data(), values.size());
  EXPECT_DOUBLE_EQ(h.binWidth(), 1.0);
  // 50% of 1001 values = 500.5 values: bin 500 holds the 501st, half-way.
  EXPECT_NEAR(h.percentile(50), 500.5, 1e-9);
  EXPECT_NEAR(h.percentile(10), 100.1, 1e-9);
  EXPECT_EQ(h.percentile(100), 1000.0);
  EXPECT_LE(h.percentile(99.99), 1000.0);
}

TEST(ActivationHistogramTest, MseTradesAnOutlierAgainstTheStep) {
  // N unit normals and one value of 60. Below 60 the outlier costs
  // (c - t)^2 (c its bin's center) and every other value (t / 127)^2 / 12
  // (the bulk is not clipped near the optimum), least at
  // t = c / (1 + N / (12 * 127^2)): about half the maximum for N = 2e5.
  constexpr int64_t n = 200000;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(n);
  for (float &v : values)
    v = std::min(std::max(normal(rng), -6.0f), 6.0f);
  values[123] = 60.0f;
  ActivationHistogram h;
  h.add(values.data(), values.size());
  double t = h.mseThreshold();
  double center = 60.0 - h.binWidth() / 2;
  double expected = center / (1 + static_cast<double>(n) / (12 * 127 * 127));
  EXPECT_NEAR(t, expected, h.binWidth());
  EXPECT_LT(t, 0.6 * h.max());
  // No other bin edge does better.
  double best = h.quantizationError(t);
  for (int64_t b = 0; b < h.bins(); ++b)
    EXPECT_GE(h.quantizationError(static_cast<double>(b + 1) * h.binWidth()),
              best);
}

TEST(ActivationHistogramTest, MseKeepsAUniformRange) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(50000);
  for (float &v : values)
    v = uniform(rng);
  ActivationHistogram h;
  h.add(values.data(), values.size());
  // Clipping the top of a uniform distribution costs more than the finer
  // step saves: the threshold stays within a few bins of the maximum.
  EXPECT_GT(h.mseThreshold(), 0.98 * h.max());
  EXPECT_LE(h.mseThreshold(), h.max());
}

TEST(ActivationHistogramTest, ParsesRangeMethods) {
  EXPECT_EQ(*parseRangeMethod("minmax"), RangeMethod::MinMax);
  EXPECT_EQ(*parseRangeMethod("percentile"), RangeMethod::Percentile);
  EXPECT_EQ(*parseRangeMethod("mse"), RangeMethod::MSE);
  auto bad = parseRangeMethod("entropy");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.message(),
            "--range 'entropy': expected minmax, percentile or mse");
}

} // namespace
