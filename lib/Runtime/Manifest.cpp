//===- Manifest.cpp - Parsing and validating manifest.json ----------------===//
//
// nlohmann::json runs in its non-throwing mode here (the project builds
// without exceptions), so every value's type is checked before get<>().
// Unknown keys are ignored so later compilers can add information; missing
// or ill-typed required keys are errors naming the key.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Manifest.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/JsonLimits.h"

#include "kiln/Runtime/File.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace kiln::runtime {

using nlohmann::json;

bool TensorSpec::isStatic() const {
  for (int64_t d : shape)
    if (d == kDynamicDim)
      return false;
  return true;
}

std::string formatSpecShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      text += ", ";
    text += shape[i] == kDynamicDim ? "?" : std::to_string(shape[i]);
  }
  return text + "]";
}

const TensorSpec *EntryPointSpec::findInput(const std::string &name) const {
  for (const TensorSpec &spec : inputs)
    if (spec.name == name)
      return &spec;
  return nullptr;
}

const TensorSpec *EntryPointSpec::findOutput(const std::string &name) const {
  for (const TensorSpec &spec : outputs)
    if (spec.name == name)
      return &spec;
  return nullptr;
}

bool EntryPointSpec::hasStaticInputs() const {
  for (const TensorSpec &spec : inputs)
    if (!spec.isStatic())
      return false;
  return true;
}

double evaluateCostTerms(const std::vector<CostTerm> &terms,
                         const std::vector<double> &sizes) {
  double total = 0;
  for (const CostTerm &term : terms) {
    double value = term.coefficient;
    for (size_t i = 0; i < sizes.size(); ++i)
      for (unsigned e = 0; e < term.exponents[i]; ++e)
        value *= sizes[i];
    total += value;
  }
  return total;
}

std::optional<Cost> EntryPointSpec::costFor(
    const std::vector<std::vector<int64_t>> &inputShapes) const {
  if (inputShapes.size() != inputs.size())
    return std::nullopt;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputShapes[i].size() != inputs[i].rank())
      return std::nullopt;
  if (hasStaticInputs()) {
    if (!flops)
      return std::nullopt;
    return Cost{*flops, bytes.value_or(0)};
  }
  if (!costModel)
    return std::nullopt;
  std::vector<double> sizes;
  for (const CostSymbol &symbol : costModel->symbols) {
    std::optional<int64_t> size;
    for (const auto &[input, axis] : symbol.dims) {
      int64_t dim = inputShapes[input][axis];
      if (dim < 0 || (size && *size != dim))
        return std::nullopt;
      size = dim;
    }
    sizes.push_back(static_cast<double>(*size));
  }
  return Cost{evaluateCostTerms(costModel->flops, sizes),
              evaluateCostTerms(costModel->bytes, sizes)};
}

std::vector<int64_t> PackedLayout::panelShape() const {
  if (shape.size() != 2 || width < 1 || pairs < 1)
    return {};
  // (Sizes from a file: no out + width - 1, which could overflow.)
  int64_t panels = out() / width + (out() % width != 0);
  if (pairs == 1)
    return {panels, in(), width};
  return {panels, in() / pairs, width, pairs};
}

namespace {
/// PackedLayout::pack for elements of `Size` bytes (the copies then are
/// single moves: a 154 MB [out, in] table packs in a fraction of a second).
template <size_t Size>
void packPanels(const PackedLayout &layout, const unsigned char *from,
                unsigned char *to) {
  int64_t n = layout.out(), k = layout.in(), pairs = layout.pairs;
  int64_t width = layout.width, rows = k / pairs;
  int64_t count = n / width + (n % width != 0);
  std::memset(to, 0, static_cast<size_t>(count * rows * width * pairs) * Size);
  // Element (j, i) of the weight (output column j, input row i) goes to
  // [j / width, i / pairs, j % width, i % pairs].
  for (int64_t p = 0; p < count; ++p) {
    int64_t columns = std::min(width, n - p * width);
    unsigned char *panel = to + p * rows * width * pairs * Size;
    if (layout.inOut && pairs == 1) {
      // Each input row's slice of the panel's columns is contiguous.
      for (int64_t i = 0; i < k; ++i)
        std::memcpy(panel + i * width * Size, from + (i * n + p * width) * Size,
                    columns * Size);
      continue;
    }
    // In blocks of input rows, so that an [out, in] weight's rows are read
    // a cache line at a time.
    constexpr int64_t kBlock = 64;
    for (int64_t i0 = 0; i0 < k; i0 += kBlock)
      for (int64_t c = 0; c < columns; ++c) {
        int64_t j = p * width + c;
        for (int64_t i = i0; i < std::min(k, i0 + kBlock); ++i)
          std::memcpy(
              panel + ((i / pairs * width + c) * pairs + i % pairs) * Size,
              from + (layout.inOut ? i * n + j : j * k + i) * Size, Size);
      }
  }
}
} // namespace

