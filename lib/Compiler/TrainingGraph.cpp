//===- TrainingGraph.cpp - Training entry points from a model -------------===//
//
// The language-model loss built on `forward`, then train_step and
// eval_step through kiln-optimizer (which runs kiln-autodiff), inlined.
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/TrainingGraph.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/Extensions/InlinerExtension.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
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

namespace {

/// An extra input of an objective function: its name and, for float
/// inputs, rank (its element type is the logits').
struct ExtraInput {
  StringRef name;
  /// The dims: -1 is the batch (logits' dim 0), -2 the sequence (dim 1).
  SmallVector<int64_t> dims;
  bool integer = false;
};

/// Begins `func.func @<name>(<forward's inputs>, targets, <extra>) ->
/// <result>` whose body calls forward; `logits` is the call's result.
/// `targets` has the logits' shape without the vocab dim, i64, and the
/// max shape of the ids.
llvm::Expected<func::FuncOp>
beginObjective(ModuleOp module, StringRef name, StringRef what,
               ArrayRef<ExtraInput> extra, bool tokenResult,
               StringRef resultName, Value &logits) {
  auto fail = [](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   message.str());
  };
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || forward.isExternal())
    return fail("the model has no 'forward' function to build " + what +
                " on (or give the module a 'loss' function)");
  auto logitsType = forward.getNumResults() == 1
                        ? dyn_cast<RankedTensorType>(forward.getResultTypes()[0])
                        : RankedTensorType();
  if (!logitsType || logitsType.getRank() < 2 ||
      !isa<FloatType>(logitsType.getElementType()))
    return fail("'forward' must return one float logits tensor [..., vocab] "
                "for " + what + "; found " +
                llvm::formatv("{0}", forward.getFunctionType()).str() +
                " (give the module a 'loss' function instead)");
  if (!extra.empty() && logitsType.getRank() != 3)
    return fail(what + " needs logits [batch, seq, vocab]; 'forward' returns " +
                llvm::formatv("{0}", logitsType).str());

  OpBuilder builder(module.getContext());
  builder.setInsertionPointToEnd(module.getBody());
  Location loc = forward.getLoc();
  Type floatType = logitsType.getElementType();
  auto targetsType = RankedTensorType::get(logitsType.getShape().drop_back(),
                                           builder.getI64Type());
  SmallVector<Type> inputs(forward.getArgumentTypes());
  inputs.push_back(targetsType);
  for (const ExtraInput &input : extra) {
    SmallVector<int64_t> shape;
    for (int64_t d : input.dims)
      shape.push_back(d == -1 ? logitsType.getDimSize(0)
                              : d == -2 ? logitsType.getDimSize(1) : d);
    inputs.push_back(RankedTensorType::get(
        shape, input.integer ? Type(builder.getI64Type()) : floatType));
  }
  Type resultType = tokenResult ? Type(RankedTensorType::get(
                                      targetsType.getShape(), floatType))
                                : Type(RankedTensorType::get({}, floatType));
  auto func = func::FuncOp::create(builder, loc, name,
                                   builder.getFunctionType(inputs, resultType));
  unsigned targetsIndex = forward.getNumArguments();
  for (unsigned i = 0; i < targetsIndex; ++i)
    func.setArgAttrs(i, forward.getArgAttrDict(i));
  func.setArgAttr(targetsIndex, attrs::kName, builder.getStringAttr("targets"));
  for (auto [i, input] : llvm::enumerate(extra))
    func.setArgAttr(targetsIndex + 1 + i, attrs::kName,
                    builder.getStringAttr(input.name));
  // The targets take the max shape of an input of the same rank (the ids),
  // and so do the extra inputs' batch and sequence dims.
  for (unsigned i = 0; i < targetsIndex; ++i) {
    auto type = dyn_cast<RankedTensorType>(forward.getArgumentTypes()[i]);
    auto max = forward.getArgAttrOfType<DenseI64ArrayAttr>(i, attrs::kMaxShape);
    if (type && max && type.getRank() == targetsType.getRank()) {
      func.setArgAttr(targetsIndex, attrs::kMaxShape, max);
      for (auto [e, input] : llvm::enumerate(extra)) {
        SmallVector<int64_t> limits;
        bool limited = false;
        for (int64_t d : input.dims) {
          int64_t at = d == -1 ? 0 : d == -2 ? 1 : -1;
          limits.push_back(at >= 0 && at < static_cast<int64_t>(max.size())
                               ? max[at]
                               : d);
          limited |= at >= 0 && at < static_cast<int64_t>(max.size()) &&
                     max[at] >= 0;
        }
        if (limited)
          func.setArgAttr(targetsIndex + 1 + e, attrs::kMaxShape,
                          builder.getDenseI64ArrayAttr(limits));
      }
      break;
    }
  }
  func.setResultAttr(0, attrs::kName, builder.getStringAttr(resultName));
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToStart(body);
  auto call = func::CallOp::create(builder, loc, forward,
                                   body->getArguments().take_front(targetsIndex));
  logits = call.getResult(0);
  return func;
}

