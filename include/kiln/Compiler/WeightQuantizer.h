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

#include "llvm/Support/Error.h"

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
  /// SmoothQuant's `1 / s` (`[in]`) the layer's input is multiplied by;
  /// empty without SmoothQuant.
  std::vector<float> smoothing;
  /// int8-static with SmoothQuant: the activation scale `[1]`,
  /// max(max_j |x_j| / s_j, 1e-30) / 127; empty otherwise.
  std::vector<float> inputScale;
};

/// SmoothQuant's factors (Xiao et al., 2023) for a weight `[out, in]` and
/// its input's largest |x_j| per channel: s_j = max|x_j|^alpha /
/// max_o|W_oj|^(1 - alpha), both maxima clamped to at least 1e-5 as the
/// paper's code does.
std::vector<float> smoothQuantFactors(const float *weight, int64_t out,
                                      int64_t in, const float *inputAbsmax,
                                      double alpha);

/// AWQ's activation-aware scales (Lin et al., 2023) for a weight `[out,
/// in]`: s_j = max|x_j|^α (max|x_j| at least 1e-5), normalized by
/// sqrt(max s · min s), with α from {0, 1/grid, ..., 1} the one whose
/// round-to-nearest quantization of W · diag(s), divided back by s, moves
/// the layer's outputs on the calibration inputs least:
/// tr(ΔW H ΔWᵀ) with H = `gram` (`[in, in]`). α = 0 (s = 1, plain round
/// to nearest) is a candidate, so the result is never worse than it.
std::vector<float> awqFactors(const float *weight, int64_t out, int64_t in,
                              const WeightScheme &scheme,
                              const float *inputAbsmax, const float *gram,
                              int grid = 20);

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

/// GPTQ (Frantar et al., 2022): the codes of `weight` chosen column by
/// column in input order, each column's rounding error spread over the
/// columns not yet quantized through the inverse Hessian of the layer's
/// reconstruction error, so the layer's outputs on the calibration inputs
/// move as little as possible. `gram` is Σ x xᵀ over those inputs
/// (`[in, in]`, kiln calibrate's `<weight>.input_gram`). Damping adds
/// `damp` · mean(diag) to the diagonal; an input channel that was always 0
/// gets weight 0. Scales and zero points follow the round-to-nearest rule
/// above, per row (`w8`) on the original weight, per group on the weight
/// as updated when the group starts; codes are rounded as above. Fails if
/// the damped matrix is not positive definite.
llvm::Expected<QuantizedWeight>
quantizeGPTQ(const float *weight, int64_t out, int64_t in,
             const WeightScheme &scheme, const float *gram, double damp = 0.01);

/// The factor GPTQ and SparseGPT spread errors with: the lower Cholesky
/// factor L of H⁻¹ (`[in, in]` row-major; its transpose U = Lᵀ is upper,
/// H⁻¹ = UᵀU), H the Gram matrix `gram` with each zero diagonal entry (an
/// input channel that was always 0, marked in `dead`) set to 1 and
/// `damp` · mean(diag) added to the diagonal. Fails if the damped matrix is
/// not positive definite.
llvm::Expected<std::vector<double>>
inverseHessianFactor(const float *gram, int64_t in, double damp,
                     std::vector<bool> &dead);

} // namespace mlir::kiln

#endif // KILN_COMPILER_WEIGHTQUANTIZER_H
