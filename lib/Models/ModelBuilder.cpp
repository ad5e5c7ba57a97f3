//===- ModelBuilder.cpp - Model configs to kiln IR ------------------------===//
//
// The entry points (`buildModel`, `loadModelConfig`), the dispatch on
// `model_type`, and the config reader and graph builder the families share.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Runtime/File.h"
#include "kiln/Runtime/JsonLimits.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

//===----------------------------------------------------------------------===//
// ConfigReader
//===----------------------------------------------------------------------===//

static StringRef jsonKindName(const llvm::json::Value &value) {
  switch (value.kind()) {
  case llvm::json::Value::Null:
    return "null";
  case llvm::json::Value::Boolean:
    return "a boolean";
  case llvm::json::Value::Number:
    return "a number";
  case llvm::json::Value::String:
    return "a string";
  case llvm::json::Value::Array:
    return "an array";
  case llvm::json::Value::Object:
    return "an object";
  }
  return "a value";
}

void ConfigReader::fail(const llvm::Twine &message) {
  if (!error)
    error = (family + " config: " + message).str();
}

void ConfigReader::failType(StringRef key, StringRef expected,
                            const llvm::json::Value &found) {
  fail("key '" + key + "' must be " + expected + ", found " +
       jsonKindName(found));
}

const llvm::json::Value *ConfigReader::find(StringRef key) {
  readKeys.insert(key);
  return config.get(key);
}

bool ConfigReader::isSet(StringRef key) { return getValue(key) != nullptr; }

const llvm::json::Value *ConfigReader::getValue(StringRef key) {
  const llvm::json::Value *value = find(key);
  return value && value->kind() != llvm::json::Value::Null ? value : nullptr;
}

const llvm::json::Value *ConfigReader::lookup(StringRef key, bool required) {
  const llvm::json::Value *value = find(key);
  if (!value && required)
    fail("missing required key '" + key + "'");
  return value;
}

int64_t ConfigReader::getInt(StringRef key, int64_t min) {
  return getBoundedInt(key, min, kMaxConfigSize);
}

int64_t ConfigReader::getLayerCount(StringRef key) {
  return getBoundedInt(key, 0, kMaxConfigLayers);
}

int64_t ConfigReader::getLayerCount(StringRef key, int64_t defaultValue) {
  if (!find(key) || find(key)->kind() == llvm::json::Value::Null)
    return defaultValue;
  return getLayerCount(key);
}

int64_t ConfigReader::getBoundedInt(StringRef key, int64_t min, int64_t max) {
  const llvm::json::Value *value = lookup(key, /*required=*/true);
  if (!value)
    return min;
  std::optional<int64_t> number = value->getAsInteger();
  if (!number) {
    failType(key, "an integer", *value);
    return min;
  }
  if (*number < min) {
    fail(llvm::formatv("key '{0}' must be at least {1}, found {2}", key, min,
                       *number));
    return min;
  }
  if (*number > max) {
    fail(llvm::formatv("key '{0}' is {1}, more than Kiln's limit of {2}", key,
                       *number, max));
    return min;
  }
  return *number;
}

int64_t ConfigReader::getInt(StringRef key, int64_t defaultValue, int64_t min) {
  if (!find(key) || find(key)->kind() == llvm::json::Value::Null)
    return defaultValue;
  return getInt(key, min);
}

double ConfigReader::getPositiveNumber(StringRef key) {
  const llvm::json::Value *value = lookup(key, /*required=*/true);
  if (!value)
    return 1.0;
  std::optional<double> number = value->getAsNumber();
  if (!number) {
    failType(key, "a number", *value);
    return 1.0;
  }
  if (!(*number > 0)) {
    fail(llvm::formatv("key '{0}' must be positive, found {1}", key, *number));
    return 1.0;
  }
  return *number;
}

double ConfigReader::getPositiveNumber(StringRef key, double defaultValue) {
  if (!find(key) || find(key)->kind() == llvm::json::Value::Null)
    return defaultValue;
  return getPositiveNumber(key);
}

bool ConfigReader::getBool(StringRef key, bool defaultValue) {
  const llvm::json::Value *value = find(key);
  if (!value || value->kind() == llvm::json::Value::Null)
    return defaultValue;
  std::optional<bool> flag = value->getAsBoolean();
  if (!flag) {
    failType(key, "a boolean", *value);
    return defaultValue;
  }
  return *flag;
}

