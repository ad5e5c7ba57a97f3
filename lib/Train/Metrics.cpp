//===- Metrics.cpp - Training metrics and the progress line ---------------===//
//
// JSON goes through nlohmann::ordered_json (keys keep the caller's order) in
// its non-throwing mode; strings that are not UTF-8 are written with U+FFFD
// substituted rather than aborting.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Metrics.h"
#include "kiln/Runtime/JsonLimits.h"
#include "kiln/Runtime/File.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::train {

using Json = nlohmann::ordered_json;

namespace {

std::string errnoText() { return std::strerror(errno); }

/// The complete lines of `text`: each ends with '\n' (not included); a
/// trailing piece without one is torn and left out.
std::vector<std::string_view> completeLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t begin = 0;
  while (true) {
    size_t newline = text.find('\n', begin);
    if (newline == std::string_view::npos)
      break;
    lines.push_back(text.substr(begin, newline - begin));
    begin = newline + 1;
  }
  return lines;
}

bool isBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

} // namespace

//===----------------------------------------------------------------------===//
// Rows
//===----------------------------------------------------------------------===//

MetricsRow &MetricsRow::setValue(const std::string &key, MetricValue value) {
  for (auto &field : fields)
    if (field.first == key) {
      field.second = std::move(value);
      return *this;
    }
  fields.emplace_back(key, std::move(value));
  return *this;
}

const MetricValue *MetricsRow::find(const std::string &key) const {
  for (const auto &field : fields)
    if (field.first == key)
      return &field.second;
  return nullptr;
}

std::optional<double> MetricsRow::number(const std::string &key) const {
  const MetricValue *value = find(key);
  if (!value)
    return std::nullopt;
  if (const auto *i = std::get_if<int64_t>(value))
    return static_cast<double>(*i);
  if (const auto *d = std::get_if<double>(value))
    return *d;
  return std::nullopt;
}

std::optional<int64_t> MetricsRow::integer(const std::string &key) const {
  const MetricValue *value = find(key);
  if (!value)
    return std::nullopt;
  if (const auto *i = std::get_if<int64_t>(value))
    return *i;
  if (const auto *d = std::get_if<double>(value))
    if (std::isfinite(*d) && std::floor(*d) == *d && std::fabs(*d) < 9e18)
      return static_cast<int64_t>(*d);
  return std::nullopt;
}

std::string formatMetricsLine(const MetricsRow &row) {
  Json object = Json::object();
  for (const auto &[key, value] : row.fields) {
    if (const auto *i = std::get_if<int64_t>(&value))
      object[key] = *i;
    else if (const auto *d = std::get_if<double>(&value))
      object[key] = std::isfinite(*d) ? Json(*d) : Json(nullptr);
    else
      object[key] = std::get<std::string>(value);
  }
  return object.dump(-1, ' ', /*ensure_ascii=*/false,
                     Json::error_handler_t::replace);
}

Expected<MetricsRow> parseMetricsLine(const std::string &line,
                                      const std::string &where) {
  if (Status s = runtime::checkJsonNesting(line, where); !s)
    return s;
  Json object = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded() || !object.is_object())
    return Status::error(where + " is not a JSON object");
  MetricsRow row;
  for (auto &[key, value] : object.items()) {
    if (value.is_number_integer() && !value.is_number_unsigned())
      row.setValue(key, value.get<int64_t>());
    else if (value.is_number_unsigned()) {
      uint64_t u = value.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        row.setValue(key, static_cast<int64_t>(u));
      else
        row.setValue(key, static_cast<double>(u));
    } else if (value.is_number_float())
      row.setValue(key, value.get<double>());
    else if (value.is_null())
      row.setValue(key, std::numeric_limits<double>::quiet_NaN());
    else if (value.is_boolean())
      row.setValue(key, static_cast<int64_t>(value.get<bool>()));
    else if (value.is_string())
      row.setValue(key, value.get<std::string>());
    else
      return Status::error(where + ": the value of '" + key +
                           "' is not a number, string or null");
  }
  return row;
}

//===----------------------------------------------------------------------===//
// The file
//===----------------------------------------------------------------------===//

std::string metricsPath(const std::string &runDir) {
  return runDir + "/metrics.jsonl";
}

MetricsWriter::MetricsWriter(MetricsWriter &&other) noexcept {
  *this = std::move(other);
}

MetricsWriter &MetricsWriter::operator=(MetricsWriter &&other) noexcept {
  if (this == &other)
    return *this;
  if (fd_ >= 0)
    ::close(fd_);
  path_ = std::move(other.path_);
  fd_ = other.fd_;
  other.fd_ = -1;
  return *this;
}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0)
    ::close(fd_);
}