void PackedLayout::pack(const void *weight, void *panels) const {
  const auto *from = static_cast<const unsigned char *>(weight);
  auto *to = static_cast<unsigned char *>(panels);
  if (dtypeSize(dtype()) == 4)
    packPanels<4>(*this, from, to);
  else
    packPanels<2>(*this, from, to);
}

namespace {
struct TargetEntry {
  TargetKind kind;
  const char *name;
};
constexpr TargetEntry kTargets[] = {{TargetKind::CPU, "cpu"},
                                    {TargetKind::CUDA, "cuda"}};
} // namespace

const char *targetName(TargetKind target) {
  for (const TargetEntry &t : kTargets)
    if (t.kind == target)
      return t.name;
  return "?";
}

std::optional<TargetKind> parseTargetName(const std::string &name) {
  for (const TargetEntry &t : kTargets)
    if (name == t.name)
      return t.kind;
  return std::nullopt;
}

std::string supportedTargetNames() {
  std::string names;
  for (const TargetEntry &t : kTargets)
    names += (names.empty() ? "" : ", ") + std::string(t.name);
  return names;
}

const ParameterSpec *Manifest::findParameter(const std::string &name) const {
  for (const ParameterSpec &spec : parameters)
    if (spec.name == name)
      return &spec;
  return nullptr;
}

const EntryPointSpec *
Manifest::findEntryPoint(const std::string &name) const {
  for (const EntryPointSpec &spec : entryPoints)
    if (spec.name == name)
      return &spec;
  return nullptr;
}

std::string Manifest::entryPointNames() const {
  std::string names;
  for (const EntryPointSpec &spec : entryPoints)
    names += (names.empty() ? "" : ", ") + spec.name;
  return names.empty() ? "none" : names;
}

namespace {

/// Builds messages "'<path>' is not a valid artifact manifest: <where>: ...".
class Parser {
public:
  explicit Parser(const std::string &path) : path_(path) {}

  Status error(const std::string &where, const std::string &what) const {
    return Status::error("'" + path_ + "' is not a valid artifact manifest: " +
                         (where.empty() ? "" : where + ": ") + what);
  }

  Status string(const json &object, const char *key, const std::string &where,
                std::string &out, bool required = true) const {
    auto it = object.find(key);
    if (it == object.end()) {
      if (required)
        return error(where, std::string("missing \"") + key + "\"");
      return Status::ok();
    }
    if (!it->is_string())
      return error(where, std::string("\"") + key + "\" is not a string");
    out = it->get<std::string>();
    return Status::ok();
  }

  Status dtype(const json &object, const std::string &where,
               DType &out) const {
    std::string name;
    if (Status s = string(object, "dtype", where, name); !s)
      return s;
    std::optional<DType> dtype = parseDTypeName(name);
    if (!dtype)
      return error(where, "unknown dtype '" + name + "'");
    out = *dtype;
    return Status::ok();
  }

  Status shape(const json &object, const std::string &where, bool allowDynamic,
               std::vector<int64_t> &out) const {
    auto it = object.find("shape");
    if (it == object.end())
      return error(where, "missing \"shape\"");
    if (!it->is_array())
      return error(where, "\"shape\" is not an array");
    for (const json &dim : *it) {
      if (!dim.is_number_integer())
        return error(where, "shape " + it->dump() + " has a non-integer dim");
      int64_t d = dim.get<int64_t>();
      if (d < 0 && !(allowDynamic && d == kDynamicDim))
        return error(where, "shape " + it->dump() +
                                (allowDynamic ? " has a dim below -1"
                                              : " is not static"));
      out.push_back(d);
    }
    // Sizes derive from the shape later: it must fit (even as f64 elements).
    if (!checkedByteSize(out, DType::F64, /*dynamicAsOne=*/true))
      return error(where, "shape " + it->dump() + " overflows");
    return Status::ok();
  }

