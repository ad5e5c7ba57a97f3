//===- Compiler.cpp - kiln IR to ahead-of-time artifacts ------------------===//
//
// Records what the runtime needs to know (entry points, parameter table)
// from the kiln module, lowers a clone of it with the CPU pipeline, emits
// module.so, writes the weights, and writes manifest.json last, all in a
// temporary directory that then replaces the output directory.
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/Compiler.h"

#include "kiln/Compiler/CostModel.h"
#include "kiln/Compiler/WeightPruner.h"
#include "kiln/Compiler/WeightQuantizer.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/File.h"
#include "kiln/Runtime/Float8.h"
#include "kiln/Runtime/Manifest.h"
#include "kiln/Runtime/SafeTensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Parallel.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"

#include <chrono>
#include <cmath>
#include <array>
#include <map>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <unistd.h>

using namespace mlir;
using namespace mlir::kiln;
namespace rt = ::kiln::runtime;
namespace json = llvm::json;

std::string mlir::kiln::sha256Hex(llvm::StringRef data) {
  auto hash = llvm::SHA256::hash(llvm::arrayRefFromStringRef(data));
  return llvm::toHex(hash, /*LowerCase=*/true);
}

namespace {

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(message.str());
}

/// The safetensors name of an element type.
std::optional<rt::DType> dtypeOf(Type type) {
  if (auto quantized = dyn_cast<quant::QuantizedType>(type))
    type = quantized.getStorageType();
  if (type.isF32())
    return rt::DType::F32;
  if (type.isF16())
    return rt::DType::F16;
  if (type.isBF16())
    return rt::DType::BF16;
  if (type.isInteger(64))
    return rt::DType::I64;
  if (type.isInteger(32))
    return rt::DType::I32;
  if (type.isInteger(16))
    return rt::DType::I16;
  if (type.isInteger(8))
    return rt::DType::I8;
  if (type.isInteger(1))
    return rt::DType::Bool;
  if (isa<Float8E4M3FNType>(type))
    return rt::DType::F8E4M3;
  return std::nullopt;
}

/// A shape as the manifest writes it: -1 for a dynamic dim.
std::vector<int64_t> manifestShape(ArrayRef<int64_t> shape) {
  std::vector<int64_t> out;
  for (int64_t dim : shape)
    out.push_back(ShapedType::isDynamic(dim) ? rt::kDynamicDim : dim);
  return out;
}

struct ParameterInfo {
  mutable ParameterOp op;
  /// Optimizer state: zero at the start, allocated by the runtime, not in
  /// weights.safetensors.
  bool state = false;
  rt::DType dtype;
  std::vector<int64_t> shape;
  size_t bytes = 0;
  size_t offset = 0;
  /// Codes, scales or zero points of a float weight (kiln-quantize): the
  /// values come from quantizing that source.
  std::optional<WeightQuantization> quantized;
  /// How the weight (or, with `quantized`, its float source) is pruned
  /// (kiln-prune): its values are pruned before they are written or
  /// quantized.
  std::optional<WeightPruning> pruned;
  /// A part of a 2:4 pruned weight stored compressed (kiln-prune
  /// compress=true).
  std::optional<WeightCompression> compressed;
  /// Column panels of a float weight (kiln-pack-weights;
  /// kiln.packed_from), the layout the manifest records. Packed when the
  /// runtime loads it (atLoad), `shape` is the weight's as a checkpoint
  /// holds it, which the weights file stores; else the panels'.
  std::optional<rt::PackedLayout> packed;
  /// Whether the weights file holds this weight as panels.
  bool packedInFile() const { return packed && !packed->atLoad; }

  /// The float weight this parameter's values come from: its own name, or
  /// a quantized or compressed part's source.
  StringRef sourceName() const {
    if (quantized)
      return quantized->source;
    if (compressed)
      return compressed->source;
    return op.getSymName();
  }
  /// Whether that float weight is stored `[in, out]`.
  bool sourceTransposed() const {
    if (quantized)
      return quantized->transposed;
    if (compressed)
      return compressed->transposed;
    return pruned && pruned->transposed;
  }
  /// The stored shape of that float weight.
  SmallVector<int64_t, 2> sourceShape() const {
    if (quantized)
      return quantized->sourceShape;
    if (compressed)
      return compressed->sourceShape;
    if (packed)
      return SmallVector<int64_t, 2>(packed->shape.begin(),
                                     packed->shape.end());
    return SmallVector<int64_t, 2>(shape.begin(), shape.end());
  }
};

/// The spec of one input or output of an entry point.
llvm::Expected<rt::TensorSpec> valueSpec(StringRef name, Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return error("entry point value '" + name + "' is not a ranked tensor");
  auto dtype = dtypeOf(tensor.getElementType());
  if (!dtype)
    return error("entry point value '" + name + "' has unsupported element "
                 "type " + llvm::formatv("{0}", tensor.getElementType()).str());
  rt::TensorSpec spec;
  spec.name = name.str();
  spec.dtype = *dtype;
  spec.shape = manifestShape(tensor.getShape());
  return spec;
}

/// Entry points of the kiln module: every public function with a body.
/// Their parameters are filled in after lowering (see compileArtifact).
llvm::Expected<std::vector<rt::EntryPointSpec>>
describeEntryPoints(ModuleOp module) {
  std::vector<rt::EntryPointSpec> entries;
  CostOptions costOptions;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal() || !func.isPublic())
      continue;
    rt::EntryPointSpec entry;
    entry.name = func.getSymName().str();
    entry.symbol = KILN_ENTRY_PREFIX + entry.name;
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      auto name = func.getArgAttrOfType<StringAttr>(i, attrs::kName);
      std::string text = name ? name.str() : "arg" + std::to_string(i);
      auto spec = valueSpec(text, func.getArgument(i).getType());
      if (!spec)
        return spec.takeError();
      if (auto max = func.getArgAttrOfType<DenseI64ArrayAttr>(
              i, attrs::kMaxShape))
        spec->maxShape.assign(max.asArrayRef().begin(),
                              max.asArrayRef().end());
      spec->inPlace = func.getArgAttr(i, attrs::kInPlace) != nullptr;
      entry.inputs.push_back(std::move(*spec));
    }
    for (unsigned i = 0; i < func.getNumResults(); ++i) {
      auto name = func.getResultAttrOfType<StringAttr>(i, attrs::kName);
      std::string text = name ? name.str() : "result" + std::to_string(i);
      auto spec = valueSpec(text, func.getResultTypes()[i]);
      if (!spec)
        return spec.takeError();
      entry.outputs.push_back(std::move(*spec));
    }
    func.walk([&](WriteParamOp write) {
      entry.writesParameters.push_back(write.getName().str());
    });
    OpCost cost;
    func.walk([&](CostOpInterface op) { cost += op.getCost(costOptions); });
    entry.flops = cost.flops;
    entry.bytes = cost.bytes();
    if (!entry.hasStaticInputs()) {
      auto model = fitCostModel(func);
      if (model)
        entry.costModel = std::move(*model);
      else
        entry.costModelNote = llvm::toString(model.takeError());
    }
    entries.push_back(std::move(entry));
  }
  if (entries.empty())
    return error("the module has no public function with a body to compile "
                 "as an entry point");
  return entries;
}

/// compile_options and the like as the manifest keeps them: strings as
/// they are, other values as their JSON text.
rt::OptionMap optionMap(const json::Object &object) {
  rt::OptionMap out;
  for (const auto &[key, value] : object) {
    if (auto text = value.getAsString())
      out[key.str()] = rt::OptionValue::string(text->str());
    else
      out[key.str()] =
          rt::OptionValue::json(llvm::formatv("{0}", value).str());
  }
  return out;
}

