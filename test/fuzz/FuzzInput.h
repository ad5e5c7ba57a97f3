//===- FuzzInput.h - Fuzz bytes as a file the readers can open --*- C++ -*-===//
//
// The safetensors and npy readers take paths (they map or stream files), so
// each input is written to one memfd, opened by its /proc/self/fd path: a
// regular file in memory, no disk traffic per execution.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_FUZZ_FUZZINPUT_H
#define KILN_TEST_FUZZ_FUZZINPUT_H

#include <cstdint>
#include <cstdlib>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace kiln::fuzz {

/// The path of a memory file holding exactly `data`.
inline std::string asFile(const uint8_t *data, size_t size) {
  static int fd = ::memfd_create("kiln-fuzz-input", 0);
  if (fd < 0 || ::ftruncate(fd, 0) != 0 ||
      (size && ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)))
    std::abort();
  return "/proc/self/fd/" + std::to_string(fd);
}

} // namespace kiln::fuzz

#endif // KILN_TEST_FUZZ_FUZZINPUT_H
