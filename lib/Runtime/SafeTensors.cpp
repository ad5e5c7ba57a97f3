//===- SafeTensors.cpp - safetensors reader and writer --------------------===//
//
// Validation is strict because weight files come from elsewhere: every
// problem is reported with the file and tensor it concerns, and nothing is
// read outside the mapping.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/SafeTensors.h"
#include "kiln/Runtime/File.h"
#include "kiln/Runtime/JsonLimits.h"
#include "kiln/Runtime/Strings.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>
#include <fcntl.h>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::runtime {

namespace {
/// Headers larger than this are rejected as corrupt (the reference
/// implementation uses the same bound).
constexpr uint64_t kMaxHeaderSize = 100u * 1000 * 1000;

Status corrupt(const std::string &path, const std::string &what) {
  return Status::error("'" + path + "' is not a valid safetensors file: " +
                       what);
}
} // namespace

SafeTensorsFile::SafeTensorsFile(SafeTensorsFile &&other) noexcept {
  *this = std::move(other);
}

SafeTensorsFile &SafeTensorsFile::operator=(SafeTensorsFile &&other) noexcept {
  if (this == &other)
    return *this;
  path_ = std::move(other.path_);
  mapping_ = std::move(other.mapping_);
  data_ = std::exchange(other.data_, nullptr);
  tensors_ = std::move(other.tensors_);
  index_ = std::move(other.index_);
  metadata_ = std::move(other.metadata_);
  return *this;
}

SafeTensorsFile::~SafeTensorsFile() = default;

const SafeTensorInfo *SafeTensorsFile::find(const std::string &name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

TensorView SafeTensorsFile::view(const SafeTensorInfo &info) const {
  return {info.dtype, info.shape, data_ + info.begin};
}

Expected<SafeTensorsFile> SafeTensorsFile::open(const std::string &path) {
  Expected<MappedFile> mapped = MappedFile::open(path);
  if (!mapped)
    return mapped.status();
  size_t size = mapped->size();
  if (size < 8)
    return corrupt(path, "it has " + std::to_string(size) +
                             " bytes, fewer than the 8-byte header length");

  SafeTensorsFile file;
  file.path_ = path;
  file.mapping_ = mapped.take();
  const unsigned char *bytes = file.mapping_.data();

  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | bytes[i];
  if (headerSize > kMaxHeaderSize || headerSize > size - 8)
    return corrupt(path, "the header length " + std::to_string(headerSize) +
                             " does not fit in the file of " +
                             std::to_string(size) + " bytes");
  const char *headerBegin = reinterpret_cast<const char *>(bytes + 8);
  if (Status s = checkJsonNesting(std::string_view(headerBegin, headerSize),
                                  "the header");
      !s)
    return corrupt(path, s.message());
  nlohmann::json header = nlohmann::json::parse(
      headerBegin, headerBegin + headerSize, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return corrupt(path, "the header is not a JSON object");

  file.data_ = bytes + 8 + headerSize;
  size_t dataSize = size - 8 - headerSize;

  for (auto &[name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object())
        return corrupt(path, "__metadata__ is not an object");
      for (auto &[key, text] : value.items()) {
        if (!text.is_string())
          return corrupt(path, "__metadata__ value of '" + key +
                                   "' is not a string");
        file.metadata_[key] = text.get<std::string>();
      }
      continue;
    }
    auto where = "tensor '" + name + "': ";
    if (!value.is_object() || !value.contains("dtype") ||
        !value.contains("shape") || !value.contains("data_offsets"))
      return corrupt(path, where + "expected {dtype, shape, data_offsets}");
    const auto &dtypeJson = value["dtype"];
    std::optional<DType> dtype =
        dtypeJson.is_string() ? parseDTypeName(dtypeJson.get<std::string>())
                              : std::nullopt;
    if (!dtype)
      return corrupt(path, where + "unknown dtype " + dtypeJson.dump());
    SafeTensorInfo info;
    info.name = name;
    info.dtype = *dtype;
    const auto &shape = value["shape"];
    if (!shape.is_array())
      return corrupt(path, where + "shape is not an array");
    for (const auto &dim : shape) {
      if (!dim.is_number_unsigned())
        return corrupt(path, where + "shape " + shape.dump() +
                                 " has a non-integer or negative dim");
      uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(INT64_MAX))
        return corrupt(path, where + "shape " + shape.dump() + " overflows");
      info.shape.push_back(static_cast<int64_t>(d));
    }
    std::optional<uint64_t> bytes = checkedByteSize(info.shape, info.dtype);
    if (!bytes)
      return corrupt(path, where + "shape " + shape.dump() + " overflows");
    const auto &offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 ||
        !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      return corrupt(path, where + "data_offsets is not [begin, end]");
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > dataSize)
      return corrupt(path, where + "data_offsets [" + std::to_string(begin) +
                               ", " + std::to_string(end) +
                               "] fall outside the data section of " +
                               std::to_string(dataSize) +
                               " bytes (is the file truncated?)");
    uint64_t expected = *bytes;
    if (end - begin != expected)
      return corrupt(path, where + "shape " + formatShape(info.shape) +
                               " of " + dtypeName(info.dtype) + " needs " +
                               std::to_string(expected) + " bytes, found " +
                               std::to_string(end - begin));
    info.begin = begin;
    info.end = end;
    if (!file.index_.emplace(name, file.tensors_.size()).second)
      return corrupt(path, where + "appears twice");
    file.tensors_.push_back(std::move(info));
  }

  // Tensors must not overlap.
  std::vector<const SafeTensorInfo *> sorted;
  for (const auto &info : file.tensors_)
    sorted.push_back(&info);
  std::sort(sorted.begin(), sorted.end(),
            [](auto *a, auto *b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->begin < sorted[i - 1]->end)
      return corrupt(path, "tensors '" + sorted[i - 1]->name + "' and '" +
                               sorted[i]->name + "' overlap");
  return file;
}

