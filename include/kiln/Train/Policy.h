//===- Policy.h - Policy-gradient pieces of the RLHF methods ----*- C++ -*-===//
//
// What `kiln grpo` computes around the compiled loss: rollouts through the
// policy's KV cache, judged rewards, group-normalized advantages, and the
// rows train_step learns from.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_POLICY_H
#define KILN_TRAIN_POLICY_H

#include "kiln/Train/Generate.h"
#include "kiln/Train/TokenData.h"

#include <cstdint>
#include <vector>

namespace kiln::train {

/// GRPO's advantages (Shao et al., 2024): within each run of `group`
/// consecutive rewards, (r - mean) / (std + eps) with the unbiased standard
/// deviation (as TRL); a group whose rewards are all equal teaches nothing
/// and gets zeros. `rewards.size()` must be a multiple of `group` >= 2.
std::vector<double> groupAdvantages(const std::vector<double> &rewards,
                                    int64_t group, double eps = 1e-4);

/// The rows of a policy batch: row r is `prompts[r]` followed by
/// `samples[r]`'s tokens (and the end token when the sample ended with it),
/// padded with `padId`; targets are the response tokens only (the prompt
/// and the padding -100), as kiln sft lays out an example. Every row must
/// fit seq + 1 tokens.
Batch policyRows(const std::vector<std::vector<int32_t>> &prompts,
                 const std::vector<Sample> &samples, int64_t seq,
                 int64_t padId, int32_t eosId);

} // namespace kiln::train

#endif // KILN_TRAIN_POLICY_H