/// A builder's attribute (kiln.model) as JSON: integers, floats, strings,
/// booleans, arrays and dictionaries of them.
json::Value attributeJson(Attribute attr) {
  if (auto b = dyn_cast<BoolAttr>(attr))
    return b.getValue();
  if (auto i = dyn_cast<IntegerAttr>(attr))
    return i.getValue().getSExtValue();
  if (auto f = dyn_cast<FloatAttr>(attr))
    return f.getValueAsDouble();
  if (auto text = dyn_cast<StringAttr>(attr))
    return text.getValue().str();
  if (auto values = dyn_cast<DenseI64ArrayAttr>(attr))
    return json::Array(values.asArrayRef());
  if (auto array = dyn_cast<ArrayAttr>(attr)) {
    json::Array out;
    for (Attribute element : array)
      out.push_back(attributeJson(element));
    return out;
  }
  if (auto dict = dyn_cast<DictionaryAttr>(attr)) {
    json::Object out;
    for (NamedAttribute entry : dict)
      out[entry.getName().getValue()] = attributeJson(entry.getValue());
    return out;
  }
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

uint64_t nameHash(StringRef name) {
  uint64_t hash = 1469598103934665603ULL; // FNV-1a
  for (unsigned char c : name)
    hash = (hash ^ c) * 1099511628211ULL;
  return hash;
}

uint16_t floatToF16(float value) {
  _Float16 half = static_cast<_Float16>(value);
  uint16_t bits;
  std::memcpy(&bits, &half, 2);
  return bits;
}

/// Fills `out` with the parameter's init rule as `dtype` values, drawn from
/// the stream of the parameter named `stream` (the parameter itself, or
/// the float weight a quantized parameter comes from).
llvm::Error initialize(const ParameterInfo &param, uint64_t seed,
                       std::vector<unsigned char> &out, StringRef stream,
                       rt::DType dtype) {
  size_t count = out.size() / rt::dtypeSize(dtype);
  InitKind kind = param.op.getInit();
  std::mt19937_64 rng(seed ^ nameHash(stream));
  // One distribution per parameter (a normal one draws its values in
  // pairs: made per value, it threw every second one away).
  std::normal_distribution<float> normal(
      0.0f, kind == InitKind::normal
                ? static_cast<float>(param.op.getStd()->convertToDouble())
                : 1.0f);
  std::uniform_real_distribution<float> uniform(
      kind == InitKind::uniform
          ? static_cast<float>(param.op.getLow()->convertToDouble())
          : 0.0f,
      kind == InitKind::uniform
          ? static_cast<float>(param.op.getHigh()->convertToDouble())
          : 1.0f);
  auto sample = [&]() -> float {
    switch (kind) {
    case InitKind::zeros:
      return 0.0f;
    case InitKind::ones:
      return 1.0f;
    case InitKind::normal:
      return normal(rng);
    case InitKind::uniform:
      return uniform(rng);
    }
    return 0.0f;
  };
  bool random = kind == InitKind::normal || kind == InitKind::uniform;
  for (size_t i = 0; i < count; ++i) {
    float value = sample();
    switch (dtype) {
    case rt::DType::F32:
      std::memcpy(out.data() + 4 * i, &value, 4);
      break;
    case rt::DType::BF16: {
      uint16_t bits = rt::floatToBF16(value);
      std::memcpy(out.data() + 2 * i, &bits, 2);
      break;
    }
    case rt::DType::F16: {
      uint16_t bits = floatToF16(value);
      std::memcpy(out.data() + 2 * i, &bits, 2);
      break;
    }
    case rt::DType::F8E4M3:
      // e4m3 codes of the value (not the value as an integer: `init ones`
      // is 0x38, 1.0, not 0x01, 2^-9).
      out[i] = ::kiln::encodeE4M3(value);
      break;
    default: {
      if (random)
        return error("parameter '" + param.op.getSymName() +
                     "': a random init rule needs a float type, found " +
                     rt::dtypeName(dtype));
      int64_t integer = static_cast<int64_t>(value);
      std::memcpy(out.data() + rt::dtypeSize(dtype) * i, &integer,
                  rt::dtypeSize(dtype));
    }
    }
  }
  return llvm::Error::success();
}

bool isFloat(rt::DType dtype) { return rt::isFloatDType(dtype); }

double loadFloat(rt::DType dtype, const unsigned char *p) {
  assert(isFloat(dtype) && "not a float dtype");
  return rt::loadFloatElement(dtype, p);
}

void storeFloat(rt::DType dtype, double value, unsigned char *p) {
  switch (dtype) {
  case rt::DType::F64:
    std::memcpy(p, &value, 8);
    return;
  case rt::DType::F32: {
    float narrow = static_cast<float>(value);
    std::memcpy(p, &narrow, 4);
    return;
  }
  case rt::DType::F16: {
    _Float16 narrow = static_cast<_Float16>(value);
    std::memcpy(p, &narrow, 2);
    return;
  }
  case rt::DType::BF16: {
    // bf16(f32(value)): one rounding from f32, as torch's .to(bfloat16).
    uint16_t bits = rt::floatToBF16(static_cast<float>(value));
    std::memcpy(p, &bits, 2);
    return;
  }
  default:
    llvm_unreachable("not a float dtype");
  }
}

/// Where each parameter's values come from in a checkpoint, decided before
/// anything is compiled so a mismatch is reported at once.
///
/// Names are the model's state-dict names; a checkpoint saved from a
/// family's base or task class differs by one leading component
/// (`GPT2Model` has no `transformer.`, `BertForSequenceClassification` adds
/// `bert.`), so the one renaming that finds the most parameters is used.
/// Tensors the model does not use are reported as a warning; a missing
/// parameter, a shape mismatch or a non-float to float mismatch is an error.
/// Float tensors of another width (bf16, f16, f64) are cast to the
/// parameter's dtype when copied.
struct WeightPlan {
  rt::WeightFiles files;
  /// Per parameter (null for optimizer state).
  std::vector<const rt::SafeTensorInfo *> sources;
  /// How names were mapped, for the log ("" when as they are).
  std::string renaming;
  std::vector<std::string> unused;
  std::set<std::string> castFrom;
  /// Tensors already in their packed parameter's layout (kiln-pack-weights),
  /// copied as they are.
  std::set<const rt::SafeTensorInfo *> storedAsPacked;
};

/// What a shape mismatch may mean when a 2-D weight meets a tensor of
/// rank 3 or 4: the weights file of a CPU inference artifact, which stores
/// linear weights as the matmul's panels.
std::string packedHint(const rt::SafeTensorInfo &info,
                       const ParameterInfo &param) {
  if (param.sourceShape().size() != 2 ||
      (info.shape.size() != 3 && info.shape.size() != 4))
    return "";
  return " (a CPU inference artifact compiled with --pack-weights=file "
         "stores linear weights as the matmul's column panels in its "
         "weights.safetensors: give the original checkpoint, or compile "
         "with --pack-weights=file too)";
}

llvm::Expected<WeightPlan> planWeights(const std::vector<ParameterInfo> &params,
                                       const std::string &weightsPath) {
  auto opened = rt::WeightFiles::open(weightsPath);
  if (!opened)
    return error(opened.message());
  WeightPlan plan{opened.take(), {}, "", {}, {}, {}};
  const rt::WeightFiles &files = plan.files;

  // A renaming maps a parameter name to the name to look up: add a leading
  // component (the file has `bert.X` for the model's `X`) or strip one (the
  // file has `X` for the model's `transformer.X`).
  struct Renaming {
    std::string add, strip;
    std::string apply(StringRef name) const {
      if (!strip.empty())
        return name.starts_with(strip) ? name.drop_front(strip.size()).str()
                                       : name.str();
      return add + name.str();
    }
  };
  auto leading = [](StringRef name) -> std::string {
    size_t dot = name.find('.');
    return dot == StringRef::npos ? "" : name.take_front(dot + 1).str();
  };
  std::vector<Renaming> candidates{{}};
  std::set<std::string> seen;
  for (const rt::SafeTensorInfo *info : files.tensors())
    if (std::string prefix = leading(info->name);
        !prefix.empty() && seen.insert("+" + prefix).second)
      candidates.push_back({prefix, ""});
  // A quantized parameter is looked up by its float source's name.
  auto sourceName = [](const ParameterInfo &param) -> StringRef {
    return param.sourceName();
  };
  for (const ParameterInfo &param : params)
    if (std::string prefix = leading(sourceName(param));
        !param.state && !prefix.empty() && seen.insert("-" + prefix).second)
      candidates.push_back({"", prefix});

  auto lookup = [&](const Renaming &r, StringRef name) {
    const rt::SafeTensorInfo *info = files.find(r.apply(name));
    return info ? info : files.find(name.str());
  };
  const Renaming *best = &candidates.front();
  size_t bestFound = 0;
  for (const Renaming &r : candidates) {
    size_t found = 0;
    for (const ParameterInfo &param : params)
      found += !param.state && lookup(r, sourceName(param));
    if (found > bestFound) {
      best = &r;
      bestFound = found;
    }
  }
  if (!best->add.empty())
    plan.renaming = "the checkpoint's names have the prefix '" + best->add + "'";
  else if (!best->strip.empty())
    plan.renaming = "the checkpoint's names lack the prefix '" + best->strip + "'";

  std::set<const rt::SafeTensorInfo *> used;
  std::vector<std::string> missing;
  for (const ParameterInfo &param : params) {
    if (param.state) {
      plan.sources.push_back(nullptr);
      continue;
    }
    StringRef name = sourceName(param);
    const rt::SafeTensorInfo *info = lookup(*best, name);
    plan.sources.push_back(info);
    if (!info) {
      // The parts of one quantized weight share their source.
      if (!llvm::is_contained(missing, name.str()))
        missing.push_back(name.str());
      continue;
    }
    used.insert(info);
    std::string where = info->name == name ? "'" + name.str() + "'"
                                           : "'" + info->name + "' (for '" +
                                                 name.str() + "')";
    if (param.packedInFile() && info->shape == param.shape &&
        info->dtype == param.dtype) {
      // Already this artifact's panels (the weights of an artifact compiled
      // the same way): copied as they are.
      plan.storedAsPacked.insert(info);
      continue;
    }
    if (param.quantized || param.compressed || param.packedInFile()) {
      // Quantized, compressed or packed from a float tensor of the source's
      // shape.
      SmallVector<int64_t, 2> sourceShape = param.sourceShape();
      std::vector<int64_t> shape(sourceShape.begin(), sourceShape.end());
      if (info->shape != shape || !isFloat(info->dtype))
        return error(files.description() + ": tensor " + where + " is " +
                     rt::dtypeName(info->dtype) + " " +
                     rt::formatShape(info->shape) + ", the model " +
                     (param.packed ? "expects" : "quantizes") +
                     " a float tensor of shape " + rt::formatShape(shape) +
                     packedHint(*info, param));
      continue;
    }
    if (info->shape != param.shape ||
        (info->dtype != param.dtype &&
         !(isFloat(info->dtype) && isFloat(param.dtype))))
      return error(files.description() + ": tensor " + where + " is " +
                   rt::dtypeName(info->dtype) + " " +
                   rt::formatShape(info->shape) + ", the model expects " +
                   rt::dtypeName(param.dtype) + " " +
                   rt::formatShape(param.shape) + packedHint(*info, param));
    if (info->dtype != param.dtype)
      plan.castFrom.insert(rt::dtypeName(info->dtype));
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 3; ++i)
      list += (i ? ", '" : "'") + missing[i] + "'";
    if (missing.size() > 3)
      list += " and " + std::to_string(missing.size() - 3) + " more";
    return error(files.description() + " has no tensor for " +
                 std::to_string(missing.size()) + " of the model's " +
                 "parameters: " + list +
                 (plan.renaming.empty() ? "" : " (" + plan.renaming + ")"));
  }
  for (const rt::SafeTensorInfo *info : files.tensors())
    if (!used.count(info))
      plan.unused.push_back(info->name);
  return plan;
}

