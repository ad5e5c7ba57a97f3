//===- File.h - File helpers and atomic writes ------------------*- C++ -*-===//
//
// Reading whole files, making directories, and atomic writes. Every file
// the runtime and driver write (weights, checkpoints, outputs)
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

/// Opens `path` for reading as a file descriptor, refusing anything but a
/// regular file: a FIFO, a device or a directory given as weights or input
/// would block or read forever. The open itself does not block (O_NONBLOCK,
/// cleared once the file is known to be regular). `what` names the file in
/// messages, as readFile.
Expected<int> openRegularFile(const std::string &path,
                              const std::string &what = "");

/// The same refusal for a path handed to a loader that opens it itself
/// (dlopen, SentencePiece): an error unless `path` is a regular file.
Status checkRegularFile(const std::string &path, const std::string &what = "");

/// Before dlopen: an error unless `path` is a regular file holding a whole
/// ELF shared object for this machine (64-bit, this byte order and
/// architecture), every program and section header and every segment's file
/// bytes inside the file. dlopen maps segments past the end of a truncated
/// file, and touching them raises SIGBUS instead of an error.
Status checkSharedObject(const std::string &path, const std::string &what = "");

/// The whole contents of `path`. `what` names the file in messages:
/// "cannot open <what> '<path>': <reason>".
Expected<std::string> readFile(const std::string &path,
                               const std::string &what = "");

/// A whole file mapped read-only, unmapped when destroyed. Move-only. An
/// empty file has no mapping (data() is null, size() 0).
class MappedFile {
public:
  /// Maps `path`; `what` names the file in messages, as readFile.
  static Expected<MappedFile> open(const std::string &path,
                                   const std::string &what = "");
  MappedFile() = default;
  MappedFile(MappedFile &&other) noexcept;
  MappedFile &operator=(MappedFile &&other) noexcept;
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  ~MappedFile();
  const unsigned char *data() const {
    return static_cast<const unsigned char *>(mapping_);
  }
  size_t size() const { return size_; }
  /// Gives the resident pages back (madvise MADV_DONTNEED): once what the
  /// caller needed is copied out, the mapping no longer counts twice in
  /// the process's memory. The contents stay: a later read maps them again
  /// from the file.
  void releasePages() const;

private:
  void *mapping_ = nullptr;
  size_t size_ = 0;
};

/// Removes what interrupted atomic writes of `path` left behind (the
/// temporary files writeFileAtomically names `path.tmp.XXXXXX`): a process
/// killed while writing, or a full disk, leaves them, up to the size of the
/// file. Only call it where no other process writes `path`.
void removeStaleTemporaries(const std::string &path);

/// Whether anything (file, directory, ...) exists at `path`.
bool pathExists(const std::string &path);

/// Whether `path` is a directory (following symbolic links).
bool isDirectory(const std::string &path);

/// Creates directory `dir` and its missing parents; an error when a part of
/// it cannot be created or `dir` is not a directory.
Status makeDirectories(const std::string &dir);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_FILE_H
