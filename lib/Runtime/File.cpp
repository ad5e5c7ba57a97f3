//===- File.cpp - File helpers and atomic writes --------------------------===//
//
// Atomic writes: temporary file, fsync, rename, fsync of the directory.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/File.h"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <utility>
#include <vector>
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

namespace {
std::string describeFile(const std::string &path, const std::string &what) {
  return (what.empty() ? "" : what + " ") + "'" + path + "'";
}

const char *fileKind(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode))
    return "a device";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a regular file";
}
} // namespace

Status checkSharedObject(const std::string &path, const std::string &what) {
  Expected<MappedFile> file = MappedFile::open(path, what);
  if (!file)
    return file.status();
  const unsigned char *data = file->data();
  uint64_t size = file->size();
  auto bad = [&](const std::string &why) {
    return Status::error(describeFile(path, what) +
                         " is not a loadable shared object: " + why);
  };
  Elf64_Ehdr header;
  if (size < sizeof header || std::memcmp(data, ELFMAG, SELFMAG) != 0)
    return bad("it is not an ELF file");
  std::memcpy(&header, data, sizeof header);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  constexpr unsigned char kByteOrder = ELFDATA2LSB;
#else
  constexpr unsigned char kByteOrder = ELFDATA2MSB;
#endif
#if defined(__x86_64__)
  constexpr uint16_t kMachine = EM_X86_64;
#elif defined(__aarch64__)
  constexpr uint16_t kMachine = EM_AARCH64;
#else
#error "checkSharedObject: name this architecture's ELF machine"
#endif
  if (header.e_ident[EI_CLASS] != ELFCLASS64 ||
      header.e_ident[EI_DATA] != kByteOrder || header.e_machine != kMachine)
    return bad("it was built for another architecture");
  if (header.e_type != ET_DYN)
    return bad("it is an ELF file, but not a shared object");
  // Each table lies inside the file (products of 16-bit counts and sizes
  // cannot overflow 64 bits; the offsets are compared before adding).
  auto tableFits = [&](uint64_t offset, uint64_t count, uint64_t entrySize) {
    return offset <= size && count * entrySize <= size - offset;
  };
  if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum == 0 ||
      !tableFits(header.e_phoff, header.e_phnum, header.e_phentsize))
    return bad("its program headers are missing or lie past the end of the "
               "file (truncated?)");
  if (header.e_shnum != 0 &&
      (header.e_shentsize != sizeof(Elf64_Shdr) ||
       !tableFits(header.e_shoff, header.e_shnum, header.e_shentsize)))
    return bad("its section headers lie past the end of the file "
               "(truncated?)");
  for (uint16_t i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr segment;
    std::memcpy(&segment, data + header.e_phoff + uint64_t(i) * sizeof segment,
                sizeof segment);
    if (segment.p_type != PT_LOAD && segment.p_type != PT_DYNAMIC)
      continue;
    if (segment.p_offset > size || segment.p_filesz > size - segment.p_offset)
      return bad("segment " + std::to_string(i) + " needs bytes [" +
                 std::to_string(segment.p_offset) + ", " +
                 std::to_string(segment.p_offset + segment.p_filesz) +
                 ") of a " + std::to_string(size) +
                 "-byte file (truncated?)");
  }
  return Status::ok();
}

Expected<int> openRegularFile(const std::string &path, const std::string &what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return Status::error("cannot open " + describeFile(path, what) + ": " +
                         errnoText());
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status error = Status::error("cannot stat " + describeFile(path, what) +
                                 ": " + errnoText());
    ::close(fd);
    return error;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(describeFile(path, what) + " is " +
                         fileKind(st.st_mode) + ", not a regular file");
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0)
    ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

Status checkRegularFile(const std::string &path, const std::string &what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status::error("cannot open " + describeFile(path, what) + ": " +
                         errnoText());
  if (!S_ISREG(st.st_mode))
    return Status::error(describeFile(path, what) + " is " +
                         fileKind(st.st_mode) + ", not a regular file");
  return Status::ok();
}

Expected<std::string> readFile(const std::string &path,
                               const std::string &what) {
  Expected<int> opened = openRegularFile(path, what);
  if (!opened)
    return opened.status();
  int fd = *opened;
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      Status error = Status::error("cannot read " + describeFile(path, what) +
                                   ": " + errnoText());
      ::close(fd);
      return error;
    }
    if (got == 0)
      break;
    bytes.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return bytes;
}

Expected<MappedFile> MappedFile::open(const std::string &path,
                                      const std::string &what) {
  Expected<int> opened = openRegularFile(path, what);
  if (!opened)
    return opened.status();
  int fd = *opened;
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

void MappedFile::releasePages() const {
  if (mapping_)
    (void)::madvise(mapping_, size_, MADV_DONTNEED);
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

void removeStaleTemporaries(const std::string &path) {
  std::string directory = parentDirectory(path);
  std::string prefix = path.substr(path.find_last_of('/') + 1) + ".tmp.";
  DIR *dir = ::opendir(directory.c_str());
  if (!dir)
    return;
  std::vector<std::string> stale;
  while (const struct dirent *entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    // mkstemp's suffix: exactly six characters after the prefix.
    if (name.size() == prefix.size() + 6 && name.compare(0, prefix.size(), prefix) == 0)
      stale.push_back(directory + "/" + name);
  }
  ::closedir(dir);
  for (const std::string &file : stale)
    ::unlink(file.c_str());
}

bool pathExists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool isDirectory(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
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
