//===- Pruning.h - Sparsity of linear layers' weights -----------*- C++ -*-===//
//
// What kiln-prune records on the weights it selects and the compiler reads
// back when it writes their values: one description of a pruning, parsed
// from and written to the `kiln.pruned` attribute, and the method and
// sparsity names kiln-compile and the pass accept.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_TRANSFORMS_PRUNING_H
#define KILN_DIALECT_KILN_TRANSFORMS_PRUNING_H

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace mlir::kiln {

/// How the weights to zero are chosen.
enum class PruneMethod {
  /// The smallest |w| (per layer, or over every selected layer).
  Magnitude,
  /// Wanda (Sun et al., 2023): the smallest |w_ij| · ‖x_j‖ per output row,
  /// ‖x_j‖ from the calibration inputs; no weight update.
  Wanda,
  /// SparseGPT (Frantar & Alistarh, 2023): masks chosen per block of
  /// columns from w² / [H⁻¹]_jj², the pruned weights' error spread over
  /// the columns not yet visited through the inverse Hessian H⁻¹ of the
  /// layer's calibration inputs.
  SparseGPT,
};

llvm::StringRef stringifyPruneMethod(PruneMethod method);

/// Which weights a pruning removes.
struct PruneSparsity {
  /// Unstructured: the fraction of weights set to zero, in [0, 1).
  double fraction = 0.5;
  /// Semi-structured N:M: at most `n` nonzeros in every `m` consecutive
  /// weights along the input dim (NVIDIA's 2:4 keeps 2 of 4); 0: none.
  int64_t n = 0, m = 0;

  bool semiStructured() const { return m != 0; }
  /// The fraction of weights this leaves at zero.
  double zeros() const {
    return semiStructured() ? double(m - n) / double(m) : fraction;
  }
  /// `0.5`, `2:4`.
  std::string name() const;
  /// Parses a fraction in [0, 1) or `N:M` with 0 < N < M <= 64.
  static llvm::Expected<PruneSparsity> parse(llvm::StringRef text);
};

/// The pruning of one linear weight (`kiln.pruned` on its kiln.parameter,
/// and on every part kiln-quantize makes of it).
struct WeightPruning {
  PruneMethod method = PruneMethod::Magnitude;
  PruneSparsity sparsity;
  /// Magnitude only: one threshold over every weight pruned with `global`
  /// (its fraction of them zero), not one per layer.
  bool global = false;
  /// The weight's layout: `[in, out]` (GPT-2's Conv1D) instead of
  /// `[out, in]`.
  bool transposed = false;

  DictionaryAttr toAttr(MLIRContext *context) const;
  /// Reads a `kiln.pruned` attribute; an error names what is wrong.
  static llvm::Expected<WeightPruning> fromAttr(DictionaryAttr attr);
};

/// The part of a 2:4 pruned weight stored compressed (kiln-prune
/// compress=true) a parameter holds: each group of four inputs of a row
/// keeps two values, `first` and `second` (`[out, in / 4]`), and their
/// `positions` (i8 `[out, in / 4]`: bits 0-1 and 2-3), which
/// kiln.expand_2of4 turns back into the dense `[out, in]` weight.
enum class CompressedPart { First, Second, Positions };

llvm::StringRef stringifyCompressedPart(CompressedPart part);

/// One parameter made by kiln-prune's compression (`kiln.compressed_from`):
/// `part` of the 2:4 compression of the float parameter `source` of shape
/// `sourceShape` (`[out, in]`, or `[in, out]` when `transposed`).
struct WeightCompression {
  std::string source;
  CompressedPart part = CompressedPart::First;
  bool transposed = false;
  llvm::SmallVector<int64_t, 2> sourceShape;

  int64_t outDim() const { return sourceShape[transposed ? 1 : 0]; }
  int64_t inDim() const { return sourceShape[transposed ? 0 : 1]; }

  DictionaryAttr toAttr(MLIRContext *context) const;
  static llvm::Expected<WeightCompression> fromAttr(DictionaryAttr attr);
};

/// Parses `magnitude`, `wanda` or `sparsegpt`.
llvm::Expected<PruneMethod> parsePruneMethod(llvm::StringRef text);

} // namespace mlir::kiln

#endif // KILN_DIALECT_KILN_TRANSFORMS_PRUNING_H
