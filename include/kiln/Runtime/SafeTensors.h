//===- SafeTensors.h - Reading and writing safetensors files ----*- C++ -*-===//
//
// safetensors is Kiln's weight and checkpoint format: an 8-byte
// little-endian header length, a JSON header mapping each tensor name to
// {dtype, shape, data_offsets} (plus optional "__metadata__" strings), then
// the packed tensor bytes. Files are memory-mapped for reading and written
// atomically (temporary file, fsync, rename), so a crash never leaves a
// half-written file under the final name.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_SAFETENSORS_H
#define KILN_RUNTIME_SAFETENSORS_H

#include "kiln/Runtime/File.h"
#include "kiln/Runtime/Status.h"
#include "kiln/Runtime/Tensor.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime {

/// One tensor's entry in a safetensors header.
struct SafeTensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  size_t begin = 0; ///< Offset in the data section.
  size_t end = 0;
};

/// A validated, memory-mapped safetensors file.
class SafeTensorsFile {
public:
  /// Maps and validates `path`: header size and JSON, dtypes, shapes against
  /// byte extents, offsets inside the data section and not overlapping.
  static Expected<SafeTensorsFile> open(const std::string &path);

  SafeTensorsFile(SafeTensorsFile &&) noexcept;
  SafeTensorsFile &operator=(SafeTensorsFile &&) noexcept;
  ~SafeTensorsFile();

  const std::string &path() const { return path_; }
  /// Tensors in file order.
  const std::vector<SafeTensorInfo> &tensors() const { return tensors_; }
  const std::map<std::string, std::string> &metadata() const {
    return metadata_;
  }
  /// The entry named `name`, or null.
  const SafeTensorInfo *find(const std::string &name) const;
  /// A view of the tensor's bytes inside the mapping.
  TensorView view(const SafeTensorInfo &info) const;
  /// Gives the mapping's resident pages back (MappedFile::releasePages).
  void releasePages() const { mapping_.releasePages(); }

private:
  SafeTensorsFile() = default;
  std::string path_;
  MappedFile mapping_;
  const unsigned char *data_ = nullptr;
  std::vector<SafeTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// The tensors of a weight checkpoint as Hugging Face's `save_pretrained`
/// writes it, read as one set: a safetensors file, a sharded checkpoint's
/// index (`model.safetensors.index.json`, whose `weight_map` names the shard
/// of each tensor), or a directory holding `model.safetensors` or that
/// index. Shards are validated as SafeTensorsFile::open does, must lie in
/// the index's directory, must hold the tensors the index gives them, and
/// must not share a tensor name.
class WeightFiles {
public:
  static Expected<WeightFiles> open(const std::string &path);

  WeightFiles(WeightFiles &&) noexcept = default;
  WeightFiles &operator=(WeightFiles &&) noexcept = default;

  /// What was read, for messages: the file, or the index and its shard
  /// count.
  const std::string &description() const { return description_; }
  /// Every tensor, shard by shard in file order.
  const std::vector<const SafeTensorInfo *> &tensors() const {
    return tensors_;
  }
  const SafeTensorInfo *find(const std::string &name) const;
  /// A view of the tensor's bytes inside its shard's mapping.
  TensorView view(const SafeTensorInfo &info) const;

  /// Whether `path` names a directory (a `save_pretrained` output).
  static bool isDirectory(const std::string &path);

private:
  WeightFiles() = default;
  std::string description_;
  std::vector<SafeTensorsFile> files_;
  std::vector<const SafeTensorInfo *> tensors_;
  /// name -> (shard, tensor).
  std::map<std::string, std::pair<size_t, const SafeTensorInfo *>> index_;
};

/// A named tensor to write.
struct NamedTensor {
  std::string name;
  TensorView view;
};

/// Writes `tensors` (in the given order) to `path` atomically.
Status writeSafeTensors(const std::string &path,
                        const std::vector<NamedTensor> &tensors,
                        const std::map<std::string, std::string> &metadata = {});

} // namespace kiln::runtime

#endif // KILN_RUNTIME_SAFETENSORS_H
