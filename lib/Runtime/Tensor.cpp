//===- Tensor.cpp - Element type tables -----------------------------------===//
//
// Names and sizes of the runtime's element types in the safetensors and
// numpy vocabularies.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Tensor.h"

#include <cstdint>
#include <cstring>
#include <sstream>

namespace kiln::runtime {

namespace {
struct DTypeEntry {
  DType dtype;
  size_t size;
  const char *name;
  const char *numpy; // little-endian descr, null when numpy has none
};

constexpr DTypeEntry kDTypes[] = {
    {DType::F64, 8, "F64", "<f8"},
    {DType::F32, 4, "F32", "<f4"},
    {DType::F16, 2, "F16", "<f2"},
    {DType::BF16, 2, "BF16", nullptr},
    {DType::I64, 8, "I64", "<i8"},
    {DType::I32, 4, "I32", "<i4"},
    {DType::I16, 2, "I16", "<i2"},
    {DType::I8, 1, "I8", "|i1"},
    {DType::U8, 1, "U8", "|u1"},
    {DType::Bool, 1, "BOOL", "|b1"},
    {DType::F8E4M3, 1, "F8_E4M3", nullptr},
};

const DTypeEntry &entry(DType dtype) {
  for (const DTypeEntry &e : kDTypes)
    if (e.dtype == dtype)
      return e;
  return kDTypes[1];
}
} // namespace

size_t dtypeSize(DType dtype) { return entry(dtype).size; }

const char *dtypeName(DType dtype) { return entry(dtype).name; }

std::optional<DType> parseDTypeName(const std::string &name) {
  for (const DTypeEntry &e : kDTypes)
    if (name == e.name)
      return e.dtype;
  return std::nullopt;
}

std::optional<std::string> dtypeNumpyDescr(DType dtype) {
  const char *descr = entry(dtype).numpy;
  if (!descr)
    return std::nullopt;
  return std::string(descr);
}

std::optional<DType> parseNumpyDescr(const std::string &descr) {
  if (descr.size() < 2)
    return std::nullopt;
  // Single-byte types may be written with any byte-order mark.
  std::string normalized = descr;
  if (descr.size() == 3 && descr[2] == '1' &&
      (descr[0] == '<' || descr[0] == '>' || descr[0] == '='))
    normalized[0] = '|';
  if (descr[0] == '=')
    normalized[0] = '<'; // native order; Kiln runs on little-endian hosts
  for (const DTypeEntry &e : kDTypes)
    if (e.numpy && normalized == e.numpy)
      return e.dtype;
  return std::nullopt;
}

std::optional<uint64_t> checkedByteSize(const std::vector<int64_t> &shape,
                                        DType dtype, bool dynamicAsOne) {
  constexpr uint64_t kLimit = static_cast<uint64_t>(INT64_MAX);
  uint64_t bytes = dtypeSize(dtype);
  for (int64_t dim : shape) {
    if (dim == -1 && dynamicAsOne)
      continue;
    if (dim < 0)
      return std::nullopt;
    uint64_t d = static_cast<uint64_t>(dim);
    if (d != 0 && bytes > kLimit / d)
      return std::nullopt;
    bytes *= d;
  }
  return bytes;
}

int64_t numElements(const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i)
    os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

bool isFloatDType(DType dtype) {
  return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::F16 ||
         dtype == DType::BF16;
}

double loadFloatElement(DType dtype, const void *p) {
  const auto *bytes = static_cast<const unsigned char *>(p);
  switch (dtype) {
  case DType::F64: {
    double value;
    std::memcpy(&value, bytes, 8);
    return value;
  }
  case DType::F32: {
    float value;
    std::memcpy(&value, bytes, 4);
    return value;
  }
  case DType::F16: {
    _Float16 value;
    std::memcpy(&value, bytes, 2);
    return static_cast<double>(value);
  }
  case DType::BF16: {
    uint32_t bits = uint32_t(bytes[0] | (bytes[1] << 8)) << 16;
    float value;
    std::memcpy(&value, &bits, 4);
    return value;
  }
  default:
    return 0;
  }
}

uint16_t floatToBF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffff) > 0x7f800000)
    return 0x7fc0; // NaN
  uint32_t rounding = 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

} // namespace kiln::runtime
