//===- PolicyTest.cpp - GRPO advantages, PPO's GAE, policy rows -----------===//
//
// The numbers the policy-gradient drivers feed train_step, against
// computations written out by hand.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Policy.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace kiln::train;

namespace {

TEST(PolicyTest, GroupAdvantagesNormalizeWithinEachGroup) {
  // Group 1: rewards 1, 0, 0, 1 (mean 0.5, unbiased std 0.57735);
  // group 2: all right, nothing to learn.
  std::vector<double> a = groupAdvantages({1, 0, 0, 1, 1, 1, 1, 1}, 4);
  double std = std::sqrt(1.0 / 3.0);
  EXPECT_NEAR(a[0], 0.5 / (std + 1e-4), 1e-12);
  EXPECT_NEAR(a[1], -0.5 / (std + 1e-4), 1e-12);
  for (int i = 4; i < 8; ++i)
    EXPECT_EQ(a[i], 0.0);
}

TEST(PolicyTest, GeneralizedAdvantagesByHand) {
  // Two rows of 4 positions; row 0 answers at positions 1..2, row 1 at 3.
  std::vector<int64_t> targets = {-100, 5, 6, -100, -100, -100, -100, 7};
  std::vector<float> logp = {0, -1.0f, -0.5f, 0, 0, 0, 0, -2.0f};
  std::vector<float> ref = {0, -1.5f, -0.5f, 0, 0, 0, 0, -1.0f};
  std::vector<float> values = {0, 0.2f, 0.4f, 0, 0, 0, 0, 0.1f};
  double kl = 0.1, gamma = 0.9, lambda = 0.8;
  AdvantageEstimate e = generalizedAdvantages(targets, 2, 4, logp, ref, values,
                                              {1.0, 0.0}, kl, gamma, lambda);
  // Row 0: r1 = -0.1 * 0.5 = -0.05; r2 = 0 + 1 (the score).
  double d2 = 1.0 + 0 - 0.4, a2 = d2;
  double d1 = -0.05 + gamma * 0.4 - 0.2, a1 = d1 + gamma * lambda * a2;
  // Row 1: r3 = -0.1 * (-1) = 0.1, score 0.
  double a3 = 0.1 - 0.1;
  EXPECT_NEAR(e.returns[1], a1 + 0.2, 1e-6);
  EXPECT_NEAR(e.returns[2], a2 + 0.4, 1e-6);
  EXPECT_NEAR(e.returns[7], a3 + 0.1, 1e-6);
  EXPECT_NEAR(e.klPenalty, (-0.05 + 0.0 + 0.1) / 2, 1e-9);
  // Whitened over the three answer tokens (unbiased variance).
  double mean = (a1 + a2 + a3) / 3;
  double var = ((a1 - mean) * (a1 - mean) + (a2 - mean) * (a2 - mean) +
                (a3 - mean) * (a3 - mean)) /
               2;
  EXPECT_NEAR(e.advantages[1], (a1 - mean) / std::sqrt(var), 1e-5);
  EXPECT_NEAR(e.advantages[2], (a2 - mean) / std::sqrt(var), 1e-5);
  EXPECT_NEAR(e.advantages[7], (a3 - mean) / std::sqrt(var), 1e-5);
  for (int i : {0, 3, 4, 5, 6}) {
    EXPECT_EQ(e.advantages[i], 0.0f);
    EXPECT_EQ(e.returns[i], 0.0f);
  }
}

TEST(PolicyTest, PolicyRowsEndWithTheEndTokenOnlyWhenTheSampleDid) {
  Sample stopped;
  stopped.tokens = {20, 21};
  stopped.finish = "eos";
  Sample cut;
  cut.tokens = {30};
  cut.finish = "length";
  Batch b = policyRows({{10, 11}, {12}}, {stopped, cut}, 5, 0, 2);
  EXPECT_EQ(std::vector<int64_t>(b.inputs.begin(), b.inputs.begin() + 5),
            (std::vector<int64_t>{10, 11, 20, 21, 2}));
  EXPECT_EQ(std::vector<int64_t>(b.targets.begin(), b.targets.begin() + 5),
            (std::vector<int64_t>{-100, 20, 21, 2, -100}));
  EXPECT_EQ(std::vector<int64_t>(b.targets.begin() + 5, b.targets.end()),
            (std::vector<int64_t>{30, -100, -100, -100, -100}));
}

} // namespace
