//===- FuseElementwise.cpp - Elementwise fusion without recomputation -----===//
//
// linalg elementwise fusion restricted to consumers that read each fused
// value once, with producers shared by several consumers recomputed where
// that is cheaper than memory, or yielded by the fused op (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_FUSEELEMENTWISEWITHOUTRECOMPUTATIONPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Whether `producer`'s values, used by `consumer` and by other ops, can
/// be computed by the fused op: the consumer runs over the same points as
/// the producer (all its loops parallel), and every other user comes after
/// it in the same block (the fused op, placed at the consumer, yields the
/// producer's results for them).
bool canPreserveProducer(Operation *producer, linalg::LinalgOp consumer) {
  if (consumer.getNumLoops() != consumer.getNumParallelLoops())
    return false;
  // A consumer that also writes into the producer's values would need
  // them before the fused op computes them.
  for (OpOperand &init : consumer.getDpsInitsMutable())
    if (init.get().getDefiningOp() == producer)
      return false;
  Block *block = consumer->getBlock();
  for (Operation *user : producer->getUsers()) {
    if (user == consumer.getOperation())
      continue;
    Operation *ancestor = block->findAncestorOpInBlock(*user);
    if (!ancestor || ancestor == consumer.getOperation() ||
        !consumer->isBeforeInBlock(ancestor))
      return false;
  }
  return producer->getBlock() == block;
}

/// Whether each consumer of `producer` may compute its values again rather
/// than read them from memory: the producer reads at most one operand of
/// its own size, of elements no wider than its own (the others are
/// broadcasts: a row's maximum, a scalar, an index vector), so a consumer
/// that recomputes reads no more than it would have, and the intermediate
/// is never written; and its body is a few scalar ops that read no memory
/// themselves. A softmax's exponentials (read by the sum and by the
/// backward), a cross-entropy's one-hot mask (by the loss and by its
/// gradient) are such values.
bool cheapToRecompute(Operation *op) {
  auto producer = dyn_cast<linalg::GenericOp>(op);
  if (!producer)
    return false;
  // An operand is a broadcast when its indexing map leaves out a loop of
  // more than one iteration (or of a dynamic count); one that leaves out
  // only unit loops (a [S, D] position table added to a [1, S, D] batch)
  // is as large as the producer's result.
  SmallVector<int64_t> ranges = producer.getStaticLoopRanges();
  int64_t fullSize = 0;
  for (OpOperand *input : producer.getDpsInputOperands()) {
    AffineMap map = producer.getMatchingIndexingMap(input);
    bool broadcast = false;
    for (auto [dim, range] : llvm::enumerate(ranges))
      if (range != 1 && !map.isFunctionOfDim(dim))
        broadcast = true;
    if (broadcast)
      continue;
    ++fullSize;
    // A narrowing producer (f32 to bf16, a compare to i1) is cheaper to
    // read than its input.
    Type in = getElementTypeOrSelf(input->get().getType());
    if (!in.isIntOrFloat())
      return false;
    for (Value result : producer->getResults()) {
      Type out = getElementTypeOrSelf(result.getType());
      if (!out.isIntOrFloat() ||
          in.getIntOrFloatBitWidth() > out.getIntOrFloatBitWidth())
        return false;
    }
  }
  for (OpOperand &init : producer.getDpsInitsMutable())
    if (producer.payloadUsesValueFromOperand(&init))
      return false;
  // Scalar arithmetic only: a body that reads memory itself (an embedding
  // row gathered with tensor.extract) would read it again in each user.
  constexpr int64_t kMaxOps = 12;
  int64_t ops = 0;
  for (Operation &nested : producer.getBody()->without_terminator()) {
    if (++ops > kMaxOps)
      return false;
    if (!isa<arith::ArithDialect, math::MathDialect>(nested.getDialect()) &&
        !isa<linalg::IndexOp>(nested))
      return false;
  }
  return fullSize <= 1;
}

/// Fuses a producer that has users besides `consumer` into it and gives
/// those users the fused op's copy of the producer's values: one pass over
/// memory instead of a write and a read back (an optimizer update's new
/// moments, written to their state and read by the parameter's update).
/// Upstream's pattern leaves the producer to its other users, so the
/// fused op would compute the same values a second time.
struct FuseSharedProducer : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(linalg::GenericOp consumer,
                                PatternRewriter &rewriter) const final {
    for (OpOperand &operand : consumer->getOpOperands()) {
      Operation *producer = operand.get().getDefiningOp();
      if (!producer || producer->hasOneUse() ||
          !linalg::areElementwiseOpsFusable(&operand) ||
          !consumer.getMatchingIndexingMap(&operand).isPermutation() ||
          cheapToRecompute(producer) ||
          !canPreserveProducer(producer, consumer))
        continue;
      FailureOr<linalg::ElementwiseOpFusionResult> fused =
          linalg::fuseElementwiseOps(rewriter, &operand);
      if (failed(fused))
        return failure();
      for (auto [original, replacement] : fused->replacements)
        rewriter.replaceUsesWithIf(original, replacement, [&](OpOperand &use) {
          return use.getOwner() != fused->fusedOp;
        });
      rewriter.eraseOp(consumer);
      if (producer->use_empty())
        rewriter.eraseOp(producer);
      return success();
    }
    return failure();
  }
};

/// Elementwise fusion that never recomputes what costs more than reading
/// it: a producer is fused into a consumer only when the consumer reads
/// each of its values once (the operand's indexing map is a permutation of
/// all the consumer's loops). Upstream's default also fuses into
/// contractions, where a layer_norm feeding a matmul would be recomputed
/// for every output column. A producer with several users is fused into
/// each of them when it is cheap to recompute, and otherwise into its
/// first elementwise user, which then yields its values for the rest.
struct FuseElementwiseWithoutRecomputationPass
    : kiln::impl::FuseElementwiseWithoutRecomputationPassBase<
          FuseElementwiseWithoutRecomputationPass> {
  void runOnOperation() final {
    MLIRContext *context = &getContext();
    RewritePatternSet patterns(context);
    linalg::populateElementwiseOpsFusionPatterns(
        patterns, [](OpOperand *fused) {
          Operation *producer = fused->get().getDefiningOp();
          auto consumer = dyn_cast<linalg::LinalgOp>(fused->getOwner());
          if (!producer || !consumer ||
              !consumer.getMatchingIndexingMap(fused).isPermutation())
            return false;
          return producer->hasOneUse() || cheapToRecompute(producer);
        });
    patterns.add<FuseSharedProducer>(context);
    linalg::GenericOp::getCanonicalizationPatterns(patterns, context);
    context->getLoadedDialect<linalg::LinalgDialect>()
        ->getCanonicalizationPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