/// Elementwise arithmetic on one element type, for the objectives.
class Math {
public:
  Math(OpBuilder &b, Location loc, Type type) : b(b), loc(loc), type(type) {}
  Value constant(double value) {
    auto scalar = RankedTensorType::get({}, type);
    return ConstantOp::create(
        b, loc, scalar,
        cast<ElementsAttr>(DenseElementsAttr::get(
            scalar, Attribute(FloatAttr::get(type, value)))));
  }
  Value add(Value x, Value y) { return AddOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return SubOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return MulOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return DivOp::create(b, loc, x, y); }
  Value max(Value x, Value y) { return MaxOp::create(b, loc, x, y); }
  Value min(Value x, Value y) { return MinOp::create(b, loc, x, y); }
  Value exp(Value x) { return ExpOp::create(b, loc, x); }
  Value clamp(Value x, Value low, Value high) { return min(max(x, low), high); }
  /// Rows [start, start + count) of a [rows] vector.
  Value rows(Value x, int64_t start, int64_t count) {
    return SliceOp::create(b, loc, x, b.getI64IntegerAttr(0),
                           b.getI64IntegerAttr(start),
                           b.getI64IntegerAttr(start + count),
                           b.getI64IntegerAttr(1));
  }
  Value neg(Value x) { return NegOp::create(b, loc, x); }
  Value sum(Value x, int64_t axis) {
    return ReduceOp::create(b, loc, ReduceKind::sum, x,
                            ArrayRef<int64_t>{axis}, /*keepdim=*/false);
  }
  Value mean(Value x) {
    auto type = cast<RankedTensorType>(x.getType());
    SmallVector<int64_t> axes =
        llvm::to_vector(llvm::seq<int64_t>(0, type.getRank()));
    return ReduceOp::create(b, loc, ReduceKind::mean, x, axes,
                            /*keepdim=*/false);
  }
  /// log(1 + exp(x)) without overflow: max(x, 0) + log(1 + exp(-|x|)).
  Value softplus(Value x) {
    // One op per statement: the order of the ops does not depend on the
    // order a compiler evaluates arguments in.
    Value one = constant(1.0);
    Value decay = exp(neg(AbsOp::create(b, loc, x)));
    Value tail = LogOp::create(b, loc, add(one, decay));
    Value zero = constant(0.0);
    return add(max(x, zero), tail);
  }
  /// The log-probability of each target token, 0 where it is -100.
  Value tokenLogProbs(Value logits, Value targets) {
    return neg(CrossEntropyOp::create(b, loc, logits, targets,
                                      /*ignore_index=*/-100,
                                      LossReduction::none));
  }
  /// 1 where the target is a token, 0 where it is -100.
  Value targetMask(Value targets) {
    auto targetsType = cast<RankedTensorType>(targets.getType());
    auto ignore = RankedTensorType::get({}, targetsType.getElementType());
    Value ignored = ConstantOp::create(
        b, loc, ignore,
        cast<ElementsAttr>(DenseElementsAttr::get(
            ignore, Attribute(IntegerAttr::get(targetsType.getElementType(),
                                               -100)))));
    Value kept = CompareOp::create(b, loc, ComparePredicate::ne, targets,
                                   ignored);
    return CastOp::create(
        b, loc, RankedTensorType::get(targetsType.getShape(), type), kept);
  }

private:
  OpBuilder &b;
  Location loc;
  Type type;
};

