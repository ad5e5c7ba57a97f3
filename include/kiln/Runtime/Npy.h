//===- Npy.h - Reading and writing NumPy .npy files -------------*- C++ -*-===//
//
// `kiln run` takes its inputs and writes its outputs as .npy files (format
// versions 1.0-3.0, little-endian, C order). Writes are atomic.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_NPY_H
#define KILN_RUNTIME_NPY_H

#include "kiln/Runtime/Status.h"
#include "kiln/Runtime/Tensor.h"

#include <string>
#include <vector>

namespace kiln::runtime {

/// An owned array read from a .npy file.
struct NpyArray {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> bytes;

  TensorView view() const { return {dtype, shape, bytes.data()}; }
};

/// Reads and validates `path`: magic, version, header dict (descr,
/// fortran_order, shape), and a payload of exactly the declared size.
Expected<NpyArray> readNpy(const std::string &path);

/// Writes `view` to `path` (format 1.0, or 2.0 for huge headers) atomically.
Status writeNpy(const std::string &path, const TensorView &view);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_NPY_H
