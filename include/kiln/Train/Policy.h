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

/// PPO's targets for a policy batch (rows of `seq` positions; the response
/// tokens are where `targets` is not -100): per response token the reward
/// -kl_coef * (logprobs - reference) plus, at the row's last response token,
/// the row's `score`; advantages by generalized advantage estimation
/// (Schulman et al. 2016) with `gamma` and `lambda` from the `values`, the
/// returns advantages + values, then the advantages whitened over every
/// response token of the batch (unbiased variance, as TRL). Positions
/// outside the responses are 0.
struct AdvantageEstimate {
  std::vector<float> advantages, returns;
  /// The mean over rows of the summed KL penalty.
  double klPenalty = 0;
};
AdvantageEstimate generalizedAdvantages(
    const std::vector<int64_t> &targets, int64_t rows, int64_t seq,
    const std::vector<float> &logprobs, const std::vector<float> &reference,
    const std::vector<float> &values, const std::vector<double> &scores,
    double klCoef, double gamma, double lambda);

} // namespace kiln::train

#endif // KILN_TRAIN_POLICY_H