/// The pair objectives (DPO, the reward model) take the chosen responses in
/// the first half of the batch and the rejected ones in the second: a
/// static, even batch.
llvm::Error checkPairRows(int64_t rows, StringRef what) {
  if (!ShapedType::isDynamic(rows) && rows >= 2 && rows % 2 == 0)
    return llvm::Error::success();
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      what + " pairs the first half of a batch (chosen responses) with the "
             "second (rejected ones): compile it with a static, even --batch "
             "(twice the pairs per step)" +
          (rows > 0 ? ", not " + std::to_string(rows) : std::string()));
}

/// The argument of an objective function named `name` (its kiln.name):
/// "targets", or one of the ExtraInputs beginObjective added.
Value input(func::FuncOp func, StringRef name) {
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    if (auto attr = func.getArgAttrOfType<StringAttr>(i, attrs::kName))
      if (attr.getValue() == name)
        return func.getArgument(i);
  llvm_unreachable("beginObjective declared every input it is asked for");
}

llvm::Error finishObjective(func::FuncOp func, Value result, StringRef what) {
  OpBuilder builder = OpBuilder::atBlockEnd(&func.getBody().front());
  func::ReturnOp::create(builder, func.getLoc(), result);
  if (failed(verify(func)))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (what + " does not verify").str());
  return llvm::Error::success();
}

} // namespace

llvm::Error mlir::kiln::addLanguageModelLoss(ModuleOp module) {
  if (module.lookupSymbol("loss"))
    return llvm::Error::success();
  Value logits;
  llvm::Expected<func::FuncOp> loss =
      beginObjective(module, "loss", "the language-model loss", {},
                     /*tokenResult=*/false, "loss", logits);
  if (!loss)
    return loss.takeError();
  OpBuilder b = OpBuilder::atBlockEnd(&loss->getBody().front());
  Value value = CrossEntropyOp::create(
      b, loss->getLoc(), logits, loss->getArguments().back(),
      /*ignore_index=*/-100, LossReduction::mean);
  return finishObjective(*loss, value, "the language-model loss");
}

llvm::Error mlir::kiln::addTokenLogProbs(ModuleOp module) {
  if (module.lookupSymbol(KILN_ENTRY_TOKEN_LOGPROBS))
    return llvm::Error::success();
  Value logits;
  llvm::Expected<func::FuncOp> func =
      beginObjective(module, KILN_ENTRY_TOKEN_LOGPROBS, "token_logprobs", {},
                     /*tokenResult=*/true, "logprobs", logits);
  if (!func)
    return func.takeError();
  OpBuilder b = OpBuilder::atBlockEnd(&func->getBody().front());
  Math m(b, func->getLoc(), getElementTypeOrSelf(logits.getType()));
  return finishObjective(
      *func, m.tokenLogProbs(logits, func->getArguments().back()),
      "token_logprobs");
}