std::vector<std::vector<int64_t>>
ConfigReader::getPrunedUnits(StringRef key, int64_t layers, int64_t units,
                             StringRef what) {
  std::vector<std::vector<int64_t>> pruned(layers);
  const llvm::json::Value *value = find(key);
  if (!value || value->kind() == llvm::json::Value::Null)
    return pruned;
  const llvm::json::Object *map = value->getAsObject();
  if (!map) {
    failType(key, "an object from layer to a list of " + what.str(), *value);
    return pruned;
  }
  for (const auto &[name, list] : *map) {
    int64_t layer;
    if (StringRef(name).getAsInteger(10, layer) || layer < 0 ||
        layer >= layers) {
      fail("key '" + key + "': '" + StringRef(name) +
           "' is not a layer index in [0, " + llvm::Twine(layers) + ")");
      return pruned;
    }
    const llvm::json::Array *indices = list.getAsArray();
    if (!indices) {
      failType(key, "an object from layer to a list of " + what.str(), list);
      return pruned;
    }
    std::vector<int64_t> &removed = pruned[layer];
    for (const llvm::json::Value &index : *indices) {
      std::optional<int64_t> unit = index.getAsInteger();
      if (!unit || *unit < 0 || *unit >= units ||
          llvm::is_contained(removed, *unit)) {
        fail("key '" + key + "', layer " + llvm::Twine(layer) +
             ": each entry must be a distinct index of its " + what +
             " in [0, " + llvm::Twine(units) + ")");
        return pruned;
      }
      removed.push_back(*unit);
    }
    if (static_cast<int64_t>(removed.size()) == units) {
      fail("key '" + key + "' removes all " + llvm::Twine(units) + " " + what +
           " of layer " + llvm::Twine(layer) + ": a layer keeps at least one");
      return pruned;
    }
    llvm::sort(removed);
  }
  return pruned;
}

std::string ConfigReader::getString(StringRef key, StringRef defaultValue) {
  const llvm::json::Value *value = find(key);
  if (!value || value->kind() == llvm::json::Value::Null)
    return defaultValue.str();
  std::optional<StringRef> text = value->getAsString();
  if (!text) {
    failType(key, "a string", *value);
    return defaultValue.str();
  }
  return text->str();
}

Activation ConfigReader::getActivation(StringRef key,
                                       StringRef defaultValue) {
  std::string name = getString(key, defaultValue);
  std::optional<Activation> act = parseActivation(name);
  if (!act) {
    fail("key '" + key + "' is '" + name + "'; Kiln builds " +
         getActivationNames());
    return Activation::Linear;
  }
  return *act;
}

std::array<int64_t, 2> ConfigReader::getSizePair(StringRef key,
                                                 int64_t defaultValue) {
  const llvm::json::Value *value = getValue(key);
  if (!value)
    return {defaultValue, defaultValue};
  auto check = [&](const llvm::json::Value &v) -> int64_t {
    std::optional<int64_t> size = v.getAsInteger();
    if (!size || *size < 1 || *size > kMaxConfigSize) {
      fail(llvm::formatv("key '{0}' must be a size in [1, {1}] or a pair "
                         "[height, width] of them",
                         key, kMaxConfigSize)
               .str());
      return 1;
    }
    return *size;
  };
  if (const llvm::json::Array *pair = value->getAsArray()) {
    if (pair->size() != 2) {
      fail("key '" + key + "' must be one size or a pair [height, width], "
           "found an array of " + llvm::Twine(pair->size()));
      return {1, 1};
    }
    return {check((*pair)[0]), check((*pair)[1])};
  }
  int64_t size = check(*value);
  return {size, size};
}

void ConfigReader::requirePatchFits(std::array<int64_t, 2> patch,
                                    std::array<int64_t, 2> image) {
  if (failed() || (patch[0] <= image[0] && patch[1] <= image[1]))
    return;
  fail(llvm::formatv("key 'patch_size' ({0}x{1}) is larger than "
                     "'image_size' ({2}x{3})",
                     patch[0], patch[1], image[0], image[1])
           .str());
}

void ConfigReader::requireDivisible(StringRef dividendKey, int64_t dividend,
                                    StringRef divisorKey, int64_t divisor) {
  if (failed() || divisor <= 0 || dividend % divisor == 0)
    return;
  fail(llvm::formatv("key '{0}' ({1}) must be a multiple of '{2}' ({3})",
                     dividendKey, dividend, divisorKey, divisor));
}

