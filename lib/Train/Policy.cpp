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

AdvantageEstimate kiln::train::generalizedAdvantages(
    const std::vector<int64_t> &targets, int64_t rows, int64_t seq,
    const std::vector<float> &logprobs, const std::vector<float> &reference,
    const std::vector<float> &values, const std::vector<double> &scores,
    double klCoef, double gamma, double lambda) {
  size_t n = static_cast<size_t>(rows * seq);
  AdvantageEstimate out;
  std::vector<double> advantages(n, 0.0);
  out.returns.assign(n, 0.0f);
  double penalty = 0;
  for (int64_t r = 0; r < rows; ++r) {
    size_t base = static_cast<size_t>(r * seq);
    int64_t last = -1;
    for (int64_t t = 0; t < seq; ++t)
      if (targets[base + static_cast<size_t>(t)] != -100)
        last = t;
    double gae = 0, nextValue = 0;
    for (int64_t t = last; t >= 0; --t) {
      size_t i = base + static_cast<size_t>(t);
      if (targets[i] == -100)
        continue;
      double kl = static_cast<double>(logprobs[i]) - reference[i];
      double reward = -klCoef * kl;
      penalty += reward;
      if (t == last)
        reward += scores[static_cast<size_t>(r)];
      double delta = reward + gamma * nextValue - values[i];
      gae = delta + gamma * lambda * gae;
      advantages[i] = gae;
      out.returns[i] = static_cast<float>(gae + values[i]);
      nextValue = values[i];
    }
  }
  out.klPenalty = rows ? penalty / static_cast<double>(rows) : 0.0;
  // Whitened over the response tokens.
  double count = 0, mean = 0;
  for (size_t i = 0; i < n; ++i)
    if (targets[i] != -100) {
      count += 1;
      mean += advantages[i];
    }
  out.advantages.assign(n, 0.0f);
  if (count < 2)
    return out;
  mean /= count;
  double squares = 0;
  for (size_t i = 0; i < n; ++i)
    if (targets[i] != -100)
      squares += (advantages[i] - mean) * (advantages[i] - mean);
  double std = std::sqrt(squares / (count - 1));
  for (size_t i = 0; i < n; ++i)
    if (targets[i] != -100)
      out.advantages[i] = static_cast<float>((advantages[i] - mean) / (std + 1e-8));
  return out;
}