llvm::Error mlir::kiln::addPreferenceLoss(ModuleOp module) {
  if (module.lookupSymbol("loss"))
    return llvm::Error::success();
  Value logits;
  llvm::Expected<func::FuncOp> loss = beginObjective(
      module, "loss", "the DPO loss",
      {{"reference_logprobs", {-1}}, {"beta", {}}, {"nll_coef", {}}},
      /*tokenResult=*/false,
      "loss", logits);
  if (!loss)
    return loss.takeError();
  int64_t rows = cast<RankedTensorType>(logits.getType()).getDimSize(0);
  if (llvm::Error error = checkPairRows(rows, "the DPO loss")) {
    loss->erase();
    return error;
  }
  OpBuilder b = OpBuilder::atBlockEnd(&loss->getBody().front());
  Location loc = loss->getLoc();
  Math m(b, loc, getElementTypeOrSelf(logits.getType()));
  Value targets = input(*loss, "targets"),
        reference = input(*loss, "reference_logprobs"),
        beta = input(*loss, "beta"), nllCoef = input(*loss, "nll_coef");
  // Summed response log-probabilities, relative to the reference's.
  Value summed = m.sum(m.tokenLogProbs(logits, targets), 1);
  Value relative = m.sub(summed, reference);
  int64_t pairs = rows / 2;
  // (Named locals keep the ops in one order whatever order a compiler
  // evaluates arguments in.)
  Value chosen = m.rows(relative, 0, pairs);
  Value rejected = m.rows(relative, pairs, pairs);
  Value margin = m.mul(beta, m.sub(chosen, rejected));
  Value dpo = m.mean(m.softplus(m.neg(margin)));
  // The chosen responses' mean negative log-likelihood per token, weighted
  // by nll_coef (0: plain DPO).
  Value chosenTokens = m.sum(m.rows(m.sum(m.targetMask(targets), 1), 0, pairs), 0);
  Value chosenLogProb = m.sum(m.rows(summed, 0, pairs), 0);
  Value one = m.constant(1.0);
  Value nll = m.div(m.neg(chosenLogProb), m.max(chosenTokens, one));
  return finishObjective(*loss, m.add(dpo, m.mul(nllCoef, nll)),
                         "the DPO loss");
}

llvm::Error mlir::kiln::addPolicyLoss(ModuleOp module) {
  if (module.lookupSymbol("loss"))
    return llvm::Error::success();
  Value logits;
  llvm::Expected<func::FuncOp> loss = beginObjective(
      module, "loss", "the GRPO loss",
      {{"sample_logprobs", {-1, -2}},
       {"reference_logprobs", {-1, -2}},
       {"advantages", {-1}},
       {"kl_coef", {}},
       {"clip", {}}},
      /*tokenResult=*/false, "loss", logits);
  if (!loss)
    return loss.takeError();
  OpBuilder b = OpBuilder::atBlockEnd(&loss->getBody().front());
  Location loc = loss->getLoc();
  Math m(b, loc, getElementTypeOrSelf(logits.getType()));
  Value targets = input(*loss, "targets"),
        sampled = input(*loss, "sample_logprobs"),
        reference = input(*loss, "reference_logprobs"),
        advantages = input(*loss, "advantages"),
        klCoef = input(*loss, "kl_coef"), clip = input(*loss, "clip");
  Value logp = m.tokenLogProbs(logits, targets);
  Value mask = m.targetMask(targets);
  // [B] -> [B, 1], broadcast over the tokens.
  auto advType = cast<RankedTensorType>(advantages.getType());
  Value advantage = ReshapeOp::create(
      b, loc, RankedTensorType::get({advType.getDimSize(0), 1},
                                    advType.getElementType()),
      advantages);
  Value ratio = m.exp(m.sub(logp, sampled));
  // (Named locals keep the ops in one order whatever order a compiler
  // evaluates arguments in.)
  Value one = m.constant(1.0);
  Value low = m.sub(one, clip);
  Value high = m.add(one, clip);
  Value clipped = m.clamp(ratio, low, high);
  Value unclippedTerm = m.mul(ratio, advantage);
  Value clippedTerm = m.mul(clipped, advantage);
  Value surrogate = m.min(unclippedTerm, clippedTerm);
  Value logRatio = m.sub(reference, logp);
  Value kl = m.sub(m.sub(m.exp(logRatio), logRatio), one);
  Value perToken = m.mul(m.neg(m.sub(surrogate, m.mul(klCoef, kl))), mask);
  // Each row's mean over its response tokens (a row without any counts 0).
  Value rowLoss = m.sum(perToken, 1);
  Value rowTokens = m.max(m.sum(mask, 1), one);
  Value perRow = m.div(rowLoss, rowTokens);
  return finishObjective(*loss, m.mean(perRow), "the GRPO loss");
}