  Status tensorSpecs(const json &entry, const char *key,
                     const std::string &where,
                     std::vector<TensorSpec> &out) const {
    auto it = entry.find(key);
    if (it == entry.end())
      return error(where, std::string("missing \"") + key + "\"");
    if (!it->is_array())
      return error(where, std::string("\"") + key + "\" is not an array");
    std::set<std::string> seen;
    for (const json &item : *it) {
      std::string itemWhere = where + " " + key + "[" +
                              std::to_string(out.size()) + "]";
      if (!item.is_object())
        return error(itemWhere, "not an object");
      TensorSpec spec;
      if (Status s = string(item, "name", itemWhere, spec.name); !s)
        return s;
      std::string singular(key, std::strlen(key) - 1); // "input", "output"
      itemWhere = where + " " + singular + " '" + spec.name + "'";
      if (!seen.insert(spec.name).second)
        return error(itemWhere, "the name appears twice");
      if (Status s = dtype(item, itemWhere, spec.dtype); !s)
        return s;
      if (Status s = shape(item, itemWhere, /*allowDynamic=*/true, spec.shape);
          !s)
        return s;
      if (auto max = item.find("max_shape"); max != item.end()) {
        if (!max->is_array() || max->size() != spec.shape.size())
          return error(itemWhere, "\"max_shape\" is not an array of rank " +
                                      std::to_string(spec.shape.size()));
        for (const json &dim : *max) {
          if (!dim.is_number_integer() || dim.get<int64_t>() < -1 ||
              dim.get<int64_t>() == 0)
            return error(itemWhere, "\"max_shape\" " + max->dump() +
                                        " has a dim that is not -1 or >= 1");
          spec.maxShape.push_back(dim.get<int64_t>());
        }
      }
      if (auto inPlace = item.find("in_place"); inPlace != item.end()) {
        if (singular != "input")
          return error(itemWhere, "\"in_place\" is for inputs only");
        if (!inPlace->is_boolean())
          return error(itemWhere, "\"in_place\" is not a boolean");
        spec.inPlace = inPlace->get<bool>();
      }
      out.push_back(std::move(spec));
    }
    return Status::ok();
  }

  /// An informational object, one level deep.
  Status options(const json &root, const char *key, OptionMap &out) const {
    auto it = root.find(key);
    if (it == root.end())
      return Status::ok();
    if (!it->is_object())
      return error("", std::string("\"") + key + "\" is not an object");
    for (auto &[name, value] : it->items())
      out[name] = value.is_string() ? OptionValue::string(value.get<std::string>())
                                    : OptionValue::json(value.dump());
    return Status::ok();
  }

  /// A parameter's "init" object.
  Status init(const json &value, const std::string &where,
              InitSpec &out) const {
    if (!value.is_object())
      return error(where, "\"init\" is not an object");
    if (Status s = string(value, "kind", where + ": \"init\"", out.kind); !s)
      return s;
    for (const char *key : {"std", "low", "high"}) {
      auto it = value.find(key);
      if (it == value.end())
        continue;
      if (!it->is_number() || !std::isfinite(it->get<double>()))
        return error(where, std::string("\"init\": \"") + key +
                                "\" is not a finite number");
      std::string k(key);
      (k == "std" ? out.std : k == "low" ? out.low : out.high) =
          it->get<double>();
    }
    return Status::ok();
  }

