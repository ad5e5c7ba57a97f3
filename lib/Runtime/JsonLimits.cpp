//===- JsonLimits.cpp - Bounds on untrusted JSON before it is parsed ------===//

#include "kiln/Runtime/JsonLimits.h"

namespace kiln::runtime {

Status checkJsonNesting(std::string_view text, const std::string &what,
                        size_t maxDepth) {
  size_t depth = 0;
  bool inString = false, escaped = false;
  for (char c : text) {
    if (inString) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        inString = false;
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > maxDepth)
        return Status::error(what + " nests JSON arrays and objects more than " +
                             std::to_string(maxDepth) + " levels deep");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return Status::ok();
}

} // namespace kiln::runtime
