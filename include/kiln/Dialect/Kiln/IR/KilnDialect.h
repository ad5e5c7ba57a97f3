//===- KilnDialect.h - The kiln dialect -------------------------*- C++ -*-===//
//
// Declares the kiln dialect class.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNDIALECT_H
#define KILN_DIALECT_KILN_IR_KILNDIALECT_H

#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "kiln/Dialect/Kiln/IR/KilnDialect.h.inc"

namespace mlir::kiln {

/// The discardable `kiln.*` attributes that pass information between the
/// model builders, the kiln passes and the compiler, declared once
/// (docs/writing-kiln-ir.md). Attributes private to one pass are declared in
/// that pass's file.
namespace attrs {
/// StringAttr on entry-point arguments and results: the tensor's name in the
/// manifest ("input_ids", "logits", "loss").
constexpr llvm::StringLiteral kName = "kiln.name";
/// DenseI64ArrayAttr on entry-point arguments: the largest size of each dim
/// (-1: no limit), the manifest's "max_shape".
constexpr llvm::StringLiteral kMaxShape = "kiln.max_shape";
/// StringAttr on arguments that carry a parameter after
/// kiln-externalize-parameters: the parameter's name.
constexpr llvm::StringLiteral kParameter = "kiln.parameter";
/// UnitAttr on an entry-point argument that the entry point updates in
/// place (a KV cache): it ends with a kiln.store_param into the argument,
/// the manifest marks the input "in_place", and the runtime passes the
/// caller's buffer, which holds the new value when the call returns.
constexpr llvm::StringLiteral kInPlace = "kiln.in_place";
/// UnitAttr on a kiln.parameter that is optimizer state (kiln-optimizer):
/// not in the weights file, zero at the start.
constexpr llvm::StringLiteral kOptimizerState = "kiln.optimizer_state";
/// ArrayAttr of parameter symbols on a gradient function (kiln-autodiff):
/// the parameters its extra results are the gradients of, in order.
constexpr llvm::StringLiteral kGradientParameters = "kiln.gradient_parameters";
/// DictionaryAttr on a kiln.parameter made by kiln-quantize: which float
/// parameter it is quantized from and how (WeightQuantization in
/// kiln/Dialect/Kiln/Transforms/Quantization.h reads and writes it).
constexpr llvm::StringLiteral kQuantizedFrom = "kiln.quantized_from";
/// DenseElementsAttr (f32 [in]) on a kiln.parameter that is a linear's
/// weight: the largest |input| per input channel on calibration data (kiln
/// calibrate; attached by kiln-compile --calibration), which kiln-quantize
/// turns into static activation scales.
constexpr llvm::StringLiteral kInputAbsmax = "kiln.input_absmax";
/// FloatAttr (f32) on a kiln.parameter that is a linear's weight: the
/// clipping threshold of its input chosen by kiln calibrate --range
/// percentile|mse; int8-static's scale is it / 127 instead of the largest
/// kInputAbsmax.
constexpr llvm::StringLiteral kInputRange = "kiln.input_range";
/// DictionaryAttr on a kiln.parameter that is a linear's weight (kiln-prune),
/// or on the parts kiln-quantize makes of one: how its weights are chosen
/// to be zero (WeightPruning in kiln/Dialect/Kiln/Transforms/Pruning.h).
/// The compiler zeroes them when it writes the weights; kiln-optimizer
/// keeps them zero while the rest trains.
constexpr llvm::StringLiteral kPruned = "kiln.pruned";
/// DictionaryAttr on a kiln.parameter holding part of a 2:4 pruned weight
/// stored compressed (WeightCompression in Pruning.h): the compiler fills
/// it from the pruned weight.
constexpr llvm::StringLiteral kCompressedFrom = "kiln.compressed_from";
/// DictionaryAttr on a kiln.parameter stored as the CPU matmul's column
/// panels (kiln-pack-weights): `shape` (the stored shape before packing),
/// `in_out` (whether that is [in, out]) and `width` (columns per panel).
/// The compiler packs the weights it writes so.
constexpr llvm::StringLiteral kPackedFrom = "kiln.packed_from";
/// DictionaryAttr on a module built from a config: what a driver needs to
/// know of the model that the entry points' types do not say (the family,
/// CLIP's end-of-text id and image size). The compiler records it in the
/// manifest as compile_options.model.
constexpr llvm::StringLiteral kModel = "kiln.model";
} // namespace attrs

} // namespace mlir::kiln

#endif // KILN_DIALECT_KILN_IR_KILNDIALECT_H