  /// A parameter's "packed" object, checked against its stored shape.
  Status packed(const json &value, const std::string &where,
                const ParameterSpec &spec, PackedLayout &out) const {
    if (!value.is_object())
      return error(where, "\"packed\" is not an object");
    if (Status s = shape(value, where + ": \"packed\"", /*allowDynamic=*/false,
                         out.shape);
        !s)
      return s;
    auto inOut = value.find("in_out");
    auto width = value.find("width");
    auto pairs = value.find("pairs");
    auto atLoad = value.find("at_load");
    if (inOut == value.end() || !inOut->is_boolean() || width == value.end() ||
        !width->is_number_integer() || pairs == value.end() ||
        !pairs->is_number_integer() ||
        (atLoad != value.end() && !atLoad->is_boolean()))
      return error(where, "\"packed\" needs \"in_out\" (a boolean), "
                          "\"width\" and \"pairs\" (integers), and "
                          "\"at_load\", if present, is a boolean");
    out.inOut = inOut->get<bool>();
    out.width = width->get<int64_t>();
    out.pairs = pairs->get<int64_t>();
    out.atLoad = atLoad != value.end() && atLoad->get<bool>();
    if (out.shape.size() != 2 || out.width < 1 || out.width > (1 << 20) ||
        (out.pairs != 1 && out.pairs != 2) || spec.dtype != out.dtype() ||
        out.in() % out.pairs != 0 || out.panelShape() != spec.shape)
      return error(where, "\"packed\" does not describe its shape " +
                              formatSpecShape(spec.shape) +
                              " (a 2-D weight in panels of 1 to 2^20 "
                              "columns, f32 or, in pairs of rows, bf16)");
    return Status::ok();
  }

  /// A file name inside the artifact directory.
  Status fileName(const json &root, const char *key, std::string &out) const {
    if (Status s = string(root, key, "", out, /*required=*/false); !s)
      return s;
    if (out.empty() || out.find('/') != std::string::npos || out == "." ||
        out == "..")
      return error("", std::string("\"") + key + "\" must name a file in the "
                                                 "artifact directory, not '" +
                           out + "'");
    return Status::ok();
  }

  /// "cost_model" of `entry` (whose inputs are parsed): every symbol names
  /// dynamic dims of its inputs, every term has one exponent per symbol.
  Status costModel(const json &value, const std::string &entryWhere,
                   const EntryPointSpec &entry, CostModel &out) const {
    std::string where = entryWhere + ": \"cost_model\"";
    if (!value.is_object())
      return error(where, "not an object");
    auto symbols = value.find("symbols");
    if (symbols == value.end() || !symbols->is_array() || symbols->empty())
      return error(where, "\"symbols\" is missing or not a non-empty array");
    for (const json &item : *symbols) {
      std::string at =
          where + ": symbols[" + std::to_string(out.symbols.size()) + "]";
      if (!item.is_object())
        return error(at, "not an object");
      CostSymbol symbol;
      if (Status s = string(item, "name", at, symbol.name); !s)
        return s;
      auto dims = item.find("dims");
      if (dims == item.end() || !dims->is_array() || dims->empty())
        return error(at, "\"dims\" is missing or not a non-empty array");
      for (const json &dim : *dims) {
        std::string input;
        if (!dim.is_object())
          return error(at, "a dim is not an object");
        if (Status s = string(dim, "input", at, input); !s)
          return s;
        auto axis = dim.find("axis");
        if (axis == dim.end() || !axis->is_number_unsigned())
          return error(at, "a dim's \"axis\" is missing or not a "
                           "non-negative integer");
        const TensorSpec *spec = entry.findInput(input);
        if (!spec)
          return error(at, "input '" + input + "' is not an input of the "
                           "entry point");
        size_t index = static_cast<size_t>(spec - entry.inputs.data());
        uint64_t a = axis->get<uint64_t>();
        if (a >= spec->rank() || spec->shape[a] != kDynamicDim)
          return error(at, "dim " + std::to_string(a) + " of input '" +
                               input + "' is not a dynamic dim");
        symbol.dims.push_back({index, static_cast<size_t>(a)});
      }
      out.symbols.push_back(std::move(symbol));
    }
    for (const char *key : {"flops", "bytes"}) {
      std::string at = where + ": \"" + key + "\"";
      auto terms = value.find(key);
      if (terms == value.end() || !terms->is_array())
        return error(at, "missing or not an array");
      std::vector<CostTerm> &into =
          std::string(key) == "flops" ? out.flops : out.bytes;
      for (const json &term : *terms) {
        if (!term.is_array() || term.size() != 2 || !term[0].is_number() ||
            !term[1].is_array() || term[1].size() != out.symbols.size())
          return error(at, "a term is not [coefficient, [one exponent per "
                           "symbol]]");
        CostTerm parsed;
        parsed.coefficient = term[0].get<double>();
        if (!std::isfinite(parsed.coefficient))
          return error(at, "a coefficient is not finite");
        for (const json &exponent : term[1]) {
          if (!exponent.is_number_unsigned() ||
              exponent.get<uint64_t>() > 16)
            return error(at, "an exponent is not an integer in [0, 16]");
          parsed.exponents.push_back(
              static_cast<unsigned>(exponent.get<uint64_t>()));
        }
        into.push_back(std::move(parsed));
      }
    }
    return Status::ok();
  }

private:
  const std::string &path_;
};

} // namespace