/// The 2-D float weight `sourceName` of stored shape `shape` as f32
/// values: from the checkpoint tensor `info` of `files`, or drawn from the
/// init rule in that name's own stream (the values the float model gets).
llvm::Expected<std::vector<float>>
storedValues(const ParameterInfo &param, StringRef sourceName,
             ArrayRef<int64_t> shape, const rt::SafeTensorInfo *info,
             const rt::WeightFiles *files, uint64_t seed) {
  int64_t rows = shape[0], cols = shape[1];
  std::vector<float> source(rows * cols);
  if (info) {
    const auto *in =
        static_cast<const unsigned char *>(files->view(*info).data);
    size_t width = rt::dtypeSize(info->dtype);
    for (int64_t i = 0; i < rows * cols; ++i)
      source[i] = static_cast<float>(loadFloat(info->dtype, in + i * width));
  } else {
    std::vector<unsigned char> bytes(source.size() * sizeof(float));
    if (llvm::Error err =
            initialize(param, seed, bytes, sourceName, rt::DType::F32))
      return std::move(err);
    std::memcpy(source.data(), bytes.data(), bytes.size());
  }
  return source;
}

/// The float weight a quantized or pruned parameter comes from as
/// `[out, in]` f32 values (`shape` is its stored shape, `[in, out]` when
/// `transposed`): from the checkpoint tensor `info` of `files`, or drawn
/// from the init rule in the source's own stream (the values the float
/// model gets).
llvm::Expected<std::vector<float>>
sourceValues(const ParameterInfo &param, StringRef sourceName,
             ArrayRef<int64_t> shape, bool transposed,
             const rt::SafeTensorInfo *info, const rt::WeightFiles *files,
             uint64_t seed) {
  llvm::Expected<std::vector<float>> values =
      storedValues(param, sourceName, shape, info, files, seed);
  if (!values)
    return values.takeError();
  std::vector<float> source = std::move(*values);
  int64_t rows = shape[0], cols = shape[1];
  // A NaN or infinity has no code (and would make the scale of its group
  // meaningless) nor a rank among magnitudes: refuse it rather than write
  // garbage.
  for (size_t i = 0; i < source.size(); ++i)
    if (!std::isfinite(source[i]))
      return error("cannot " +
                   llvm::Twine(param.quantized ? "quantize" : "prune") + " '" +
                   sourceName + "': element [" + llvm::Twine(i / cols) + ", " +
                   llvm::Twine(i % cols) + "] is " +
                   llvm::formatv("{0}", source[i]).str() +
                   (info ? " in " + files->description() : std::string()));
  if (!transposed)
    return source;
  // [in, out] to [out, in].
  std::vector<float> result(source.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      result[j * rows + i] = source[i * cols + j];
  return result;
}

/// The `[in, in]` Gram matrix of `source`'s layer inputs from the
/// calibration file (opened into `file` on first use).
llvm::Expected<std::vector<float>>
calibrationGram(const CompileOptions &options,
                std::optional<rt::SafeTensorsFile> &file, StringRef source,
                int64_t in, StringRef method) {
  std::string verb = method == "GPTQ" || method == "AWQ" ? "quantize" : "prune";
  if (!options.calibrationPath)
    return error("cannot " + verb + " '" + source + "' with " + method +
                 ": no calibration file (--calibration FILE from "
                 "kiln calibrate on a --mode calibrate --calibration-gram "
                 "artifact)");
  if (!file) {
    rt::Expected<rt::SafeTensorsFile> opened =
        rt::SafeTensorsFile::open(*options.calibrationPath);
    if (!opened)
      return error(opened.message());
    file.emplace(opened.take());
  }
  const rt::SafeTensorInfo *info = file->find((source + ".input_gram").str());
  if (!info)
    return error("cannot " + verb + " '" + source + "' with " + method +
                 ": '" + *options.calibrationPath + "' has no '" + source +
                 ".input_gram' (calibrate a --mode calibrate "
                 "--calibration-gram artifact)");
  if (info->dtype != rt::DType::F32 ||
      info->shape != std::vector<int64_t>{in, in})
    return error("'" + source + ".input_gram' in '" + *options.calibrationPath +
                 "' is " + rt::dtypeName(info->dtype) + " " +
                 rt::formatShape(info->shape) + ", expected F32 [" +
                 std::to_string(in) + ", " + std::to_string(in) + "]");
  std::vector<float> gram(in * in);
  std::memcpy(gram.data(), file->view(*info).data, gram.size() * sizeof(float));
  for (size_t i = 0; i < gram.size(); ++i)
    if (!std::isfinite(gram[i]))
      return error("'" + source + ".input_gram' in '" +
                   *options.calibrationPath + "' is not finite");
  return gram;
}

/// The bytes of `values`, as a weight part stores them.
template <typename T>
std::vector<unsigned char> bytesOf(const std::vector<T> &values) {
  std::vector<unsigned char> out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

/// The 2:4 compression of a pruned `[out, in]` weight: per group of four
/// inputs, the two kept values (f32 bytes, `first` then `second`, the
/// earlier position first) and their positions (one byte: bits 0-1 and
/// 2-3). A group with fewer than two nonzeros keeps zeros at its first
/// free positions; one with more is not 2:4 and is an error.
llvm::Expected<std::array<std::vector<unsigned char>, 3>>
compress2of4(const std::vector<float> &w, int64_t out, int64_t in,
             StringRef source) {
  int64_t groups = in / 4;
  std::vector<float> first(out * groups), second(out * groups);
  std::vector<unsigned char> positions(out * groups);
  for (int64_t r = 0; r < out; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const float *v = w.data() + r * in + g * 4;
      int kept[2] = {-1, -1}, count = 0;
      for (int j = 0; j < 4; ++j)
        if (v[j] != 0.0f) {
          if (count == 2)
            return error("cannot compress '" + source + "': row " +
                         llvm::Twine(r) + ", inputs " + llvm::Twine(g * 4) +
                         ".." + llvm::Twine(g * 4 + 3) +
                         " have more than two nonzeros");
          kept[count++] = j;
        }
      // Zeros fill the free slots at the first unused positions.
      for (int j = 0; j < 4 && count < 2; ++j)
        if (j != kept[0])
          kept[count++] = j;
      if (kept[0] > kept[1])
        std::swap(kept[0], kept[1]);
      first[r * groups + g] = v[kept[0]];
      second[r * groups + g] = v[kept[1]];
      positions[r * groups + g] =
          static_cast<unsigned char>(kept[0] | (kept[1] << 2));
    }
  return std::array<std::vector<unsigned char>, 3>{
      bytesOf(first), bytesOf(second), std::move(positions)};
}

/// The compressed-sparse-row storage of a pruned `[out, in]` weight in
/// `nnz` entries: offsets (i32 `[out + 1]`), indices (i16, or i32 when
/// `wide`) and values (f32), in that order. Rows hold their nonzeros in
/// input order; entries left over pad the last row with value 0 at input 0
/// (kiln.expand_csr adds entries up, so they change nothing). More
/// nonzeros than `nnz` means the pruning kept more than it should and is
/// an error.
llvm::Expected<std::array<std::vector<unsigned char>, 3>>
compressCSR(const std::vector<float> &w, int64_t out, int64_t in, int64_t nnz,
            bool wide, StringRef source) {
  std::vector<int32_t> offsets(out + 1, 0);
  std::vector<int32_t> indices;
  std::vector<float> values;
  indices.reserve(nnz);
  values.reserve(nnz);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t j = 0; j < in; ++j) {
      float v = w[r * in + j];
      if (v == 0.0f)
        continue;
      if (static_cast<int64_t>(values.size()) == nnz)
        return error("cannot compress '" + source + "': it has more than " +
                     llvm::Twine(nnz) + " nonzeros, the weights its pruning "
                     "keeps");
      indices.push_back(static_cast<int32_t>(j));
      values.push_back(v);
    }
    offsets[r + 1] = static_cast<int32_t>(values.size());
  }
  indices.resize(nnz, 0);
  values.resize(nnz, 0.0f);
  offsets[out] = static_cast<int32_t>(nnz);
  return std::array<std::vector<unsigned char>, 3>{
      bytesOf(offsets),
      wide ? bytesOf(indices)
           : bytesOf(std::vector<uint16_t>(indices.begin(), indices.end())),
      bytesOf(values)};
}

