//===- TrainingGraph.cpp - Training entry points from a model -------------===//
//
// The language-model loss built on `forward`, then train_step and
// eval_step through kiln-optimizer (which runs kiln-autodiff), inlined.
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/TrainingGraph.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/Extensions/InlinerExtension.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::kiln;

namespace {
llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(message.str());
}
} // namespace

llvm::Error mlir::kiln::addLanguageModelLoss(ModuleOp module) {
  auto fail = [](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   message.str());
  };
  if (module.lookupSymbol("loss"))
    return llvm::Error::success();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || forward.isExternal())
    return fail("the model has no 'forward' function to build a training "
                "loss on (or give the module a 'loss' function)");
  auto logits = forward.getNumResults() == 1
                    ? dyn_cast<RankedTensorType>(forward.getResultTypes()[0])
                    : RankedTensorType();
  if (!logits || logits.getRank() < 2 ||
      !isa<FloatType>(logits.getElementType()))
    return fail("'forward' must return one float logits tensor [..., vocab] "
                "for the language-model loss; found " +
                llvm::formatv("{0}", forward.getFunctionType()).str() +
                " (give the module a 'loss' function instead)");

  OpBuilder builder(module.getContext());
  builder.setInsertionPointAfter(forward);
  Location loc = forward.getLoc();
  auto targetsType = RankedTensorType::get(logits.getShape().drop_back(),
                                           builder.getI64Type());
  SmallVector<Type> inputs(forward.getArgumentTypes());
  inputs.push_back(targetsType);
  auto loss = func::FuncOp::create(
      builder, loc, "loss",
      builder.getFunctionType(inputs,
                              RankedTensorType::get({}, logits.getElementType())));
  unsigned targetsIndex = forward.getNumArguments();
  for (unsigned i = 0; i < targetsIndex; ++i)
    loss.setArgAttrs(i, forward.getArgAttrDict(i));
  loss.setArgAttr(targetsIndex, attrs::kName, builder.getStringAttr("targets"));
  // The targets take the max shape of an input of the same rank (the ids).
  for (unsigned i = 0; i < targetsIndex; ++i) {
    auto type = dyn_cast<RankedTensorType>(forward.getArgumentTypes()[i]);
    auto max = forward.getArgAttrOfType<DenseI64ArrayAttr>(i, attrs::kMaxShape);
    if (type && max && type.getRank() == targetsType.getRank()) {
      loss.setArgAttr(targetsIndex, attrs::kMaxShape, max);
      break;
    }
  }
  loss.setResultAttr(0, attrs::kName, builder.getStringAttr("loss"));
  Block *body = loss.addEntryBlock();
  builder.setInsertionPointToStart(body);
  auto call = func::CallOp::create(builder, loc, forward,
                                   body->getArguments().drop_back());
  Value value = CrossEntropyOp::create(
      builder, loc, call.getResult(0), body->getArguments().back(),
      /*ignore_index=*/-100, LossReduction::mean);
  func::ReturnOp::create(builder, loc, value);
  if (failed(verify(loss)))
    return fail("the language-model loss does not verify");
  return llvm::Error::success();
}

llvm::Error
mlir::kiln::buildTrainingEntryPoints(ModuleOp module,
                                     const TrainingOptions &options) {
  if (options.optimizer != "adamw" && options.optimizer != "sgd")
    return error("unknown optimizer '" + options.optimizer +
                 "' (expected adamw or sgd)");
  if (llvm::Error err = addLanguageModelLoss(module))
    return err;
  // Inlining needs the func dialect's inliner extension.
  DialectRegistry registry;
  func::registerInlinerExtension(registry);
  // A kept attention the fused kernels cannot take is differentiated
  // through its decomposition (Decomposition.h).
  registerKilnToLinalgInterfaces(registry);
  module.getContext()->appendDialectRegistry(registry);
  module.getContext()->loadAllAvailableDialects();
  PassManager pm(module.getContext());
  KilnOptimizerPassOptions pass;
  pass.optimizer = options.optimizer;
  pass.beta1 = options.beta1;
  pass.beta2 = options.beta2;
  pass.epsilon = options.epsilon;
  pass.weightDecay = options.weightDecay;
  pass.decayMinRank = options.decayMinRank;
  pass.momentum = options.momentum;
  pass.maxGradNorm = options.maxGradNorm;
  pass.keep = llvm::to_vector(options.keep);
  pm.addPass(createKilnOptimizerPass(pass));
  pm.addPass(createInlinerPass());
  if (failed(pm.run(module)))
    return error("building the training graph failed (see the diagnostics "
                 "above)");
  return llvm::Error::success();
}
