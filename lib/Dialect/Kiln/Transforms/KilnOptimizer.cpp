//===- KilnOptimizer.cpp - train_step and eval_step from a loss -----------===//
//
// Turns a loss function into the entry points a training driver calls. The
// update is ordinary kiln IR after the gradient call: global-norm clipping,
// then AdamW or SGD per parameter, written back with kiln.write_param. The
// optimizer state lives in `kiln.parameter`s marked `kiln.optimizer_state`
// (all `init zeros`), so the runtime allocates, updates and checkpoints it
// like any parameter. The learning rate is an input: schedules belong to the
// driver.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Autodiff.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Runtime/ArtifactAbi.h"

#include "mlir/IR/SymbolTable.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNOPTIMIZERPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {

/// Builds the update ops of train_step at one insertion point.
class UpdateBuilder {
public:
  UpdateBuilder(OpBuilder &builder, ModuleOp module, Location loc)
      : b(builder), module(module), loc(loc), f32(builder.getF32Type()) {}

  Value constant(double value) {
    auto type = RankedTensorType::get({}, f32);
    return ConstantOp::create(
        b, loc, type,
        cast<ElementsAttr>(DenseElementsAttr::get(
            type, Attribute(FloatAttr::get(f32, value)))));
  }
  Value add(Value x, Value y) { return AddOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return SubOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return MulOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return DivOp::create(b, loc, x, y); }
  Value sumAll(Value x) {
    int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
    if (rank == 0)
      return x;
    return ReduceOp::create(b, loc, ReduceKind::sum, x,
                            llvm::to_vector(llvm::seq<int64_t>(0, rank)),
                            /*keepdim=*/false);
  }

  /// Declares a zero-initialized state parameter (once) and reads it.
  Value readState(StringRef name, RankedTensorType type) {
    if (!module.lookupSymbol(name)) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(firstFunction());
      auto param = ParameterOp::create(b, loc, name, type, InitKind::zeros,
                                       /*std=*/FloatAttr(), /*low=*/FloatAttr(),
                                       /*high=*/FloatAttr(),
                                       /*trainable=*/false);
      param->setAttr(attrs::kOptimizerState, b.getUnitAttr());
    }
    return readParam(name, type);
  }
  Value readParam(StringRef name, Type type) {
    return ReadParamOp::create(b, loc, type,
                               FlatSymbolRefAttr::get(b.getContext(), name));
  }
  void write(StringRef name, Value value) {
    WriteParamOp::create(b, loc, FlatSymbolRefAttr::get(b.getContext(), name),
                         value);
  }

private:
  Operation *firstFunction() {
    for (Operation &op : module.getBody()->getOperations())
      if (isa<func::FuncOp>(op))
        return &op;
    return module.getBody()->getTerminator();
  }

  OpBuilder &b;
  ModuleOp module;
  Location loc;
  Type f32;
};