/// Where a compressed part's bytes are in its weight's three: 2:4 first,
/// second, positions; CSR offsets, indices, values.
int compressedSlot(CompressedPart part) {
  switch (part) {
  case CompressedPart::First:
  case CompressedPart::Offsets:
    return 0;
  case CompressedPart::Second:
  case CompressedPart::Indices:
    return 1;
  case CompressedPart::Positions:
  case CompressedPart::Values:
    return 2;
  }
  return 0;
}

/// Writes weights.safetensors: copied from the planned checkpoint tensors
/// (cast where the dtypes differ), quantized from them, or initialized.
llvm::Error writeWeights(std::vector<ParameterInfo> &params,
                         const CompileOptions &options,
                         const WeightPlan *plan, StringRef path) {
  std::vector<std::vector<unsigned char>> storage;
  std::vector<rt::NamedTensor> tensors;
  storage.reserve(params.size());
  // The parameters drawn from their init rule, and where in `storage`
  // their bytes are.
  std::vector<std::pair<size_t, size_t>> initialized;
  // Quantized weights by source, computed when their first part is met.
  std::map<std::string, QuantizedWeight> quantized;
  // The calibration file GPTQ, Wanda and SparseGPT read their Gram
  // matrices from, opened once.
  std::optional<rt::SafeTensorsFile> calibration;
  // The float values (`[out, in]`) a quantized or pruned parameter comes
  // from.
  auto valuesOf = [&](size_t index) -> llvm::Expected<std::vector<float>> {
    const ParameterInfo &param = params[index];
    return sourceValues(param, param.sourceName(), param.sourceShape(),
                        param.sourceTransposed(),
                        plan ? plan->sources[index] : nullptr,
                        plan ? &plan->files : nullptr, options.seed);
  };
  // A global magnitude pruning's threshold, over every weight it prunes.
  double globalThreshold = -1;
  {
    std::vector<float> magnitudes;
    std::set<std::string> seen;
    double fraction = 0;
    for (auto [index, param] : llvm::enumerate(params)) {
      if (!param.pruned || !param.pruned->global ||
          !seen.insert(param.sourceName().str()).second)
        continue;
      llvm::Expected<std::vector<float>> values = valuesOf(index);
      if (!values)
        return values.takeError();
      for (float value : *values)
        magnitudes.push_back(std::fabs(value));
      fraction = param.pruned->sparsity.fraction;
    }
    if (!magnitudes.empty())
      globalThreshold = magnitudeThreshold(std::move(magnitudes), fraction);
  }
  // Pruned weights by source, pruned when first met (`[out, in]`).
  std::map<std::string, std::vector<float>> pruned;
  auto prunedValues =
      [&](size_t index) -> llvm::Expected<const std::vector<float> *> {
    const ParameterInfo &param = params[index];
    std::string source = param.sourceName().str();
    if (auto found = pruned.find(source); found != pruned.end())
      return &found->second;
    llvm::Expected<std::vector<float>> values = valuesOf(index);
    if (!values)
      return values.takeError();
    const WeightPruning &p = *param.pruned;
    int64_t rows = param.sourceShape()[0];
    int64_t cols = static_cast<int64_t>(values->size()) / rows;
    int64_t out = p.transposed ? cols : rows, in = p.transposed ? rows : cols;
    std::optional<std::vector<float>> gram;
    if (p.method != PruneMethod::Magnitude) {
      llvm::Expected<std::vector<float>> read = calibrationGram(
          options, calibration, source, in,
          p.method == PruneMethod::Wanda ? "Wanda" : "SparseGPT");
      if (!read)
        return read.takeError();
      gram = std::move(*read);
    }
    if (llvm::Error err = pruneWeight(*values, out, in, p,
                                      gram ? gram->data() : nullptr,
                                      p.global ? globalThreshold : -1))
      return error("cannot prune '" + source +
                   "': " + llvm::toString(std::move(err)));
    return &(pruned[source] = std::move(*values));
  };
  // Compressed weights by source: 2:4 first, second, positions; CSR
  // offsets, indices, values.
  std::map<std::string, std::array<std::vector<unsigned char>, 3>> compressed;
  for (auto [index, param] : llvm::enumerate(params)) {
    if (param.state)
      continue;
    StringRef name = param.op.getSymName();
    if (const auto &c = param.compressed) {
      auto [found, inserted] = compressed.try_emplace(c->source);
      if (inserted) {
        llvm::Expected<const std::vector<float> *> values = prunedValues(index);
        if (!values)
          return values.takeError();
        llvm::Expected<std::array<std::vector<unsigned char>, 3>> parts =
            c->format == CompressedFormat::CSR
                ? compressCSR(**values, c->outDim(), c->inDim(), c->nnz,
                              c->wideIndices(), c->source)
                : compress2of4(**values, c->outDim(), c->inDim(), c->source);
        if (!parts)
          return parts.takeError();
        found->second = std::move(*parts);
        pruned.erase(c->source);
      }
      tensors.push_back(
          {name.str(),
           {param.dtype, param.shape,
            found->second[compressedSlot(c->part)].data()}});
      continue;
    }
    if (const auto &q = param.quantized) {
      auto [found, inserted] = quantized.try_emplace(q->source);
      if (inserted) {
        llvm::Expected<std::vector<float>> values = std::vector<float>();
        if (param.pruned) {
          llvm::Expected<const std::vector<float> *> prunedSource =
              prunedValues(index);
          if (!prunedSource)
            return prunedSource.takeError();
          // Quantized once per source: the pruned values move here.
          *values = std::move(pruned[q->source]);
        } else {
          values = valuesOf(index);
        }
        if (!values)
          return values.takeError();
        // SmoothQuant: W · diag(s) is quantized; the input is multiplied
        // by 1 / s (the smoothing part), so its Gram matrix scales too.
        // The other parts of this source the model has, if any.
        auto partOf = [&](QuantizedPart part) -> const WeightQuantization * {
          for (const ParameterInfo &other : params)
            if (other.quantized && other.quantized->source == q->source &&
                other.quantized->part == part)
              return &*other.quantized;
          return nullptr;
        };
        const WeightQuantization *smoothing = partOf(QuantizedPart::Smoothing);
        std::vector<float> factors;
        if (q->smoothAlpha >= 0 || q->rounding == "awq") {
          if (!smoothing)
            return error("cannot quantize '" + q->source +
                         "' with smoothquant: the model has no smoothing "
                         "part for it");
          if (q->rounding == "awq") {
            llvm::Expected<std::vector<float>> gram =
                calibrationGram(options, calibration, q->source, q->inDim(),
                                "AWQ");
            if (!gram)
              return gram.takeError();
            factors =
                awqFactors(values->data(), q->outDim(), q->inDim(), q->scheme,
                           smoothing->inputAbsmax.data(), gram->data());
          } else {
            factors = smoothQuantFactors(
                values->data(), q->outDim(), q->inDim(),
                smoothing->inputAbsmax.data(), q->smoothAlpha);
          }
          for (int64_t o = 0; o < q->outDim(); ++o)
            for (int64_t j = 0; j < q->inDim(); ++j)
              (*values)[o * q->inDim() + j] *= factors[j];
        }
        if (q->rounding == "gptq") {
          llvm::Expected<std::vector<float>> gram =
              calibrationGram(options, calibration, q->source, q->inDim(),
                              "GPTQ");
          if (!gram)
            return gram.takeError();
          for (int64_t i = 0; !factors.empty() && i < q->inDim(); ++i)
            for (int64_t j = 0; j < q->inDim(); ++j)
              (*gram)[i * q->inDim() + j] /= factors[i] * factors[j];
          llvm::Expected<QuantizedWeight> weight = quantizeGPTQ(
              values->data(), q->outDim(), q->inDim(), q->scheme, gram->data());
          if (!weight)
            return error("cannot quantize '" + q->source +
                         "' with GPTQ: " + llvm::toString(weight.takeError()));
          found->second = std::move(*weight);
        } else {
          found->second = quantizeRoundToNearest(values->data(), q->outDim(),
                                                 q->inDim(), q->scheme);
        }
        // The pruned float values are quantized now; the other parts
        // share the codes.
        pruned.erase(q->source);
        for (float factor : factors)
          found->second.smoothing.push_back(1.0f / factor);
        // int8-static's scale of the smoothed input, where the model has
        // that part.
        if (!factors.empty() && partOf(QuantizedPart::InputScale)) {
          float largest = 0.0f;
          for (size_t j = 0; j < factors.size(); ++j)
            largest = std::max(largest, smoothing->inputAbsmax[j] / factors[j]);
          found->second.inputScale = {std::max(largest, 1e-30f) / 127.0f};
        }
      }
      const QuantizedWeight &weight = found->second;
      const void *data =
          q->part == QuantizedPart::Codes        ? (const void *)weight.codes.data()
          : q->part == QuantizedPart::Scales     ? (const void *)weight.scales.data()
          : q->part == QuantizedPart::Smoothing  ? (const void *)weight.smoothing.data()
          : q->part == QuantizedPart::InputScale ? (const void *)weight.inputScale.data()
                                                 : (const void *)weight.zeroPoints.data();
      tensors.push_back({name.str(), {param.dtype, param.shape, data}});
      continue;
    }
    if (param.pruned) {
      llvm::Expected<const std::vector<float> *> values = prunedValues(index);
      if (!values)
        return values.takeError();
      const std::vector<float> &v = **values;
      storage.emplace_back(param.bytes);
      size_t width = rt::dtypeSize(param.dtype);
      int64_t rows = param.shape[0], cols = param.shape[1];
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j)
          // Back to the stored layout ([in, out] when transposed).
          storeFloat(param.dtype,
                     v[param.pruned->transposed ? j * rows + i : i * cols + j],
                     storage.back().data() + (i * cols + j) * width);
      pruned.erase(name.str());
      tensors.push_back(
          {name.str(), {param.dtype, param.shape, storage.back().data()}});
      continue;
    }
    if (plan && plan->storedAsPacked.count(plan->sources[index])) {
      // The same panels, if their padding past the weight's columns is
      // zero (a weight of more columns in as many panels is not).
      const rt::PackedLayout &packing = *param.packed;
      rt::TensorView view = plan->files.view(*plan->sources[index]);
      int64_t width = packing.width, out = packing.out();
      int64_t rows = packing.in() / packing.pairs, pairs = packing.pairs;
      size_t size = rt::dtypeSize(param.dtype);
      const auto *bytes = static_cast<const unsigned char *>(view.data);
      int64_t last = (out - 1) / width;
      for (int64_t k = 0; k < rows; ++k)
        for (int64_t j = out - last * width; j < width; ++j)
          for (int64_t g = 0; g < pairs; ++g)
            if (loadFloat(param.dtype,
                          bytes +
                              (((last * rows + k) * width + j) * pairs + g) *
                                  size) != 0.0)
              return error(plan->files.description() + ": tensor '" +
                           plan->sources[index]->name +
                           "' holds column panels of more than the " +
                           llvm::Twine(out) + " columns of '" + name +
                           "' (nonzero padding in its last panel)");
      tensors.push_back({name.str(), view});
      continue;
    }
    if (param.packedInFile()) {
      // The float weight as it is stored ([in, out] or [out, in]), in the
      // parameter's dtype, then its panels, as the runtime packs a weight
      // marked at_load.
      const rt::PackedLayout &packing = *param.packed;
      llvm::Expected<std::vector<float>> values = storedValues(
          param, name, packing.shape, plan ? plan->sources[index] : nullptr,
          plan ? &plan->files : nullptr, options.seed);
      if (!values)
        return values.takeError();
      size_t size = rt::dtypeSize(param.dtype);
      std::vector<unsigned char> weight(values->size() * size);
      for (size_t i = 0; i < values->size(); ++i)
        storeFloat(param.dtype, (*values)[i], weight.data() + i * size);
      storage.emplace_back(param.bytes);
      packing.pack(weight.data(), storage.back().data());
      tensors.push_back(
          {name.str(), {param.dtype, param.shape, storage.back().data()}});
      continue;
    }
    if (plan) {
      const rt::SafeTensorInfo &info = *plan->sources[index];
      rt::TensorView source = plan->files.view(info);
      if (info.dtype == param.dtype) {
        tensors.push_back({name.str(), source});
        continue;
      }
      storage.emplace_back(param.bytes);
      size_t count = param.bytes / rt::dtypeSize(param.dtype);
      const auto *in = static_cast<const unsigned char *>(source.data);
      for (size_t i = 0; i < count; ++i)
        storeFloat(param.dtype,
                   loadFloat(info.dtype, in + i * rt::dtypeSize(info.dtype)),
                   storage.back().data() + i * rt::dtypeSize(param.dtype));
      tensors.push_back(
          {name.str(), {param.dtype, param.shape, storage.back().data()}});
      continue;
    }
    // Initialized below, on all cores.
    storage.emplace_back(param.bytes);
    initialized.push_back({index, storage.size() - 1});
    tensors.push_back(
        {name.str(), {param.dtype, param.shape, storage.back().data()}});
  }
  // Each parameter draws from a stream of its own (seeded by its name), so
  // they are initialized in parallel with the same values as one by one
  // (gpt2-small's 124M values took 10 s on one core).
  std::vector<std::string> failures(initialized.size());
  llvm::parallelFor(0, initialized.size(), [&](size_t i) {
    const ParameterInfo &param = params[initialized[i].first];
    if (llvm::Error err =
            initialize(param, options.seed, storage[initialized[i].second],
                       param.op.getSymName(), param.dtype))
      failures[i] = llvm::toString(std::move(err));
  });
  for (const std::string &failure : failures)
    if (!failure.empty())
      return error(failure);
  rt::Status status = rt::writeSafeTensors(path.str(), tensors,
                                           {{"format", "pt"}});
  if (!status)
    return error(status.message());
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Directory handling
//===----------------------------------------------------------------------===//