llvm::Error ConfigReader::takeError() {
  if (!error) {
    // A key the table calls honoured that the builder never looked at would
    // be silently ignored: a bug in the builder or the table.
    std::vector<ConfigKeyInfo> keys = getConfigKeys(family);
    for (const auto &entry : config) {
      const ConfigKeyInfo *key = findConfigKey(keys, entry.first);
      if (key && key->use == ConfigKeyUse::Honoured &&
          entry.first != "model_type" && !readKeys.contains(entry.first))
        fail("internal error: key '" + StringRef(entry.first) +
             "' is listed as honoured but the builder does not read it");
    }
  }
  if (!error)
    return llvm::Error::success();
  std::string message = std::move(*error);
  error.reset();
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

StringRef mlir::kiln::models::getActivationNames() {
  return "gelu, gelu_python, gelu_new, gelu_pytorch_tanh, gelu_fast, "
         "gelu_accurate, quick_gelu, relu, relu2, silu, swish, sigmoid, tanh "
         "and linear";
}

std::optional<Activation> mlir::kiln::models::parseActivation(StringRef name) {
  return llvm::StringSwitch<std::optional<Activation>>(name)
      .Cases({"gelu", "gelu_python"}, Activation::GeluErf)
      .Cases({"gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate"},
             Activation::GeluTanh)
      .Case("quick_gelu", Activation::QuickGelu)
      .Case("relu", Activation::Relu)
      .Case("relu2", Activation::Relu2)
      .Cases({"silu", "swish"}, Activation::Silu)
      .Case("sigmoid", Activation::Sigmoid)
      .Case("tanh", Activation::Tanh)
      .Case("linear", Activation::Linear)
      .Default(std::nullopt);
}

llvm::Expected<InputShape>
mlir::kiln::models::resolveInputShape(const BuildOptions &options,
                                      StringRef family, StringRef maxKey,
                                      int64_t maxPositions) {
  InputShape shape{dynamicIfUnset(options.batch), dynamicIfUnset(options.seq)};
  if (!ShapedType::isDynamic(shape.seq) && shape.seq > maxPositions)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        llvm::formatv("{0}: sequence length {1} exceeds '{2}' ({3})", family,
                      shape.seq, maxKey, maxPositions));
  return shape;
}

//===----------------------------------------------------------------------===//
// GraphBuilder
//===----------------------------------------------------------------------===//

GraphBuilder::GraphBuilder(MLIRContext &context, StringRef modelName,
                           ComputeType compute)
    : context(context), builder(&context),
      loc(NameLoc::get(StringAttr::get(&context, modelName))),
      f32(Float32Type::get(&context)),
      computeType(getComputeElementType(context, compute)) {
  module = ModuleOp::create(loc);
  builder.setInsertionPointToEnd(module->getBody());
}

func::FuncOp GraphBuilder::beginFunction(StringRef name, TypeRange inputs,
                                         TypeRange results) {
  builder.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(builder, loc, name,
                                   builder.getFunctionType(inputs, results));
  Block *entry = func.addEntryBlock();
  builder.setInsertionPointToStart(entry);
  return func;
}

void GraphBuilder::setModelInfo(ArrayRef<NamedAttribute> info) {
  (*module)->setAttr(attrs::kModel, builder.getDictionaryAttr(info));
}

void GraphBuilder::nameEntryPoint(func::FuncOp func,
                                  ArrayRef<StringRef> inputs,
                                  ArrayRef<StringRef> results) {
  assert(inputs.size() == func.getNumArguments() &&
         results.size() == func.getNumResults() && "one name per value");
  for (auto [index, name] : llvm::enumerate(inputs))
    func.setArgAttr(index, attrs::kName, builder.getStringAttr(name));
  for (auto [index, name] : llvm::enumerate(results))
    func.setResultAttr(index, attrs::kName, builder.getStringAttr(name));
}

Value CausalLMStep::attend(int64_t layer, Value query, Value key, Value value,
                           FloatAttr scale) {
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  switch (kind) {
  case Kind::Forward:
    return AttentionOp::create(b, loc, query, key, value, mask,
                               /*key_lengths=*/Value(), /*causal=*/true, scale);
  case Kind::Prefill: {
    Value &keys = caches[2 * layer], &values = caches[2 * layer + 1];
    keys = CacheWriteOp::create(b, loc, keys, /*positions=*/Value(), key);
    values = CacheWriteOp::create(b, loc, values, /*positions=*/Value(), value);
    return AttentionOp::create(b, loc, query, key, value, /*mask=*/Value(),
                               /*key_lengths=*/Value(), /*causal=*/true, scale);
  }
  case Kind::DecodeStep: {
    Value &keys = caches[2 * layer], &values = caches[2 * layer + 1];
    keys = CacheWriteOp::create(b, loc, keys, cachePositions, key);
    values = CacheWriteOp::create(b, loc, values, cachePositions, value);
    // One query per row: its own slot is the last it sees.
    return AttentionOp::create(b, loc, query, keys, values, /*mask=*/Value(),
                               keyLengths, /*causal=*/false, scale);
  }
  }
  llvm_unreachable("unknown entry point kind");
}