llvm::Error mlir::kiln::addRewardLoss(ModuleOp module) {
  auto fail = [](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   message.str());
  };
  if (module.lookupSymbol("loss"))
    return llvm::Error::success();
  auto score = module.lookupSymbol<func::FuncOp>("score");
  if (!score || score.isExternal() || score.getNumArguments() != 2 ||
      score.getNumResults() != 1)
    return fail("the reward-model loss needs a 'score(input_ids, lengths) -> "
                "scores' function (a causal LM built with a score head)");
  auto scores = cast<RankedTensorType>(score.getResultTypes()[0]);
  int64_t rows = scores.getRank() == 1 ? scores.getDimSize(0) : -1;
  if (llvm::Error error = checkPairRows(rows, "the reward-model loss"))
    return error;
  OpBuilder builder(module.getContext());
  builder.setInsertionPointToEnd(module.getBody());
  Location loc = score.getLoc();
  auto loss = func::FuncOp::create(
      builder, loc, "loss",
      builder.getFunctionType(score.getArgumentTypes(),
                              RankedTensorType::get({}, scores.getElementType())));
  for (unsigned i = 0; i < score.getNumArguments(); ++i)
    loss.setArgAttrs(i, score.getArgAttrDict(i));
  loss.setResultAttr(0, attrs::kName, builder.getStringAttr("loss"));
  Block *body = loss.addEntryBlock();
  builder.setInsertionPointToStart(body);
  Value s =
      func::CallOp::create(builder, loc, score, body->getArguments()).getResult(0);
  Math m(builder, loc, scores.getElementType());
  Value chosen = m.rows(s, 0, rows / 2);
  Value rejected = m.rows(s, rows / 2, rows / 2);
  Value margin = m.sub(chosen, rejected);
  return finishObjective(loss, m.mean(m.softplus(m.neg(margin))),
                         "the reward-model loss");
}

llvm::Error mlir::kiln::addPPOLoss(ModuleOp module) {
  if (module.lookupSymbol("loss"))
    return llvm::Error::success();
  auto valuesFn = module.lookupSymbol<func::FuncOp>("values");
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!valuesFn || !forward || valuesFn.getNumArguments() != 1 ||
      forward.getNumArguments() != 1)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "the PPO loss needs 'forward(input_ids)' and the value head's "
        "'values(input_ids)' (a causal LM built with a value head, without "
        "attention_mask or position_ids inputs)");
  Value logits;
  llvm::Expected<func::FuncOp> loss = beginObjective(
      module, "loss", "the PPO loss",
      {{"sample_logprobs", {-1, -2}},
       {"advantages", {-1, -2}},
       {"returns", {-1, -2}},
       {"sample_values", {-1, -2}},
       {"clip", {}},
       {"value_clip", {}},
       {"vf_coef", {}}},
      /*tokenResult=*/false, "loss", logits);
  if (!loss)
    return loss.takeError();
  OpBuilder b = OpBuilder::atBlockEnd(&loss->getBody().front());
  Location loc = loss->getLoc();
  Math m(b, loc, getElementTypeOrSelf(logits.getType()));
  Value ids = loss->getArgument(0), targets = input(*loss, "targets"),
        sampled = input(*loss, "sample_logprobs"),
        advantages = input(*loss, "advantages"),
        returns = input(*loss, "returns"),
        oldValues = input(*loss, "sample_values"), clip = input(*loss, "clip"),
        valueClip = input(*loss, "value_clip"),
        vfCoef = input(*loss, "vf_coef");
  Value values = func::CallOp::create(b, loc, valuesFn, ValueRange{ids})
                     .getResult(0);
  // One op per statement: the op order does not depend on the compiler's
  // argument evaluation order.
  Value logp = m.tokenLogProbs(logits, targets);
  Value mask = m.targetMask(targets);
  Value one = m.constant(1.0);
  Value tokens = m.max(m.sum(m.sum(mask, 1), 0), one);
  Value ratio = m.exp(m.sub(logp, sampled));
  Value low = m.sub(one, clip);
  Value high = m.add(one, clip);
  Value clipped = m.clamp(ratio, low, high);
  Value negA = m.neg(advantages);
  Value unclippedTerm = m.mul(negA, ratio);
  Value clippedTerm = m.mul(negA, clipped);
  Value policyTerms = m.mul(m.max(unclippedTerm, clippedTerm), mask);
  Value policyLoss = m.div(m.sum(m.sum(policyTerms, 1), 0), tokens);
  Value change = m.sub(values, oldValues);
  Value negClip = m.neg(valueClip);
  Value limited = m.clamp(change, negClip, valueClip);
  Value clippedValues = m.add(oldValues, limited);
  Value error = m.sub(values, returns);
  Value clippedError = m.sub(clippedValues, returns);
  Value squared = m.mul(error, error);
  Value clippedSquared = m.mul(clippedError, clippedError);
  Value half = m.constant(0.5);
  Value valueTerms =
      m.mul(m.mul(half, m.max(squared, clippedSquared)), mask);
  Value valueLoss = m.div(m.sum(m.sum(valueTerms, 1), 0), tokens);
  return finishObjective(*loss, m.add(policyLoss, m.mul(vfCoef, valueLoss)),
                         "the PPO loss");
}