Expected<Manifest> Manifest::parse(const std::string &text,
                                   const std::string &path) {
  Parser p(path);
  if (Status s = checkJsonNesting(text, "manifest '" + path + "'"); !s)
    return s;
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return p.error("", "it is not valid JSON");
  if (!root.is_object())
    return p.error("", "it is not a JSON object");

  Manifest manifest;
  std::string format;
  if (Status s = p.string(root, "format", "", format); !s)
    return s;
  if (format != KILN_ARTIFACT_FORMAT)
    return p.error("", "\"format\" is '" + format +
                           "', expected 'kiln-artifact'");
  auto version = root.find("format_version");
  if (version == root.end())
    return p.error("", "missing \"format_version\"");
  if (!version->is_number_integer())
    return p.error("", "\"format_version\" is not an integer");
  if (version->get<int64_t>() != kManifestFormatVersion)
    return Status::error("'" + path + "': artifact format version " +
                         std::to_string(version->get<int64_t>()) +
                         ", this runtime reads " +
                         std::to_string(kManifestFormatVersion) +
                         " (recompile the model with a matching kiln-compile)");
  manifest.formatVersion = kManifestFormatVersion;

  std::string target;
  if (Status s = p.string(root, "target", "", target); !s)
    return s;
  std::optional<TargetKind> kind = parseTargetName(target);
  if (!kind)
    return Status::error("'" + path + "': artifact target '" + target +
                         "' is not supported by this runtime (it runs: " +
                         supportedTargetNames() + ")");
  manifest.target = *kind;

  if (Status s = p.options(root, "target_options", manifest.targetOptions); !s)
    return s;
  if (Status s = p.options(root, "compile_options", manifest.compileOptions);
      !s)
    return s;
  if (Status s = p.options(root, "source", manifest.source); !s)
    return s;
  if (Status s = p.fileName(root, "module", manifest.module); !s)
    return s;
  if (Status s = p.fileName(root, "weights", manifest.weights); !s)
    return s;

  // Parameters.
  auto params = root.find("parameters");
  if (params != root.end()) {
    if (!params->is_array())
      return p.error("", "\"parameters\" is not an array");
    for (const json &item : *params) {
      std::string where =
          "parameters[" + std::to_string(manifest.parameters.size()) + "]";
      if (!item.is_object())
        return p.error(where, "not an object");
      ParameterSpec spec;
      if (Status s = p.string(item, "name", where, spec.name); !s)
        return s;
      where = "parameter '" + spec.name + "'";
      if (manifest.findParameter(spec.name))
        return p.error(where, "the name appears twice");
      if (Status s = p.dtype(item, where, spec.dtype); !s)
        return s;
      if (Status s = p.shape(item, where, /*allowDynamic=*/false, spec.shape);
          !s)
        return s;
      for (const char *key : {"offset", "size"}) {
        auto it = item.find(key);
        if (it == item.end())
          continue;
        if (!it->is_number_unsigned())
          return p.error(where, std::string("\"") + key +
                                    "\" is not a non-negative integer");
        (std::string(key) == "offset" ? spec.offset : spec.size) =
            it->get<uint64_t>();
      }
      if (auto it = item.find("trainable"); it != item.end()) {
        if (!it->is_boolean())
          return p.error(where, "\"trainable\" is not a boolean");
        spec.trainable = it->get<bool>();
      }
      if (auto it = item.find("state"); it != item.end()) {
        if (!it->is_boolean())
          return p.error(where, "\"state\" is not a boolean");
        spec.state = it->get<bool>();
      }
      if (auto it = item.find("init"); it != item.end()) {
        InitSpec init;
        if (Status s = p.init(*it, where, init); !s)
          return s;
        spec.init = std::move(init);
      }
      if (auto it = item.find("packed"); it != item.end()) {
        PackedLayout layout;
        if (Status s = p.packed(*it, where, spec, layout); !s)
          return s;
        spec.packed = std::move(layout);
      }
      manifest.parameters.push_back(std::move(spec));
    }
  }

  // Entry points.
  auto entries = root.find("entry_points");
  if (entries == root.end())
    return p.error("", "missing \"entry_points\"");
  if (!entries->is_array())
    return p.error("", "\"entry_points\" is not an array");
  for (const json &item : *entries) {
    std::string where =
        "entry_points[" + std::to_string(manifest.entryPoints.size()) + "]";
    if (!item.is_object())
      return p.error(where, "not an object");
    EntryPointSpec spec;
    if (Status s = p.string(item, "name", where, spec.name); !s)
      return s;
    where = "entry point '" + spec.name + "'";
    if (manifest.findEntryPoint(spec.name))
      return p.error(where, "the name appears twice");
    spec.symbol = KILN_ENTRY_PREFIX + spec.name;
    if (Status s = p.string(item, "symbol", where, spec.symbol,
                            /*required=*/false);
        !s)
      return s;
    if (Status s = p.tensorSpecs(item, "inputs", where, spec.inputs); !s)
      return s;
    if (Status s = p.tensorSpecs(item, "outputs", where, spec.outputs); !s)
      return s;
    if (auto it = item.find("parameters"); it != item.end()) {
      if (!it->is_array())
        return p.error(where, "\"parameters\" is not an array");
      for (const json &name : *it) {
        if (!name.is_string())
          return p.error(where, "\"parameters\" has a non-string name");
        std::string text = name.get<std::string>();
        if (!manifest.findParameter(text))
          return p.error(where, "it receives parameter '" + text +
                                    "', which is not in the parameter table");
        spec.parameters.push_back(std::move(text));
      }
    }
    if (auto it = item.find("writes_parameters"); it != item.end()) {
      if (!it->is_array())
        return p.error(where, "\"writes_parameters\" is not an array");
      for (const json &name : *it) {
        if (!name.is_string() ||
            std::find(spec.parameters.begin(), spec.parameters.end(),
                      name.get<std::string>()) == spec.parameters.end())
          return p.error(where, "\"writes_parameters\" names a parameter "
                                "it does not receive");
        spec.writesParameters.push_back(name.get<std::string>());
      }
    }
    if (auto it = item.find("cost"); it != item.end() && it->is_object()) {
      for (const char *key : {"flops", "bytes"}) {
        auto value = it->find(key);
        if (value != it->end() && value->is_number() &&
            value->get<double>() >= 0)
          (std::string(key) == "flops" ? spec.flops : spec.bytes) =
              value->get<double>();
      }
    }
    if (auto it = item.find("cost_model"); it != item.end()) {
      CostModel model;
      if (Status s = p.costModel(*it, where, spec, model); !s)
        return s;
      spec.costModel = std::move(model);
    }
    if (Status s = p.string(item, "cost_model_note", where,
                            spec.costModelNote, /*required=*/false);
        !s)
      return s;
    manifest.entryPoints.push_back(std::move(spec));
  }
  return manifest;
}

