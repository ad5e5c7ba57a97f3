//===- Corpus.cpp - Reading a pretraining corpus --------------------------===//
//
// The directory walk uses the non-throwing std::filesystem overloads (Kiln
// builds without exceptions). Files are deduplicated by device and inode
// after sorting, so of several names for one file the first in path order is
// read.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Corpus.h"

#include "kiln/Runtime/File.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sys/stat.h>
#include <utility>

namespace fs = std::filesystem;

namespace kiln::train {

namespace {

/// A corpus file and, once read, its bytes.
struct CorpusFile {
  std::string path;
  std::string bytes;
};

bool isHidden(const fs::path &path) {
  std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

/// The text files of a corpus, read, in corpus order.
Expected<std::vector<CorpusFile>> collectCorpusFiles(const std::string &path) {
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status))
    return Status::error("corpus '" + path + "' does not exist");

  if (fs::is_regular_file(status)) {
    Expected<std::string> bytes = runtime::readFile(path);
    if (!bytes)
      return bytes.status();
    if (!isUtf8Text(*bytes))
      return Status::error("corpus file '" + path +
                           "' is not UTF-8 text (it has NUL bytes or "
                           "malformed UTF-8)");
    return std::vector<CorpusFile>{{path, bytes.take()}};
  }
  if (!fs::is_directory(status))
    return Status::error("corpus '" + path +
                         "' is neither a regular file nor a directory");

  std::vector<std::string> candidates;
  fs::recursive_directory_iterator it(path, ec), end;
  if (ec)
    return Status::error("cannot list corpus directory '" + path +
                         "': " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec)
      return Status::error("cannot list corpus directory '" + path +
                           "': " + ec.message());
    const fs::directory_entry &entry = *it;
    if (isHidden(entry.path())) {
      if (entry.is_directory(ec))
        it.disable_recursion_pending();
      continue;
    }
    // Follows symlinks: a symlink to a file counts, a dangling one does not.
    if (entry.is_regular_file(ec))
      candidates.push_back(entry.path().string());
  }
  std::sort(candidates.begin(), candidates.end());

  std::vector<CorpusFile> files;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const std::string &candidate : candidates) {
    struct stat st;
    if (::stat(candidate.c_str(), &st) != 0)
      continue;
    if (!seen.insert({st.st_dev, st.st_ino}).second)
      continue;
    Expected<std::string> bytes = runtime::readFile(candidate);
    if (!bytes)
      return bytes.status();
    if (!isUtf8Text(*bytes))
      continue;
    files.push_back({candidate, bytes.take()});
  }
  return files;
}

/// Removes the last UTF-8 character of `text` unless it ends a line.
void eraseLastCharacterOnLine(std::string &text) {
  if (text.empty() || text.back() == '\n')
    return;
  while (!text.empty() &&
         (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80)
    text.pop_back();
  if (!text.empty())
    text.pop_back();
}

} // namespace

std::string defaultCorpusPath() { return "/usr/share/games/fortunes"; }

bool isUtf8Text(std::string_view bytes) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c == 0)
      return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t codePoint;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
      codePoint = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      codePoint = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      codePoint = c & 0x07;
    } else {
      return false; // A continuation byte, an overlong lead, or past U+10FFFF.
    }
    if (n - i < length)
      return false;
    for (size_t k = 1; k < length; ++k) {
      if ((p[i + k] & 0xC0) != 0x80)
        return false;
      codePoint = (codePoint << 6) | (p[i + k] & 0x3F);
    }
    if ((length == 3 && codePoint < 0x800) ||
        (length == 4 && (codePoint < 0x10000 || codePoint > 0x10FFFF)) ||
        (codePoint >= 0xD800 && codePoint <= 0xDFFF))
      return false;
    i += length;
  }
  return true;
}

std::string normalizeCorpusText(std::string_view text) {
  // Resolve the terminal controls first, so the line rules below see the
  // text as it would be displayed.
  std::string drawn;
  drawn.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
      continue;
    if (c == '\a')
      continue;
    if (c == '\b') {
      eraseLastCharacterOnLine(drawn);
      continue;
    }
    drawn.push_back(c);
  }

  std::string result;
  result.reserve(drawn.size());
  bool pendingBlank = false;
  size_t begin = 0;
  while (begin <= drawn.size()) {
    size_t newline = drawn.find('\n', begin);
    size_t end = newline == std::string::npos ? drawn.size() : newline;
    std::string_view line(drawn.data() + begin, end - begin);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    if (line == "%")
      line = {};
    if (line.empty()) {
      pendingBlank = !result.empty();
    } else {
      if (!result.empty())
        result += pendingBlank ? "\n\n" : "\n";
      result.append(line);
      pendingBlank = false;
    }
    if (newline == std::string::npos)
      break;
    begin = newline + 1;
  }
  return result;
}

std::vector<std::string_view> splitDocuments(std::string_view corpus) {
  std::vector<std::string_view> documents;
  size_t begin = 0;
  while (begin < corpus.size()) {
    size_t separator = corpus.find("\n\n", begin);
    size_t end =
        separator == std::string_view::npos ? corpus.size() : separator + 2;
    documents.push_back(corpus.substr(begin, end - begin));
    begin = end;
  }
  return documents;
}

Expected<std::vector<std::string>> listCorpusFiles(const std::string &path) {
  Expected<std::vector<CorpusFile>> files = collectCorpusFiles(path);
  if (!files)
    return files.status();
  std::vector<std::string> paths;
  for (const CorpusFile &file : *files)
    paths.push_back(file.path);
  return paths;
}

Expected<std::string> readCorpus(const std::string &path) {
  Expected<std::vector<CorpusFile>> files = collectCorpusFiles(path);
  if (!files)
    return files.status();
  std::string corpus;
  for (const CorpusFile &file : *files) {
    std::string text = normalizeCorpusText(file.bytes);
    if (text.empty())
      continue;
    if (!corpus.empty())
      corpus += "\n\n";
    corpus += text;
  }
  if (corpus.empty())
    return Status::error("corpus '" + path +
                         "' contains no text (no non-empty UTF-8 text files)");
  corpus += '\n';
  return corpus;
}

} // namespace kiln::train