llvm::Error mlir::kiln::addDistillationLoss(ModuleOp module,
                                            HiddenStateTerm hiddenTerm) {
  if (module.lookupSymbol("loss"))
    return llvm::Error::success();
  // The teacher's logits have the model's vocabulary, its hidden states the
  // width of the model's (projected) hidden_states.
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  int64_t vocab = 0;
  if (forward && forward.getNumResults() == 1)
    if (auto type = dyn_cast<RankedTensorType>(forward.getResultTypes()[0]))
      vocab = type.getShape().back();
  SmallVector<ExtraInput> extra = {{"teacher_logits", {-1, -2, vocab}},
                                   {"alpha", {}},
                                   {"temperature", {}},
                                   {"reverse", {}}};
  func::FuncOp hiddenFn;
  if (hiddenTerm != HiddenStateTerm::None) {
    hiddenFn = module.lookupSymbol<func::FuncOp>("hidden_states");
    auto type = hiddenFn && hiddenFn.getNumArguments() == 1 &&
                        hiddenFn.getNumResults() == 1
                    ? dyn_cast<RankedTensorType>(hiddenFn.getResultTypes()[0])
                    : RankedTensorType();
    if (!type || type.getRank() != 3 || !forward ||
        forward.getNumArguments() != 1)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "the distillation loss's hidden-state term needs "
          "'forward(input_ids)' and 'hidden_states(input_ids) -> [batch, "
          "seq, width]' (a causal LM built with --hidden-states, without "
          "attention_mask or position_ids inputs)");
    extra.push_back({"teacher_hidden", {-1, -2, type.getShape().back()}});
    extra.push_back({"hidden_coef", {}});
  }
  Value logits;
  llvm::Expected<func::FuncOp> loss =
      beginObjective(module, "loss", "the distillation loss", extra,
                     /*tokenResult=*/false, "loss", logits);
  if (!loss)
    return loss.takeError();
  OpBuilder b = OpBuilder::atBlockEnd(&loss->getBody().front());
  Location loc = loss->getLoc();
  Math m(b, loc, getElementTypeOrSelf(logits.getType()));
  Value targets = input(*loss, "targets"),
        teacher = input(*loss, "teacher_logits"),
        alpha = input(*loss, "alpha"),
        temperature = input(*loss, "temperature"),
        reverse = input(*loss, "reverse");
  // One op per statement: the op order does not depend on the compiler's
  // argument evaluation order.
  Value one = m.constant(1.0);
  Value mask = m.targetMask(targets);
  Value tokens = m.max(m.sum(m.sum(mask, 1), 0), one);
  // The mixed divergence per token: with lt, ls the log-probabilities at
  // temperature T, sum_v ((1 - λ)·exp(lt) - λ·exp(ls))·(lt - ls).
  Value scaledStudent = m.div(logits, temperature);
  Value scaledTeacher = m.div(teacher, temperature);
  Value ls = LogSoftmaxOp::create(b, loc, scaledStudent, -1);
  Value lt = LogSoftmaxOp::create(b, loc, scaledTeacher, -1);
  Value forwardWeight = m.sub(one, reverse);
  Value teacherTerm = m.mul(forwardWeight, m.exp(lt));
  Value studentTerm = m.mul(reverse, m.exp(ls));
  Value weight = m.sub(teacherTerm, studentTerm);
  Value gap = m.sub(lt, ls);
  Value perToken = m.sum(m.mul(weight, gap), 2);
  Value divergence = m.div(m.sum(m.sum(m.mul(perToken, mask), 1), 0), tokens);
  Value crossEntropy = CrossEntropyOp::create(b, loc, logits, targets,
                                              /*ignore_index=*/-100,
                                              LossReduction::mean);
  Value squaredT = m.mul(temperature, temperature);
  Value soft = m.mul(m.mul(alpha, squaredT), divergence);
  Value hardWeight = m.sub(one, alpha);
  Value hard = m.mul(hardWeight, crossEntropy);
  Value total = m.add(soft, hard);
  if (hiddenTerm != HiddenStateTerm::None) {
    Value teacherHidden = input(*loss, "teacher_hidden");
    Value coef = input(*loss, "hidden_coef");
    Value student = func::CallOp::create(b, loc, hiddenFn,
                                         ValueRange{loss->getArgument(0)})
                        .getResult(0);
    Value term;
    if (hiddenTerm == HiddenStateTerm::MSE) {
      Value difference = m.sub(student, teacherHidden);
      Value squared = m.mul(difference, difference);
      term = ReduceOp::create(b, loc, ReduceKind::mean, squared,
                              ArrayRef<int64_t>{2}, /*keepdim=*/false);
    } else {
      // 1 - x·y / sqrt(max(|x|²·|y|², eps²)), as torch's cosine_similarity
      // with eps 1e-8.
      Value dot = m.sum(m.mul(student, teacherHidden), 2);
      Value xx = m.sum(m.mul(student, student), 2);
      Value yy = m.sum(m.mul(teacherHidden, teacherHidden), 2);
      Value floor = m.constant(1e-16);
      Value norms = SqrtOp::create(b, loc, m.max(m.mul(xx, yy), floor));
      term = m.sub(one, m.div(dot, norms));
    }
    Value hiddenLoss = m.div(m.sum(m.sum(m.mul(term, mask), 1), 0), tokens);
    total = m.add(total, m.mul(coef, hiddenLoss));
  }
  return finishObjective(*loss, total, "the distillation loss");
}

