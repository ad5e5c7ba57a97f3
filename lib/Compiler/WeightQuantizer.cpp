//===- WeightQuantizer.cpp - Quantized values of float weights ------------===//
//
// Round-to-nearest and GPTQ quantization (WeightQuantizer.h).
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/WeightQuantizer.h"
#include "kiln/Runtime/Float8.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir::kiln;

namespace {
/// The code range of a scheme.
struct CodeRange {
  float qmin, qmax;
  explicit CodeRange(const WeightScheme &scheme) {
    int bits = static_cast<int>(scheme.bits);
    qmin = scheme.symmetric ? -float(1 << (bits - 1)) : 0.0f;
    qmax = scheme.symmetric ? float((1 << (bits - 1)) - 1)
                            : float((1 << bits) - 1);
  }
};

/// The scale and zero point of the `count` values at `v` by the
/// round-to-nearest rule.
std::pair<float, float> groupScale(const float *v, int64_t count,
                                   const WeightScheme &scheme,
                                   const CodeRange &range) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
  }
  float scale = scheme.symmetric ? std::max(-lo, hi) / range.qmax
                                 : (hi - lo) / range.qmax;
  if (!(scale > 0.0f) || !std::isfinite(scale))
    scale = 1.0f;
  float zero = 0.0f;
  if (!scheme.symmetric)
    zero = std::clamp(std::nearbyint(-lo / scale), range.qmin, range.qmax);
  return {scale, zero};
}

/// Packs integer codes [out, in] into the artifact's bytes.
void packCodes(const std::vector<int> &codes, int64_t out, int64_t in, int bits,
               QuantizedWeight &result) {
  int64_t rowBytes = bits == 4 ? in / 2 : in;
  result.codes.resize(out * rowBytes);
  for (int64_t row = 0; row < out; ++row) {
    const int *c = codes.data() + row * in;
    int8_t *dst = result.codes.data() + row * rowBytes;
    if (bits == 8) {
      for (int64_t i = 0; i < in; ++i)
        dst[i] = static_cast<int8_t>(static_cast<uint8_t>(c[i] & 0xff));
    } else {
      for (int64_t i = 0; i < in / 2; ++i)
        dst[i] = static_cast<int8_t>(static_cast<uint8_t>(
            (c[2 * i] & 0xf) | ((c[2 * i + 1] & 0xf) << 4)));
    }
  }
}

/// Cholesky factor L (lower, row-major, in place) of the symmetric `a`
/// [n, n]; false when `a` is not positive definite.
bool cholesky(std::vector<double> &a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double *rowJ = a.data() + j * n;
    double d = rowJ[j];
    for (int64_t k = 0; k < j; ++k)
      d -= rowJ[k] * rowJ[k];
    if (!(d > 0.0) || !std::isfinite(d))
      return false;
    d = std::sqrt(d);
    rowJ[j] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double *rowI = a.data() + i * n;
      double s = rowI[j];
      for (int64_t k = 0; k < j; ++k)
        s -= rowI[k] * rowJ[k];
      rowI[j] = s / d;
    }
    for (int64_t k = j + 1; k < n; ++k)
      rowJ[k] = 0.0;
  }
  return true;
}
} // namespace

QuantizedWeight mlir::kiln::quantizeRoundToNearest(const float *weight,
                                                   int64_t out, int64_t in,
                                                   const WeightScheme &scheme) {
  if (scheme.fp8) {
    // One scale for the tensor: max|w| / 448 (1 for all zeros), codes
    // e4m3(w · (1 / scale)) rounded to nearest even. The scale is at least
    // 1e-30, as the activations' (kiln-quantize): max|w| / 448 of a tiny
    // weight (below ~6e-43) is 0 in f32, whose inverse would give NaN and
    // saturated codes.
    QuantizedWeight result;
    float largest = 0.0f;
    for (int64_t i = 0; i < out * in; ++i)
      largest = std::max(largest, std::fabs(weight[i]));
    float scale = largest > 0.0f ? std::max(largest / 448.0f, 1e-30f) : 1.0f;
    float inverse = 1.0f / scale;
    result.scales = {scale};
    result.codes.resize(out * in);
    for (int64_t i = 0; i < out * in; ++i)
      result.codes[i] =
          static_cast<int8_t>(::kiln::encodeE4M3(weight[i] * inverse));
    return result;
  }
  int64_t group = scheme.group ? scheme.group : in;
  int64_t groups = in / group;
  CodeRange range(scheme);
  QuantizedWeight result;
  result.scales.resize(out * groups);
  if (!scheme.symmetric)
    result.zeroPoints.resize(out * groups);
  std::vector<int> codes(out * in);
  for (int64_t row = 0; row < out; ++row) {
    for (int64_t g = 0; g < groups; ++g) {
      const float *v = weight + row * in + g * group;
      auto [scale, zero] = groupScale(v, group, scheme, range);
      float inverse = 1.0f / scale;
      for (int64_t i = 0; i < group; ++i)
        codes[row * in + g * group + i] = static_cast<int>(std::clamp(
            std::nearbyint(v[i] * inverse) + zero, range.qmin, range.qmax));
      result.scales[row * groups + g] = scale;
      if (!scheme.symmetric)
        result.zeroPoints[row * groups + g] =
            static_cast<int8_t>(static_cast<uint8_t>(zero));
    }
  }
  packCodes(codes, out, in, static_cast<int>(scheme.bits), result);
  return result;
}

