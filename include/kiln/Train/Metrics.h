//===- Metrics.h - Training metrics and the progress line -------*- C++ -*-===//
//
// A run logs one JSON object per line to `<run>/metrics.jsonl`: whatever
// keys the driver records (step, loss, eval_loss, lr, grad_norm,
// tokens_per_s, mfu, energy_j, ...), with integer, floating-point or string
// values, in the order given. Each line goes to the file in one write(2)
// with nothing buffered, so a crash loses at most the line being written; a
// torn last line (no final newline) is ignored by the reader and cut off
// when the file is reopened for appending. On resume, rows past the
// checkpoint's step are dropped with truncateMetrics, atomically.
//
// The live progress line (`step 120/1000 | loss 3.412 | ...`) is formatted
// here too; whether it is redrawn in place or printed line by line is the
// caller's choice (in place suits a terminal, lines suit a log file).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_METRICS_H
#define KILN_TRAIN_METRICS_H

#include "kiln/Runtime/Status.h"

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace kiln::train {

using runtime::Expected;
using runtime::Status;

//===----------------------------------------------------------------------===//
// Rows
//===----------------------------------------------------------------------===//

/// A metric's value. Non-finite doubles are written as JSON null and read
/// back as NaN.
using MetricValue = std::variant<int64_t, double, std::string>;

/// One line of metrics.jsonl: keys in order, each at most once.
struct MetricsRow {
  std::vector<std::pair<std::string, MetricValue>> fields;

  /// Sets `key` (replacing its value, or appending it): integers (and bool)
  /// are stored as int64, floating point as double, anything else as a
  /// string.
  template <typename T> MetricsRow &set(const std::string &key, T &&value) {
    using V = std::decay_t<T>;
    if constexpr (std::is_integral_v<V>)
      return setValue(key, MetricValue(std::in_place_type<int64_t>,
                                       static_cast<int64_t>(value)));
    else if constexpr (std::is_floating_point_v<V>)
      return setValue(key, MetricValue(std::in_place_type<double>,
                                       static_cast<double>(value)));
    else
      return setValue(key, MetricValue(std::in_place_type<std::string>,
                                       std::string(std::forward<T>(value))));
  }
  MetricsRow &setValue(const std::string &key, MetricValue value);

  /// The value of `key`, or null.
  const MetricValue *find(const std::string &key) const;
  /// The value of `key` as a number when it is an integer or a double.
  std::optional<double> number(const std::string &key) const;
  /// The value of `key` when it is an integer (or an integral double).
  std::optional<int64_t> integer(const std::string &key) const;
};

/// The row as one line of JSON, without the newline.
std::string formatMetricsLine(const MetricsRow &row);

/// Parses one line of JSON into a row; errors name `where`.
Expected<MetricsRow> parseMetricsLine(const std::string &line,
                                      const std::string &where);

//===----------------------------------------------------------------------===//
// The file
//===----------------------------------------------------------------------===//

/// `<runDir>/metrics.jsonl`.
std::string metricsPath(const std::string &runDir);

/// Appends rows to a metrics file. Move-only; closes the file when
/// destroyed.
class MetricsWriter {
public:
  /// Opens `path` for appending, creating it if needed, and cuts off a torn
  /// last line left by a crash.
  static Expected<MetricsWriter> open(const std::string &path);

  MetricsWriter(MetricsWriter &&other) noexcept;
  MetricsWriter &operator=(MetricsWriter &&other) noexcept;
  ~MetricsWriter();

  /// Appends `row` as one line, in one write.
  Status write(const MetricsRow &row);
  const std::string &path() const { return path_; }

private:
  MetricsWriter() = default;
  std::string path_;
  int fd_ = -1;
};

/// Every row of `path`, in order. Blank lines and a torn last line are
/// skipped; any other line that is not a JSON object of numbers, strings and
/// nulls is an error naming the line.
Expected<std::vector<MetricsRow>> readMetrics(const std::string &path);

/// Rewrites `path` atomically without the rows whose integer "step" is
/// greater than `maxStep` (rows without a step are kept, as is every kept
/// line's text, byte for byte; a torn last line is dropped). A missing file
/// is left missing.
Status truncateMetrics(const std::string &path, int64_t maxStep);

//===----------------------------------------------------------------------===//
// The progress line
//===----------------------------------------------------------------------===//

/// What the live progress line shows; unset fields are left out.
struct ProgressLine {
  int64_t step = 0;
  /// Shown as "step/total" when positive.
  int64_t totalSteps = 0;
  std::optional<double> loss;
  std::optional<double> evalLoss;
  /// The step `evalLoss` was measured at; when it is not `step`, the column
  /// says so ("eval 3.50 @100"), so an old value is not read as current.
  int64_t evalStep = 0;
  std::optional<double> lr;
  std::optional<double> tokensPerSecond;
  /// Images per second (image-caption training), shown instead of tokens.
  std::optional<double> imagesPerSecond;
  /// Model FLOPs utilization as a fraction (0.31 shows as "31%").
  std::optional<double> mfu;
  std::optional<double> etaSeconds;

  /// "step 120/1000 | loss 3.412 | eval 3.50 | lr 3.00e-04 | 12.3k tok/s |
  /// MFU 31% | ETA 4m12s"; "eval 3.50 @100" at a step after the one the
  /// evaluation ran at.
  std::string format() const;
};

/// "42s", "4m12s", "1h02m", "3d04h"; "?" for negative or non-finite input.
std::string formatDuration(double seconds);

/// A rate with a k/M/G suffix and three significant digits or so: "950",
/// "12.3k", "1.5M".
std::string formatCount(double value);

/// Whether `stream` is a terminal (so in-place redrawing works).
bool isTerminal(std::FILE *stream);

/// Redraws `line` over the current terminal line ("\r", the line, erase to
/// the end of the line), flushed.
void printProgressInPlace(std::FILE *stream, const std::string &line);

/// Prints `line` and a newline, flushed.
void printProgressLine(std::FILE *stream, const std::string &line);

} // namespace kiln::train

#endif // KILN_TRAIN_METRICS_H
