//===- Schedule.cpp - Learning-rate schedules -----------------------------===//
//
// The closed forms documented in Schedule.h.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Schedule.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace kiln::train {

namespace {
std::string number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}
} // namespace

Expected<ScheduleKind> parseScheduleKind(const std::string &name) {
  if (name == "cosine")
    return ScheduleKind::Cosine;
  if (name == "linear")
    return ScheduleKind::Linear;
  if (name == "constant")
    return ScheduleKind::Constant;
  return Status::error("unknown learning-rate schedule '" + name +
                       "': expected cosine, linear or constant");
}

const char *scheduleKindName(ScheduleKind kind) {
  switch (kind) {
  case ScheduleKind::Cosine:
    return "cosine";
  case ScheduleKind::Linear:
    return "linear";
  case ScheduleKind::Constant:
    return "constant";
  }
  return "cosine";
}

double effectiveMinLr(const ScheduleOptions &options) {
  if (options.minLr)
    return *options.minLr;
  return options.kind == ScheduleKind::Cosine ? 0.1 * options.lr : 0.0;
}

Status validateSchedule(const ScheduleOptions &options) {
  if (!(options.lr > 0) || !std::isfinite(options.lr))
    return Status::error("the learning rate must be positive and finite, not " +
                         number(options.lr));
  double minLr = effectiveMinLr(options);
  if (!(minLr >= 0 && minLr <= options.lr))
    return Status::error("the minimum learning rate must be in [0, lr = " +
                         number(options.lr) + "], not " + number(minLr));
  if (options.totalSteps <= 0)
    return Status::error("the number of steps must be positive, not " +
                         std::to_string(options.totalSteps));
  if (options.warmupSteps < 0 || options.warmupSteps > options.totalSteps)
    return Status::error(
        "warmup steps must be in [0, " + std::to_string(options.totalSteps) +
        " (the number of steps)], not " + std::to_string(options.warmupSteps));
  return Status::ok();
}

double learningRate(int64_t step, const ScheduleOptions &options) {
  double lr = options.lr;
  step = std::max<int64_t>(step, 0);
  if (step < options.warmupSteps)
    return lr * static_cast<double>(step + 1) /
           static_cast<double>(options.warmupSteps);
  if (options.kind == ScheduleKind::Constant)
    return lr;
  double minLr = effectiveMinLr(options);
  int64_t decaySteps = options.totalSteps - options.warmupSteps;
  double progress =
      decaySteps <= 0
          ? 1.0
          : std::clamp(static_cast<double>(step - options.warmupSteps) /
                           static_cast<double>(decaySteps),
                       0.0, 1.0);
  if (options.kind == ScheduleKind::Linear)
    return lr + (minLr - lr) * progress;
  return minLr + (lr - minLr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

} // namespace kiln::train
