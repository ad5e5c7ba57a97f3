//===- Schedule.h - Learning-rate schedules ---------------------*- C++ -*-===//
//
// The learning rate of each optimizer step as a closed form of the step
// number, so a resumed run needs nothing but the step to continue the
// schedule. Steps count from 0. Warmup rises linearly over the first
// `warmupSteps` steps to the peak `lr` (step s < warmup gets
// lr * (s + 1) / warmup, so step 0 already moves and step warmup - 1 is at
// the peak); after it the rate decays over the remaining
// totalSteps - warmupSteps steps with progress p = (s - warmup) /
// (totalSteps - warmup), clamped to [0, 1]:
//
//   cosine    minLr + (lr - minLr) * (1 + cos(pi * p)) / 2
//   linear    lr + (minLr - lr) * p
//   constant  lr
//
// so the decay reaches minLr at step totalSteps (one past the last step).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_SCHEDULE_H
#define KILN_TRAIN_SCHEDULE_H

#include "kiln/Runtime/Status.h"

#include <cstdint>
#include <optional>
#include <string>

namespace kiln::train {

using runtime::Expected;
using runtime::Status;

enum class ScheduleKind { Cosine, Linear, Constant };

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::Cosine;
  /// The peak learning rate.
  double lr = 3e-4;
  /// Where the decay ends. Unset: 10% of lr for cosine, 0 for linear.
  std::optional<double> minLr;
  int64_t warmupSteps = 0;
  int64_t totalSteps = 1;
};

/// "cosine", "linear" or "constant"; anything else is an error naming the
/// choices.
Expected<ScheduleKind> parseScheduleKind(const std::string &name);

/// The name parseScheduleKind accepts for `kind`.
const char *scheduleKindName(ScheduleKind kind);

/// The minLr the schedule decays to (the default when unset).
double effectiveMinLr(const ScheduleOptions &options);

/// Checks lr > 0 and finite, 0 <= minLr <= lr, totalSteps > 0 and
/// 0 <= warmupSteps <= totalSteps.
Status validateSchedule(const ScheduleOptions &options);

/// The learning rate of optimizer step `step` (from 0) under valid
/// `options`. Steps past totalSteps get the final rate.
double learningRate(int64_t step, const ScheduleOptions &options);

} // namespace kiln::train

#endif // KILN_TRAIN_SCHEDULE_H