llvm::Expected<std::vector<double>>
mlir::kiln::inverseHessianFactor(const float *gram, int64_t in, double damp,
                                 std::vector<bool> &dead) {
  // The Hessian of the reconstruction error, dead channels neutralized,
  // damped.
  std::vector<double> h(gram, gram + in * in);
  dead.assign(in, false);
  double meanDiagonal = 0;
  for (int64_t i = 0; i < in; ++i) {
    if (h[i * in + i] == 0.0) {
      h[i * in + i] = 1.0;
      dead[i] = true;
    }
    meanDiagonal += h[i * in + i];
  }
  meanDiagonal /= static_cast<double>(in);
  for (int64_t i = 0; i < in; ++i)
    h[i * in + i] += damp * meanDiagonal;
  // H⁻¹ from its Cholesky factor L: L⁻¹ by forward substitution, then
  // H⁻¹ = L⁻ᵀ L⁻¹; then the Cholesky factor of H⁻¹.
  if (!cholesky(h, in))
    return llvm::createStringError(
        "the damped Hessian of the calibration inputs is not positive "
        "definite (too few calibration tokens, or non-finite values)");
  std::vector<double> inv(in * in, 0.0); // L⁻¹, lower
  for (int64_t j = 0; j < in; ++j) {
    inv[j * in + j] = 1.0 / h[j * in + j];
    for (int64_t i = j + 1; i < in; ++i) {
      double s = 0;
      for (int64_t k = j; k < i; ++k)
        s -= h[i * in + k] * inv[k * in + j];
      inv[i * in + j] = s / h[i * in + i];
    }
  }
  std::vector<double> hinv(in * in, 0.0); // L⁻ᵀ L⁻¹
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = i; k < in; ++k)
        s += inv[k * in + i] * inv[k * in + j];
      hinv[i * in + j] = hinv[j * in + i] = s;
    }
  if (!cholesky(hinv, in))
    return llvm::createStringError(
        "the inverse Hessian is not positive definite");
  return hinv;
}

llvm::Expected<QuantizedWeight>
mlir::kiln::quantizeGPTQ(const float *weight, int64_t out, int64_t in,
                         const WeightScheme &scheme, const float *gram,
                         double damp) {
  int64_t group = scheme.group ? scheme.group : in;
  int64_t groups = in / group;
  CodeRange range(scheme);
  std::vector<double> w(weight, weight + out * in);
  std::vector<bool> dead;
  llvm::Expected<std::vector<double>> factor =
      inverseHessianFactor(gram, in, damp, dead);
  if (!factor)
    return llvm::createStringError("GPTQ: " +
                                   llvm::toString(factor.takeError()));
  for (int64_t i = 0; i < in; ++i)
    if (dead[i])
      for (int64_t r = 0; r < out; ++r)
        w[r * in + i] = 0.0;
  const std::vector<double> &hinv = *factor;
  // U = Lᵀ of H⁻¹'s factor: U[i][j] = L[j][i].
  auto u = [&](int64_t i, int64_t j) { return hinv[j * in + i]; };

  QuantizedWeight result;
  result.scales.resize(out * groups);
  if (!scheme.symmetric)
    result.zeroPoints.resize(out * groups);
  std::vector<int> codes(out * in);
  std::vector<float> scale(out), zero(out), column(out);
  std::vector<double> row(in);
  for (int64_t i = 0; i < in; ++i) {
    if (i % group == 0) {
      // This group's scales from the weights as they are now.
      std::vector<float> values(group);
      for (int64_t r = 0; r < out; ++r) {
        for (int64_t k = 0; k < group; ++k)
          values[k] = static_cast<float>(w[r * in + i + k]);
        auto [s, z] = groupScale(values.data(), group, scheme, range);
        scale[r] = s;
        zero[r] = z;
        result.scales[r * groups + i / group] = s;
        if (!scheme.symmetric)
          result.zeroPoints[r * groups + i / group] =
              static_cast<int8_t>(static_cast<uint8_t>(z));
      }
    }
    for (int64_t i2 = i + 1; i2 < in; ++i2)
      row[i2] = u(i, i2);
    double diagonal = u(i, i);
    for (int64_t r = 0; r < out; ++r) {
      double *wr = w.data() + r * in;
      float value = static_cast<float>(wr[i]);
      float code =
          std::clamp(std::nearbyint(value * (1.0f / scale[r])) + zero[r],
                     range.qmin, range.qmax);
      codes[r * in + i] = static_cast<int>(code);
      double dequantized = static_cast<double>((code - zero[r]) * scale[r]);
      double error = (wr[i] - dequantized) / diagonal;
      for (int64_t k = i + 1; k < in; ++k)
        wr[k] -= error * row[k];
    }
  }
  packCodes(codes, out, in, static_cast<int>(scheme.bits), result);
  return result;
}

