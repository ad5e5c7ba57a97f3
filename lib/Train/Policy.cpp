//===- Policy.cpp - Policy-gradient pieces of the RLHF methods ------------===//

#include "kiln/Train/Policy.h"

#include "kiln/Train/Examples.h"

#include <cmath>

using namespace kiln::train;

std::vector<double> kiln::train::groupAdvantages(
    const std::vector<double> &rewards, int64_t group, double eps) {
  std::vector<double> advantages(rewards.size(), 0.0);
  size_t g = static_cast<size_t>(group);
  for (size_t first = 0; first + g <= rewards.size(); first += g) {
    double mean = 0;
    for (size_t i = first; i < first + g; ++i)
      mean += rewards[i];
    mean /= static_cast<double>(g);
    double squares = 0;
    for (size_t i = first; i < first + g; ++i)
      squares += (rewards[i] - mean) * (rewards[i] - mean);
    double std = std::sqrt(squares / static_cast<double>(g - 1));
    if (squares == 0)
      continue;
    for (size_t i = first; i < first + g; ++i)
      advantages[i] = (rewards[i] - mean) / (std + eps);
  }
  return advantages;
}

Batch kiln::train::policyRows(const std::vector<std::vector<int32_t>> &prompts,
                              const std::vector<Sample> &samples, int64_t seq,
                              int64_t padId, int32_t eosId) {
  Batch batch;
  batch.batch = static_cast<int64_t>(prompts.size());
  batch.seq = seq;
  batch.inputs.assign(static_cast<size_t>(batch.batch * seq), padId);
  batch.targets.assign(static_cast<size_t>(batch.batch * seq), -100);
  for (size_t r = 0; r < prompts.size(); ++r) {
    Example example;
    example.tokens = prompts[r];
    example.promptTokens = static_cast<int64_t>(prompts[r].size());
    example.tokens.insert(example.tokens.end(), samples[r].tokens.begin(),
                          samples[r].tokens.end());
    if (samples[r].finish == "eos" && eosId >= 0)
      example.tokens.push_back(eosId);
    fillExampleRow(example, static_cast<int64_t>(r), padId, batch);
  }
  return batch;
}
