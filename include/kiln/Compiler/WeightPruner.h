//===- WeightPruner.h - Pruned values of float weights ----------*- C++ -*-===//
//
// What the compiler writes for the weights kiln-prune marked: the float
// weight with the chosen entries set to zero (and, for SparseGPT, the
// others updated to make up for them).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_WEIGHTPRUNER_H
#define KILN_COMPILER_WEIGHTPRUNER_H

#include "kiln/Dialect/Kiln/Transforms/Pruning.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::kiln {

/// Prunes `weight` (`[out, in]`, row-major) in place. Ties are broken by
/// position (the earlier weight goes first), so a mask is reproducible:
/// - magnitude, a fraction s: the floor(s · out · in) smallest |w| (with
///   `threshold` >= 0, instead every |w| <= threshold: a global pruning's
///   threshold from magnitudeThreshold);
/// - wanda: in each row, the floor(s · in) smallest |w_ij| · sqrt(G_jj);
/// - sparsegpt: SparseGPT's one-shot pruning against H = G (damped by
///   `damp` · mean(diag), blocks of `blockSize` inputs): in each block the
///   floor(s · out · count) smallest w² / [H⁻¹]_jj² over the block (N:M:
///   the M - N smallest in each M inputs of a row when the scan reaches
///   them), each pruned weight's error spread over the row's later inputs;
/// - N:M (any method): in every M consecutive inputs of a row, the M - N
///   of smallest score.
/// `gram` (`[in, in]`, Σ x xᵀ of the layer's calibration inputs) is
/// required by wanda and sparsegpt.
llvm::Error pruneWeight(std::vector<float> &weight, int64_t out, int64_t in,
                        const WeightPruning &pruning, const float *gram,
                        double threshold = -1, double damp = 0.01,
                        int64_t blockSize = kSparseGPTBlockSize);

/// The largest |w| a global magnitude pruning of `fraction` zeroes over
/// the weights `magnitudes` (|w| of every weight pruned together); -1
/// when it zeroes none.
double magnitudeThreshold(std::vector<float> magnitudes, double fraction);

} // namespace mlir::kiln

#endif // KILN_COMPILER_WEIGHTPRUNER_H
