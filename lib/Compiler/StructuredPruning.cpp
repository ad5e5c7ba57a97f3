//===- StructuredPruning.cpp - Removing heads and MLP channels ------------===//
//
// StructuredPruning.h. Each family describes, per layer, the tensors a head
// or a channel owns: which axis, how many fused parts (GPT-2's c_attn holds
// q, k and v side by side) and how wide a unit is in each.
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/StructuredPruning.h"
#include "kiln/Runtime/File.h"
#include "kiln/Runtime/SafeTensors.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>

namespace rt = kiln::runtime;
using namespace mlir::kiln;

namespace {

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// A tensor of one layer some of whose rows or columns belong to units:
/// unit u covers [part · units · width + u · width, + width) along `axis`
/// for each of `parts` fused parts.
struct UnitSlices {
  std::string name;
  int axis;
  int64_t parts, width;
  /// A weight (ranked by), not a bias (only sliced).
  bool ranks;
};

/// One kind of unit in one layer.
struct UnitKind {
  int64_t units = 0;
  std::vector<UnitSlices> tensors;
};

struct FamilyLayout {
  int64_t layers = 0;
  /// Heads per unit (a key/value group of grouped-query attention).
  int64_t headsPerUnit = 1;
  std::function<UnitKind(int64_t layer)> heads, channels;
};

int64_t intKey(const llvm::json::Object &config, llvm::StringRef key,
               int64_t fallback, llvm::Error &err) {
  const llvm::json::Value *value = config.get(key);
  if (!value || value->kind() == llvm::json::Value::Null) {
    if (fallback < 0 && !err)
      err = error("the config has no '" + key + "'");
    return fallback;
  }
  std::optional<int64_t> number = value->getAsInteger();
  if ((!number || *number < 1) && !err) {
    err = error("config key '" + key + "' must be a positive integer");
    return 1;
  }
  return number.value_or(1);
}

llvm::Expected<FamilyLayout> layoutOf(const llvm::json::Object &config) {
  std::optional<llvm::StringRef> type = config.getString("model_type");
  if (!type)
    return error("the config has no model_type");
  llvm::Error err = llvm::Error::success();
  FamilyLayout layout;
  if (*type == "gpt2") {
    int64_t embd = intKey(config, "n_embd", -1, err);
    int64_t heads = intKey(config, "n_head", -1, err);
    layout.layers = intKey(config, "n_layer", -1, err);
    int64_t inner = intKey(config, "n_inner", 4 * embd, err);
    if (err)
      return std::move(err);
    int64_t headDim = embd / heads;
    layout.heads = [=](int64_t i) {
      std::string p = llvm::formatv("transformer.h.{0}.attn.", i).str();
      // Conv1D weights are [in, out].
      return UnitKind{heads,
                      {{p + "c_attn.weight", 1, 3, headDim, true},
                       {p + "c_attn.bias", 0, 3, headDim, false},
                       {p + "c_proj.weight", 0, 1, headDim, true}}};
    };
    layout.channels = [=](int64_t i) {
      std::string p = llvm::formatv("transformer.h.{0}.mlp.", i).str();
      return UnitKind{inner,
                      {{p + "c_fc.weight", 1, 1, 1, true},
                       {p + "c_fc.bias", 0, 1, 1, false},
                       {p + "c_proj.weight", 0, 1, 1, true}}};
    };
    return layout;
  }
  if (*type == "bert") {
    int64_t hidden = intKey(config, "hidden_size", -1, err);
    int64_t heads = intKey(config, "num_attention_heads", -1, err);
    layout.layers = intKey(config, "num_hidden_layers", -1, err);
    int64_t inner = intKey(config, "intermediate_size", -1, err);
    if (err)
      return std::move(err);
    int64_t headDim = hidden / heads;
    layout.heads = [=](int64_t i) {
      std::string p = llvm::formatv("encoder.layer.{0}.attention.", i).str();
      UnitKind kind{heads, {}};
      for (const char *proj : {"query", "key", "value"}) {
        kind.tensors.push_back(
            {p + "self." + proj + ".weight", 0, 1, headDim, true});
        kind.tensors.push_back(
            {p + "self." + proj + ".bias", 0, 1, headDim, false});
      }
      kind.tensors.push_back({p + "output.dense.weight", 1, 1, headDim, true});
      return kind;
    };
    layout.channels = [=](int64_t i) {
      std::string p = llvm::formatv("encoder.layer.{0}.", i).str();
      return UnitKind{inner,
                      {{p + "intermediate.dense.weight", 0, 1, 1, true},
                       {p + "intermediate.dense.bias", 0, 1, 1, false},
                       {p + "output.dense.weight", 1, 1, 1, true}}};
    };
    return layout;
  }
  if (*type == "llama" || *type == "mistral" || *type == "qwen2") {
    int64_t hidden = intKey(config, "hidden_size", -1, err);
    int64_t heads = intKey(config, "num_attention_heads", -1, err);
    int64_t kvHeads = intKey(config, "num_key_value_heads", heads, err);
    layout.layers = intKey(config, "num_hidden_layers", -1, err);
    int64_t inner = intKey(config, "intermediate_size", -1, err);
    int64_t headDim = intKey(config, "head_dim", hidden / heads, err);
    if (err)
      return std::move(err);
    if (heads % kvHeads)
      return error("num_attention_heads is not a multiple of "
                   "num_key_value_heads");
    int64_t group = heads / kvHeads;
    layout.headsPerUnit = group;
    // A unit is a key/value head with its group of query heads.
    layout.heads = [=](int64_t i) {
      std::string p = llvm::formatv("model.layers.{0}.self_attn.", i).str();
      UnitKind kind{kvHeads, {}};
      for (const char *proj : {"q_proj", "k_proj", "v_proj"}) {
        int64_t width = proj[0] == 'q' ? group * headDim : headDim;
        kind.tensors.push_back({p + proj + ".weight", 0, 1, width, true});
        kind.tensors.push_back({p + proj + ".bias", 0, 1, width, false});
      }
      kind.tensors.push_back({p + "o_proj.weight", 1, 1, group * headDim, true});
      return kind;
    };
    layout.channels = [=](int64_t i) {
      std::string p = llvm::formatv("model.layers.{0}.mlp.", i).str();
      UnitKind kind{inner, {}};
      for (const char *proj : {"gate_proj", "up_proj"}) {
        kind.tensors.push_back({p + proj + ".weight", 0, 1, 1, true});
        kind.tensors.push_back({p + proj + ".bias", 0, 1, 1, false});
      }
      kind.tensors.push_back({p + "down_proj.weight", 1, 1, 1, true});
      return kind;
    };
    return layout;
  }
  return error("structured pruning is built for gpt2, llama and bert, not "
               "model_type '" +
               *type + "'");
}

/// A checkpoint tensor by the model's name: exactly, or with a leading
/// component more (`bert.` + name) or less (HF's GPT-2 without
/// `transformer.`).
const rt::SafeTensorInfo *findTensor(const rt::WeightFiles &files,
                                     const std::string &name) {
  if (const rt::SafeTensorInfo *info = files.find(name))
    return info;
  const rt::SafeTensorInfo *found = nullptr;
  for (const rt::SafeTensorInfo *info : files.tensors()) {
    llvm::StringRef candidate = info->name;
    if (candidate.ends_with("." + name) &&
        !candidate.drop_back(name.size() + 1).contains('.')) {
      if (found)
        return nullptr;
      found = info;
    }
  }
  if (found)
    return found;
  size_t dot = name.find('.');
  return dot == std::string::npos ? nullptr : files.find(name.substr(dot + 1));
}

/// The index along `axis` of every kept row or column.
std::vector<int64_t> keptIndices(const UnitSlices &t, int64_t units,
                                 const std::vector<int64_t> &removed) {
  std::vector<int64_t> kept;
  for (int64_t part = 0; part < t.parts; ++part)
    for (int64_t u = 0; u < units; ++u)
      if (!std::binary_search(removed.begin(), removed.end(), u))
        for (int64_t k = 0; k < t.width; ++k)
          kept.push_back((part * units + u) * t.width + k);
  return kept;
}

} // namespace

