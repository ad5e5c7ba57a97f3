//===- JsonLimits.h - Bounds on untrusted JSON before it is parsed -*- C++ -*-===//
//
// Manifests, safetensors headers, run files and metrics lines are untrusted.
// nlohmann::json parses deep nesting iteratively, but walks the result
// recursively (dump() in an error message, the destructor), so a value nested
// a million levels deep overflows the stack. Every reader checks the nesting
// before it parses; no file Kiln writes comes near the limit.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_JSONLIMITS_H
#define KILN_RUNTIME_JSONLIMITS_H

#include "kiln/Runtime/Status.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::runtime {

/// The deepest nesting of arrays and objects an untrusted JSON text may have
/// (Kiln's own files nest at most 4 levels).
constexpr size_t kMaxJsonDepth = 64;

/// An error naming `what` when `text` nests arrays and objects more than
/// `maxDepth` deep (brackets inside strings do not count). Says nothing about
/// whether the text is otherwise valid JSON.
Status checkJsonNesting(std::string_view text, const std::string &what,
                        size_t maxDepth = kMaxJsonDepth);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_JSONLIMITS_H
