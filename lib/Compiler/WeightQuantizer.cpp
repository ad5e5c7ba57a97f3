//===- WeightQuantizer.cpp - Quantized values of float weights ------------===//
//
// Round-to-nearest quantization (WeightQuantizer.h).
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/WeightQuantizer.h"

#include <algorithm>
#include <cmath>

using namespace mlir::kiln;

QuantizedWeight mlir::kiln::quantizeRoundToNearest(const float *weight,
                                                   int64_t out, int64_t in,
                                                   const WeightScheme &scheme) {
  int64_t group = scheme.group ? scheme.group : in;
  int64_t groups = in / group;
  int bits = static_cast<int>(scheme.bits);
  QuantizedWeight result;
  result.scales.resize(out * groups);
  if (!scheme.symmetric)
    result.zeroPoints.resize(out * groups);
  std::vector<int> codes(in);
  int64_t rowBytes = bits == 4 ? in / 2 : in;
  result.codes.resize(out * rowBytes);
  // The code range.
  float qmin = scheme.symmetric ? -float(1 << (bits - 1)) : 0.0f;
  float qmax = scheme.symmetric ? float((1 << (bits - 1)) - 1)
                                : float((1 << bits) - 1);
  for (int64_t row = 0; row < out; ++row) {
    const float *w = weight + row * in;
    for (int64_t g = 0; g < groups; ++g) {
      const float *v = w + g * group;
      float lo = 0.0f, hi = 0.0f;
      for (int64_t i = 0; i < group; ++i) {
        lo = std::min(lo, v[i]);
        hi = std::max(hi, v[i]);
      }
      float scale, zero = 0.0f;
      if (scheme.symmetric) {
        scale = std::max(-lo, hi) / qmax;
      } else {
        scale = (hi - lo) / qmax;
      }
      if (!(scale > 0.0f) || !std::isfinite(scale))
        scale = 1.0f;
      if (!scheme.symmetric)
        zero = std::clamp(std::nearbyint(-lo / scale), qmin, qmax);
      float inverse = 1.0f / scale;
      for (int64_t i = 0; i < group; ++i) {
        float code = std::nearbyint(v[i] * inverse) + zero;
        codes[g * group + i] =
            static_cast<int>(std::clamp(code, qmin, qmax));
      }
      result.scales[row * groups + g] = scale;
      if (!scheme.symmetric)
        result.zeroPoints[row * groups + g] =
            static_cast<int8_t>(static_cast<uint8_t>(zero));
    }
    int8_t *dst = result.codes.data() + row * rowBytes;
    if (bits == 8) {
      for (int64_t i = 0; i < in; ++i)
        dst[i] = static_cast<int8_t>(static_cast<uint8_t>(codes[i] & 0xff));
    } else {
      for (int64_t i = 0; i < in / 2; ++i)
        dst[i] = static_cast<int8_t>(static_cast<uint8_t>(
            (codes[2 * i] & 0xf) | ((codes[2 * i + 1] & 0xf) << 4)));
    }
  }
  return result;
}