std::vector<float> mlir::kiln::smoothQuantFactors(const float *weight,
                                                  int64_t out, int64_t in,
                                                  const float *inputAbsmax,
                                                  double alpha) {
  std::vector<double> largest(in, 0.0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t j = 0; j < in; ++j)
      largest[j] = std::max(largest[j], std::fabs(double(weight[o * in + j])));
  std::vector<float> factors(in);
  for (int64_t j = 0; j < in; ++j)
    factors[j] = static_cast<float>(
        std::pow(std::max(double(inputAbsmax[j]), 1e-5), alpha) /
        std::pow(std::max(largest[j], 1e-5), 1.0 - alpha));
  return factors;
}

namespace {
/// The float weight `[out, in]` a quantization stands for.
std::vector<float> dequantizeWeight(const QuantizedWeight &q, int64_t out,
                                    int64_t in, const WeightScheme &scheme) {
  int64_t group = scheme.group ? scheme.group : in;
  int64_t groups = in / group;
  int64_t rowBytes = scheme.bits == 4 ? in / 2 : in;
  std::vector<float> result(out * in);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      int code;
      uint8_t byte = static_cast<uint8_t>(
          q.codes[o * rowBytes + (scheme.bits == 4 ? i / 2 : i)]);
      if (scheme.bits == 4) {
        int nibble = (i % 2 == 0) ? (byte & 0xf) : (byte >> 4);
        code = scheme.symmetric ? (nibble >= 8 ? nibble - 16 : nibble) : nibble;
      } else {
        code = scheme.symmetric ? static_cast<int8_t>(byte) : byte;
      }
      int64_t g = o * groups + i / group;
      float zero = scheme.symmetric
                       ? 0.0f
                       : float(static_cast<uint8_t>(q.zeroPoints[g]));
      result[o * in + i] = (float(code) - zero) * q.scales[g];
    }
  return result;
}
} // namespace

std::vector<float> mlir::kiln::awqFactors(const float *weight, int64_t out,
                                          int64_t in,
                                          const WeightScheme &scheme,
                                          const float *inputAbsmax,
                                          const float *gram, int grid) {
  std::vector<float> best(in, 1.0f), scaled(out * in), factors(in);
  double bestLoss = std::numeric_limits<double>::infinity();
  std::vector<double> delta(in), hDelta(in);
  for (int step = 0; step <= grid; ++step) {
    double alpha = double(step) / grid;
    double largest = 0, smallest = std::numeric_limits<double>::infinity();
    std::vector<double> s(in);
    for (int64_t j = 0; j < in; ++j) {
      s[j] = std::pow(std::max(double(inputAbsmax[j]), 1e-5), alpha);
      largest = std::max(largest, s[j]);
      smallest = std::min(smallest, s[j]);
    }
    double norm = std::sqrt(largest * smallest);
    for (int64_t j = 0; j < in; ++j)
      factors[j] = static_cast<float>(s[j] / norm);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t j = 0; j < in; ++j)
        scaled[o * in + j] = weight[o * in + j] * factors[j];
    std::vector<float> dequantized = dequantizeWeight(
        quantizeRoundToNearest(scaled.data(), out, in, scheme), out, in,
        scheme);
    // tr(ΔW H ΔWᵀ), row by row.
    double loss = 0;
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t j = 0; j < in; ++j)
        delta[j] = double(weight[o * in + j]) -
                   double(dequantized[o * in + j]) / factors[j];
      for (int64_t i = 0; i < in; ++i) {
        double sum = 0;
        const float *row = gram + i * in;
        for (int64_t j = 0; j < in; ++j)
          sum += row[j] * delta[j];
        loss += delta[i] * sum;
      }
    }
    if (loss < bestLoss) {
      bestLoss = loss;
      best = factors;
    }
  }
  return best;
}