Expected<MetricsWriter> MetricsWriter::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return Status::error("cannot open metrics file '" + path +
                         "' for appending: " + errnoText());
  MetricsWriter writer;
  writer.path_ = path;
  writer.fd_ = fd;

  // Cut a torn last line, so the next row starts a line of its own.
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return Status::error("cannot stat '" + path + "': " + errnoText());
  off_t end = st.st_size;
  off_t keep = end;
  char buffer[4096];
  while (keep > 0) {
    off_t chunk = std::min<off_t>(keep, sizeof(buffer));
    ssize_t got = ::pread(fd, buffer, static_cast<size_t>(chunk), keep - chunk);
    if (got != chunk)
      return Status::error("cannot read '" + path + "': " + errnoText());
    off_t i = chunk;
    while (i > 0 && buffer[i - 1] != '\n')
      --i;
    if (i > 0) {
      keep = keep - chunk + i;
      break;
    }
    keep -= chunk;
  }
  if (keep != end && ::ftruncate(fd, keep) != 0)
    return Status::error("cannot cut the torn last line of '" + path +
                         "': " + errnoText());
  return writer;
}

Status MetricsWriter::write(const MetricsRow &row) {
  std::string line = formatMetricsLine(row) + "\n";
  return runtime::writeAll(fd_, line.data(), line.size(), path_);
}

Expected<std::vector<MetricsRow>> readMetrics(const std::string &path) {
  Expected<std::string> text = runtime::readFile(path, "metrics file");
  if (!text)
    return text.status();
  std::vector<MetricsRow> rows;
  std::vector<std::string_view> lines = completeLines(*text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (isBlank(lines[i]))
      continue;
    Expected<MetricsRow> row = parseMetricsLine(
        std::string(lines[i]), "'" + path + "' line " + std::to_string(i + 1));
    if (!row)
      return row.status();
    rows.push_back(row.take());
  }
  return rows;
}

Status truncateMetrics(const std::string &path, int64_t maxStep) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT)
    return Status::ok();
  Expected<std::string> text = runtime::readFile(path, "metrics file");
  if (!text)
    return text.status();
  std::string kept;
  std::vector<std::string_view> lines = completeLines(*text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (isBlank(lines[i]))
      continue;
    Expected<MetricsRow> row = parseMetricsLine(
        std::string(lines[i]), "'" + path + "' line " + std::to_string(i + 1));
    if (!row)
      return row.status();
    std::optional<int64_t> step = row->integer("step");
    if (step && *step > maxStep)
      continue;
    kept.append(lines[i]);
    kept += '\n';
  }
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, kept.data(), kept.size(), path);
  });
}

//===----------------------------------------------------------------------===//
// The progress line
//===----------------------------------------------------------------------===//

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  int64_t s = static_cast<int64_t>(std::llround(seconds));
  char text[64];
  if (s < 60)
    std::snprintf(text, sizeof(text), "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(text, sizeof(text), "%lldm%02llds",
                  static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  else if (s < 86400)
    std::snprintf(text, sizeof(text), "%lldh%02lldm",
                  static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  else
    std::snprintf(text, sizeof(text), "%lldd%02lldh",
                  static_cast<long long>(s / 86400),
                  static_cast<long long>(s / 3600 % 24));
  return text;
}

std::string formatCount(double value) {
  if (!std::isfinite(value))
    return "?";
  static const char *const suffixes[] = {"", "k", "M", "G", "T"};
  int power = 0;
  double scaled = value;
  while (std::fabs(scaled) >= 999.95 && power < 4) {
    scaled /= 1000;
    ++power;
  }
  if (power == 0)
    return fixed(value, 0);
  return fixed(scaled, std::fabs(scaled) < 99.95 ? 1 : 0) + suffixes[power];
}

std::string ProgressLine::format() const {
  std::string line = "step " + std::to_string(step);
  if (totalSteps > 0)
    line += "/" + std::to_string(totalSteps);
  auto add = [&](const std::string &part) { line += " | " + part; };
  if (loss)
    add("loss " + fixed(*loss, 3));
  if (evalLoss)
    add("eval " + fixed(*evalLoss, 2) +
        (evalStep == step ? "" : " @" + std::to_string(evalStep)));
  if (lr) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.2e", *lr);
    add(std::string("lr ") + text);
  }
  if (imagesPerSecond)
    add(formatCount(*imagesPerSecond) + " img/s");
  else if (tokensPerSecond)
    add(formatCount(*tokensPerSecond) + " tok/s");
  if (mfu) {
    double percent = *mfu * 100;
    add("MFU " + fixed(percent, std::fabs(percent) < 9.95 ? 1 : 0) + "%");
  }
  if (etaSeconds)
    add("ETA " + formatDuration(*etaSeconds));
  return line;
}

bool isTerminal(std::FILE *stream) { return ::isatty(::fileno(stream)) == 1; }

void printProgressInPlace(std::FILE *stream, const std::string &line) {
  std::fprintf(stream, "\r%s\033[K", line.c_str());
  std::fflush(stream);
}

void printProgressLine(std::FILE *stream, const std::string &line) {
  std::fprintf(stream, "%s\n", line.c_str());
  std::fflush(stream);
}

} // namespace kiln::train
