//===- ActivationHistogram.h - |x| histograms for calibration ---*- C++ -*-===//
//
// Static int8 activations need one clipping threshold per layer. Min-max
// (the largest |x| seen) lets one outlier widen the step for every value;
// percentile and MSE thresholds clip the rare large values instead. Both
// are read off a histogram of |x| that `kiln calibrate` builds on the host
// from the layers' inputs, as PyTorch's HistogramObserver and TensorRT's
// histogram calibrators do: a fixed number of equal bins over [0, upper],
// where `upper` grows with the running maximum.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_ACTIVATIONHISTOGRAM_H
#define KILN_TRAIN_ACTIVATIONHISTOGRAM_H

#include "kiln/Runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::train {

/// How `kiln calibrate --range` picks a layer's clipping threshold.
enum class RangeMethod { MinMax, Percentile, MSE };

/// "minmax", "percentile" or "mse"; otherwise an error naming the choices.
runtime::Expected<RangeMethod> parseRangeMethod(const std::string &name);
const char *rangeMethodName(RangeMethod method);

/// A histogram of |x| over the values of many calls.
///
/// The bins split [0, upper()] evenly. The first call with a nonzero value
/// sets `upper` to its largest |x|; a later call whose largest |x| exceeds
/// `upper` multiplies it by the smallest integer k that covers it, and
/// every k consecutive bins merge into one. Merging whole bins keeps the
/// counts exact (no interpolation between old and new bins, unlike
/// HistogramObserver's upsampling), at the price of up to half the bins
/// lying above the maximum after a growth.
class ActivationHistogram {
public:
  static constexpr int64_t kDefaultBins = 2048;

  explicit ActivationHistogram(int64_t bins = kDefaultBins);

  /// Adds |values[i]| for every i. The values must be finite.
  void add(const float *values, size_t count);

  /// The largest |x| added (exact, not a bin edge).
  double max() const { return max_; }
  /// The histogram's upper edge (0 while every value was 0).
  double upper() const { return upper_; }
  double binWidth() const { return upper_ / bins(); }
  int64_t bins() const { return static_cast<int64_t>(counts_.size()); }
  uint64_t total() const { return total_; }
  const std::vector<uint64_t> &counts() const { return counts_; }

  /// The |x| below which `percent` percent of the values lie, for
  /// `percent` in (0, 100]: the bin where the cumulative count reaches
  /// percent / 100 of the total, interpolated linearly inside it, and at
  /// most max() (so 100 gives the maximum exactly).
  double percentile(double percent) const;

  /// The threshold t among the bins' upper edges that minimizes the
  /// expected squared error of symmetric int8 quantization with scale
  /// t / 127: (c - t)^2 for each value of a bin above t (c its center,
  /// clipped to t) plus scale^2 / 12 for each value at or below t (uniform
  /// rounding error); at most max(). Ties go to the smaller threshold.
  double mseThreshold() const;

  /// That expected error for threshold `t` (a bin edge); exposed for tests.
  double quantizationError(double t) const;

private:
  std::vector<uint64_t> counts_;
  double upper_ = 0;
  double max_ = 0;
  uint64_t total_ = 0;
};

} // namespace kiln::train

#endif // KILN_TRAIN_ACTIVATIONHISTOGRAM_H
