//===- File.h - Atomic file writes ------------------------------*- C++ -*-===//
//
// Every file the runtime and driver write (weights, checkpoints, outputs)
// goes through writeFileAtomically: the bytes go to a temporary file in the
// same directory, are fsync'ed, and the file is renamed over the target, and
// the directory is fsync'ed. A crash leaves either the old file or the new
// one, never a torn one.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_FILE_H
#define KILN_RUNTIME_FILE_H

#include "kiln/Runtime/Status.h"

#include <functional>
#include <string>

namespace kiln::runtime {

/// Calls `write(fd)` on a temporary file next to `path`, then makes it
/// `path` atomically. `write` returns a Status; on error nothing is renamed.
Status writeFileAtomically(const std::string &path,
                           const std::function<Status(int fd)> &write);

/// Writes all of `size` bytes to `fd`, retrying short writes.
Status writeAll(int fd, const void *data, size_t size,
                const std::string &pathForMessages);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_FILE_H
