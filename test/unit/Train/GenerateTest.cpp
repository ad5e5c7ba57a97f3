//===- GenerateTest.cpp - Sampling the next token -------------------------===//
//
// sampleToken's rules: greedy at temperature 0, top-k and top-p cut the
// tail, frequencies follow the softmax at the temperature, bad options and
// non-finite logits are errors.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Generate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace kiln::train;

namespace {

std::vector<int64_t> histogram(const std::vector<float> &logits,
                               const SamplingOptions &options, int draws) {
  std::mt19937_64 rng(123);
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    auto token = sampleToken(logits, options, rng);
    EXPECT_TRUE(token) << token.message();
    if (token)
      ++counts[static_cast<size_t>(*token)];
  }
  return counts;
}

TEST(SampleTokenTest, TemperatureZeroIsArgmax) {
  std::mt19937_64 rng(0);
  SamplingOptions greedy{0.0, 0, 1.0};
  auto token = sampleToken({0.1f, 2.5f, -1.0f, 2.4f}, greedy, rng);
  ASSERT_TRUE(token);
  EXPECT_EQ(*token, 1);
}

TEST(SampleTokenTest, TopKOneIsArgmaxAndTopKCutsTheTail) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.0f};
  auto counts = histogram(logits, {1.0, 1, 1.0}, 200);
  EXPECT_EQ(counts[1], 200);
  counts = histogram(logits, {1.0, 2, 1.0}, 2000);
  EXPECT_EQ(counts[0] + counts[3], 0);
  EXPECT_GT(counts[2], 0);
}

TEST(SampleTokenTest, FrequenciesFollowTheSoftmax) {
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(4.0f)};
  auto counts = histogram(logits, {1.0, 0, 1.0}, 70000);
  // p = 1/7, 2/7, 4/7; 70000 draws: standard deviations ~ 100.
  EXPECT_NEAR(counts[0], 10000, 600);
  EXPECT_NEAR(counts[1], 20000, 600);
  EXPECT_NEAR(counts[2], 40000, 600);
  // Temperature 2 flattens: p ∝ 1, √2, 2.
  counts = histogram(logits, {2.0, 0, 1.0}, 70000);
  double z = 1 + std::sqrt(2.0) + 2;
  EXPECT_NEAR(counts[1], 70000 * std::sqrt(2.0) / z, 700);
}

TEST(SampleTokenTest, TopPKeepsTheSmallestNucleus) {
  // p = 0.5, 0.25, 0.125, 0.125: top-p 0.7 keeps the first two.
  std::vector<float> logits = {std::log(4.0f), std::log(2.0f), 0.0f, 0.0f};
  auto counts = histogram(logits, {1.0, 0, 0.7}, 5000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_GT(counts[1], 1000);
}

TEST(SampleTokenTest, RejectsBadOptionsAndLogits) {
  std::mt19937_64 rng(0);
  EXPECT_FALSE(sampleToken({}, {}, rng));
  EXPECT_FALSE(sampleToken({1.0f}, {-1.0, 0, 1.0}, rng));
  EXPECT_FALSE(sampleToken({1.0f}, {1.0, 0, 0.0}, rng));
  EXPECT_FALSE(sampleToken({1.0f}, {1.0, -2, 1.0}, rng));
  auto nan = sampleToken({1.0f, std::numeric_limits<float>::quiet_NaN()}, {},
                         rng);
  ASSERT_FALSE(nan);
  EXPECT_NE(nan.message().find("non-finite"), std::string::npos);
}

} // namespace