llvm::Error GraphBuilder::buildCausalLM(const BuildOptions &options,
                                        const CausalLMSpec &spec,
                                        CausalLMBody body, CausalLMHead head) {
  Type i64 = builder.getI64Type();
  auto idsType = RankedTensorType::get({spec.batch, spec.seq}, i64);

  // forward(input_ids[, attention_mask][, position_ids]) -> logits.
  {
    SmallVector<Type> inputs{idsType};
    SmallVector<StringRef> names{"input_ids"};
    if (options.attentionMask) {
      inputs.push_back(idsType);
      names.push_back("attention_mask");
    }
    if (options.positionIds) {
      inputs.push_back(idsType);
      names.push_back("position_ids");
    }
    auto logitsType =
        RankedTensorType::get({spec.batch, spec.seq, spec.vocab}, f32);
    func::FuncOp forward = beginFunction("forward", inputs, {logitsType});
    nameEntryPoint(forward, names, {"logits"});
    limitSequence(forward, spec.maxPositions);
    CausalLMStep step(*this, CausalLMStep::Kind::Forward);
    step.ids = forward.getArgument(0);
    unsigned next = 1;
    if (options.attentionMask)
      step.mask = PaddingMaskOp::create(
          builder, loc,
          RankedTensorType::get({spec.batch, 1, 1, spec.seq}, computeType),
          forward.getArgument(next++));
    if (options.positionIds)
      step.positions = forward.getArgument(next++);
    endFunction(head(body(step)));
  }
  if (options.scoreHead) {
    // score(input_ids [B, S], lengths [B]) -> scores [B].
    auto rowsType = RankedTensorType::get({spec.batch}, i64);
    func::FuncOp score = beginFunction(
        "score", {idsType, rowsType},
        {RankedTensorType::get({spec.batch}, builder.getF32Type())});
    nameEntryPoint(score, {"input_ids", "lengths"}, {"scores"});
    limitSequence(score, spec.maxPositions);
    CausalLMStep step(*this, CausalLMStep::Kind::Forward);
    step.ids = score.getArgument(0);
    Value hidden = lastToken(body(step), step.ids, score.getArgument(1),
                             spec.batch);
    int64_t width = shapeOf(hidden).back();
    Value weight = normalParam("score.weight", {1, width}, 0.02);
    Value scores = MatmulOp::create(builder, loc, hidden, weight,
                                    /*transpose_lhs=*/false,
                                    /*transpose_rhs=*/true);
    endFunction(reshape(scores, {spec.batch}));
  }
  if (options.valueHead) {
    // values(input_ids [B, S]) -> values [B, S].
    func::FuncOp values = beginFunction(
        "values", {idsType},
        {RankedTensorType::get({spec.batch, spec.seq}, builder.getF32Type())});
    nameEntryPoint(values, {"input_ids"}, {"values"});
    limitSequence(values, spec.maxPositions);
    CausalLMStep step(*this, CausalLMStep::Kind::Forward);
    step.ids = values.getArgument(0);
    Value hidden = body(step);
    int64_t width = shapeOf(hidden).back();
    Value weight = normalParam("value_head.weight", {1, width}, 0.02);
    Value bias = zerosParam("value_head.bias", {1});
    Value projected = MatmulOp::create(builder, loc, hidden, weight,
                                       /*transpose_lhs=*/false,
                                       /*transpose_rhs=*/true);
    Value shifted = AddOp::create(builder, loc, projected, bias);
    endFunction(reshape(shifted, {spec.batch, spec.seq}));
  }
  if (options.hiddenProjection < 0 ||
      (options.hiddenProjection > 0 && !options.hiddenStates))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "a hidden-state projection needs the hidden_states entry point and a "
        "positive width");
  if (options.hiddenStates) {
    // hidden_states(input_ids [B, S]) -> hidden [B, S, E or P]; the width
    // is the body's (or the projection's), set once the body is built.
    func::FuncOp states = beginFunction("hidden_states", {idsType}, {});
    CausalLMStep step(*this, CausalLMStep::Kind::Forward);
    step.ids = states.getArgument(0);
    Value hidden = body(step);
    if (options.hiddenProjection) {
      Value weight = normalParam("distill_projection.weight",
                                 {options.hiddenProjection,
                                  shapeOf(hidden).back()},
                                 0.02);
      hidden = MatmulOp::create(builder, loc, hidden, weight,
                                /*transpose_lhs=*/false,
                                /*transpose_rhs=*/true);
    }
    states.setFunctionType(builder.getFunctionType(
        {idsType}, {RankedTensorType::get(shapeOf(hidden),
                                          builder.getF32Type())}));
    nameEntryPoint(states, {"input_ids"}, {"hidden"});
    limitSequence(states, spec.maxPositions);
    endFunction(hidden);
  }
  if (options.kvCache == 0)
    return llvm::Error::success();
  int64_t slots = options.kvCache == BuildOptions::kKVCacheMax
                      ? spec.maxPositions
                      : options.kvCache;

  auto fail = [](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   message.str());
  };
  if (slots < 1 || slots > spec.maxPositions)
    return fail(llvm::formatv("a KV cache of {0} slots is longer than the "
                              "model's {1} positions",
                              slots, spec.maxPositions)
                    .str());
  if (options.attentionMask || options.positionIds)
    return fail("the KV-cache entry points take the prompt right-padded, "
                "with per-row lengths: build them without attention_mask "
                "and position_ids inputs");
  if (!ShapedType::isDynamic(spec.seq) && spec.seq > slots)
    return fail(llvm::formatv("the sequence length {0} is longer than the "
                              "KV cache's {1} slots",
                              spec.seq, slots)
                    .str());
  // A layer's cache holds the heads it has (fewer where pruned).
  auto cacheTypeOf = [&](int64_t layer) {
    int64_t heads = spec.layerKVHeads.empty() ? spec.kvHeads
                                              : spec.layerKVHeads[layer];
    return RankedTensorType::get({spec.batch, heads, slots, spec.headDim},
                                 computeType);
  };
  auto rowsType = RankedTensorType::get({spec.batch}, i64);
  auto logitsType = RankedTensorType::get({spec.batch, spec.vocab}, f32);
  std::vector<std::string> cacheNames;
  for (int64_t layer = 0; layer < spec.layers; ++layer)
    for (const char *kind : {"key", "value"})
      cacheNames.push_back(llvm::formatv("cache.{0}.{1}", layer, kind).str());

  auto build = [&](CausalLMStep::Kind kind) {
    bool prefill = kind == CausalLMStep::Kind::Prefill;
    SmallVector<Type> inputs{
        prefill ? Type(idsType)
                : Type(RankedTensorType::get({spec.batch, 1}, i64)),
        rowsType};
    SmallVector<StringRef> names{"input_ids", prefill ? "lengths" : "positions"};
    for (auto [index, name] : llvm::enumerate(cacheNames)) {
      inputs.push_back(cacheTypeOf(static_cast<int64_t>(index) / 2));
      names.push_back(name);
    }
    func::FuncOp func = beginFunction(prefill ? "prefill" : "decode_step",
                                      inputs, {logitsType});
    nameEntryPoint(func, names, {"logits"});
    limitSequence(func, slots);
    CausalLMStep step(*this, kind);
    step.ids = func.getArgument(0);
    Value rows = func.getArgument(1);
    for (unsigned i = 2; i < func.getNumArguments(); ++i) {
      func.setArgAttr(i, attrs::kInPlace, builder.getUnitAttr());
      step.cacheArgs.push_back(func.getArgument(i));
      step.caches.push_back(func.getArgument(i));
    }
    Value hidden;
    if (prefill) {
      hidden = lastToken(body(step), step.ids, rows, spec.batch);
    } else {
      step.cachePositions = rows;
      step.positions = reshape(rows, {spec.batch, 1});
      step.keyLengths = AddOp::create(builder, loc, rows, intScalar(1));
      hidden = body(step);
    }
    Value logits = head(hidden);
    logits = reshape(logits, {spec.batch, spec.vocab});
    for (auto [value, arg] : llvm::zip(step.caches, step.cacheArgs))
      StoreParamOp::create(builder, loc, value, arg);
    endFunction(logits);
  };
  build(CausalLMStep::Kind::Prefill);
  build(CausalLMStep::Kind::DecodeStep);
  return llvm::Error::success();
}

