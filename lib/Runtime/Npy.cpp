//===- Npy.cpp - NumPy .npy reader and writer -----------------------------===//
//
// The .npy header is a Python dict literal; this parses exactly the subset
// numpy writes ({'descr': ..., 'fortran_order': ..., 'shape': (...), }) and
// rejects anything else with a message.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Npy.h"
#include "kiln/Runtime/File.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace kiln::runtime {

namespace {
constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

Status badNpy(const std::string &path, const std::string &what) {
  return Status::error("'" + path + "' is not a valid .npy file: " + what);
}

/// A cursor over the header dict literal.
class HeaderParser {
public:
  explicit HeaderParser(const std::string &text) : text_(text) {}

  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }
  bool consume(char c) {
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool peek(char c) {
    skipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  std::optional<std::string> string() {
    skipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"'))
      return std::nullopt;
    char quote = text_[pos_++];
    size_t end = text_.find(quote, pos_);
    if (end == std::string::npos)
      return std::nullopt;
    std::string value = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return value;
  }
  std::optional<std::string> word() {
    skipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() && std::isalnum(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
    if (start == pos_)
      return std::nullopt;
    return text_.substr(start, pos_ - start);
  }
  bool atEnd() {
    skipSpace();
    return pos_ == text_.size();
  }

private:
  const std::string &text_;
  size_t pos_ = 0;
};
} // namespace

Expected<NpyArray> readNpy(const std::string &path) {
  if (Status s = checkRegularFile(path); !s)
    return s;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error("cannot open '" + path + "': " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  std::streamoff fileSize = in.tellg();
  in.seekg(0);

  char prefix[10];
  if (fileSize < 10 || !in.read(prefix, 10) ||
      std::memcmp(prefix, kMagic, kMagicSize) != 0)
    return badNpy(path, "it does not start with the \\x93NUMPY magic");
  int major = static_cast<unsigned char>(prefix[6]);
  size_t headerLength = 0, prefixSize = 10;
  if (major == 1) {
    headerLength = static_cast<unsigned char>(prefix[8]) |
                   static_cast<unsigned char>(prefix[9]) << 8;
  } else if (major == 2 || major == 3) {
    char more[2];
    if (!in.read(more, 2))
      return badNpy(path, "the header length is truncated");
    headerLength = static_cast<size_t>(static_cast<unsigned char>(prefix[8])) |
                   static_cast<size_t>(static_cast<unsigned char>(prefix[9])) << 8 |
                   static_cast<size_t>(static_cast<unsigned char>(more[0])) << 16 |
                   static_cast<size_t>(static_cast<unsigned char>(more[1])) << 24;
    prefixSize = 12;
  } else {
    return badNpy(path, "format version " + std::to_string(major) +
                            " is not supported (expected 1, 2 or 3)");
  }
  if (prefixSize + headerLength > static_cast<size_t>(fileSize))
    return badNpy(path, "the header of " + std::to_string(headerLength) +
                            " bytes runs past the end of the file");
  std::string header(headerLength, '\0');
  in.read(header.data(), static_cast<std::streamsize>(headerLength));

  HeaderParser parser(header);
  std::optional<std::string> descr;
  std::optional<bool> fortranOrder;
  std::optional<std::vector<int64_t>> shape;
  if (!parser.consume('{'))
    return badNpy(path, "the header is not a dict: " + header);
  while (!parser.consume('}')) {
    std::optional<std::string> key = parser.string();
    if (!key || !parser.consume(':'))
      return badNpy(path, "cannot parse the header: " + header);
    if (*key == "descr") {
      descr = parser.string();
      if (!descr)
        return badNpy(path, "'descr' is not a string (structured dtypes are "
                            "not supported)");
    } else if (*key == "fortran_order") {
      std::optional<std::string> value = parser.word();
      if (!value || (*value != "True" && *value != "False"))
        return badNpy(path, "'fortran_order' is not True or False");
      fortranOrder = *value == "True";
    } else if (*key == "shape") {
      if (!parser.consume('('))
        return badNpy(path, "'shape' is not a tuple");
      shape.emplace();
      while (!parser.consume(')')) {
        std::optional<std::string> dim = parser.word();
        if (!dim || dim->find_first_not_of("0123456789") != std::string::npos ||
            dim->size() > 15)
          return badNpy(path, "'shape' has a dimension that is not a "
                              "non-negative integer");
        shape->push_back(std::stoll(*dim));
        parser.consume(',');
      }
    } else {
      return badNpy(path, "unexpected header key '" + *key + "'");
    }
    parser.consume(',');
  }
  if (!descr || !fortranOrder || !shape)
    return badNpy(path, "the header lacks descr, fortran_order or shape");
  if (*fortranOrder)
    return badNpy(path, "Fortran-order arrays are not supported; save with "
                        "np.ascontiguousarray");
  std::optional<DType> dtype = parseNumpyDescr(*descr);
  if (!dtype)
    return badNpy(path, "dtype '" + *descr +
                            "' is not supported (expected little-endian "
                            "f8/f4/f2/i8/i4/i2/i1/u1/b1)");

  NpyArray array;
  array.dtype = *dtype;
  array.shape = *shape;
  std::optional<uint64_t> bytes = checkedByteSize(array.shape, array.dtype);
  if (!bytes)
    return badNpy(path, "shape " + formatShape(array.shape) + " overflows");
  uint64_t payload = *bytes;
  uint64_t available = static_cast<uint64_t>(fileSize) - prefixSize - headerLength;
  if (payload != available)
    return badNpy(path, "shape " + formatShape(array.shape) + " of " +
                            *descr + " needs " + std::to_string(payload) +
                            " data bytes, the file has " +
                            std::to_string(available) +
                            (payload > available ? " (truncated?)" : ""));
  array.bytes.resize(payload);
  if (payload && !in.read(reinterpret_cast<char *>(array.bytes.data()),
                          static_cast<std::streamsize>(payload)))
    return badNpy(path, "cannot read the data");
  return array;
}

Status writeNpy(const std::string &path, const TensorView &view) {
  std::optional<std::string> descr = dtypeNumpyDescr(view.dtype);
  if (!descr)
    return Status::error("cannot write '" + path + "': numpy has no " +
                         dtypeName(view.dtype) + " dtype");
  std::ostringstream dict;
  dict << "{'descr': '" << *descr << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < view.shape.size(); ++i)
    dict << view.shape[i] << (view.shape.size() == 1 || i + 1 < view.shape.size() ? "," : "")
         << (i + 1 < view.shape.size() ? " " : "");
  dict << "), }";
  std::string header = dict.str();
  bool version2 = header.size() + 11 >= 65535;
  size_t prefix = version2 ? 12 : 10;
  size_t total = prefix + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  return writeFileAtomically(path, [&](int fd) -> Status {
    std::string start(kMagic, kMagicSize);
    start.push_back(static_cast<char>(version2 ? 2 : 1));
    start.push_back(0);
    size_t n = header.size();
    for (size_t i = 0; i < (version2 ? 4u : 2u); ++i)
      start.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    if (Status s = writeAll(fd, start.data(), start.size(), path); !s)
      return s;
    if (Status s = writeAll(fd, header.data(), header.size(), path); !s)
      return s;
    return writeAll(fd, view.data, view.byteSize(), path);
  });
}

} // namespace kiln::runtime
