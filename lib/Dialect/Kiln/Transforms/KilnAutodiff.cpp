//===- KilnAutodiff.cpp - Reverse-mode differentiation --------------------===//
//
// Builds the gradient function of a scalar loss. The loss is cloned, calls
// are inlined and composites without a gradient rule decomposed, so the
// clone is one block of ops with rules. Values on a path from a trainable
// parameter (or, optionally, a float argument) to the loss are "active";
// walking the block backwards, each active op's GradientOpInterface turns
// its result gradients into operand gradients, which accumulate with
// kiln.add. The gradient code is appended before the return, so the forward
// values it needs are all in scope.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Autodiff.h"
#include "kiln/Dialect/Kiln/Transforms/Decomposition.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/InliningUtils.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNAUTODIFFPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {

bool isFloatTensorType(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<FloatType>(tensor.getElementType());
}

/// Values that can carry a derivative: float tensors and float scalars (a
/// scalar extracted from an active tensor is active too, so an op without a
/// rule on that path is reported instead of silently cutting the gradient).
bool isDifferentiableType(Type type) {
  return isFloatTensorType(type) || isa<FloatType>(type);
}

/// Inlines every call in `func` (repeatedly, for calls in inlined bodies).
LogicalResult inlineCalls(func::FuncOp func) {
  InlinerInterface interface(func.getContext());
  auto cloneCallback = [](OpBuilder &builder, Region *src, Block *inlineBlock,
                          Block *postInsertBlock, IRMapping &mapper,
                          bool shouldCloneInlinedRegion) {
    Region *insertRegion = inlineBlock->getParent();
    src->cloneInto(insertRegion, postInsertBlock->getIterator(), mapper);
  };
  for (unsigned round = 0; round < 64; ++round) {
    SmallVector<func::CallOp> calls;
    func.walk([&](func::CallOp call) { calls.push_back(call); });
    if (calls.empty())
      return success();
    for (func::CallOp call : calls) {
      auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
          call, call.getCalleeAttr());
      if (!callee || callee.isExternal())
        return call.emitOpError("calls '")
               << call.getCallee()
               << "', which has no body; autodiff needs every callee";
      if (callee == func)
        return call.emitOpError("is recursive; autodiff cannot inline it");
      if (failed(inlineCall(interface, cloneCallback, call, callee,
                            &callee.getBody())))
        return call.emitOpError("could not be inlined for autodiff");
      call.erase();
    }
  }
  return func.emitOpError("has calls nested more than 64 deep");
}

/// Whether `value` may depend on something being differentiated: a float
/// function argument or a parameter read.
bool mayBeActive(Value value) {
  SmallVector<Value> worklist = {value};
  llvm::DenseSet<Value> seen;
  while (!worklist.empty()) {
    Value current = worklist.pop_back_val();
    if (!seen.insert(current).second)
      continue;
    Operation *def = current.getDefiningOp();
    if (!def) {
      // An integer argument (token ids) is not differentiated; keep looking
      // at the other operands.
      if (isFloatTensorType(current.getType()))
        return true;
      continue;
    }
    if (isa<ReadParamOp>(def))
      return true;
    llvm::append_range(worklist, def->getOperands());
  }
  return false;
}

/// Whether the gradient rule of `op` is used rather than its decomposition's:
/// composites with a rule keep it, except those whose rule builds a fused op
/// (kiln.attention), which must be kept whole (Decomposition.h: named in
/// `keep` and taken by the backend's fused lowering) and, for attention,
/// have a mask that is not differentiated.
bool usesOwnRule(Operation *op, const llvm::StringSet<> &keep) {
  if (!isa<GradientOpInterface>(op))
    return false;
  if (auto attention = dyn_cast<AttentionOp>(op))
    return isKeptWhole(op, keep) &&
           (!attention.getMask() || !mayBeActive(attention.getMask()));
  return true;
}

/// Replaces composites whose rule is not used by their decompositions until
/// none is left.
LogicalResult decomposeWithoutRules(func::FuncOp func,
                                    const llvm::StringSet<> &keep) {
  return decomposeComposites(
      func, [&](Operation *op) { return !usesOwnRule(op, keep); });
}

/// Accumulated gradients of the active values.
class GradientMap {
public:
  GradientMap(OpBuilder &builder) : builder(builder) {}
  Value lookup(Value value) const { return gradients.lookup(value); }
  void accumulate(Value value, Value gradient) {
    Value &slot = gradients[value];
    if (gradient.getType() != value.getType())
      gradient = tensor::CastOp::create(builder, value.getLoc(),
                                        value.getType(), gradient);
    slot = slot ? Value(AddOp::create(builder, value.getLoc(), slot, gradient))
                : gradient;
  }

private:
  OpBuilder &builder;
  DenseMap<Value, Value> gradients;
};

} // namespace