Value GraphBuilder::lastToken(Value all, Value ids, Value lengths,
                              int64_t batch) {
  // The hidden state of each row's last token, lengths[b] - 1 clamped into
  // [0, S - 1] (as gather clamps: a bad length picks an end of the row,
  // never nothing), picked by a one-hot sum over the sequence.
  Value positions = this->positions(ids, /*dim=*/1);
  Value last = SubOp::create(builder, loc, lengths, intScalar(1));
  Value lastPosition = ReduceOp::create(builder, loc, ReduceKind::max,
                                        positions, ArrayRef<int64_t>{0},
                                        /*keepdim=*/false);
  last = MinOp::create(builder, loc,
                       MaxOp::create(builder, loc, last, intScalar(0)),
                       lastPosition);
  return tokenAt(all, last, batch, /*keepdim=*/true);
}

Value GraphBuilder::causalAttention(Value query, Value key, Value value,
                                    FloatAttr scale) {
  return AttentionOp::create(builder, loc, query, key, value, /*mask=*/Value(),
                             /*key_lengths=*/Value(), /*causal=*/true, scale);
}

llvm::Expected<llvm::json::Object>
mlir::kiln::models::nestedConfig(ConfigReader &reader, StringRef key,
                                 StringRef expectedType,
                                 StringRef defaultType) {
  std::string family = reader.getFamily();
  auto fail = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   family + " config: key '" + key + "' " +
                                       message);
  };
  llvm::json::Object merged;
  for (std::string name : {key.str(), key.str() + "_dict"}) {
    const llvm::json::Value *value = reader.getValue(name);
    if (!value)
      continue;
    const llvm::json::Object *object = value->getAsObject();
    if (!object)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     family + " config: key '" + name +
                                         "' must be an object");
    for (const auto &entry : *object)
      merged[entry.first] = entry.second;
  }
  // A tower of another family would be built as this one all the same.
  const llvm::json::Value *type = merged.get("model_type");
  if (type && type->getAsString() != expectedType)
    return fail("has a model_type other than '" + expectedType + "'");
  if (!type && defaultType.empty())
    return fail("has no model_type (transformers needs one): give it "
                "\"model_type\": \"" +
                expectedType + "\"");
  if (!type && defaultType != expectedType)
    return fail("has no model_type, which transformers reads as '" +
                defaultType + "'; Kiln builds " + family + " with a " +
                expectedType + " model there: give it \"model_type\": \"" +
                expectedType + "\"");
  return merged;
}