struct KilnOptimizerPass
    : kiln::impl::KilnOptimizerPassBase<KilnOptimizerPass> {
  using KilnOptimizerPassBase::KilnOptimizerPassBase;

  void runOnOperation() final {
    ModuleOp module = getOperation();
    if (optimizer != "adamw" && optimizer != "sgd") {
      module.emitError("kiln-optimizer: unknown optimizer '")
          << optimizer << "' (expected adamw or sgd)";
      return signalPassFailure();
    }
    auto loss = module.lookupSymbol<func::FuncOp>(function);
    if (!loss) {
      module.emitError("kiln-optimizer: no loss function '")
          << function << "' (set function=<name>)";
      return signalPassFailure();
    }
    for (StringRef entry : {KILN_ENTRY_TRAIN_STEP, KILN_ENTRY_EVAL_STEP})
      if (module.lookupSymbol(entry)) {
        module.emitError("kiln-optimizer: the module already has '")
            << entry << "'";
        return signalPassFailure();
      }
    std::string gradName = (loss.getSymName() + "_grad").str();
    auto grad = module.lookupSymbol<func::FuncOp>(gradName);
    if (!grad) {
      GradientFunctionOptions gradientOptions;
      gradientOptions.keep = llvm::to_vector(keep);
      FailureOr<func::FuncOp> built =
          buildGradientFunction(loss, gradientOptions);
      if (failed(built))
        return signalPassFailure();
      grad = *built;
    }
    auto paramRefs = grad->getAttrOfType<ArrayAttr>(attrs::kGradientParameters);
    if (!paramRefs) {
      grad.emitOpError("lacks 'kiln.gradient_parameters'; build it with "
                       "kiln-autodiff");
      return signalPassFailure();
    }
    for (Attribute ref : paramRefs) {
      auto param = module.lookupSymbol<ParameterOp>(
          cast<FlatSymbolRefAttr>(ref).getValue());
      if (!param.getTensorType().getElementType().isF32()) {
        param.emitOpError("is not f32; the optimizer updates f32 parameters "
                          "(mixed precision keeps f32 master weights)");
        return signalPassFailure();
      }
    }
    if (failed(buildTrainStep(module, loss, grad, paramRefs)))
      return signalPassFailure();
    buildEvalStep(module, loss);
    loss.setPrivate();
    grad.setPrivate();
  }

  LogicalResult buildTrainStep(ModuleOp module, func::FuncOp loss,
                               func::FuncOp grad, ArrayAttr paramRefs) {
    Location loc = loss.getLoc();
    OpBuilder b(module.getContext());
    b.setInsertionPointToEnd(module.getBody());
    auto scalarType = RankedTensorType::get({}, b.getF32Type());
    SmallVector<Type> inputs(loss.getArgumentTypes());
    inputs.push_back(scalarType);
    Type lossType = loss.getResultTypes()[0];
    auto step = func::FuncOp::create(
        b, loc, KILN_ENTRY_TRAIN_STEP,
        b.getFunctionType(inputs, {lossType, scalarType}));
    for (unsigned i = 0; i < loss.getNumArguments(); ++i)
      step.setArgAttrs(i, loss.getArgAttrDict(i));
    step.setArgAttrs(loss.getNumArguments(),
                     b.getDictionaryAttr(b.getNamedAttr(
                         attrs::kName, b.getStringAttr("lr"))));
    step.setResultAttrs(0, b.getDictionaryAttr(b.getNamedAttr(
                               attrs::kName, b.getStringAttr("loss"))));
    step.setResultAttrs(1, b.getDictionaryAttr(b.getNamedAttr(
                               attrs::kName, b.getStringAttr("grad_norm"))));
    Block *body = step.addEntryBlock();
    b.setInsertionPointToStart(body);
    UpdateBuilder u(b, module, loc);

    auto call = func::CallOp::create(b, loc, grad,
                                     body->getArguments().drop_back());
    Value lossValue = call.getResult(0);
    Value lr = body->getArguments().back();
    SmallVector<Value> grads(call.getResults().drop_front());

    // Global L2 norm, then clip_grad_norm_'s scale min(1, max / (norm + 1e-6)).
    Value squares;
    for (Value g : grads) {
      Value s = u.sumAll(u.mul(g, g));
      squares = squares ? u.add(squares, s) : s;
    }
    Value norm = squares ? Value(SqrtOp::create(b, loc, squares))
                         : u.constant(0.0);
    // The clipping scale is folded into the per-parameter updates below
    // (a scalar there) rather than applied to every gradient: no clipped
    // copy of the gradients is materialized.
    Value coef;
    if (maxGradNorm > 0 && !grads.empty())
      coef = MinOp::create(
          b, loc, u.constant(1.0),
          u.div(u.constant(maxGradNorm), u.add(norm, u.constant(1e-6))));
    auto scaled = [&](double factor) -> Value {
      return coef ? u.mul(u.constant(factor), coef) : u.constant(factor);
    };

    // Bias corrections of the step about to be taken (AdamW).
    Value correction1, correction2Sqrt;
    if (optimizer == "adamw") {
      Value t = u.add(u.readState("optimizer/step", scalarType),
                      u.constant(1.0));
      u.write("optimizer/step", t);
      correction1 = u.sub(u.constant(1.0),
                          PowOp::create(b, loc, u.constant(beta1), t));
      correction2Sqrt = SqrtOp::create(
          b, loc,
          u.sub(u.constant(1.0), PowOp::create(b, loc, u.constant(beta2), t)));
    }

    for (auto [ref, g] : llvm::zip(paramRefs, grads)) {
      StringRef name = cast<FlatSymbolRefAttr>(ref).getValue();
      auto param = module.lookupSymbol<ParameterOp>(name);
      RankedTensorType type = param.getTensorType();
      Value p = u.readParam(name, type);
      double decay = type.getRank() >= decayMinRank ? weightDecay : 0.0;
      Value updated;
      if (optimizer == "adamw") {
        std::string mName = (name + "/adam_m").str();
        std::string vName = (name + "/adam_v").str();
        // m = β1·m + (1-β1)·c·g, v = β2·v + (1-β2)·c²·g² with c the clipping
        // scale.
        Value vScale = coef ? u.mul(scaled(1.0 - beta2), coef)
                            : u.constant(1.0 - beta2);
        Value m = u.add(u.mul(u.constant(beta1), u.readState(mName, type)),
                        u.mul(scaled(1.0 - beta1), g));
        // (s·g)·g, not s·(g·g): CSE would otherwise share g·g with the
        // norm's sum of squares, a product that is then materialized in
        // memory for both instead of fused into each.
        Value v = u.add(u.mul(u.constant(beta2), u.readState(vName, type)),
                        u.mul(u.mul(vScale, g), g));
        // torch.optim.AdamW: p *= 1 - lr·wd; p -= lr/bc1 · m / (√v/√bc2 + ε).
        Value decayed =
            decay != 0.0
                ? u.mul(p, u.sub(u.constant(1.0), u.mul(lr, u.constant(decay))))
                : p;
        Value denom = u.add(u.div(SqrtOp::create(b, loc, v), correction2Sqrt),
                            u.constant(epsilon));
        Value stepSize = u.div(lr, correction1);
        updated = u.sub(decayed, u.mul(stepSize, u.div(m, denom)));
        u.write(mName, m);
        u.write(vName, v);
      } else {
        // torch.optim.SGD: d = g + wd·p; buf = μ·buf + d; p -= lr·buf.
        Value clipped = coef ? u.mul(coef, g) : g;
        Value d = decay != 0.0 ? u.add(clipped, u.mul(u.constant(decay), p))
                               : clipped;
        if (momentum > 0) {
          std::string bufName = (name + "/momentum").str();
          d = u.add(u.mul(u.constant(momentum), u.readState(bufName, type)), d);
          u.write(bufName, d);
        }
        updated = u.sub(p, u.mul(lr, d));
      }
      // A pruned weight (kiln-prune) keeps its zeros: recovery training
      // updates only the weights that survived.
      if (param->hasAttr(attrs::kPruned)) {
        auto scalarType = RankedTensorType::get({}, type.getElementType());
        Value zero = ConstantOp::create(
            b, loc, scalarType,
            cast<ElementsAttr>(DenseElementsAttr::get(
                scalarType,
                Attribute(FloatAttr::get(type.getElementType(), 0.0)))));
        Value isPruned =
            CompareOp::create(b, loc, ComparePredicate::eq, p, zero);
        updated = SelectOp::create(b, loc, isPruned, p, updated);
      }
      u.write(name, updated);
    }
    func::ReturnOp::create(b, loc, ValueRange{lossValue, norm});
    return success();
  }

  void buildEvalStep(ModuleOp module, func::FuncOp loss) {
    OpBuilder b(module.getContext());
    b.setInsertionPointToEnd(module.getBody());
    auto eval = func::FuncOp::create(b, loss.getLoc(), KILN_ENTRY_EVAL_STEP,
                                     loss.getFunctionType());
    for (unsigned i = 0; i < loss.getNumArguments(); ++i)
      eval.setArgAttrs(i, loss.getArgAttrDict(i));
    eval.setResultAttrs(0, b.getDictionaryAttr(b.getNamedAttr(
                               attrs::kName, b.getStringAttr("loss"))));
    Block *body = eval.addEntryBlock();
    b.setInsertionPointToStart(body);
    auto call = func::CallOp::create(b, loss.getLoc(), loss,
                                     body->getArguments());
    func::ReturnOp::create(b, loss.getLoc(), call.getResults());
  }
};
} // namespace
