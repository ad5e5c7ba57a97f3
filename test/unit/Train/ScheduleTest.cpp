//===- ScheduleTest.cpp - Learning-rate schedules -------------------------===//
//
// The closed forms at known points, the defaults of minLr, validation, and
// parsing of schedule names.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Schedule.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace kiln::train;

namespace {

ScheduleOptions options(ScheduleKind kind, int64_t warmup, int64_t total) {
  ScheduleOptions o;
  o.kind = kind;
  o.lr = 1.0;
  o.warmupSteps = warmup;
  o.totalSteps = total;
  return o;
}

TEST(ScheduleTest, WarmupRisesLinearlyToThePeak) {
  for (ScheduleKind kind :
       {ScheduleKind::Cosine, ScheduleKind::Linear, ScheduleKind::Constant}) {
    ScheduleOptions o = options(kind, 10, 110);
    EXPECT_DOUBLE_EQ(learningRate(0, o), 0.1) << scheduleKindName(kind);
    EXPECT_DOUBLE_EQ(learningRate(4, o), 0.5) << scheduleKindName(kind);
    EXPECT_DOUBLE_EQ(learningRate(9, o), 1.0) << scheduleKindName(kind);
    EXPECT_DOUBLE_EQ(learningRate(10, o), 1.0) << scheduleKindName(kind);
  }
}

TEST(ScheduleTest, CosineDecaysToTenPercentByDefault) {
  ScheduleOptions o = options(ScheduleKind::Cosine, 10, 110);
  EXPECT_DOUBLE_EQ(effectiveMinLr(o), 0.1);
  EXPECT_DOUBLE_EQ(learningRate(60, o), 0.1 + 0.9 * 0.5);
  EXPECT_NEAR(learningRate(35, o),
              0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);
  EXPECT_DOUBLE_EQ(learningRate(110, o), 0.1);
  EXPECT_DOUBLE_EQ(learningRate(100000, o), 0.1);
  double previous = learningRate(10, o);
  for (int64_t step = 11; step <= 110; ++step) {
    double lr = learningRate(step, o);
    EXPECT_LT(lr, previous) << step;
    previous = lr;
  }
  o.minLr = 0.0;
  EXPECT_DOUBLE_EQ(learningRate(60, o), 0.5);
  EXPECT_DOUBLE_EQ(learningRate(110, o), 0.0);
}

TEST(ScheduleTest, LinearDecaysToZeroOrToMinLr) {
  ScheduleOptions o = options(ScheduleKind::Linear, 0, 100);
  EXPECT_DOUBLE_EQ(effectiveMinLr(o), 0.0);
  EXPECT_DOUBLE_EQ(learningRate(0, o), 1.0);
  EXPECT_DOUBLE_EQ(learningRate(25, o), 0.75);
  EXPECT_DOUBLE_EQ(learningRate(100, o), 0.0);
  o.minLr = 0.2;
  EXPECT_DOUBLE_EQ(learningRate(50, o), 0.6);
  EXPECT_DOUBLE_EQ(learningRate(500, o), 0.2);
}

TEST(ScheduleTest, ConstantStaysAtThePeak) {
  ScheduleOptions o = options(ScheduleKind::Constant, 0, 100);
  o.lr = 3e-4;
  for (int64_t step : {0, 1, 50, 99, 100, 1000})
    EXPECT_DOUBLE_EQ(learningRate(step, o), 3e-4);
}

TEST(ScheduleTest, AllWarmupThenTheFinalRate) {
  ScheduleOptions o = options(ScheduleKind::Cosine, 10, 10);
  ASSERT_TRUE(validateSchedule(o));
  EXPECT_DOUBLE_EQ(learningRate(9, o), 1.0);
  EXPECT_DOUBLE_EQ(learningRate(10, o), 0.1);
}

TEST(ScheduleTest, ValidatesOptions) {
  EXPECT_TRUE(validateSchedule(options(ScheduleKind::Cosine, 0, 1)));
  auto expectInvalid = [](ScheduleOptions o, const std::string &needle) {
    Status status = validateSchedule(o);
    ASSERT_FALSE(status) << needle;
    EXPECT_NE(status.message().find(needle), std::string::npos)
        << status.message();
  };
  ScheduleOptions o = options(ScheduleKind::Cosine, 0, 10);
  o.lr = 0;
  expectInvalid(o, "learning rate must be positive");
  o.lr = NAN;
  expectInvalid(o, "learning rate must be positive");
  o = options(ScheduleKind::Linear, 0, 10);
  o.minLr = 2.0;
  expectInvalid(o, "minimum learning rate must be in [0, lr = 1]");
  o.minLr = -0.1;
  expectInvalid(o, "minimum learning rate");
  expectInvalid(options(ScheduleKind::Cosine, 0, 0), "number of steps");
  expectInvalid(options(ScheduleKind::Cosine, 11, 10),
                "warmup steps must be in [0, 10");
  expectInvalid(options(ScheduleKind::Cosine, -1, 10), "warmup steps");
}

TEST(ScheduleTest, ParsesNames) {
  for (ScheduleKind kind :
       {ScheduleKind::Cosine, ScheduleKind::Linear, ScheduleKind::Constant}) {
    Expected<ScheduleKind> parsed = parseScheduleKind(scheduleKindName(kind));
    ASSERT_TRUE(parsed) << parsed.message();
    EXPECT_EQ(*parsed, kind);
  }
  Expected<ScheduleKind> bad = parseScheduleKind("cosin");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.message(), "unknown learning-rate schedule 'cosin': expected "
                           "cosine, linear or constant");
  EXPECT_FALSE(parseScheduleKind("Cosine"));
  EXPECT_FALSE(parseScheduleKind(""));
}

} // namespace
