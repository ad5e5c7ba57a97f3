//===- File.cpp - Atomic file writes --------------------------------------===//
//
// Temporary file, fsync, rename, fsync of the directory.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/File.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::runtime {

namespace {
std::string errnoText() { return std::strerror(errno); }

std::string parentDirectory(const std::string &path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}
} // namespace

Status writeAll(int fd, const void *data, size_t size,
                const std::string &pathForMessages) {
  const char *bytes = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR)
        continue;
      return Status::error("cannot write '" + pathForMessages +
                           "': " + errnoText());
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
  return Status::ok();
}

Status writeFileAtomically(const std::string &path,
                           const std::function<Status(int fd)> &write) {
  std::string temp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0)
    return Status::error("cannot create a temporary file next to '" + path +
                         "': " + errnoText());
  auto fail = [&](Status status) {
    ::close(fd);
    ::unlink(temp.c_str());
    return status;
  };
  Status status = write(fd);
  if (!status)
    return fail(status);
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0)
    return fail(Status::error("cannot flush '" + temp + "': " + errnoText()));
  if (::close(fd) != 0) {
    ::unlink(temp.c_str());
    return Status::error("cannot close '" + temp + "': " + errnoText());
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    std::string message =
        "cannot rename '" + temp + "' to '" + path + "': " + errnoText();
    ::unlink(temp.c_str());
    return Status::error(message);
  }
  // Make the rename itself durable.
  int dir = ::open(parentDirectory(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return Status::ok();
}

} // namespace kiln::runtime