llvm::Expected<StructuredPruningResult>
mlir::kiln::pruneStructured(const llvm::json::Object &config,
                            const std::string &weightsPath,
                            const StructuredPruningOptions &options,
                            const std::string &outPath) {
  if (!(options.fraction >= 0) || options.fraction >= 1)
    return error("the fraction of heads or channels removed must be in "
                 "[0, 1), not " +
                 llvm::formatv("{0}", options.fraction).str());
  for (const char *key : {"pruned_heads", "pruned_ffn_channels"})
    if (const llvm::json::Object *set = config.getObject(key);
        set && !set->empty())
      return error(llvm::Twine("the config prunes already ('") + key +
                   "'): prune the model it was made from");
  llvm::Expected<FamilyLayout> layout = layoutOf(config);
  if (!layout)
    return layout.takeError();
  rt::Expected<rt::WeightFiles> opened = rt::WeightFiles::open(weightsPath);
  if (!opened)
    return error(opened.message());
  const rt::WeightFiles &files = *opened;

  std::optional<rt::SafeTensorsFile> calibration;
  if (!options.calibrationPath.empty()) {
    rt::Expected<rt::SafeTensorsFile> file =
        rt::SafeTensorsFile::open(options.calibrationPath);
    if (!file)
      return error(file.message());
    calibration.emplace(file.take());
  }
  StructuredPruningResult result;
  result.config = config;
  // Rows or columns kept, by checkpoint tensor.
  std::map<const rt::SafeTensorInfo *, std::pair<int, std::vector<int64_t>>>
      slices;
  llvm::json::Object prunedHeads, prunedChannels;
  auto pruneKind = [&](const UnitKind &kind, int64_t layer,
                       llvm::json::Object &record, int64_t perUnit,
                       int64_t &removedCount,
                       int64_t &total) -> llvm::Error {
    std::vector<double> importance(kind.units, 0.0);
    std::vector<std::pair<const rt::SafeTensorInfo *, const UnitSlices *>>
        present;
    // Activation-aware: the output projection (the last tensor) against the
    // Gram matrix of its input.
    std::vector<float> gramDiagonal;
    const UnitSlices &output = kind.tensors.back();
    if (calibration) {
      std::string key = output.name + ".input_gram";
      const rt::SafeTensorInfo *gram = calibration->find(key);
      int64_t in = output.parts * kind.units * output.width;
      if (!gram)
        return error(options.calibrationPath + " has no '" + key +
                     "' (calibrate a --mode calibrate --calibration-gram "
                     "artifact of this model)");
      if (gram->dtype != rt::DType::F32 ||
          gram->shape != std::vector<int64_t>{in, in})
        return error("'" + key + "' in " + options.calibrationPath + " is " +
                     rt::dtypeName(gram->dtype) + " " +
                     rt::formatShape(gram->shape) + ", expected F32 [" +
                     std::to_string(in) + ", " + std::to_string(in) + "]");
      const auto *values =
          static_cast<const float *>(calibration->view(*gram).data);
      for (int64_t i = 0; i < in; ++i) {
        float g = values[i * in + i];
        if (!std::isfinite(g) || g < 0)
          return error("'" + key + "' in " + options.calibrationPath +
                       " has a diagonal entry that is negative or not "
                       "finite");
        gramDiagonal.push_back(g);
      }
    }
    for (const UnitSlices &t : kind.tensors) {
      const rt::SafeTensorInfo *info = findTensor(files, t.name);
      if (!info) {
        if (!t.ranks)
          continue; // No bias in this model.
        return error(files.description() + " has no tensor for '" + t.name +
                     "'");
      }
      int64_t extent = t.parts * kind.units * t.width;
      if (info->shape.size() != (t.ranks ? 2u : 1u) ||
          info->shape[t.axis] != extent ||
          !rt::isFloatDType(info->dtype))
        return error(files.description() + ": tensor '" + info->name +
                     "' is " + rt::dtypeName(info->dtype) + " " +
                     rt::formatShape(info->shape) + ", not a float tensor with " +
                     std::to_string(extent) + " along axis " +
                     std::to_string(t.axis));
      present.push_back({info, &t});
      if (!t.ranks || (calibration && &t != &output))
        continue;
      const auto *data =
          static_cast<const unsigned char *>(files.view(*info).data);
      size_t width = rt::dtypeSize(info->dtype);
      int64_t rows = info->shape[0], cols = info->shape[1];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          int64_t along = t.axis == 0 ? r : c;
          int64_t unit = (along % (kind.units * t.width)) / t.width;
          double v =
              rt::loadFloatElement(info->dtype, data + (r * cols + c) * width);
          importance[unit] += calibration ? gramDiagonal[along] * v * v : v * v;
        }
    }
    int64_t count = static_cast<int64_t>(
        std::floor(options.fraction * double(kind.units)));
    std::vector<int64_t> order(kind.units);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return importance[a] < importance[b];
    });
    std::vector<int64_t> removed(order.begin(), order.begin() + count);
    llvm::sort(removed);
    for (auto [info, t] : present)
      slices[info] = {t->axis, keptIndices(*t, kind.units, removed)};
    llvm::json::Array list;
    for (int64_t unit : removed)
      for (int64_t h = 0; h < perUnit; ++h)
        list.push_back(unit * perUnit + h);
    if (!removed.empty())
      record[std::to_string(layer)] = std::move(list);
    removedCount += count * perUnit;
    total += kind.units * perUnit;
    return llvm::Error::success();
  };
  for (int64_t layer = 0; layer < layout->layers; ++layer) {
    if (options.heads)
      if (llvm::Error err =
              pruneKind(layout->heads(layer), layer, prunedHeads,
                        layout->headsPerUnit, result.headsRemoved,
                        result.headsTotal))
        return std::move(err);
    if (options.channels)
      if (llvm::Error err =
              pruneKind(layout->channels(layer), layer, prunedChannels, 1,
                        result.channelsRemoved, result.channelsTotal))
        return std::move(err);
  }
  if (options.heads)
    result.config["pruned_heads"] = std::move(prunedHeads);
  if (options.channels)
    result.config["pruned_ffn_channels"] = std::move(prunedChannels);

  // Every tensor, the sliced ones cut down.
  std::vector<std::vector<unsigned char>> storage;
  storage.reserve(slices.size());
  std::vector<rt::NamedTensor> tensors;
  for (const rt::SafeTensorInfo *info : files.tensors()) {
    rt::TensorView view = files.view(*info);
    auto found = slices.find(info);
    if (found == slices.end()) {
      tensors.push_back({info->name, view});
      continue;
    }
    auto &[axis, kept] = found->second;
    size_t width = rt::dtypeSize(info->dtype);
    std::vector<int64_t> shape = info->shape;
    shape[axis] = static_cast<int64_t>(kept.size());
    int64_t cols = info->shape.size() == 2 ? info->shape[1] : 1;
    int64_t rows = info->shape[0];
    const auto *in = static_cast<const unsigned char *>(view.data);
    storage.emplace_back();
    std::vector<unsigned char> &out = storage.back();
    if (axis == 0) {
      for (int64_t r : kept)
        out.insert(out.end(), in + r * cols * width,
                   in + (r + 1) * cols * width);
    } else {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c : kept)
          out.insert(out.end(), in + (r * cols + c) * width,
                     in + (r * cols + c + 1) * width);
    }
    tensors.push_back({info->name, {info->dtype, shape, out.data()}});
  }
  rt::Status status =
      rt::writeSafeTensors(outPath, tensors, {{"format", "pt"}});
  if (!status)
    return error(status.message());
  return result;
}

llvm::Error mlir::kiln::writeModelConfig(const llvm::json::Object &config,
                                         const std::string &path) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(llvm::json::Object(config)))
     << "\n";
  rt::Status status = rt::writeFileAtomically(path, [&](int fd) {
    return rt::writeAll(fd, text.data(), text.size(), path);
  });
  if (!status)
    return error(status.message());
  return llvm::Error::success();
}
