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

StringRef mlir::kiln::stringifyCompressedPart(CompressedPart part) {
  switch (part) {
  case CompressedPart::First:
    return "first";
  case CompressedPart::Second:
    return "second";
  case CompressedPart::Positions:
    return "positions";
  }
  return "";
}

DictionaryAttr WeightCompression::toAttr(MLIRContext *context) const {
  Builder b(context);
  return b.getDictionaryAttr({
      b.getNamedAttr("source", b.getStringAttr(source)),
      b.getNamedAttr("part", b.getStringAttr(stringifyCompressedPart(part))),
      b.getNamedAttr("format", b.getStringAttr("2:4")),
      b.getNamedAttr("transposed", b.getBoolAttr(transposed)),
      b.getNamedAttr("source_shape", b.getDenseI64ArrayAttr(sourceShape)),
  });
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
  if (format.getValue() != "2:4")
    return fail("unknown format '" + format.getValue() + "' (2:4)");
  c.source = source.str();
  if (part.getValue() == "first")
    c.part = CompressedPart::First;
  else if (part.getValue() == "second")
    c.part = CompressedPart::Second;
  else if (part.getValue() == "positions")
    c.part = CompressedPart::Positions;
  else
    return fail("unknown part '" + part.getValue() + "'");
  c.transposed = transposed.getValue();
  c.sourceShape.assign(shape.asArrayRef().begin(), shape.asArrayRef().end());
  if (c.sourceShape.size() != 2 || c.sourceShape[0] < 1 ||
      c.sourceShape[1] < 1 || c.inDim() % 4)
    return fail("the source must be a 2-D weight whose input dim is a "
                "multiple of 4");
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
    if (compress && !(pruning.sparsity.n == 2 && pruning.sparsity.m == 4))
      return fail("compress stores 2:4 sparsity (two values and their "
                  "positions per four weights); sparsity " +
                  pruning.sparsity.name() + " is not 2:4");
    if (global && (pruning.method != PruneMethod::Magnitude ||
                   pruning.sparsity.semiStructured()))
      return fail("global takes method=magnitude and a fraction: N:M, "
                  "wanda and sparsegpt choose within each layer");
    FailureOr<ParameterSelection> selected =
        ParameterSelection::create(module, only, skip, lmHead);
    if (failed(selected))
      return signalPassFailure();

    int64_t marked = 0;
    for (LinearWeight &weight : linearWeights(module)) {
      ParameterOp param = weight.param;
      if (!(*selected)(param.getSymName()) ||
          param->hasAttr(attrs::kQuantizedFrom))
        continue;
      ArrayRef<int64_t> shape = param.getTensorType().getShape();
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
      if (compress && failed(compressWeight(weight)))
        return signalPassFailure();
    }
    if (!marked)
      return fail("no parameter to prune: none is only the weight of "
                  "kiln.linear ops" +
                  Twine(only.empty() ? "" : " and matches 'only'"));
  }

  /// Replaces the 2:4 pruned `weight` by its compressed parts and its
  /// linears' weight by their kiln.expand_2of4 (`[out, in]`).
  LogicalResult compressWeight(LinearWeight &weight) {
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
    SmallVector<ParameterOp, 3> parts;
    for (CompressedPart part : {CompressedPart::First, CompressedPart::Second,
                                CompressedPart::Positions}) {
      std::string partName =
          (prefix + ".sparse_" + stringifyCompressedPart(part)).str();
      if (SymbolTable::lookupSymbolIn(getOperation(), partName))
        return param.emitError("kiln-prune: cannot compress '")
               << name << "': a parameter named '" << partName
               << "' exists already";
      WeightCompression c{name.str(), part, weight.transposed,
                          {type.getShape()[0], type.getShape()[1]}};
      Type element = part == CompressedPart::Positions
                         ? Type(IntegerType::get(ctx, 8))
                         : type.getElementType();
      auto made = ParameterOp::create(
          b, loc, partName, RankedTensorType::get({out, in / 4}, element),
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
      Value dense = Expand2of4Op::create(
          b, read.getLoc(), RankedTensorType::get({out, in}, type.getElementType()),
          values[0], values[1], values[2]);
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