/// Replaces `target` by the complete directory `staged`.
/// "1.5 GB", "768.0 GB", "12 MB": sizes for messages.
std::string formatBytes(uint64_t bytes) {
  const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1000 && unit < 6) {
    value /= 1000;
    ++unit;
  }
  return unit == 0 ? std::to_string(bytes) + " B"
                   : llvm::formatv("{0:f1} {1}", value, units[unit]).str();
}

/// The machine's physical memory (0 when it cannot be told).
uint64_t physicalMemoryBytes() {
  long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && pageSize > 0
             ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(pageSize)
             : 0;
}

llvm::Error publishDirectory(StringRef staged, StringRef target) {
  std::string old;
  if (llvm::sys::fs::exists(target)) {
    if (!llvm::sys::fs::is_directory(target))
      return error("'" + target + "' exists and is not a directory");
    old = (target + ".old." + std::to_string(::getpid())).str();
    if (std::error_code ec = llvm::sys::fs::rename(target, old))
      return error("cannot move the previous '" + target +
                   "' aside: " + ec.message());
  }
  if (std::error_code ec = llvm::sys::fs::rename(staged, target))
    return error("cannot rename '" + staged + "' to '" + target +
                 "': " + ec.message());
  if (!old.empty())
    llvm::sys::fs::remove_directories(old);
  return llvm::Error::success();
}
} // namespace


