//===- ActivationHistogram.cpp - |x| histograms for calibration -----------===//
//
// See ActivationHistogram.h.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/ActivationHistogram.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace kiln::train {

using runtime::Expected;
using runtime::Status;

Expected<RangeMethod> parseRangeMethod(const std::string &name) {
  if (name == "minmax")
    return RangeMethod::MinMax;
  if (name == "percentile")
    return RangeMethod::Percentile;
  if (name == "mse")
    return RangeMethod::MSE;
  return Status::error("--range '" + name +
                       "': expected minmax, percentile or mse");
}

const char *rangeMethodName(RangeMethod method) {
  switch (method) {
  case RangeMethod::MinMax:
    return "minmax";
  case RangeMethod::Percentile:
    return "percentile";
  case RangeMethod::MSE:
    return "mse";
  }
  return "minmax";
}

ActivationHistogram::ActivationHistogram(int64_t bins)
    : counts_(static_cast<size_t>(std::max<int64_t>(bins, 1)), 0) {}

void ActivationHistogram::add(const float *values, size_t count) {
  if (count == 0)
    return;
  double largest = 0;
  for (size_t i = 0; i < count; ++i)
    largest = std::max(largest, std::fabs(static_cast<double>(values[i])));
  max_ = std::max(max_, largest);
  const int64_t n = bins();
  if (largest > upper_) {
    if (upper_ == 0) {
      // Only zeros so far: they stay in bin 0, whatever its width.
      upper_ = largest;
    } else {
      // Grow by a whole factor so that old bins merge exactly.
      auto k = static_cast<int64_t>(std::ceil(largest / upper_));
      while (static_cast<double>(k) * upper_ < largest)
        ++k;
      std::vector<uint64_t> merged(counts_.size(), 0);
      for (int64_t b = 0; b < n; ++b)
        merged[static_cast<size_t>(b / k)] += counts_[static_cast<size_t>(b)];
      counts_ = std::move(merged);
      upper_ *= static_cast<double>(k);
    }
  }
  if (upper_ == 0) {
    counts_[0] += count;
  } else {
    const double perUnit = static_cast<double>(n) / upper_;
    for (size_t i = 0; i < count; ++i) {
      double bin = std::fabs(static_cast<double>(values[i])) * perUnit;
      counts_[static_cast<size_t>(
          std::min<int64_t>(static_cast<int64_t>(bin), n - 1))]++;
    }
  }
  total_ += count;
}

double ActivationHistogram::percentile(double percent) const {
  assert(percent > 0 && percent <= 100 && "percentile outside (0, 100]");
  if (total_ == 0 || upper_ == 0)
    return 0;
  const double target = percent / 100.0 * static_cast<double>(total_);
  const double width = binWidth();
  double before = 0;
  for (int64_t b = 0; b < bins(); ++b) {
    auto here = static_cast<double>(counts_[static_cast<size_t>(b)]);
    if (here > 0 && before + here >= target) {
      double inside = std::clamp((target - before) / here, 0.0, 1.0);
      return std::min((static_cast<double>(b) + inside) * width, max_);
    }
    before += here;
  }
  return max_;
}

double ActivationHistogram::quantizationError(double t) const {
  const double width = binWidth();
  const double scale = t / 127.0;
  const double rounding = scale * scale / 12.0;
  double error = 0;
  for (int64_t b = 0; b < bins(); ++b) {
    uint64_t count = counts_[static_cast<size_t>(b)];
    if (count == 0)
      continue;
    double center = (static_cast<double>(b) + 0.5) * width;
    if (center > t)
      error += static_cast<double>(count) * (center - t) * (center - t);
    else
      error += static_cast<double>(count) * rounding;
  }
  return error;
}

double ActivationHistogram::mseThreshold() const {
  if (total_ == 0 || upper_ == 0)
    return 0;
  const double width = binWidth();
  double best = upper_, bestError = INFINITY;
  // The edges up to the one that holds the maximum: above it nothing is
  // clipped and the rounding error only grows.
  for (int64_t b = 0; b < bins(); ++b) {
    double t = static_cast<double>(b + 1) * width;
    double error = quantizationError(t);
    if (error < bestError) {
      bestError = error;
      best = t;
    }
    if (t >= max_)
      break;
  }
  return std::min(best, max_);
}

} // namespace kiln::train
