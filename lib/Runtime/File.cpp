//===- File.cpp - File helpers and atomic writes --------------------------===//
//
// Atomic writes: temporary file, fsync, rename, fsync of the directory.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/File.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <utility>
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

Expected<std::string> readFile(const std::string &path,
                               const std::string &what) {
  std::string named = (what.empty() ? "" : what + " ") + "'" + path + "'";
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error("cannot open " + named + ": " + errnoText());
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (in.bad())
    return Status::error("cannot read " + named);
  return bytes;
}

Expected<MappedFile> MappedFile::open(const std::string &path,
                                      const std::string &what) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    return Status::error("cannot open " + (what.empty() ? "" : what + " ") +
                         "'" + path + "': " + errnoText());
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status error = Status::error("cannot stat '" + path + "': " + errnoText());
    ::close(fd);
    return error;
  }
  MappedFile file;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ > 0) {
    void *mapping = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      Status error = Status::error("cannot map '" + path + "': " + errnoText());
      ::close(fd);
      return error;
    }
    file.mapping_ = mapping;
  }
  ::close(fd);
  return file;
}

MappedFile::MappedFile(MappedFile &&other) noexcept { *this = std::move(other); }

MappedFile &MappedFile::operator=(MappedFile &&other) noexcept {
  if (this != &other) {
    if (mapping_)
      ::munmap(mapping_, size_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (mapping_)
    ::munmap(mapping_, size_);
}

bool pathExists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status makeDirectories(const std::string &dir) {
  size_t at = 0;
  while (at != std::string::npos) {
    at = dir.find('/', at + 1);
    std::string prefix = dir.substr(0, at);
    if (prefix.empty())
      continue;
    if (::mkdir(prefix.c_str(), 0777) != 0 && errno != EEXIST)
      return Status::error("cannot create directory '" + prefix +
                           "': " + errnoText());
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::error("'" + dir + "' is not a directory");
  return Status::ok();
}

} // namespace kiln::runtime