llvm::Error mlir::kiln::models::refuseCausalLMInputs(const BuildOptions &options,
                                                     StringRef family) {
  if (options.kvCache != 0)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        family + ": a KV cache is for the causal LMs (gpt2, llama)");
  if (options.scoreHead || options.valueHead || options.hiddenStates)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        family + ": a score or value head and hidden_states are for the "
                 "causal LMs (gpt2, llama)");
  if (!options.attentionMask && !options.positionIds)
    return llvm::Error::success();
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      family + ": an optional attention_mask or position_ids input is for "
               "the causal LMs (gpt2, llama)");
}

void GraphBuilder::limitSequence(func::FuncOp func, int64_t maxSeq) {
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    auto type = dyn_cast<RankedTensorType>(func.getArgument(i).getType());
    if (!type || type.getRank() != 2 || !type.isDynamicDim(1))
      continue;
    func.setArgAttr(i, attrs::kMaxShape,
                    builder.getDenseI64ArrayAttr({-1, maxSeq}));
  }
}

void GraphBuilder::endFunction(ValueRange results) {
  SmallVector<Value> outputs;
  for (Value result : results)
    outputs.push_back(toF32(result));
  func::ReturnOp::create(builder, loc, outputs);
}

static Value castElements(OpBuilder &builder, Location loc, Value x,
                          Type elementType) {
  auto type = cast<RankedTensorType>(x.getType());
  if (!isa<FloatType>(type.getElementType()) ||
      type.getElementType() == elementType)
    return x;
  return CastOp::create(builder, loc, type.clone(elementType), x);
}

Value GraphBuilder::toCompute(Value x) {
  return castElements(builder, loc, x, computeType);
}

Value GraphBuilder::activation(Value x, Activation act) {
  switch (act) {
  case Activation::GeluErf:
    return GeluOp::create(builder, loc, x, GeluApproximation::erf);
  case Activation::GeluTanh:
    return GeluOp::create(builder, loc, x, GeluApproximation::tanh);
  case Activation::QuickGelu: {
    Type element = cast<RankedTensorType>(x.getType()).getElementType();
    Value scaled = MulOp::create(builder, loc, x, scalar(1.702, element));
    return MulOp::create(builder, loc, x, SigmoidOp::create(builder, loc, scaled));
  }
  case Activation::Relu:
    return ReluOp::create(builder, loc, x);
  case Activation::Relu2: {
    Value r = ReluOp::create(builder, loc, x);
    return MulOp::create(builder, loc, r, r);
  }
  case Activation::Silu:
    return SiluOp::create(builder, loc, x);
  case Activation::Sigmoid:
    return SigmoidOp::create(builder, loc, x);
  case Activation::Tanh:
    return TanhOp::create(builder, loc, x);
  case Activation::Linear:
    return x;
  }
  llvm_unreachable("unknown activation");
}

Value GraphBuilder::toF32(Value x) { return castElements(builder, loc, x, f32); }

Value GraphBuilder::declare(StringRef name, ArrayRef<int64_t> shape,
                            InitKind init, std::optional<double> std,
                            std::optional<std::pair<double, double>> range) {
  auto type = RankedTensorType::get(shape, f32);
  // A parameter every entry point reads is declared by the first.
  if (auto existing = dyn_cast_or_null<ParameterOp>(
          SymbolTable::lookupSymbolIn(*module, name))) {
    assert(existing.getTensorType() == type &&
           "parameter declared twice with different shapes");
    return toCompute(ReadParamOp::create(builder, loc, type, name));
  }
  {
    // Parameters go before the first function, in declaration order.
    OpBuilder::InsertionGuard guard(builder);
    auto funcs = module->getOps<func::FuncOp>();
    if (funcs.empty())
      builder.setInsertionPointToEnd(module->getBody());
    else
      builder.setInsertionPoint(*funcs.begin());
    FloatAttr stdAttr = std ? builder.getF64FloatAttr(*std) : FloatAttr();
    FloatAttr low = range ? builder.getF64FloatAttr(range->first) : FloatAttr();
    FloatAttr high =
        range ? builder.getF64FloatAttr(range->second) : FloatAttr();
    ParameterOp::create(builder, loc, name, type, init, stdAttr, low, high,
                        /*trainable=*/true);
  }
  return toCompute(ReadParamOp::create(builder, loc, type, name));
}

