//===- Strings.h - String helpers shared by runtime and driver -*- C++ -*-===//
//
// The project builds as C++17, whose std::string_view has no ends_with;
// the runtime, the training library and the driver check suffixes of file
// names and tensor names with this one.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_STRINGS_H
#define KILN_RUNTIME_STRINGS_H

#include <string_view>

namespace kiln::runtime {

/// Whether `text` ends with `suffix` (an empty suffix always does).
inline bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.substr(text.size() - suffix.size()) == suffix;
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_STRINGS_H
