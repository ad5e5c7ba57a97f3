//===- WidenBF16Matmuls.cpp - bf16 matmuls on the f32 register tiles ------===//
//
// A bf16 matmul, as convert-kiln-to-linalg emits it, is a contraction of
// bf16 operands whose body widens each to f32, multiplies and adds into an
// f32 result. This pass widens the operands instead (an elementwise
// `arith.extf` generic each, under a transpose of the last two dims where
// the operand is one) and makes the contraction an f32 one, which
// kiln-tile-and-vectorize-contractions then runs on the f32 register tiles:
// a weight's widening is computed panel by panel into the panel packing
// (the f32 weight is never materialized whole), the activations' once
// before their row-tile packing. Same products and sums as the bf16 body
// (the widening is exact), so the same results up to the order of the
// sums.
//
//===----------------------------------------------------------------------===//

#include "MatmulRows.h"
#include "kiln/Target/CPU/Passes.h"
#include "kiln/Target/Common/Pipelines.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_WIDENBF16MATMULSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Whether `op`'s body is extf(lhs) * extf(rhs) + out with bf16 operands
/// and an f32 result, as convert-kiln-to-linalg builds a bf16 matmul.
bool isWideningBF16Contraction(linalg::GenericOp op) {
  if (!kiln::isKilnContraction(op, /*requireF32=*/false))
    return false;
  auto isBF16 = [](Value value) {
    return getElementTypeOrSelf(value.getType()).isBF16();
  };
  if (!isBF16(op.getDpsInputs()[0]) || !isBF16(op.getDpsInputs()[1]) ||
      !getElementTypeOrSelf(op.getDpsInits()[0].getType()).isF32())
    return false;
  return kiln::isWidenedSumOfProducts(op.getRegion().front());
}

/// `value` (a bf16 tensor) widened to f32 by an elementwise generic.
Value widen(RewriterBase &rewriter, Location loc, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, value);
  Value init =
      tensor::EmptyOp::create(rewriter, loc, sizes, rewriter.getF32Type());
  AffineMap identity = rewriter.getMultiDimIdentityMap(type.getRank());
  SmallVector<utils::IteratorType> iterators(type.getRank(),
                                             utils::IteratorType::parallel);
  return linalg::GenericOp::create(
             rewriter, loc, init.getType(), ValueRange{value}, ValueRange{init},
             ArrayRef<AffineMap>{identity, identity}, iterators,
             [](OpBuilder &b, Location bodyLoc, ValueRange args) {
               Value wide =
                   arith::ExtFOp::create(b, bodyLoc, b.getF32Type(), args[0]);
               linalg::YieldOp::create(b, bodyLoc, wide);
             })
      .getResult(0);
}

/// `operand` widened; a transpose stays the outermost op, over the widened
/// input (a transposed operand is read from the transpose's input, which is
/// then the widened weight the panel packing computes slice by slice).
Value widenOperand(RewriterBase &rewriter, Location loc, Value operand) {
  if (auto transpose = operand.getDefiningOp<linalg::TransposeOp>()) {
    Value input = widen(rewriter, loc, transpose.getInput());
    SmallVector<OpFoldResult> sizes =
        tensor::getMixedSizes(rewriter, loc, transpose.getInit());
    Value init =
        tensor::EmptyOp::create(rewriter, loc, sizes, rewriter.getF32Type());
    return linalg::TransposeOp::create(rewriter, loc, input, init,
                                       transpose.getPermutation())
        .getResult()[0];
  }
  return widen(rewriter, loc, operand);
}

/// The rows of contraction `op` (the product of its loops before k), or
/// nullopt where one of them is dynamic.
std::optional<int64_t> staticRows(linalg::GenericOp op) {
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  int64_t rows = 1;
  for (int64_t range : ArrayRef<int64_t>(ranges).drop_back(2)) {
    if (ShapedType::isDynamic(range))
      return std::nullopt;
    rows *= range;
  }
  return rows;
}

struct WidenBF16MatmulsPass
    : kiln::impl::WidenBF16MatmulsPassBase<WidenBF16MatmulsPass> {
  using Base::Base;

  void runOnOperation() final {
    SmallVector<linalg::GenericOp> matmuls;
    getOperation().walk([&](linalg::GenericOp op) {
      if (!isWideningBF16Contraction(op))
        return;
      std::optional<int64_t> rows = staticRows(op);
      if (rows && *rows < minRows)
        return;
      matmuls.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : matmuls) {
      Location loc = op.getLoc();
      rewriter.setInsertionPoint(op);
      Value lhs = widenOperand(rewriter, loc, op.getDpsInputs()[0]);
      Value rhs = widenOperand(rewriter, loc, op.getDpsInputs()[1]);
      auto f32 = linalg::GenericOp::create(
          rewriter, loc, op.getResultTypes(), ValueRange{lhs, rhs},
          op.getDpsInits(), op.getIndexingMapsArray(),
          op.getIteratorTypesArray(),
          [](OpBuilder &b, Location bodyLoc, ValueRange args) {
            Value product = arith::MulFOp::create(b, bodyLoc, args[0], args[1]);
            Value sum = arith::AddFOp::create(b, bodyLoc, args[2], product);
            linalg::YieldOp::create(b, bodyLoc, sum);
          });
      // (Both operands may be one transpose: visited once.)
      SmallVector<Value> inputs(op.getDpsInputs());
      llvm::SmallSetVector<Value, 2> narrow(inputs.begin(), inputs.end());
      rewriter.replaceOp(op, f32.getResults());
      // A bf16 transpose nothing else reads goes.
      for (Value operand : narrow)
        if (auto transpose = operand.getDefiningOp<linalg::TransposeOp>();
            transpose && transpose->use_empty())
          rewriter.eraseOp(transpose);
    }
  }
};
} // namespace
