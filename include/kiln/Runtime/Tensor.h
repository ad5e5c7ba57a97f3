//===- Tensor.h - Element types and tensor views of the runtime -*- C++ -*-===//
//
// The element types artifacts, safetensors and npy files use, and a
// non-owning view of a dense row-major tensor.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TENSOR_H
#define KILN_RUNTIME_TENSOR_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::runtime {

/// F8E4M3: fp8 e4m3 codes (torch.float8_e4m3fn, safetensors "F8_E4M3"),
/// stored by `--quantize fp8`; carried as bytes, never converted on the host.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool, F8E4M3 };

/// Bytes per element.
size_t dtypeSize(DType dtype);
/// The safetensors name: "F32", "BF16", "I64", "BOOL", ...
const char *dtypeName(DType dtype);
/// Parses a safetensors dtype name.
std::optional<DType> parseDTypeName(const std::string &name);
/// The little-endian numpy descr: "<f4", "<i8", "|b1", ... (none for bf16).
std::optional<std::string> dtypeNumpyDescr(DType dtype);
/// Parses a numpy descr ("<f4", "|u1", ...); big-endian is not supported.
std::optional<DType> parseNumpyDescr(const std::string &descr);

/// Product of the dims (1 for a scalar). Only for shapes already known to
/// fit (checkedByteSize on everything read from a file or a config).
int64_t numElements(const std::vector<int64_t> &shape);
/// The bytes a tensor of `shape` and `dtype` takes; nullopt when a dim is
/// negative or the bytes do not fit in int64. Dims of -1 (dynamic) count
/// as 1 when `dynamicAsOne`, so the static part of a spec can be checked.
std::optional<uint64_t> checkedByteSize(const std::vector<int64_t> &shape,
                                        DType dtype, bool dynamicAsOne = false);
/// "[2, 3, 768]" for messages.
std::string formatShape(const std::vector<int64_t> &shape);

/// Whether `dtype` is F64, F32, F16 or BF16.
bool isFloatDType(DType dtype);
/// The little-endian float element at `p` of a float `dtype`, widened to
/// double (0 for any other dtype).
double loadFloatElement(DType dtype, const void *p);
/// `value` rounded to bf16 (to nearest, ties to even; a NaN becomes the
/// quiet NaN 0x7fc0), as bits.
uint16_t floatToBF16(float value);

/// A dense row-major tensor someone else owns.
struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void *data = nullptr;

  size_t byteSize() const {
    return static_cast<size_t>(numElements(shape)) * dtypeSize(dtype);
  }
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_TENSOR_H