llvm::Error mlir::kiln::compileArtifact(ModuleOp module,
                                        const CompileOptions &options,
                                        StringRef outputDir) {
  if (!options.target)
    return error("internal error: compileArtifact needs a target backend");
  const TargetBackend &target = *options.target;
  std::optional<rt::TargetKind> targetKind =
      rt::parseTargetName(target.name().str());
  if (!targetKind)
    return error("target '" + target.name() + "' is not one the runtime "
                 "loads (it runs: " + rt::supportedTargetNames() + ")");
  auto log = [&](const llvm::Twine &message) {
    if (options.verbose)
      llvm::errs() << "kiln-compile: " << message << "\n";
  };
  TimingScope noTiming;
  TimingScope &timing = options.timing ? *options.timing : noTiming;

  // The target's own layout of the weights, before the parameter table is
  // read from the module.
  llvm::Expected<std::string> packedWeights = target.prepare(module, log);
  if (!packedWeights)
    return packedWeights.takeError();

  // What the runtime needs, read from the kiln module.
  std::vector<ParameterInfo> params;
  size_t offset = 0;
  uint64_t stateBytes = 0;
  for (auto param : module.getOps<ParameterOp>()) {
    ParameterInfo info;
    info.op = param;
    auto dtype = dtypeOf(param.getTensorType().getElementType());
    if (!dtype)
      return error("parameter '" + param.getSymName() +
                   "' has an element type artifacts cannot store yet");
    info.dtype = *dtype;
    info.shape.assign(param.getTensorType().getShape().begin(),
                      param.getTensorType().getShape().end());
    // Sizes from a config or hand-written IR: checked before anything is
    // allocated for them.
    std::optional<uint64_t> bytes = rt::checkedByteSize(info.shape, info.dtype);
    if (!bytes || *bytes > static_cast<uint64_t>(INT64_MAX) - offset -
                               stateBytes)
      return error("parameter '" + param.getSymName() + "' of shape " +
                   rt::formatShape(info.shape) +
                   " is too large: its size does not fit in 64 bits");
    info.bytes = *bytes;
    if (auto from = param->getAttrOfType<DictionaryAttr>(attrs::kQuantizedFrom)) {
      auto q = WeightQuantization::fromAttr(from);
      if (!q)
        return error("parameter '" + param.getSymName() +
                     "': " + llvm::toString(q.takeError()));
      SmallVector<int64_t, 2> expected = q->partShape();
      rt::DType expectedType = q->isFloatPart() ? rt::DType::F32
                               : q->scheme.fp8  ? rt::DType::F8E4M3
                                                : rt::DType::I8;
      if (ArrayRef<int64_t>(info.shape) != ArrayRef<int64_t>(expected) ||
          info.dtype != expectedType)
        return error("parameter '" + param.getSymName() + "' holds the " +
                     stringifyQuantizedPart(q->part) + " of '" + q->source +
                     "' (" + q->scheme.name() + "), which are " +
                     rt::dtypeName(expectedType) + " " +
                     rt::formatShape({expected.begin(), expected.end()}) +
                     ", but it is " + rt::dtypeName(info.dtype) + " " +
                     rt::formatShape(info.shape));
      info.quantized = std::move(*q);
    } else if (param->hasAttr(attrs::kQuantizedFrom)) {
      return error("parameter '" + param.getSymName() + "': " +
                   attrs::kQuantizedFrom + " must be a dictionary");
    }
    if (auto from =
            param->getAttrOfType<DictionaryAttr>(attrs::kCompressedFrom)) {
      auto c = WeightCompression::fromAttr(from);
      if (!c)
        return error("parameter '" + param.getSymName() +
                     "': " + llvm::toString(c.takeError()));
      SmallVector<int64_t, 2> partShape = c->partShape();
      std::vector<int64_t> expected(partShape.begin(), partShape.end());
      rt::DType expectedType = rt::DType::F32;
      if (c->part == CompressedPart::Positions)
        expectedType = rt::DType::I8;
      else if (c->part == CompressedPart::Offsets)
        expectedType = rt::DType::I32;
      else if (c->part == CompressedPart::Indices)
        expectedType = c->wideIndices() ? rt::DType::I32 : rt::DType::I16;
      if (info.shape != expected || info.dtype != expectedType ||
          !param->hasAttr(attrs::kPruned))
        return error("parameter '" + param.getSymName() + "' holds the " +
                     stringifyCompressedPart(c->part) + " of the " +
                     (c->format == CompressedFormat::CSR ? "CSR" : "2:4") +
                     " '" + c->source + "', which is " +
                     rt::dtypeName(expectedType) + " " +
                     rt::formatShape(expected) + " and pruned, but it is " +
                     rt::dtypeName(info.dtype) + " " +
                     rt::formatShape(info.shape));
      info.compressed = std::move(*c);
    }
    if (auto attr = param->getAttrOfType<DictionaryAttr>(attrs::kPackedFrom)) {
      auto shape = dyn_cast_or_null<DenseI64ArrayAttr>(attr.get("shape"));
      auto inOut = dyn_cast_or_null<BoolAttr>(attr.get("in_out"));
      auto width = dyn_cast_or_null<IntegerAttr>(attr.get("width"));
      auto pairs = dyn_cast_or_null<IntegerAttr>(attr.get("pairs"));
      Attribute atLoad = attr.get("at_load");
      rt::PackedLayout packing;
      if (shape && inOut && width && pairs &&
          (!atLoad || isa<BoolAttr>(atLoad))) {
        packing.shape.assign(shape.asArrayRef().begin(),
                             shape.asArrayRef().end());
        packing.inOut = inOut.getValue();
        packing.width = width.getInt();
        packing.pairs = pairs.getInt();
        packing.atLoad = atLoad && cast<BoolAttr>(atLoad).getValue();
      }
      if (packing.shape.size() != 2 || packing.shape[0] < 1 ||
          packing.shape[1] < 1 || packing.width < 1 ||
          packing.shape[0] > (int64_t(1) << 40) ||
          packing.shape[1] > (int64_t(1) << 40) ||
          packing.width > (int64_t(1) << 20) ||
          (packing.pairs != 1 && packing.pairs != 2) ||
          packing.in() % packing.pairs != 0)
        return error("parameter '" + param.getSymName() +
                     "': " + attrs::kPackedFrom +
                     " must be {shape = [2 positive sizes], in_out = bool, "
                     "pairs = 1 or 2 (dividing the input size), width = "
                     "positive integer[, at_load = bool]}");
      if (info.dtype != packing.dtype() || info.shape != packing.panelShape() ||
          info.quantized || info.compressed || param->hasAttr(attrs::kPruned))
        return error(
            "parameter '" + param.getSymName() + "' holds the " +
            "column panels of a " + rt::formatShape(packing.shape) +
            " weight, which are " + rt::dtypeName(packing.dtype()) + " " +
            rt::formatShape(packing.panelShape()) + ", but it is " +
            rt::dtypeName(info.dtype) + " " + rt::formatShape(info.shape) +
            (info.quantized || info.compressed || param->hasAttr(attrs::kPruned)
                 ? " (and quantized, compressed or pruned)"
                 : ""));
      if (packing.atLoad) {
        // The weights file holds the weight as a checkpoint does.
        info.shape = packing.shape;
        info.bytes = *rt::checkedByteSize(info.shape, info.dtype);
      }
      info.packed = std::move(packing);
    } else if (param->hasAttr(attrs::kPackedFrom)) {
      return error("parameter '" + param.getSymName() +
                   "': " + attrs::kPackedFrom + " must be a dictionary");
    }
    if (auto attr = param->getAttrOfType<DictionaryAttr>(attrs::kPruned)) {
      auto p = WeightPruning::fromAttr(attr);
      if (!p)
        return error("parameter '" + param.getSymName() +
                     "': " + llvm::toString(p.takeError()));
      if (!info.quantized && !info.compressed &&
          (info.shape.size() != 2 || !isFloat(info.dtype)))
        return error("parameter '" + param.getSymName() + "' is pruned (" +
                     attrs::kPruned + ") but is not a 2-D float weight");
      info.pruned = std::move(*p);
    } else if (param->hasAttr(attrs::kPruned)) {
      return error("parameter '" + param.getSymName() + "': " +
                   attrs::kPruned + " must be a dictionary");
    }
    info.state = param->hasAttr(attrs::kOptimizerState);
    if (info.state && param.getInit() != InitKind::zeros)
      return error("optimizer state '" + param.getSymName() +
                   "' must be 'init zeros'");
    if (!info.state) {
      info.offset = offset;
      offset += info.bytes;
    } else {
      stateBytes += info.bytes;
    }
    params.push_back(info);
  }
  // kiln-compile holds the weights in memory to initialize and write them,
  // and a training run holds the optimizer state too: refuse, with the
  // sizes, what this machine cannot hold rather than swap or be killed.
  if (uint64_t memory = physicalMemoryBytes();
      memory && offset + stateBytes > memory)
    return error("the parameters need " + formatBytes(offset + stateBytes) +
                 " (weights " + formatBytes(offset) + ", optimizer state " +
                 formatBytes(stateBytes) + "), more than this machine's " +
                 formatBytes(memory) + " of memory");
  auto describeStart = std::chrono::steady_clock::now();
  TimingScope describing = timing.nest("describe entry points and costs");
  auto entries = describeEntryPoints(module);
  if (!entries)
    return entries.takeError();
  describing.stop();
  log(llvm::formatv("described {0} entry point(s), with their costs, in "
                    "{1:f1} ms",
                    entries->size(),
                    std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - describeStart)
                        .count()));

  llvm::StringRef parent = llvm::sys::path::parent_path(outputDir);
  if (!parent.empty() && !llvm::sys::fs::is_directory(parent))
    return error("cannot write '" + outputDir + "': directory '" + parent +
                 "' does not exist");

  // Staging directory next to the output, so the final rename is atomic.
  llvm::SmallString<256> staged(outputDir);
  staged += ".tmp-%%%%%%";
  llvm::SmallString<256> stagedPath;
  llvm::sys::fs::createUniquePath(staged, stagedPath, /*MakeAbsolute=*/false);
  if (std::error_code ec = llvm::sys::fs::create_directories(stagedPath))
    return error("cannot create '" + stagedPath + "': " + ec.message());
  llvm::scope_exit cleanup(
      [&] { llvm::sys::fs::remove_directories(stagedPath); });
  auto inStaged = [&](StringRef name) {
    llvm::SmallString<256> path(stagedPath);
    llvm::sys::path::append(path, name);
    return std::string(path);
  };

  // Weights are independent of code generation: write them meanwhile on a
  // second thread (initializing GPT-2 small's 124M values takes seconds).
  std::optional<WeightPlan> plan;
  if (options.weightsPath) {
    auto planned = planWeights(params, *options.weightsPath);
    if (!planned)
      return planned.takeError();
    plan.emplace(std::move(*planned));
    std::string how;
    if (!plan->renaming.empty())
      how += "; " + plan->renaming;
    if (!plan->castFrom.empty()) {
      how += "; cast to the parameters' dtype from";
      for (const std::string &dtype : plan->castFrom)
        how += " " + dtype;
    }
    log("copying weights from " + plan->files.description() + how);
    // A training checkpoint's optimizer state (`<param>/adam_m`, ...: no
    // state-dict name has a '/') is expected to go unused: said, not
    // warned about.
    std::vector<std::string> unused;
    size_t optimizerState = 0;
    for (const std::string &name : plan->unused)
      if (llvm::StringRef(name).contains('/'))
        ++optimizerState;
      else
        unused.push_back(name);
    if (optimizerState)
      log("ignoring " + llvm::Twine(optimizerState) +
          " optimizer-state tensor(s) of a training checkpoint");
    if (!unused.empty()) {
      std::string list;
      for (size_t i = 0; i < unused.size() && i < 5; ++i)
        list += (i ? ", '" : "'") + unused[i] + "'";
      if (unused.size() > 5)
        list += " and " + std::to_string(unused.size() - 5) + " more";
      llvm::WithColor::warning(llvm::errs(), "kiln-compile")
          << plan->files.description() << " has " << unused.size()
          << " tensor(s) the model does not use, ignored: " << list << "\n";
    }
  } else {
    log("initializing weights (seed " + llvm::Twine(options.seed) + ")");
  }
  std::optional<std::string> weightsError;
  std::string weightsPath = inStaged(KILN_WEIGHTS_FILE);
  std::thread weightsWriter([&] {
    if (llvm::Error err = writeWeights(params, options,
                                       plan ? &*plan : nullptr, weightsPath))
      weightsError = llvm::toString(std::move(err));
  });
  // Every return below must join the writer first.
  llvm::scope_exit joinWriter([&] {
    if (weightsWriter.joinable())
      weightsWriter.join();
  });

  // Lower a clone to the LLVM dialect.
  OwningOpRef<ModuleOp> lowered = module.clone();
  {
    TimingScope lowering = timing.nest("lower to the LLVM dialect");
    if (llvm::Error err = target.lower(*lowered, options.keep, log, lowering))
      return err;
  }

  // Each entry point's parameters, in argument order, from the C
  // interfaces' kiln.parameter tags.
  for (rt::EntryPointSpec &entry : *entries) {
    auto iface =
        lowered->lookupSymbol<LLVM::LLVMFuncOp>("_mlir_ciface_" + entry.name);
    if (!iface)
      return error("entry point '" + entry.name + "' has no C interface "
                   "after lowering");
    for (unsigned i = 0; i < iface.getNumArguments(); ++i)
      if (auto tag = iface.getArgAttrOfType<StringAttr>(i, attrs::kParameter))
        entry.parameters.push_back(tag.str());
  }

  log("generating " +
      llvm::Twine(*targetKind == rt::TargetKind::CPU ? "" : "host ") +
      "code for cpu '" + target.host().cpu + "'");
  CPUTargetInfo targetInfo;
  if (auto machine = createCPUTargetMachine(target.host(), &targetInfo);
      !machine)
    return machine.takeError();
  rt::Manifest manifest;
  manifest.target = *targetKind;
  for (const ParameterInfo &param : params) {
    rt::ParameterSpec spec;
    spec.name = param.op.getSymName().str();
    spec.dtype = param.dtype;
    // (The parameter the module reads: panels, for a weight the runtime
    // packs when it loads it.)
    spec.shape = param.packed ? param.packed->panelShape() : param.shape;
    spec.trainable = param.op.getTrainable();
    spec.state = param.state;
    if (!param.state) {
      spec.offset = param.offset;
      spec.size = param.bytes;
    }
    rt::InitSpec init;
    init.kind = stringifyInitKind(param.op.getInit()).str();
    if (auto std = param.op.getStd())
      init.std = std->convertToDouble();
    if (auto low = param.op.getLow())
      init.low = low->convertToDouble();
    if (auto high = param.op.getHigh())
      init.high = high->convertToDouble();
    spec.init = std::move(init);
    spec.packed = param.packed;
    manifest.parameters.push_back(std::move(spec));
  }
  manifest.entryPoints = std::move(*entries);
  for (const auto &[key, value] : target.manifestOptions(targetInfo))
    manifest.targetOptions[key] = rt::OptionValue::string(value);
  if (!packedWeights->empty())
    manifest.targetOptions["packed_weights"] =
        rt::OptionValue::string(*packedWeights);
  manifest.source = {{"path", rt::OptionValue::string(options.sourcePath)},
                     {"sha256", rt::OptionValue::string(options.sourceSHA256)}};
  json::Object compileOptions = options.recordedOptions;
  compileOptions["seed"] = static_cast<int64_t>(options.seed);
  if (auto model = module->getAttrOfType<DictionaryAttr>(attrs::kModel))
    compileOptions["model"] = attributeJson(model);
  // (A caller that compiles from derived weights records their origin.)
  if (!compileOptions.get("weights"))
    compileOptions["weights"] = options.weightsPath
                                    ? json::Value(*options.weightsPath)
                                    : json::Value(nullptr);
  manifest.compileOptions = optionMap(compileOptions);
  rt::Expected<std::string> serialized = manifest.serialize();
  if (!serialized)
    return error("internal error: " + serialized.message());
  const std::string &text = *serialized;
  // module.so carries what it was compiled against (moduleSignature of
  // this very manifest, as the runtime parses it), and the runtime refuses
  // a manifest that does not match it.
  auto parsed = rt::Manifest::parse(text, "the manifest being written");
  if (!parsed)
    return error("internal error: the manifest does not parse: " +
                 parsed.message());
  std::string signature = rt::moduleSignature(*parsed);
  {
    // A NUL-terminated string, as the runtime reads it.
    OpBuilder builder = OpBuilder::atBlockEnd(lowered->getBody());
    auto bytes =
        LLVM::LLVMArrayType::get(builder.getI8Type(), signature.size() + 1);
    LLVM::GlobalOp::create(builder, lowered->getLoc(), bytes,
                           /*isConstant=*/true, LLVM::Linkage::External,
                           KILN_MODULE_SIGNATURE_SYMBOL,
                           builder.getStringAttr(llvm::StringRef(
                               signature.c_str(), signature.size() + 1)));
  }
  auto objects = emitObjectFiles(*lowered, target.host(), inStaged("module"),
                                 /*jobs=*/0, &timing);
  if (!objects)
    return objects.takeError();
  log("linking module.so");
  TimingScope linking = timing.nest("link module.so");
  if (llvm::Error err = target.package(*objects, stagedPath))
    return err;
  linking.stop();
  for (const std::string &object : *objects)
    llvm::sys::fs::remove(object);

  // The weights were written by the thread started above; this is only
  // the time left waiting for it.
  TimingScope waiting = timing.nest("wait for the weights writer");
  weightsWriter.join();
  waiting.stop();
  if (weightsError)
    return error(*weightsError);

  rt::Status status = rt::writeFileAtomically(
      inStaged(KILN_MANIFEST_FILE), [&](int fd) {
        return rt::writeAll(fd, text.data(), text.size(), KILN_MANIFEST_FILE);
      });
  if (!status)
    return error(status.message());

  if (llvm::Error err = publishDirectory(stagedPath, outputDir))
    return err;
  cleanup.release();
  log("wrote " + outputDir);
  return llvm::Error::success();
}
