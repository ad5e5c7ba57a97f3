//===- JsonLines.h - Reading JSON-lines files -------------------*- C++ -*-===//
//
// The data files of the fine-tuning and multimodal tasks are JSON lines: one
// object per non-blank line. Private to lib/Train.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_TRAIN_JSONLINES_H
#define KILN_LIB_TRAIN_JSONLINES_H

#include "kiln/Runtime/File.h"
#include "kiln/Runtime/JsonLimits.h"
#include "kiln/Runtime/Status.h"

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace kiln::train {

/// Calls `line(number, text)` for each non-blank line of `text`; stops at
/// the first error.
template <typename Fn>
runtime::Status forEachLine(const std::string &text, Fn &&line) {
  size_t start = 0;
  int64_t number = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    ++number;
    std::string_view view(text.data() + start, end - start);
    if (!view.empty() && view.back() == '\r')
      view.remove_suffix(1);
    if (view.find_first_not_of(" \t") != std::string_view::npos)
      if (runtime::Status s = line(number, view); !s)
        return s;
    start = end + 1;
  }
  return runtime::Status::ok();
}

/// Parses one JSON line; the error names `path:number`.
inline runtime::Expected<nlohmann::json>
parseLine(const std::string &path, int64_t number, std::string_view text) {
  std::string where = "'" + path + "' line " + std::to_string(number);
  if (runtime::Status s = runtime::checkJsonNesting(text, where); !s)
    return s;
  nlohmann::json value =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded())
    return runtime::Status::error(where + " is not JSON");
  if (!value.is_object())
    return runtime::Status::error(where + " is not a JSON object");
  return value;
}

/// Reads `path` (a `what` file, for the error if it cannot be read) and
/// calls `object(value, where)` for the JSON object on each non-blank line,
/// `where` naming the file and line for its errors; stops at the first
/// error.
template <typename Fn>
runtime::Status forEachJsonObject(const std::string &path, const char *what,
                                  Fn &&object) {
  runtime::Expected<std::string> text = runtime::readFile(path, what);
  if (!text)
    return text.status();
  return forEachLine(*text, [&](int64_t number, std::string_view line) {
    runtime::Expected<nlohmann::json> value = parseLine(path, number, line);
    if (!value)
      return value.status();
    return object(*value, "'" + path + "' line " + std::to_string(number));
  });
}

/// Reads the string members of one JSON-lines object into `fields` (name,
/// destination); a missing or non-string one is an error naming `where`
/// and showing the line's expected `shape`.
inline runtime::Status
readStringFields(const nlohmann::json &value, const std::string &where,
                 std::initializer_list<std::pair<const char *, std::string *>>
                     fields,
                 const char *shape) {
  for (auto [key, out] : fields) {
    auto it = value.find(key);
    if (it == value.end() || !it->is_string())
      return runtime::Status::error(where + ": \"" + key +
                                    "\" is missing or not a string (each "
                                    "line is " + shape + ")");
    *out = it->get<std::string>();
  }
  return runtime::Status::ok();
}

} // namespace kiln::train

#endif // KILN_LIB_TRAIN_JSONLINES_H
