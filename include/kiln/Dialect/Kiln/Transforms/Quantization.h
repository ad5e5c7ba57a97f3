//===- Quantization.h - Quantization schemes of weights ---------*- C++ -*-===//
//
// What kiln-quantize records on the parameters it makes and the compiler
// reads back to fill them: one description of a quantized weight, parsed
// from and written to the `kiln.quantized_from` attribute, and the scheme
// names (`w8`, `w4g128`) kiln-compile and the pass accept.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_TRANSFORMS_QUANTIZATION_H
#define KILN_DIALECT_KILN_TRANSFORMS_QUANTIZATION_H

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::kiln {

/// Codes per weight and how scales cover them.
struct WeightScheme {
  /// 8 or 4.
  int64_t bits = 8;
  /// Inputs per scale; 0: one scale per output channel.
  int64_t group = 0;
  /// Signed codes and no zero point; otherwise unsigned codes with one.
  bool symmetric = true;
  /// W8A8 (`int8-dynamic`): the linears' inputs are quantized too, per
  /// token at run time, and multiplied as integers (kiln.integer_matmul).
  /// The weights are those of `w8`.
  bool dynamicActivations = false;
  /// W8A8 with one static scale per layer's input (`int8-static`), from
  /// the calibration statistics on the weight's parameter
  /// (attrs::kInputAbsmax). Implies quantized activations.
  bool staticActivations = false;
  /// fp8 (`fp8`): e4m3 weight codes with one scale per tensor, and the
  /// linears' inputs quantized to e4m3 at run time with one scale per
  /// tensor (max|x| / 448), multiplied by kiln.scaled_fp8_matmul (cuBLASLt's
  /// fp8 gemm on CUDA). bits 8, no group, symmetric.
  bool fp8 = false;

  /// Whether the int8 schemes quantize the activations (fp8 does too, by
  /// its own rule).
  bool quantizesActivations() const {
    return dynamicActivations || staticActivations;
  }

  /// `w8`, `w4g128`, `w8g64`, `int8-dynamic`, `int8-static`, `fp8`;
  /// `-asym` appended when asymmetric.
  std::string name() const;
  /// Parses `w8`, `w8g<N>`, `w4g<N>` (N even, >= 2; int4 needs a group)
  /// and `int8-dynamic`, `int8-static`, `fp8`.
  static llvm::Expected<WeightScheme> parse(llvm::StringRef text,
                                            bool asymmetric);
};

/// The part of a quantized weight a parameter holds. Smoothing: the
/// SmoothQuant factors 1 / s ([in]) the layer's input is multiplied by
/// (its codes quantize W · diag(s)).
/// InputScale: int8-static's activation scale ([1]) when it depends on
/// the weight (with SmoothQuant), computed by the compiler.
enum class QuantizedPart { Codes, Scales, ZeroPoints, Smoothing, InputScale };

/// One parameter made by kiln-quantize: `part` of the quantization of the
/// float parameter `source` of shape `sourceShape` (`[out, in]`, or
/// `[in, out]` when `transposed`).
struct WeightQuantization {
  std::string source;
  QuantizedPart part = QuantizedPart::Codes;
  WeightScheme scheme;
  bool transposed = false;
  SmallVector<int64_t, 2> sourceShape;
  /// How codes are chosen: "rtn" (round to nearest), "gptq" (against the
  /// layer's calibration Gram matrix) or "awq" (activation-aware
  /// per-channel scales searched against it; WeightQuantizer.h).
  std::string rounding = "rtn";
  /// SmoothQuant's migration strength α in [0, 1]; negative: none. With
  /// it, s_j = max|x_j|^α / max|W_:,j|^(1-α) per input channel j.
  double smoothAlpha = -1;
  /// The Smoothing part's calibration statistics (max |x_j|, [in]), which
  /// the compiler needs with the weight to compute s.
  std::vector<float> inputAbsmax;

  int64_t outDim() const { return sourceShape[transposed ? 1 : 0]; }
  int64_t inDim() const { return sourceShape[transposed ? 0 : 1]; }
  /// The shape this part has: codes `[out, in]` (`[out, in / 2]` with 4
  /// bits), scales and zero points `[out, groups]` (fp8's scale `[1]`),
  /// smoothing `[in]`, the input scale `[1]`.
  SmallVector<int64_t, 2> partShape() const;
  /// Whether this part holds f32 values (scales, smoothing, input scale);
  /// otherwise i8 codes or zero points, or fp8's e4m3 codes.
  bool isFloatPart() const;

  DictionaryAttr toAttr(MLIRContext *context) const;
  /// Reads a `kiln.quantized_from` attribute; an error names what is wrong.
  static llvm::Expected<WeightQuantization> fromAttr(DictionaryAttr attr);
};

llvm::StringRef stringifyQuantizedPart(QuantizedPart part);

} // namespace mlir::kiln

#endif // KILN_DIALECT_KILN_TRANSFORMS_QUANTIZATION_H
