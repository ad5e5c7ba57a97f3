//===- StructuredPruning.h - Removing heads and MLP channels ----*- C++ -*-===//
//
// Structured pruning makes a model physically smaller: whole attention heads
// and MLP channels are removed, so the layers are built with fewer of them
// and every weight that touches them loses the matching rows or columns.
// The model config records what is gone (`pruned_heads`, as Hugging Face's
// prune_heads writes it, and Kiln's `pruned_ffn_channels`); the builders
// read both, and the weights are sliced to match.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_STRUCTUREDPRUNING_H
#define KILN_COMPILER_STRUCTUREDPRUNING_H

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <string>

namespace mlir::kiln {

struct StructuredPruningOptions {
  /// Remove attention heads (for grouped-query attention, whole key/value
  /// groups) and/or MLP channels.
  bool heads = false, channels = false;
  /// The fraction of each layer's heads (groups) and channels removed, in
  /// [0, 1): floor(fraction · count) of the least important.
  double fraction = 0.5;
  /// A kiln calibrate file with Gram matrices (`--calibration-gram`):
  /// units are then ranked by what they put out on the calibration text,
  /// not by their weights' norm (StructuredPruning.cpp). Empty: by norm.
  std::string calibrationPath;
};

struct StructuredPruningResult {
  /// The input config with `pruned_heads` and `pruned_ffn_channels` set.
  llvm::json::Object config;
  int64_t headsRemoved = 0, headsTotal = 0;
  int64_t channelsRemoved = 0, channelsTotal = 0;
};

/// Ranks the heads and MLP channels of each layer of the gpt2, llama or
/// bert model `config` by the L2 norm of every weight entry that belongs to
/// them (the query, key, value and output projections' rows or columns of
/// a head; the MLP's input and output weights of a channel), or, with a
/// calibration file, by the energy of their output on the calibration
/// text: Σ_i G_ii · ‖W_o[i]‖² over the output projection's inputs i that
/// belong to the unit (G the Gram matrix of that projection's input, W_o[i]
/// its weights from input i), and removes the
/// least important `fraction` of each layer (ties: the lower index goes),
/// and writes the checkpoint `weightsPath` (a file or a save_pretrained
/// directory) with those rows and columns cut out, every other tensor as
/// it was, to `outPath`. A config that prunes already, a family without
/// structured pruning, or a checkpoint without a layer's weights is an
/// error naming it.
llvm::Expected<StructuredPruningResult>
pruneStructured(const llvm::json::Object &config,
                const std::string &weightsPath,
                const StructuredPruningOptions &options,
                const std::string &outPath);

/// Writes `config` to `path` as indented JSON, atomically (a pruned
/// model's config, for kiln-compile --pruned-config).
llvm::Error writeModelConfig(const llvm::json::Object &config,
                             const std::string &path);

} // namespace mlir::kiln

#endif // KILN_COMPILER_STRUCTUREDPRUNING_H