Value GraphBuilder::normalParam(StringRef name, ArrayRef<int64_t> shape,
                                double std) {
  return declare(name, shape, InitKind::normal, std);
}

Value GraphBuilder::zerosParam(StringRef name, ArrayRef<int64_t> shape) {
  return declare(name, shape, InitKind::zeros, std::nullopt);
}

Value GraphBuilder::onesParam(StringRef name, ArrayRef<int64_t> shape) {
  return declare(name, shape, InitKind::ones, std::nullopt);
}

Value GraphBuilder::uniformParam(StringRef name, ArrayRef<int64_t> shape,
                                 double bound) {
  return declare(name, shape, InitKind::uniform, std::nullopt,
                 std::make_pair(-bound, bound));
}

Value GraphBuilder::constantParam(StringRef name, ArrayRef<int64_t> shape,
                                  double value) {
  return declare(name, shape, InitKind::uniform, std::nullopt,
                 std::make_pair(value, value));
}

Value GraphBuilder::linear(Value x, StringRef prefix, int64_t in, int64_t out,
                           bool bias, double std) {
  Value weight = normalParam((prefix + ".weight").str(), {out, in}, std);
  Value b = bias ? zerosParam((prefix + ".bias").str(), {out}) : Value();
  return LinearOp::create(builder, loc, x, weight, b, /*weight_in_out=*/false);
}

Value GraphBuilder::conv1d(Value x, StringRef prefix, int64_t in, int64_t out,
                           double std) {
  Value weight = normalParam((prefix + ".weight").str(), {in, out}, std);
  Value b = zerosParam((prefix + ".bias").str(), {out});
  return LinearOp::create(builder, loc, x, weight, b, /*weight_in_out=*/true);
}

Value GraphBuilder::layerNorm(Value x, StringRef prefix, int64_t dim,
                              double eps) {
  Value weight = onesParam((prefix + ".weight").str(), {dim});
  Value bias = zerosParam((prefix + ".bias").str(), {dim});
  return LayerNormOp::create(builder, loc, x, weight, bias,
                             builder.getF64FloatAttr(eps));
}

Value GraphBuilder::reshape(Value x, ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(x.getType());
  return ReshapeOp::create(
      builder, loc, RankedTensorType::get(shape, type.getElementType()), x);
}

Value GraphBuilder::transpose(Value x, ArrayRef<int64_t> permutation) {
  return TransposeOp::create(builder, loc, x, permutation);
}

Value GraphBuilder::splitHeads(Value x, int64_t heads, int64_t headDim) {
  ArrayRef<int64_t> shape = shapeOf(x);
  Value split = reshape(x, {shape[0], shape[1], heads, headDim});
  return transpose(split, {0, 2, 1, 3});
}

Value GraphBuilder::mergeHeads(Value x) {
  Value swapped = transpose(x, {0, 2, 1, 3});
  ArrayRef<int64_t> shape = shapeOf(swapped);
  return reshape(swapped, {shape[0], shape[1], shape[2] * shape[3]});
}

Value GraphBuilder::positions(Value like, int64_t dim) {
  int64_t size = shapeOf(like)[dim];
  auto type = RankedTensorType::get({size}, builder.getI64Type());
  SmallVector<Value> dynamicSizes;
  if (ShapedType::isDynamic(size))
    dynamicSizes.push_back(tensor::DimOp::create(builder, loc, like, dim));
  return IotaOp::create(builder, loc, type, dynamicSizes, /*dim=*/0);
}

Value GraphBuilder::intScalar(int64_t value) {
  auto type = RankedTensorType::get({}, builder.getI64Type());
  return ConstantOp::create(
      builder, loc, type,
      DenseElementsAttr::get(type, builder.getI64IntegerAttr(value)));
}

Value GraphBuilder::scalar(double value, Type elementType) {
  auto type = RankedTensorType::get({}, elementType ? elementType : f32);
  return ConstantOp::create(
      builder, loc, type,
      DenseElementsAttr::get(
          type, Attribute(FloatAttr::get(type.getElementType(), value))));
}
//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

std::optional<ComputeType> mlir::kiln::parseComputeType(StringRef name) {
  return llvm::StringSwitch<std::optional<ComputeType>>(name)
      .Case("f32", ComputeType::f32)
      .Case("bf16", ComputeType::bf16)
      .Case("f16", ComputeType::f16)
      .Default(std::nullopt);
}

