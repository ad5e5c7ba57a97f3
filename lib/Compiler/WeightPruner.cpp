//===- WeightPruner.cpp - Pruned values of float weights ------------------===//
//
// Magnitude, Wanda and SparseGPT pruning (WeightPruner.h).
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/WeightPruner.h"
#include "kiln/Compiler/WeightQuantizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace mlir::kiln;

namespace {

/// The positions of the `k` smallest `scores` (ties: the smaller position
/// first), set in `mask` at `offset + position`.
void markSmallest(const std::vector<double> &scores, int64_t k,
                  std::vector<bool> &mask, int64_t offset = 0) {
  if (k <= 0)
    return;
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  auto before = [&](int64_t a, int64_t b) {
    return scores[a] < scores[b] || (scores[a] == scores[b] && a < b);
  };
  k = std::min<int64_t>(k, static_cast<int64_t>(order.size()));
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(),
                   before);
  for (int64_t i = 0; i < k; ++i)
    mask[offset + order[i]] = true;
}

/// In every `m` consecutive inputs of each row, the `m - n` of smallest
/// `score(row, input)` marked in `mask` (`[out, in]`).
template <typename Score>
void markSemiStructured(int64_t out, int64_t in, int64_t n, int64_t m,
                        Score score, std::vector<bool> &mask) {
  std::vector<double> group(m);
  for (int64_t r = 0; r < out; ++r)
    for (int64_t g = 0; g < in; g += m) {
      for (int64_t j = 0; j < m; ++j)
        group[j] = score(r, g + j);
      markSmallest(group, m - n, mask, r * in + g);
    }
}

llvm::Error sparseGPT(std::vector<float> &weight, int64_t out, int64_t in,
                      const PruneSparsity &sparsity, const float *gram,
                      double damp, int64_t blockSize) {
  std::vector<bool> dead;
  llvm::Expected<std::vector<double>> factor =
      inverseHessianFactor(gram, in, damp, dead);
  if (!factor)
    return llvm::createStringError("SparseGPT: " +
                                   llvm::toString(factor.takeError()));
  const std::vector<double> &l = *factor;
  // U = Lᵀ, the upper factor of H⁻¹: U[i][j] = L[j][i].
  auto u = [&](int64_t i, int64_t j) { return l[j * in + i]; };
  std::vector<double> w(weight.begin(), weight.end());
  for (int64_t j = 0; j < in; ++j)
    if (dead[j])
      for (int64_t r = 0; r < out; ++r)
        w[r * in + j] = 0.0;
  auto score = [&](int64_t r, int64_t j) {
    double d = u(j, j);
    return w[r * in + j] * w[r * in + j] / (d * d);
  };
  std::vector<bool> mask(out * in, false);
  std::vector<double> scores, row(in);
  for (int64_t start = 0; start < in; start += blockSize) {
    int64_t count = std::min(blockSize, in - start);
    if (!sparsity.semiStructured()) {
      // This block's mask, from the weights as the earlier blocks left them.
      scores.resize(out * count);
      for (int64_t r = 0; r < out; ++r)
        for (int64_t c = 0; c < count; ++c)
          scores[r * count + c] = score(r, start + c);
      std::vector<bool> blockMask(out * count, false);
      markSmallest(scores, prunedCount(sparsity.fraction, out * count), blockMask);
      for (int64_t r = 0; r < out; ++r)
        for (int64_t c = 0; c < count; ++c)
          mask[r * in + start + c] = blockMask[r * count + c];
    }
    for (int64_t j = start; j < start + count; ++j) {
      if (sparsity.semiStructured() && j % sparsity.m == 0) {
        std::vector<double> group(sparsity.m);
        for (int64_t r = 0; r < out; ++r) {
          for (int64_t k = 0; k < sparsity.m; ++k)
            group[k] = score(r, j + k);
          markSmallest(group, sparsity.m - sparsity.n, mask, r * in + j);
        }
      }
      double d = u(j, j);
      for (int64_t k = j + 1; k < in; ++k)
        row[k] = u(j, k);
      for (int64_t r = 0; r < out; ++r) {
        double *wr = w.data() + r * in;
        if (!mask[r * in + j])
          continue;
        // The pruned weight's error, spread over the row's later inputs.
        double error = wr[j] / d;
        wr[j] = 0.0;
        for (int64_t k = j + 1; k < in; ++k)
          wr[k] -= error * row[k];
      }
    }
  }
  for (int64_t i = 0; i < out * in; ++i)
    weight[i] = mask[i] ? 0.0f : static_cast<float>(w[i]);
  return llvm::Error::success();
}

} // namespace

double mlir::kiln::magnitudeThreshold(std::vector<float> magnitudes,
                                      double fraction) {
  int64_t k = prunedCount(fraction, static_cast<int64_t>(magnitudes.size()));
  if (k <= 0)
    return -1;
  std::nth_element(magnitudes.begin(), magnitudes.begin() + (k - 1),
                   magnitudes.end());
  return magnitudes[k - 1];
}

llvm::Error mlir::kiln::pruneWeight(std::vector<float> &weight, int64_t out,
                                    int64_t in, const WeightPruning &pruning,
                                    const float *gram, double threshold,
                                    double damp, int64_t blockSize) {
  const PruneSparsity &sparsity = pruning.sparsity;
  if (static_cast<int64_t>(weight.size()) != out * in)
    return llvm::createStringError("pruning: a weight of " +
                                   llvm::Twine(weight.size()) +
                                   " values is not [" + llvm::Twine(out) +
                                   ", " + llvm::Twine(in) + "]");
  if (sparsity.semiStructured() && in % sparsity.m)
    return llvm::createStringError(
        llvm::Twine(sparsity.n) + ":" + llvm::Twine(sparsity.m) +
        " pruning needs an input dim divisible by " + llvm::Twine(sparsity.m) +
        ", not " + llvm::Twine(in));
  if (pruning.method != PruneMethod::Magnitude && !gram)
    return llvm::createStringError(
        stringifyPruneMethod(pruning.method) +
        " pruning needs the layer's calibration Gram matrix");
  if (pruning.method == PruneMethod::SparseGPT)
    return sparseGPT(weight, out, in, sparsity, gram, damp, blockSize);

  std::vector<bool> mask(out * in, false);
  auto score = [&](int64_t r, int64_t j) -> double {
    double magnitude = std::fabs(double(weight[r * in + j]));
    if (pruning.method == PruneMethod::Wanda)
      return magnitude * std::sqrt(std::max(0.0, double(gram[j * in + j])));
    return magnitude;
  };
  if (sparsity.semiStructured()) {
    markSemiStructured(out, in, sparsity.n, sparsity.m, score, mask);
  } else if (pruning.method == PruneMethod::Wanda) {
    std::vector<double> scores(in);
    for (int64_t r = 0; r < out; ++r) {
      for (int64_t j = 0; j < in; ++j)
        scores[j] = score(r, j);
      markSmallest(scores, prunedCount(sparsity.fraction, in), mask, r * in);
    }
  } else if (threshold >= 0) {
    for (int64_t i = 0; i < out * in; ++i)
      mask[i] = std::fabs(weight[i]) <= threshold;
  } else if (!pruning.global) {
    std::vector<double> scores(out * in);
    for (int64_t i = 0; i < out * in; ++i)
      scores[i] = std::fabs(double(weight[i]));
    markSmallest(scores, prunedCount(sparsity.fraction, out * in), mask);
  }
  for (int64_t i = 0; i < out * in; ++i)
    if (mask[i])
      weight[i] = 0.0f;
  return llvm::Error::success();
}
