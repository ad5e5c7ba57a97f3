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
    }
    if (!marked)
      return fail("no parameter to prune: none is only the weight of "
                  "kiln.linear ops" +
                  Twine(only.empty() ? "" : " and matches 'only'"));
  }
};

} // namespace