StringRef mlir::kiln::getComputeTypeName(ComputeType type) {
  switch (type) {
  case ComputeType::f32:
    return "f32";
  case ComputeType::bf16:
    return "bf16";
  case ComputeType::f16:
    return "f16";
  }
  llvm_unreachable("unknown compute type");
}

FloatType mlir::kiln::getComputeElementType(MLIRContext &context,
                                            ComputeType type) {
  switch (type) {
  case ComputeType::f32:
    return Float32Type::get(&context);
  case ComputeType::bf16:
    return BFloat16Type::get(&context);
  case ComputeType::f16:
    return Float16Type::get(&context);
  }
  llvm_unreachable("unknown compute type");
}

namespace {
using FamilyBuilder = llvm::Expected<OwningOpRef<ModuleOp>> (*)(
    MLIRContext &, const llvm::json::Object &, const BuildOptions &);

struct Family {
  StringRef modelType;
  FamilyBuilder build;
};

const Family kFamilies[] = {
    {"gpt2", buildGPT2},
    {"llama", buildLlama},
    {"bert", buildBert},
    {"transformer", buildTransformer},
    {"marian", buildMarian},
    {"vit", buildViT},
    {"clip", buildCLIP},
    {"clip_text_model", buildCLIPTextModel},
    {"clip_vision_model", buildCLIPVisionModel},
    {"rnn", buildRNN},
    {"cnn", buildCNN},
    {"llava", buildLlava},
    {"vision-encoder-decoder", buildVisionEncoderDecoder},
};
} // namespace

void BuildOptions::defaultWarningHandler(const std::string &message) {
  llvm::WithColor::warning(llvm::errs()) << message << "\n";
}

std::vector<StringRef> mlir::kiln::getSupportedModelTypes() {
  std::vector<StringRef> types;
  for (const Family &family : kFamilies)
    types.push_back(family.modelType);
  return types;
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::buildModel(MLIRContext &context, const llvm::json::Object &config,
                       const BuildOptions &options) {
  std::string supported = llvm::join(getSupportedModelTypes(), ", ");
  const llvm::json::Value *typeValue = config.get("model_type");
  if (!typeValue)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "config: missing required key 'model_type' (one of: " + supported +
            ")");
  std::optional<StringRef> modelType = typeValue->getAsString();
  if (!modelType)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "config: key 'model_type' must be a string");
  if ((options.batch < 0 && !ShapedType::isDynamic(options.batch)) ||
      (options.seq < 0 && !ShapedType::isDynamic(options.seq)))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "batch and sequence sizes must be positive "
                                   "(or 0 / unset for dynamic)");

  const Family *family = nullptr;
  for (const Family &candidate : kFamilies)
    if (candidate.modelType == *modelType)
      family = &candidate;
  if (!family)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "config: unknown model_type '" + *modelType +
                                       "' (supported: " + supported + ")");

  context.getOrLoadDialect<KilnDialect>();
  context.getOrLoadDialect<func::FuncDialect>();
  context.getOrLoadDialect<tensor::TensorDialect>();
  context.getOrLoadDialect<arith::ArithDialect>();

  auto resolved = resolveConfigAliases(config, family->modelType);
  if (!resolved)
    return resolved.takeError();
  if (llvm::Error error =
          checkConfigKeys(*resolved, family->modelType, options))
    return std::move(error);
  auto module = family->build(context, *resolved, options);
  if (!module)
    return module.takeError();

  // A builder bug must surface as an error, not as a broken module.
  std::string diagnostics;
  {
    llvm::raw_string_ostream os(diagnostics);
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      os << diag.str() << "\n";
      return success();
    });
    if (failed(verify(**module)))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "internal error: the " + *modelType +
                                         " module does not verify:\n" +
                                         diagnostics);
  }
  return module;
}

llvm::Expected<llvm::json::Object> mlir::kiln::loadModelConfig(StringRef path) {
  // A regular file only (a FIFO would block), nested no deeper than any
  // config needs (llvm::json parses recursively).
  ::kiln::runtime::Expected<std::string> text =
      ::kiln::runtime::readFile(path.str(), "config");
  if (!text)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   text.message());
  if (::kiln::runtime::Status s = ::kiln::runtime::checkJsonNesting(
          *text, "config '" + path.str() + "'");
      !s)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   s.message());
  auto value = llvm::json::parse(*text);
  if (!value)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "config '" + path + "' is not valid JSON: " +
                                       llvm::toString(value.takeError()));
  llvm::json::Object *object = value->getAsObject();
  if (!object)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "config '" + path +
                                       "' must be a JSON object");
  return std::move(*object);
}