llvm::Error mlir::kiln::addContrastiveLoss(ModuleOp module) {
  if (module.lookupSymbol("loss"))
    return llvm::Error::success();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  auto resultNamed = [&](StringRef name) -> int {
    for (unsigned i = 0; forward && i < forward.getNumResults(); ++i)
      if (auto attr = forward.getResultAttrOfType<StringAttr>(i, attrs::kName))
        if (attr.getValue() == name)
          return static_cast<int>(i);
    return -1;
  };
  int perImageIndex = resultNamed("logits_per_image");
  int perTextIndex = resultNamed("logits_per_text");
  if (!forward || forward.isExternal() || perImageIndex < 0 ||
      perTextIndex < 0)
    return error("the contrastive loss needs a 'forward' that returns "
                 "logits_per_image and logits_per_text (a clip model)");
  auto scoresType =
      cast<RankedTensorType>(forward.getResultTypes()[perTextIndex]);
  OpBuilder builder(module.getContext());
  builder.setInsertionPointToEnd(module.getBody());
  Location loc = forward.getLoc();
  Type floatType = scoresType.getElementType();
  auto loss = func::FuncOp::create(
      builder, loc, "loss",
      builder.getFunctionType(forward.getArgumentTypes(),
                              RankedTensorType::get({}, floatType)));
  for (unsigned i = 0; i < forward.getNumArguments(); ++i)
    loss.setArgAttrs(i, forward.getArgAttrDict(i));
  loss.setResultAttr(0, attrs::kName, builder.getStringAttr("loss"));
  Block *body = loss.addEntryBlock();
  builder.setInsertionPointToStart(body);
  auto call = func::CallOp::create(builder, loc, forward, body->getArguments());
  Value perImage = call.getResult(perImageIndex);
  Value perText = call.getResult(perTextIndex);
  // Row i's pair is column i: labels 0..B-1.
  int64_t rows = scoresType.getDimSize(0);
  auto labelsType = RankedTensorType::get({rows}, builder.getI64Type());
  SmallVector<Value> sizes;
  if (ShapedType::isDynamic(rows))
    sizes.push_back(tensor::DimOp::create(builder, loc, perText, 0));
  Value labels = IotaOp::create(builder, loc, labelsType, sizes, /*dim=*/0);
  Math m(builder, loc, floatType);
  Value textLoss = CrossEntropyOp::create(builder, loc, perText, labels,
                                          /*ignore_index=*/-100,
                                          LossReduction::mean);
  Value imageLoss = CrossEntropyOp::create(builder, loc, perImage, labels,
                                           /*ignore_index=*/-100,
                                           LossReduction::mean);
  Value sum = m.add(textLoss, imageLoss);
  return finishObjective(loss, m.mul(sum, m.constant(0.5)),
                         "the contrastive loss");
}