Expected<Manifest> Manifest::read(const std::string &path) {
  Expected<std::string> text = readFile(path);
  if (!text)
    return text.status();
  return parse(*text, path);
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

namespace {

Status writeError(const std::string &what) {
  return Status::error("cannot write the manifest: " + what);
}

json shapeJson(const std::vector<int64_t> &shape) {
  json out = json::array();
  for (int64_t dim : shape)
    out.push_back(dim);
  return out;
}

Status finite(double value, const std::string &what) {
  if (!std::isfinite(value))
    return writeError(what + " is not finite");
  return Status::ok();
}

Expected<json> optionsJson(const OptionMap &options, const char *key) {
  json out = json::object();
  for (const auto &[name, value] : options) {
    if (value.isString) {
      out[name] = value.text;
      continue;
    }
    json parsed = json::parse(value.text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded())
      return writeError(std::string(key) + "." + name + " is not JSON: " +
                        value.text);
    out[name] = std::move(parsed);
  }
  return out;
}

json tensorSpecJson(const TensorSpec &spec) {
  json out = {{"name", spec.name},
              {"dtype", dtypeName(spec.dtype)},
              {"shape", shapeJson(spec.shape)}};
  if (!spec.maxShape.empty())
    out["max_shape"] = shapeJson(spec.maxShape);
  if (spec.inPlace)
    out["in_place"] = true;
  return out;
}

Expected<json> costTermsJson(const std::vector<CostTerm> &terms,
                             size_t symbols, const std::string &where) {
  json out = json::array();
  for (const CostTerm &term : terms) {
    if (Status s = finite(term.coefficient, where + " coefficient"); !s)
      return s;
    if (term.exponents.size() != symbols)
      return writeError(where + ": a term has " +
                        std::to_string(term.exponents.size()) +
                        " exponents for " + std::to_string(symbols) +
                        " symbols");
    out.push_back(json::array({term.coefficient, term.exponents}));
  }
  return out;
}

Expected<json> costModelJson(const EntryPointSpec &entry) {
  const CostModel &model = *entry.costModel;
  std::string where = "entry point '" + entry.name + "': the cost model";
  json symbols = json::array();
  for (const CostSymbol &symbol : model.symbols) {
    json dims = json::array();
    for (const InputDim &dim : symbol.dims) {
      if (dim.input >= entry.inputs.size() ||
          dim.axis >= entry.inputs[dim.input].rank())
        return writeError(where + ": symbol '" + symbol.name +
                          "' names a dim the inputs do not have");
      dims.push_back({{"input", entry.inputs[dim.input].name},
                      {"axis", dim.axis}});
    }
    symbols.push_back({{"name", symbol.name}, {"dims", std::move(dims)}});
  }
  Expected<json> flops = costTermsJson(model.flops, model.symbols.size(), where);
  if (!flops)
    return flops.status();
  Expected<json> bytes = costTermsJson(model.bytes, model.symbols.size(), where);
  if (!bytes)
    return bytes.status();
  return json{{"symbols", std::move(symbols)},
              {"flops", std::move(*flops)},
              {"bytes", std::move(*bytes)}};
}

} // namespace

Expected<std::string> Manifest::serialize() const {
  json root = {{"format", KILN_ARTIFACT_FORMAT},
               {"format_version", formatVersion},
               {"target", targetName(target)},
               {"module", module},
               {"weights", weights}};
  for (auto [key, options] :
       {std::pair{"target_options", &targetOptions},
        std::pair{"compile_options", &compileOptions},
        std::pair{"source", &source}}) {
    Expected<json> value = optionsJson(*options, key);
    if (!value)
      return value.status();
    root[key] = std::move(*value);
  }

  json params = json::array();
  for (const ParameterSpec &p : parameters) {
    json entry = {{"name", p.name},
                  {"dtype", dtypeName(p.dtype)},
                  {"shape", shapeJson(p.shape)},
                  {"trainable", p.trainable}};
    if (p.state)
      entry["state"] = true;
    if (p.offset)
      entry["offset"] = *p.offset;
    if (p.size)
      entry["size"] = *p.size;
    if (p.init) {
      json init = {{"kind", p.init->kind}};
      for (auto [key, value] : {std::pair{"std", p.init->std},
                                std::pair{"low", p.init->low},
                                std::pair{"high", p.init->high}}) {
        if (!value)
          continue;
        if (Status s = finite(*value, "parameter '" + p.name + "' init " + key);
            !s)
          return s;
        init[key] = *value;
      }
      entry["init"] = std::move(init);
    }
    if (p.packed) {
      entry["packed"] = {{"shape", shapeJson(p.packed->shape)},
                         {"in_out", p.packed->inOut},
                         {"width", p.packed->width},
                         {"pairs", p.packed->pairs}};
      if (p.packed->atLoad)
        entry["packed"]["at_load"] = true;
    }
    params.push_back(std::move(entry));
  }
  root["parameters"] = std::move(params);

  json entries = json::array();
  for (const EntryPointSpec &e : entryPoints) {
    json entry = {{"name", e.name}, {"symbol", e.symbol},
                  {"inputs", json::array()}, {"outputs", json::array()},
                  {"parameters", e.parameters}};
    for (const TensorSpec &spec : e.inputs)
      entry["inputs"].push_back(tensorSpecJson(spec));
    for (const TensorSpec &spec : e.outputs)
      entry["outputs"].push_back(tensorSpecJson(spec));
    if (!e.writesParameters.empty())
      entry["writes_parameters"] = e.writesParameters;
    if (e.flops || e.bytes) {
      json cost = {{"static", e.hasStaticInputs()}};
      for (auto [key, value] :
           {std::pair{"flops", e.flops}, std::pair{"bytes", e.bytes}}) {
        if (!value)
          continue;
        if (Status s = finite(*value, "entry point '" + e.name + "' " + key);
            !s)
          return s;
        cost[key] = *value;
      }
      entry["cost"] = std::move(cost);
    }
    if (e.costModel) {
      Expected<json> model = costModelJson(e);
      if (!model)
        return model.status();
      entry["cost_model"] = std::move(*model);
    }
    if (!e.costModelNote.empty())
      entry["cost_model_note"] = e.costModelNote;
    entries.push_back(std::move(entry));
  }
  root["entry_points"] = std::move(entries);
  // Names come from IR the user wrote: bytes that are not UTF-8 become
  // U+FFFD rather than aborting (no exceptions in this build).
  return root.dump(2, ' ', /*ensure_ascii=*/false,
                   json::error_handler_t::replace) +
         "\n";
}

namespace {
std::string signatureShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string signatureSpec(const char *kind, const TensorSpec &spec) {
  std::string line = std::string("  ") + kind + " " + spec.name + " " +
                     dtypeName(spec.dtype) + " " + signatureShape(spec.shape);
  if (!spec.maxShape.empty())
    line += " max " + signatureShape(spec.maxShape);
  if (spec.inPlace)
    line += " in_place";
  return line + "\n";
}

std::vector<std::string> splitLines(const std::string &text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}
} // namespace

std::string moduleSignature(const Manifest &manifest) {
  std::string text = "kiln module signature\n";
  text += "abi " + std::to_string(kModuleAbiVersion) + "\n";
  text += std::string("target ") + targetName(manifest.target) + "\n";
  for (const ParameterSpec &p : manifest.parameters) {
    text += "parameter " + p.name + " " + dtypeName(p.dtype) + " " +
            signatureShape(p.shape) + (p.state ? " state" : "");
    // How its panels come from the weight: a manifest edited to read a
    // square weight the other way round would still fit every shape.
    if (p.packed)
      text += " packed " + signatureShape(p.packed->shape) +
              (p.packed->inOut ? " in_out" : " out_in") + " width " +
              std::to_string(p.packed->width) + " pairs " +
              std::to_string(p.packed->pairs) +
              (p.packed->atLoad ? " at_load" : "");
    text += "\n";
  }
  for (const EntryPointSpec &e : manifest.entryPoints) {
    text += "entry " + e.name + " symbol " + e.symbol + "\n";
    for (const TensorSpec &spec : e.inputs)
      text += signatureSpec("input", spec);
    for (const TensorSpec &spec : e.outputs)
      text += signatureSpec("output", spec);
    for (const std::string &p : e.parameters)
      text += "  takes " + p + "\n";
    for (const std::string &p : e.writesParameters)
      text += "  writes " + p + "\n";
  }
  return text;
}

std::string firstSignatureDifference(const std::string &expected,
                                     const std::string &actual) {
  if (expected == actual)
    return "";
  std::vector<std::string> a = splitLines(expected), b = splitLines(actual);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string x = i < a.size() ? "'" + a[i] + "'" : "(nothing)";
    std::string y = i < b.size() ? "'" + b[i] + "'" : "(nothing)";
    if (x != y)
      return "manifest: " + x + ", module.so: " + y;
  }
  return "the signatures differ";
}

} // namespace kiln::runtime