Status writeSafeTensors(const std::string &path,
                        const std::vector<NamedTensor> &tensors,
                        const std::map<std::string, std::string> &metadata) {
  // nlohmann::ordered_json keeps the tensors in the order given.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto &[key, value] : metadata)
      meta[key] = value;
    header["__metadata__"] = meta;
  }
  size_t offset = 0;
  for (const NamedTensor &tensor : tensors) {
    if (tensor.name.empty() || tensor.name == "__metadata__")
      return Status::error("cannot write '" + path + "': invalid tensor name '" +
                           tensor.name + "'");
    if (header.contains(tensor.name))
      return Status::error("cannot write '" + path + "': tensor '" +
                           tensor.name + "' is given twice");
    size_t bytes = tensor.view.byteSize();
    header[tensor.name] = {{"dtype", dtypeName(tensor.view.dtype)},
                           {"shape", tensor.view.shape},
                           {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad the header with spaces so the data section is 8-byte aligned.
  while ((8 + text.size()) % 8 != 0)
    text.push_back(' ');
  return writeFileAtomically(path, [&](int fd) -> Status {
    unsigned char length[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i)
      length[i] = static_cast<unsigned char>(n >> (8 * i));
    if (Status s = writeAll(fd, length, 8, path); !s)
      return s;
    if (Status s = writeAll(fd, text.data(), text.size(), path); !s)
      return s;
    for (const NamedTensor &tensor : tensors)
      if (Status s = writeAll(fd, tensor.view.data, tensor.view.byteSize(),
                              path);
          !s)
        return s;
    return Status::ok();
  });
}

} // namespace kiln::runtime

//===----------------------------------------------------------------------===//
// WeightFiles
//===----------------------------------------------------------------------===//

namespace kiln::runtime {

namespace {
constexpr const char *kSingleFile = "model.safetensors";
constexpr const char *kIndexFile = "model.safetensors.index.json";
/// Real indexes are a few hundred kB (one line per tensor).
constexpr size_t kMaxIndexSize = 64u << 20;

std::string directoryOf(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

Status badIndex(const std::string &path, const std::string &what) {
  return Status::error("'" + path + "' is not a valid sharded checkpoint "
                       "index: " + what);
}
} // namespace

bool WeightFiles::isDirectory(const std::string &path) {
  return kiln::runtime::isDirectory(path);
}

const SafeTensorInfo *WeightFiles::find(const std::string &name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.second;
}

TensorView WeightFiles::view(const SafeTensorInfo &info) const {
  auto it = index_.find(info.name);
  assert(it != index_.end() && it->second.second == &info &&
         "tensor of another WeightFiles");
  return files_[it->second.first].view(info);
}

Expected<WeightFiles> WeightFiles::open(const std::string &given) {
  std::string path = given;
  if (isDirectory(given)) {
    std::string dir = given;
    while (dir.size() > 1 && dir.back() == '/')
      dir.pop_back();
    if (pathExists(dir + "/" + kSingleFile))
      path = dir + "/" + kSingleFile;
    else if (pathExists(dir + "/" + kIndexFile))
      path = dir + "/" + kIndexFile;
    else
      return Status::error(
          "'" + given + "' has neither " + kSingleFile + " nor " + kIndexFile +
          " (Kiln reads safetensors checkpoints; save with "
          "save_pretrained(..., safe_serialization=True))");
  }

  WeightFiles weights;
  if (!endsWith(path, ".json")) {
    Expected<SafeTensorsFile> file = SafeTensorsFile::open(path);
    if (!file)
      return file.status();
    weights.description_ = "'" + path + "'";
    weights.files_.push_back(file.take());
  } else {
    Expected<std::string> text = readFile(path, "checkpoint index");
    if (!text)
      return text.status();
    if (text->size() > kMaxIndexSize)
      return badIndex(path, "it is larger than " +
                                std::to_string(kMaxIndexSize >> 20) + " MiB");
    if (Status s = checkJsonNesting(*text, "the index"); !s)
      return badIndex(path, s.message());
    nlohmann::json index =
        nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded() || !index.is_object())
      return badIndex(path, "it is not a JSON object");
    auto map = index.find("weight_map");
    if (map == index.end() || !map->is_object() || map->empty())
      return badIndex(path, "it has no 'weight_map' object naming the shards");
    // Shards in order of first mention; each must be a plain file name
    // beside the index (an index must not reach elsewhere).
    std::vector<std::string> shardNames;
    std::map<std::string, size_t> shardOf;
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it.value().is_string())
        return badIndex(path, "the shard of '" + it.key() +
                                  "' is not a string");
      std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos ||
          shard == "." || shard == "..")
        return badIndex(path, "shard '" + shard + "' of '" + it.key() +
                                  "' is not a file name in the index's "
                                  "directory");
      if (!shardOf.count(shard)) {
        shardOf[shard] = shardNames.size();
        shardNames.push_back(shard);
      }
    }
    std::string dir = directoryOf(path);
    for (const std::string &shard : shardNames) {
      Expected<SafeTensorsFile> file = SafeTensorsFile::open(dir + "/" + shard);
      if (!file)
        return file.status();
      weights.files_.push_back(file.take());
    }
    for (auto it = map->begin(); it != map->end(); ++it) {
      const SafeTensorsFile &file =
          weights.files_[shardOf[it.value().get<std::string>()]];
      if (!file.find(it.key()))
        return badIndex(path, "it places '" + it.key() + "' in '" +
                                  file.path() + "', which has no such tensor");
    }
    weights.description_ = "'" + path + "' (" +
                           std::to_string(shardNames.size()) + " shard" +
                           (shardNames.size() == 1 ? "" : "s") + ")";
  }

  for (size_t f = 0; f < weights.files_.size(); ++f)
    for (const SafeTensorInfo &info : weights.files_[f].tensors()) {
      auto [it, inserted] = weights.index_.try_emplace(info.name, f, &info);
      if (!inserted)
        return Status::error("tensor '" + info.name + "' is in both '" +
                             weights.files_[it->second.first].path() +
                             "' and '" + weights.files_[f].path() + "'");
      weights.tensors_.push_back(&info);
    }
  return weights;
}

} // namespace kiln::runtime
