//===- KilnPrune.cpp - Unstructured and N:M pruning of linear weights -----===//
//
// Marks the selected linear weights with how they are pruned
// (`kiln.pruned`). The zeros are not chosen here: the compiler chooses
// them from the weights' values when it writes the artifact (it has the
// checkpoint and the calibration statistics), as it quantizes.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Dialect/Kiln/Transforms/Pruning.h"

#include "LinearWeights.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNPRUNEPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

//===----------------------------------------------------------------------===//
// Methods, sparsities and the kiln.pruned attribute
//===----------------------------------------------------------------------===//

StringRef mlir::kiln::stringifyPruneMethod(PruneMethod method) {
  switch (method) {
  case PruneMethod::Magnitude:
    return "magnitude";
  case PruneMethod::Wanda:
    return "wanda";
  case PruneMethod::SparseGPT:
    return "sparsegpt";
  }
  return "";
}

llvm::Expected<PruneMethod> mlir::kiln::parsePruneMethod(StringRef text) {
  for (PruneMethod method :
       {PruneMethod::Magnitude, PruneMethod::Wanda, PruneMethod::SparseGPT})
    if (text == stringifyPruneMethod(method))
      return method;
  return llvm::createStringError("unknown pruning method '" + text +
                                 "' (known: magnitude, wanda, sparsegpt)");
}

std::string PruneSparsity::name() const {
  if (semiStructured())
    return std::to_string(n) + ":" + std::to_string(m);
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", fraction);
  return text;
}

llvm::Expected<PruneSparsity> PruneSparsity::parse(StringRef text) {
  PruneSparsity sparsity;
  auto [first, second] = text.split(':');
  if (!second.empty() || text.contains(':')) {
    if (first.getAsInteger(10, sparsity.n) ||
        second.getAsInteger(10, sparsity.m) || sparsity.n <= 0 ||
        sparsity.m > 64 || sparsity.n >= sparsity.m)
      return llvm::createStringError(
          "sparsity '" + text +
          "': N:M needs integers 0 < N < M <= 64 (2:4 keeps two of every "
          "four weights)");
    sparsity.fraction = sparsity.zeros();
    return sparsity;
  }
  double value;
  if (text.getAsDouble(value) || !std::isfinite(value))
    return llvm::createStringError(
        "sparsity '" + text + "' is neither a fraction such as 0.5 nor N:M "
                              "such as 2:4");
  if (value < 0 || value >= 1)
    return llvm::createStringError(
        "sparsity " + text +
        " is outside [0, 1): it is the fraction of weights set to zero");
  sparsity.fraction = value;
  return sparsity;
}

DictionaryAttr WeightPruning::toAttr(MLIRContext *context) const {
  Builder b(context);
  return b.getDictionaryAttr({
      b.getNamedAttr("method", b.getStringAttr(stringifyPruneMethod(method))),
      b.getNamedAttr("sparsity", b.getF64FloatAttr(sparsity.fraction)),
      b.getNamedAttr("n", b.getI64IntegerAttr(sparsity.n)),
      b.getNamedAttr("m", b.getI64IntegerAttr(sparsity.m)),
      b.getNamedAttr("global", b.getBoolAttr(global)),
      b.getNamedAttr("transposed", b.getBoolAttr(transposed)),
  });
}

llvm::Expected<WeightPruning> WeightPruning::fromAttr(DictionaryAttr attr) {
  auto fail = [](const Twine &why) {
    return llvm::createStringError("malformed " + attrs::kPruned + ": " + why);
  };
  WeightPruning p;
  auto method = attr.getAs<StringAttr>("method");
  auto sparsity = attr.getAs<FloatAttr>("sparsity");
  auto n = attr.getAs<IntegerAttr>("n");
  auto m = attr.getAs<IntegerAttr>("m");
  auto global = attr.getAs<BoolAttr>("global");
  auto transposed = attr.getAs<BoolAttr>("transposed");
  if (!method || !sparsity || !n || !m || !global || !transposed)
    return fail("expected method, sparsity, n, m, global and transposed");
  auto parsed = parsePruneMethod(method.getValue());
  if (!parsed)
    return fail(llvm::toString(parsed.takeError()));
  p.method = *parsed;
  p.sparsity.fraction = sparsity.getValueAsDouble();
  p.sparsity.n = n.getInt();
  p.sparsity.m = m.getInt();
  p.global = global.getValue();
  p.transposed = transposed.getValue();
  if (p.sparsity.m) {
    if (p.sparsity.n <= 0 || p.sparsity.n >= p.sparsity.m || p.sparsity.m > 64)
      return fail("N:M needs 0 < N < M <= 64");
  } else if (p.sparsity.n || !(p.sparsity.fraction >= 0) ||
             p.sparsity.fraction >= 1) {
    return fail("the sparsity must be in [0, 1)");
  }
  if (p.global && (p.method != PruneMethod::Magnitude || p.sparsity.m))
    return fail("global is for unstructured magnitude pruning");
  return p;
}