FailureOr<func::FuncOp>
mlir::kiln::buildGradientFunction(func::FuncOp loss,
                                  const GradientFunctionOptions &options) {
  auto module = loss->getParentOfType<ModuleOp>();
  std::string name = options.name.empty()
                         ? (loss.getSymName() + "_grad").str()
                         : options.name;
  if (loss.isExternal())
    return loss.emitOpError("has no body to differentiate");
  if (loss.getNumResults() != 1 ||
      !isFloatTensorType(loss.getResultTypes()[0]) ||
      cast<RankedTensorType>(loss.getResultTypes()[0]).getRank() != 0)
    return loss.emitOpError("must return one rank-0 float tensor (the loss) "
                            "to be differentiated, found ")
           << loss.getFunctionType();
  if (SymbolTable::lookupSymbolIn(module, name))
    return loss.emitOpError("cannot build gradient function '")
           << name << "': the module already has that symbol";

  OpBuilder builder(loss->getContext());
  builder.setInsertionPointAfter(loss);
  auto grad = cast<func::FuncOp>(builder.clone(*loss));
  grad.setSymName(name);
  grad.setPublic();
  auto fail = [&]() -> FailureOr<func::FuncOp> {
    grad.erase();
    return failure();
  };
  FailureOr<llvm::StringSet<>> keep =
      parseKeepList(loss->getContext(), options.keep, [&](StringRef name) {
        loss.emitOpError("cannot keep unknown op '")
            << name << "' whole in the gradient (expected names like "
            << "kiln.attention)";
      });
  if (failed(keep) || failed(inlineCalls(grad)) ||
      failed(decomposeWithoutRules(grad, *keep)))
    return fail();
  if (!grad.getBody().hasOneBlock()) {
    grad.emitOpError("has control flow; autodiff needs a single block");
    return fail();
  }
  Block &body = grad.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  Value lossValue = ret.getOperand(0);

  // Sources: trainable parameter reads (grouped by parameter) and, when
  // asked, float arguments.
  SymbolTable symbols(module);
  llvm::MapVector<StringRef, SmallVector<ReadParamOp>> paramReads;
  DenseSet<Value> active;
  for (Operation &op : body.without_terminator()) {
    if (auto read = dyn_cast<ReadParamOp>(op)) {
      auto param = symbols.lookup<ParameterOp>(read.getName());
      if (param && param.getTrainable() &&
          isFloatTensorType(read.getType())) {
        paramReads[read.getName()].push_back(read);
        active.insert(read.getResult());
      }
    }
  }
  if (options.withRespectToInputs)
    for (BlockArgument arg : body.getArguments())
      if (isFloatTensorType(arg.getType()))
        active.insert(arg);
  // Forward: everything computed from a source with a float result.
  for (Operation &op : body.without_terminator()) {
    if (isa<ReadParamOp>(op))
      continue;
    bool fromSource = llvm::any_of(op.getOperands(), [&](Value operand) {
      return active.contains(operand);
    });
    if (!fromSource)
      continue;
    for (Value result : op.getResults())
      if (isDifferentiableType(result.getType()))
        active.insert(result);
  }
  // Backward: only what the loss depends on.
  DenseSet<Value> needed;
  needed.insert(lossValue);
  for (Operation &op : llvm::reverse(body.without_terminator())) {
    bool feedsLoss = llvm::any_of(op.getResults(), [&](Value result) {
      return needed.contains(result);
    });
    if (feedsLoss)
      for (Value operand : op.getOperands())
        needed.insert(operand);
  }
  auto isActive = [&](Value value) {
    return active.contains(value) && needed.contains(value);
  };

  builder.setInsertionPoint(ret);
  GradientMap gradients(builder);
  Location loc = loss.getLoc();
  auto lossType = cast<RankedTensorType>(lossValue.getType());
  Value seed = ConstantOp::create(
      builder, loc, lossType,
      cast<ElementsAttr>(DenseElementsAttr::get(
          lossType,
          Attribute(FloatAttr::get(lossType.getElementType(), 1.0)))));
  if (isActive(lossValue))
    gradients.accumulate(lossValue, seed);

  SmallVector<Operation *> activeOps;
  for (Operation &op : body.without_terminator())
    if (!isa<ReadParamOp>(op) && llvm::any_of(op.getResults(), isActive))
      activeOps.push_back(&op);
  for (Operation *op : llvm::reverse(activeOps)) {
    SmallVector<Value> resultGradients;
    bool any = false;
    for (Value result : op->getResults()) {
      resultGradients.push_back(gradients.lookup(result));
      any |= static_cast<bool>(resultGradients.back());
    }
    if (!any)
      continue;
    SmallVector<Value> operandGradients;
    if (auto rule = dyn_cast<GradientOpInterface>(op)) {
      FailureOr<SmallVector<Value>> built =
          rule.buildGradient(builder, resultGradients);
      if (failed(built))
        return fail();
      operandGradients = std::move(*built);
    } else if (auto cast = dyn_cast<tensor::CastOp>(op)) {
      operandGradients.push_back(tensor::CastOp::create(
          builder, cast.getLoc(), cast.getSource().getType(),
          resultGradients[0]));
    } else {
      op->emitOpError("has no gradient rule; the loss depends on a "
                      "parameter through it, so it cannot be differentiated");
      return fail();
    }
    if (operandGradients.size() != op->getNumOperands()) {
      op->emitOpError("gradient rule returned ")
          << operandGradients.size() << " gradients for "
          << op->getNumOperands() << " operands";
      return fail();
    }
    for (auto [operand, gradient] :
         llvm::zip(op->getOperands(), operandGradients))
      if (gradient && isActive(operand))
        gradients.accumulate(operand, gradient);
  }

  // Results: loss, parameter gradients (summed over reads), input gradients.
  auto zeros = [&](Type type) -> Value {
    auto tensorType = cast<RankedTensorType>(type);
    if (tensorType.hasStaticShape())
      return ConstantOp::create(
          builder, loc, tensorType,
          cast<ElementsAttr>(DenseElementsAttr::get(
              tensorType, Attribute(FloatAttr::get(
                              tensorType.getElementType(), 0.0)))));
    return Value();
  };
  SmallVector<Value> results = {lossValue};
  SmallVector<Attribute> resultNames = {builder.getStringAttr("loss")};
  SmallVector<Attribute> paramRefs;
  for (auto &[paramName, reads] : paramReads) {
    Value total;
    for (ReadParamOp read : reads) {
      Value gradient = gradients.lookup(read.getResult());
      if (!gradient)
        continue;
      total = total ? Value(AddOp::create(builder, loc, total, gradient))
                    : gradient;
    }
    if (!total)
      total = zeros(reads.front().getType());
    results.push_back(total);
    resultNames.push_back(builder.getStringAttr("grad:" + paramName));
    paramRefs.push_back(FlatSymbolRefAttr::get(builder.getContext(), paramName));
  }
  if (options.withRespectToInputs) {
    for (BlockArgument arg : body.getArguments()) {
      if (!isFloatTensorType(arg.getType()))
        continue;
      Value gradient = gradients.lookup(arg);
      if (!gradient)
        gradient = zeros(arg.getType());
      if (!gradient) {
        grad.emitOpError("argument ")
            << arg.getArgNumber()
            << " has dynamic dims and the loss does not depend on it; its "
               "zero gradient has no shape";
        return fail();
      }
      results.push_back(gradient);
      std::string argName = "arg" + std::to_string(arg.getArgNumber());
      if (auto named =
              grad.getArgAttrOfType<StringAttr>(arg.getArgNumber(), attrs::kName))
        argName = named.str();
      resultNames.push_back(builder.getStringAttr("grad:" + argName));
    }
  }
  func::ReturnOp::create(builder, ret.getLoc(), results);
  ret.erase();
  grad.setType(FunctionType::get(grad.getContext(), grad.getArgumentTypes(),
                                 ValueRange(results).getTypes()));
  SmallVector<DictionaryAttr> resultAttrs;
  for (Attribute resultName : resultNames)
    resultAttrs.push_back(builder.getDictionaryAttr(
        builder.getNamedAttr(attrs::kName, resultName)));
  grad.setAllResultAttrs(resultAttrs);
  grad->setAttr(attrs::kGradientParameters, builder.getArrayAttr(paramRefs));
  // Forward values nothing uses any more (the rules recompute some) go.
  IRRewriter rewriter(grad.getContext());
  (void)runRegionDCE(rewriter, grad->getRegions());
  return grad;
}

namespace {
struct KilnAutodiffPass
    : kiln::impl::KilnAutodiffPassBase<KilnAutodiffPass> {
  using KilnAutodiffPassBase::KilnAutodiffPassBase;

  void runOnOperation() final {
    ModuleOp module = getOperation();
    auto loss = module.lookupSymbol<func::FuncOp>(function);
    if (!loss) {
      module.emitError("kiln-autodiff: no function '")
          << function << "' to differentiate (set function=<name>)";
      return signalPassFailure();
    }
    GradientFunctionOptions gradientOptions;
    gradientOptions.name = resultName;
    gradientOptions.withRespectToInputs = wrtInputs;
    gradientOptions.keep = llvm::to_vector(keep);
    if (failed(buildGradientFunction(loss, gradientOptions)))
      signalPassFailure();
  }
};
} // namespace
