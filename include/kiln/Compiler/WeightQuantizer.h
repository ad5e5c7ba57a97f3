//===- WeightQuantizer.h - Quantized values of float weights ----*- C++ -*-===//
//
// What the compiler writes for the parameters kiln-quantize made: codes,
// scales and zero points computed from a float weight. The graph's
// kiln.dequantize reads them back as (code - zero_point) · scale.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_WEIGHTQUANTIZER_H
#define KILN_COMPILER_WEIGHTQUANTIZER_H

#include "kiln/Dialect/Kiln/Transforms/Quantization.h"

#include <cstdint>
#include <vector>

namespace mlir::kiln {

struct QuantizedWeight {
  /// `[out, in]` int8 codes, or `[out, in / 2]` bytes of two 4-bit codes
  /// (element 2k in the low nibble).
  std::vector<int8_t> codes;
  /// `[out, groups]` (groups = 1 per output channel).
  std::vector<float> scales;
  /// `[out, groups]` unsigned codes; empty when symmetric.
  std::vector<int8_t> zeroPoints;
};

/// Round-to-nearest quantization of `weight` (`[out, in]`, row-major) per
/// group of `scheme.group` inputs (or per row):
/// - symmetric: scale = max|w| / (2^(bits-1) - 1), code = round(w / scale)
///   clamped to the signed range;
/// - asymmetric: lo = min(min w, 0), hi = max(max w, 0),
///   scale = (hi - lo) / (2^bits - 1), zero = clamp(round(-lo / scale)),
///   code = clamp(round(w / scale) + zero) in [0, 2^bits - 1].
/// Rounding is half to even on w · (1 / scale) in f32, as torch's
/// fake_quantize_per_channel_affine; a group of zeros gets scale 1.
QuantizedWeight quantizeRoundToNearest(const float *weight, int64_t out,
                                       int64_t in, const WeightScheme &scheme);

} // namespace mlir::kiln

#endif // KILN_COMPILER_WEIGHTQUANTIZER_H