int64_t mlir::kiln::prunedCount(double fraction, int64_t total) {
  return static_cast<int64_t>(std::floor(fraction * double(total)));
}

std::optional<int64_t> mlir::kiln::keptWeights(const WeightPruning &pruning,
                                               int64_t out, int64_t in) {
  const PruneSparsity &s = pruning.sparsity;
  if (s.semiStructured())
    return out * (in / s.m) * s.n + out * (in % s.m);
  if (pruning.global)
    return std::nullopt;
  switch (pruning.method) {
  case PruneMethod::Magnitude:
    return out * in - prunedCount(s.fraction, out * in);
  case PruneMethod::Wanda:
    return out * (in - prunedCount(s.fraction, in));
  case PruneMethod::SparseGPT: {
    int64_t kept = 0;
    for (int64_t start = 0; start < in; start += kSparseGPTBlockSize) {
      int64_t count = std::min(kSparseGPTBlockSize, in - start);
      kept += out * count - prunedCount(s.fraction, out * count);
    }
    return kept;
  }
  }
  return std::nullopt;
}

StringRef mlir::kiln::stringifyCompressedPart(CompressedPart part) {
  switch (part) {
  case CompressedPart::First:
    return "first";
  case CompressedPart::Second:
    return "second";
  case CompressedPart::Positions:
    return "positions";
  case CompressedPart::Values:
    return "values";
  case CompressedPart::Indices:
    return "indices";
  case CompressedPart::Offsets:
    return "offsets";
  }
  return "";
}

SmallVector<int64_t, 2> WeightCompression::partShape() const {
  if (format == CompressedFormat::TwoFour)
    return {outDim(), inDim() / 4};
  if (part == CompressedPart::Offsets)
    return {outDim() + 1};
  return {nnz};
}

DictionaryAttr WeightCompression::toAttr(MLIRContext *context) const {
  Builder b(context);
  SmallVector<NamedAttribute> attrs = {
      b.getNamedAttr("source", b.getStringAttr(source)),
      b.getNamedAttr("part", b.getStringAttr(stringifyCompressedPart(part))),
      b.getNamedAttr("format", b.getStringAttr(format == CompressedFormat::CSR
                                                   ? "csr"
                                                   : "2:4")),
      b.getNamedAttr("transposed", b.getBoolAttr(transposed)),
      b.getNamedAttr("source_shape", b.getDenseI64ArrayAttr(sourceShape)),
  };
  if (format == CompressedFormat::CSR)
    attrs.push_back(b.getNamedAttr("nnz", b.getI64IntegerAttr(nnz)));
  return b.getDictionaryAttr(attrs);
}

