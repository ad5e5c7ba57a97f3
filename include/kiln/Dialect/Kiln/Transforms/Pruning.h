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
#include <optional>
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

/// SparseGPT chooses its masks per block of this many inputs.
constexpr int64_t kSparseGPTBlockSize = 128;

/// How many of `total` weights a fraction `fraction` zeroes: floor(f · t).
int64_t prunedCount(double fraction, int64_t total);

/// How many weights of an `[out, in]` layer `pruning` keeps, as the
/// compiler's pruner counts them (WeightPruner.h): N:M keeps n of every m,
/// magnitude the layer's total less floor(s · total), Wanda each row's
/// less floor(s · in), SparseGPT each block of kSparseGPTBlockSize inputs'
/// less floor(s · out · count). None for a global magnitude pruning,
/// whose share of zeros per layer follows from the weights.
std::optional<int64_t> keptWeights(const WeightPruning &pruning, int64_t out,
                                   int64_t in);

/// How a pruned weight is stored compressed (kiln-prune compress=true).
enum class CompressedFormat {
  /// 2:4: each group of four inputs of a row keeps two values, `first`
  /// and `second` (`[out, in / 4]`), and their `positions` (i8
  /// `[out, in / 4]`: bits 0-1 and 2-3), which kiln.expand_2of4 turns
  /// back into the dense `[out, in]` weight.
  TwoFour,
  /// Compressed sparse rows: the kept `values` of each output row (f32
  /// `[nnz]`), their input `indices` (i16, or i32 beyond 65536 inputs,
  /// `[nnz]`) and where each row starts (`offsets`, i32 `[out + 1]`), read
  /// through kiln.expand_csr.
  CSR,
};

/// The part of a compressed weight a parameter holds.
enum class CompressedPart { First, Second, Positions, Values, Indices, Offsets };

llvm::StringRef stringifyCompressedPart(CompressedPart part);

/// One parameter made by kiln-prune's compression (`kiln.compressed_from`):
/// `part` of the compression of the float parameter `source` of shape
/// `sourceShape` (`[out, in]`, or `[in, out]` when `transposed`).
struct WeightCompression {
  std::string source;
  CompressedFormat format = CompressedFormat::TwoFour;
  CompressedPart part = CompressedPart::First;
  bool transposed = false;
  llvm::SmallVector<int64_t, 2> sourceShape;
  /// CSR: the entries stored (keptWeights of the pruning; rows with fewer
  /// nonzeros leave padding entries of value 0 at the end).
  int64_t nnz = 0;

  int64_t outDim() const { return sourceShape[transposed ? 1 : 0]; }
  int64_t inDim() const { return sourceShape[transposed ? 0 : 1]; }
  /// CSR: i32 input indices instead of i16.
  bool wideIndices() const { return inDim() > (int64_t(1) << 16); }
  /// This part's shape.
  llvm::SmallVector<int64_t, 2> partShape() const;

  DictionaryAttr toAttr(MLIRContext *context) const;
  static llvm::Expected<WeightCompression> fromAttr(DictionaryAttr attr);
};

/// Parses `magnitude`, `wanda` or `sparsegpt`.
llvm::Expected<PruneMethod> parsePruneMethod(llvm::StringRef text);

} // namespace mlir::kiln

#endif // KILN_DIALECT_KILN_TRANSFORMS_PRUNING_H