std::optional<TrainingObjective>
mlir::kiln::parseTrainingObjective(llvm::StringRef name) {
  if (name == "contrastive")
    return TrainingObjective::Contrastive;
  if (name == "distill")
    return TrainingObjective::Distillation;
  if (name == "ppo")
    return TrainingObjective::PPO;
  if (name == "reward")
    return TrainingObjective::Reward;
  if (name == "lm")
    return TrainingObjective::LanguageModel;
  if (name == "dpo")
    return TrainingObjective::Preference;
  if (name == "grpo")
    return TrainingObjective::Policy;
  return std::nullopt;
}

llvm::StringRef mlir::kiln::trainingObjectiveName(TrainingObjective objective) {
  switch (objective) {
  case TrainingObjective::LanguageModel:
    return "lm";
  case TrainingObjective::Preference:
    return "dpo";
  case TrainingObjective::Policy:
    return "grpo";
  case TrainingObjective::Reward:
    return "reward";
  case TrainingObjective::PPO:
    return "ppo";
  case TrainingObjective::Distillation:
    return "distill";
  case TrainingObjective::Contrastive:
    return "contrastive";
  }
  llvm_unreachable("unknown objective");
}

llvm::Error
mlir::kiln::buildTrainingEntryPoints(ModuleOp module,
                                     const TrainingOptions &options) {
  if (options.optimizer != "adamw" && options.optimizer != "sgd")
    return error("unknown optimizer '" + options.optimizer +
                 "' (expected adamw or sgd)");
  // The objective's loss, and whether its driver scores sequences with
  // token_logprobs.
  llvm::Error (*addLoss)(ModuleOp) = nullptr;
  bool logprobs = true;
  switch (options.objective) {
  case TrainingObjective::LanguageModel:
    addLoss = addLanguageModelLoss;
    logprobs = false;
    break;
  case TrainingObjective::Preference:
    addLoss = addPreferenceLoss;
    break;
  case TrainingObjective::Policy:
    addLoss = addPolicyLoss;
    break;
  case TrainingObjective::Reward:
    addLoss = addRewardLoss;
    logprobs = false;
    break;
  case TrainingObjective::PPO:
    addLoss = addPPOLoss;
    break;
  case TrainingObjective::Distillation:
    logprobs = false;
    break;
  case TrainingObjective::Contrastive:
    addLoss = addContrastiveLoss;
    logprobs = false;
    break;
  }
  if (llvm::Error err =
          addLoss ? addLoss(module)
                  : addDistillationLoss(module, options.hiddenTerm))
    return err;
  if (logprobs)
    if (llvm::Error err = addTokenLogProbs(module))
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
  // The objective inlined and deduplicated first: a loss that calls two
  // entry points on the same inputs (forward and values or hidden_states)
  // then differentiates one trunk, not two.
  pm.addPass(createInlinerPass());
  pm.addPass(createCSEPass());
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