llvm::Expected<WeightCompression>
WeightCompression::fromAttr(DictionaryAttr attr) {
  auto fail = [](const Twine &why) {
    return llvm::createStringError("malformed " + attrs::kCompressedFrom +
                                   ": " + why);
  };
  WeightCompression c;
  auto source = attr.getAs<StringAttr>("source");
  auto part = attr.getAs<StringAttr>("part");
  auto format = attr.getAs<StringAttr>("format");
  auto transposed = attr.getAs<BoolAttr>("transposed");
  auto shape = attr.getAs<DenseI64ArrayAttr>("source_shape");
  if (!source || !part || !format || !transposed || !shape)
    return fail("expected source, part, format, transposed and source_shape");
  if (format.getValue() == "2:4")
    c.format = CompressedFormat::TwoFour;
  else if (format.getValue() == "csr")
    c.format = CompressedFormat::CSR;
  else
    return fail("unknown format '" + format.getValue() + "' (2:4 or csr)");
  c.source = source.str();
  bool csr = c.format == CompressedFormat::CSR;
  std::optional<CompressedPart> parsed;
  for (CompressedPart p :
       {CompressedPart::First, CompressedPart::Second, CompressedPart::Positions,
        CompressedPart::Values, CompressedPart::Indices,
        CompressedPart::Offsets})
    if (part.getValue() == stringifyCompressedPart(p))
      parsed = p;
  bool csrPart = parsed && (*parsed == CompressedPart::Values ||
                            *parsed == CompressedPart::Indices ||
                            *parsed == CompressedPart::Offsets);
  if (!parsed || csrPart != csr)
    return fail("unknown " + format.getValue() + " part '" + part.getValue() +
                "'");
  c.part = *parsed;
  c.transposed = transposed.getValue();
  c.sourceShape.assign(shape.asArrayRef().begin(), shape.asArrayRef().end());
  if (c.sourceShape.size() != 2 || c.sourceShape[0] < 1 ||
      c.sourceShape[1] < 1 || (!csr && c.inDim() % 4))
    return fail(csr ? "the source must be a 2-D weight"
                    : "the source must be a 2-D weight whose input dim is a "
                      "multiple of 4");
  if (csr) {
    auto nnz = attr.getAs<IntegerAttr>("nnz");
    if (!nnz || nnz.getInt() < 0 ||
        (__int128)nnz.getInt() >
            (__int128)c.sourceShape[0] * c.sourceShape[1] ||
        nnz.getInt() > INT32_MAX)
      return fail("csr needs nnz, the entries stored, in [0, the source's "
                  "size] and below 2^31");
    c.nnz = nnz.getInt();
  }
  return c;
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace {

struct KilnPrunePass : kiln::impl::KilnPrunePassBase<KilnPrunePass> {
  using Base::Base;

  void runOnOperation() final {
    ModuleOp module = getOperation();
    auto fail = [&](const Twine &why) {
      module.emitError("kiln-prune: ") << why;
      signalPassFailure();
    };
    WeightPruning pruning;
    auto parsedMethod = parsePruneMethod(method);
    if (!parsedMethod)
      return fail(llvm::toString(parsedMethod.takeError()));
    pruning.method = *parsedMethod;
    auto parsedSparsity = PruneSparsity::parse(sparsity);
    if (!parsedSparsity)
      return fail(llvm::toString(parsedSparsity.takeError()));
    pruning.sparsity = *parsedSparsity;
    pruning.global = global;
    if (compress && pruning.sparsity.semiStructured() &&
        !(pruning.sparsity.n == 2 && pruning.sparsity.m == 4))
      return fail("compress stores 2:4 sparsity (two values and their "
                  "positions per four weights) or an unstructured fraction "
                  "(compressed sparse rows); sparsity " +
                  pruning.sparsity.name() + " is neither");
    if (!(csrMinSparsity >= 0 && csrMinSparsity <= 1))
      return fail("csr-min-sparsity must be in [0, 1]");
    if (global && (pruning.method != PruneMethod::Magnitude ||
                   pruning.sparsity.semiStructured()))
      return fail("global takes method=magnitude and a fraction: N:M, "
                  "wanda and sparsegpt choose within each layer");
    FailureOr<ParameterSelection> selected =
        ParameterSelection::create(module, only, skip, lmHead);
    if (failed(selected))
      return signalPassFailure();

    int64_t marked = 0, keptDense = 0;
    for (LinearWeight &weight : linearWeights(module)) {
      ParameterOp param = weight.param;
      if (!(*selected)(param.getSymName()) ||
          param->hasAttr(attrs::kQuantizedFrom))
        continue;
      ArrayRef<int64_t> shape = param.getTensorType().getShape();
      int64_t out = shape[weight.transposed ? 1 : 0];
      int64_t in = shape[weight.transposed ? 0 : 1];
      if (pruning.sparsity.semiStructured() && in % pruning.sparsity.m) {
        param.emitError("kiln-prune: ")
            << pruning.sparsity.name() << " sparsity needs an input dim "
            << "divisible by " << pruning.sparsity.m << "; '"
            << param.getSymName() << "' has " << in
            << " inputs (leave it dense: skip=" << param.getSymName()
            << ", kiln-compile --prune-skip " << param.getSymName() << ")";
        return signalPassFailure();
      }
      WeightPruning p = pruning;
      p.transposed = weight.transposed;
      param->setAttr(attrs::kPruned, p.toAttr(&getContext()));
      ++marked;
      if (!compress)
        continue;
      if (p.sparsity.semiStructured()) {
        if (failed(compressWeight(weight, CompressedFormat::TwoFour, 0)))
          return signalPassFailure();
        continue;
      }
      std::optional<int64_t> kept = keptWeights(p, out, in);
      if (!kept || p.sparsity.fraction < csrMinSparsity) {
        ++keptDense;
        continue;
      }
      if (failed(compressWeight(weight, CompressedFormat::CSR, *kept)))
        return signalPassFailure();
    }
    if (!marked)
      return fail("no parameter to prune: none is only the weight of "
                  "kiln.linear ops" +
                  Twine(only.empty() ? "" : " and matches 'only'"));
    if (keptDense) {
      InFlightDiagnostic remark = module.emitRemark("kiln-prune: ");
      remark << keptDense << " weight(s) kept dense: ";
      if (global)
        remark << "a global pruning's share of zeros in each layer follows "
                  "from the weights, so their compressed size is not known "
                  "here";
      else
        remark << "sparsity " << pruning.sparsity.name()
               << " is below the break-even for compressed sparse rows ("
               << PruneSparsity{double(csrMinSparsity)}.name()
               << "), where a dense kernel multiplying by the zeros is "
                  "faster";
    }
  }

  /// Replaces the pruned `weight` by the parameters of its compressed
  /// `format` (CSR: `nnz` entries) and its linears' weight by their
  /// expansion (`[out, in]`).
  LogicalResult compressWeight(LinearWeight &weight, CompressedFormat format,
                               int64_t nnz) {
    ParameterOp param = weight.param;
    StringRef name = param.getSymName();
    auto type = param.getTensorType();
    if (!type.getElementType().isF32())
      return param.emitError("kiln-prune: compress stores f32 weights; '")
             << name << "' is " << type.getElementType();
    int64_t out = type.getDimSize(weight.transposed ? 1 : 0);
    int64_t in = type.getDimSize(weight.transposed ? 0 : 1);
    StringRef prefix = name;
    prefix.consume_back(".weight");
    MLIRContext *ctx = &getContext();
    OpBuilder b(param);
    Location loc = param.getLoc();
    bool csr = format == CompressedFormat::CSR;
    SmallVector<CompressedPart, 3> partKinds =
        csr ? SmallVector<CompressedPart, 3>{CompressedPart::Offsets,
                                             CompressedPart::Indices,
                                             CompressedPart::Values}
            : SmallVector<CompressedPart, 3>{CompressedPart::First,
                                             CompressedPart::Second,
                                             CompressedPart::Positions};
    SmallVector<ParameterOp, 3> parts;
    for (CompressedPart part : partKinds) {
      std::string partName =
          (prefix + ".sparse_" + stringifyCompressedPart(part)).str();
      if (SymbolTable::lookupSymbolIn(getOperation(), partName))
        return param.emitError("kiln-prune: cannot compress '")
               << name << "': a parameter named '" << partName
               << "' exists already";
      WeightCompression c;
      c.source = name.str();
      c.format = format;
      c.part = part;
      c.transposed = weight.transposed;
      c.sourceShape = {type.getShape()[0], type.getShape()[1]};
      c.nnz = nnz;
      Type element = type.getElementType();
      if (part == CompressedPart::Positions)
        element = IntegerType::get(ctx, 8);
      else if (part == CompressedPart::Offsets)
        element = IntegerType::get(ctx, 32);
      else if (part == CompressedPart::Indices)
        element = IntegerType::get(ctx, c.wideIndices() ? 32 : 16);
      auto made = ParameterOp::create(
          b, loc, partName, RankedTensorType::get(c.partShape(), element),
          param.getInit(), param.getStdAttr(), param.getLowAttr(),
          param.getHighAttr(), /*trainable=*/false);
      made->setAttr(attrs::kCompressedFrom, c.toAttr(ctx));
      made->setAttr(attrs::kPruned, param->getAttr(attrs::kPruned));
      parts.push_back(made);
    }
    for (ReadParamOp read : weight.reads) {
      b.setInsertionPoint(read);
      SmallVector<Value, 3> values;
      for (ParameterOp part : parts)
        values.push_back(ReadParamOp::create(b, read.getLoc(),
                                             part.getTensorType(),
                                             part.getSymName()));
      auto denseType = RankedTensorType::get({out, in}, type.getElementType());
      Value dense =
          csr ? Value(ExpandCSROp::create(b, read.getLoc(), denseType,
                                          values[0], values[1], values[2]))
              : Value(Expand2of4Op::create(b, read.getLoc(), denseType,
                                           values[0], values[1], values[2]));
      for (OpOperand &use : llvm::make_early_inc_range(read->getUses())) {
        if (auto linear = dyn_cast<LinearOp>(use.getOwner())) {
          linear.getWeightMutable().assign(dense);
          linear.setWeightInOut(false);
          continue;
        }
        // A cast to the compute type, then linears.
        auto castOp = cast<CastOp>(use.getOwner());
        b.setInsertionPoint(castOp);
        Value converted = CastOp::create(
            b, castOp.getLoc(),
            RankedTensorType::get({out, in}, castOp.getType().getElementType()),
            dense);
        for (OpOperand &castUse : llvm::make_early_inc_range(castOp->getUses())) {
          auto linear = cast<LinearOp>(castUse.getOwner());
          linear.getWeightMutable().assign(converted);
          linear.setWeightInOut(false);
        }
        castOp.erase();
      }
      read.erase();
    }
    param.erase();
    return success();
  }
};

} // namespace
