//===- KilnCosts.cpp - FLOP and byte counts of kiln ops -------------------===//
//
// CostOpInterface for every op that is not plain data movement or a simple
// elementwise op (those come from the base classes). Conventions, stated
// once: a multiply-add is 2 FLOPs; every elementwise arithmetic or
// transcendental function is 1 FLOP per element; comparisons and selects are
// 1; a reduction is 1 per input element; bytes count each operand read once
// and each result written once (the unfused, no-cache model the roofline
// estimate assumes).
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

using namespace mlir;
using namespace mlir::kiln;

namespace {
double elements(Value value, const CostOptions &options) {
  return getNumElements(cast<ShapedType>(value.getType()), options);
}

double dimSize(ShapedType type, int64_t dim, const CostOptions &options) {
  int64_t size = type.getDimSize(dim);
  return ShapedType::isDynamic(size) ? options.dynamicDimSize : size;
}

/// Data movement plus `flops`.
OpCost withFlops(Operation *op, const CostOptions &options, double flops) {
  OpCost cost = estimateDataMovementCost(op, options);
  cost.flops = flops;
  return cost;
}
} // namespace

//===----------------------------------------------------------------------===//
// Primitives
//===----------------------------------------------------------------------===//

OpCost CompareOp::getCost(const CostOptions &options) {
  return estimateElementwiseCost(*this, options, 1);
}

OpCost SelectOp::getCost(const CostOptions &options) {
  return estimateElementwiseCost(*this, options, 1);
}

OpCost CastOp::getCost(const CostOptions &options) {
  return estimateDataMovementCost(*this, options);
}

OpCost MatmulOp::getCost(const CostOptions &options) {
  auto lhs = getLhs().getType();
  int64_t k = getTransposeLhs() ? lhs.getRank() - 2 : lhs.getRank() - 1;
  // Result elements × K multiply-adds.
  return withFlops(*this, options,
                   2.0 * elements(getResult(), options) *
                       dimSize(lhs, k, options));
}

OpCost ReduceOp::getCost(const CostOptions &options) {
  double flops = elements(getInput(), options);
  if (getKind() == ReduceKind::mean)
    flops += elements(getResult(), options);
  return withFlops(*this, options, flops);
}

OpCost ReadParamOp::getCost(const CostOptions &options) {
  // Reading a parameter moves nothing by itself; its consumers read it.
  return {};
}

OpCost ConstantOp::getCost(const CostOptions &options) { return {}; }

OpCost IotaOp::getCost(const CostOptions &options) {
  return estimateDataMovementCost(*this, options);
}

OpCost CausalMaskOp::getCost(const CostOptions &options) {
  return estimateElementwiseCost(*this, options, 1);
}

OpCost PaddingMaskOp::getCost(const CostOptions &options) {
  return estimateElementwiseCost(*this, options, 1);
}

OpCost RandomUniformOp::getCost(const CostOptions &options) {
  // A counter-based generator: a handful of integer ops per element, which
  // the FLOP count leaves out.
  return estimateDataMovementCost(*this, options);
}

OpCost ReshapeOp::getCost(const CostOptions &options) {
  // A view: no data moves.
  return {};
}

OpCost TransposeOp::getCost(const CostOptions &options) {
  return estimateDataMovementCost(*this, options);
}

OpCost UnpackPanelsOp::getCost(const CostOptions &options) {
  // A layout the matmul reads in place (the linear counts the weight's
  // bytes): no data moves.
  return {};
}

OpCost SliceOp::getCost(const CostOptions &options) {
  // Reads only the elements it keeps.
  OpCost cost;
  cost.bytesRead = cost.bytesWritten = getTensorBytes(getType(), options);
  return cost;
}

OpCost ConcatOp::getCost(const CostOptions &options) {
  return estimateDataMovementCost(*this, options);
}

OpCost PadOp::getCost(const CostOptions &options) {
  return estimateDataMovementCost(*this, options);
}

OpCost BroadcastToOp::getCost(const CostOptions &options) {
  return estimateDataMovementCost(*this, options);
}

OpCost GatherOp::getCost(const CostOptions &options) {
  // Reads the gathered slices and the indices, not the whole table.
  OpCost cost;
  cost.bytesRead = getTensorBytes(getType(), options) +
                   getTensorBytes(getIndices().getType(), options);
  cost.bytesWritten = getTensorBytes(getType(), options);
  return cost;
}

OpCost ScatterAddOp::getCost(const CostOptions &options) {
  // One add per update element; reads the updates, the indices and the
  // touched rows, writes the touched rows (in place of the input).
  OpCost cost;
  double updates = getTensorBytes(getUpdates().getType(), options);
  cost.flops = elements(getUpdates(), options);
  cost.bytesRead = 2 * updates + getTensorBytes(getIndices().getType(), options);
  cost.bytesWritten = updates;
  return cost;
}

OpCost CacheWriteOp::getCost(const CostOptions &options) {
  // Moves the update into the cache (in place): no arithmetic.
  OpCost cost;
  double update = getTensorBytes(getUpdate().getType(), options);
  cost.bytesRead = update;
  if (Value positions = getPositions())
    cost.bytesRead += getTensorBytes(positions.getType(), options);
  cost.bytesWritten = update;
  return cost;
}

//===----------------------------------------------------------------------===//
// Composites. FLOPs are those of the decomposition, counted in closed form.
//===----------------------------------------------------------------------===//

OpCost SoftmaxOp::getCost(const CostOptions &options) {
  // max, subtract, exp, sum, divide.
  return withFlops(*this, options, 5 * elements(getInput(), options));
}

OpCost LogSoftmaxOp::getCost(const CostOptions &options) {
  // max, subtract, exp, sum, subtract (log is per row).
  return withFlops(*this, options, 5 * elements(getInput(), options));
}

OpCost LayerNormOp::getCost(const CostOptions &options) {
  // mean (1), subtract (1), square (1), variance sum (1), normalize (1),
  // scale (1), shift (1), plus a few per row.
  double n = elements(getInput(), options);
  double flops = 5 * n + (getWeight() ? n : 0) + (getBias() ? n : 0);
  return withFlops(*this, options, flops);
}

OpCost RMSNormOp::getCost(const CostOptions &options) {
  // square, sum, normalize, scale.
  return withFlops(*this, options, 4 * elements(getInput(), options));
}

OpCost GeluOp::getCost(const CostOptions &options) {
  // erf form: div, erf, add, mul, mul; tanh form: 8 elementwise ops.
  double perElement = getApproximate() == GeluApproximation::tanh ? 8 : 5;
  return estimateElementwiseCost(*this, options, perElement);
}

OpCost SiluOp::getCost(const CostOptions &options) {
  return estimateElementwiseCost(*this, options, 2);
}

OpCost LinearOp::getCost(const CostOptions &options) {
  auto weight = getWeight().getType();
  double in = dimSize(weight, getWeightInOut() ? 0 : 1, options);
  double out = elements(getResult(), options);
  return withFlops(*this, options, 2 * out * in + (getBias() ? out : 0));
}

OpCost EmbeddingOp::getCost(const CostOptions &options) {
  OpCost cost;
  cost.bytesRead = getTensorBytes(getType(), options) +
                   getTensorBytes(getIds().getType(), options);
  cost.bytesWritten = getTensorBytes(getType(), options);
  return cost;
}

namespace {
/// The sizes attention's cost depends on: (query, key) pairs per call, and
/// the query/key and value head dims.
struct AttentionSizes {
  double pairs, d, dv;
};

AttentionSizes attentionSizes(Value query, Value key, Value value,
                              const CostOptions &options) {
  auto q = cast<RankedTensorType>(query.getType());
  double sk = dimSize(cast<RankedTensorType>(key.getType()), 2, options);
  return {dimSize(q, 0, options) * dimSize(q, 1, options) *
              dimSize(q, 2, options) * sk,
          dimSize(q, 3, options),
          dimSize(cast<RankedTensorType>(value.getType()), 3, options)};
}
} // namespace

OpCost AttentionOp::getCost(const CostOptions &options) {
  auto [scores, d, dv] =
      attentionSizes(getQuery(), getKey(), getValue(), options);
  // q·kᵀ, scale, (mask), softmax, ·v. Causal masking is counted at full
  // size: the decomposition computes every score.
  double flops = 2 * scores * d + scores + 5 * scores + 2 * scores * dv;
  if (getMask() || getCausal())
    flops += scores;
  return withFlops(*this, options, flops);
}

OpCost AttentionGradOp::getCost(const CostOptions &options) {
  auto [pairs, d, dv] =
      attentionSizes(getQuery(), getKey(), getValue(), options);
  // What the fused lowering executes per (query, key) pair: the forward row
  // again (q·k, p·v and the online softmax), then per query row q·k, g·v
  // and dS·k, and per key row q·k, g·v, p·g and dS·q.
  double forward = 2 * d + 2 * dv + 8;
  double queryRows = 2 * d + 2 * dv + 2 * d + 4;
  double keyRows = 2 * d + 2 * dv + 2 * dv + 2 * d + 4;
  return withFlops(*this, options, pairs * (forward + queryRows + keyRows));
}

OpCost RopeOp::getCost(const CostOptions &options) {
  // x·cos + rotate_half(x)·sin: 3 per element, plus the angle tables.
  return estimateElementwiseCost(*this, options, 3);
}

OpCost Conv2dOp::getCost(const CostOptions &options) {
  auto weight = getWeight().getType();
  double perOutput = 2 * dimSize(weight, 1, options) *
                     dimSize(weight, 2, options) * dimSize(weight, 3, options);
  double out = elements(getResult(), options);
  return withFlops(*this, options, out * perOutput + (getBias() ? out : 0));
}

OpCost MaxPool2dOp::getCost(const CostOptions &options) {
  return withFlops(*this, options,
                   elements(getResult(), options) * getKernel()[0] *
                       getKernel()[1]);
}

OpCost AvgPool2dOp::getCost(const CostOptions &options) {
  return withFlops(*this, options,
                   elements(getResult(), options) * getKernel()[0] *
                       getKernel()[1]);
}

OpCost GRUCellOp::getCost(const CostOptions &options) {
  auto wih = getWIh().getType(), whh = getWHh().getType();
  double n = dimSize(getInput().getType(), 0, options);
  double h = elements(getResult(), options);
  double gemms = 2 * n *
                 (dimSize(wih, 0, options) * dimSize(wih, 1, options) +
                  dimSize(whh, 0, options) * dimSize(whh, 1, options));
  // bias adds (2·3H), gate sums, two sigmoids, tanh, the blend.
  return withFlops(*this, options, gemms + 6 * h + 12 * h);
}

OpCost LSTMCellOp::getCost(const CostOptions &options) {
  auto wih = getWIh().getType(), whh = getWHh().getType();
  double n = dimSize(getInput().getType(), 0, options);
  double h = elements(getNewHidden(), options);
  double gemms = 2 * n *
                 (dimSize(wih, 0, options) * dimSize(wih, 1, options) +
                  dimSize(whh, 0, options) * dimSize(whh, 1, options));
  return withFlops(*this, options, gemms + 8 * h + 12 * h);
}

OpCost DropoutOp::getCost(const CostOptions &options) {
  // compare, scale, select.
  return estimateElementwiseCost(*this, options, 3);
}

OpCost CrossEntropyOp::getCost(const CostOptions &options) {
  // log_softmax (5) plus picking the target (compare, select, sum: 3).
  return withFlops(*this, options, 8 * elements(getLogits(), options));
}

OpCost MSEOp::getCost(const CostOptions &options) {
  return withFlops(*this, options, 3 * elements(getInput(), options));
}

OpCost KLDivOp::getCost(const CostOptions &options) {
  return withFlops(*this, options, 4 * elements(getInput(), options));
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

OpCost DequantizeOp::getCost(const CostOptions &options) {
  // A subtract and a multiply per element (the unpacking of 4-bit codes is
  // bit manipulation, not counted).
  return withFlops(*this, options, 2 * elements(getResult(), options));
}

OpCost Expand2of4Op::getCost(const CostOptions &options) {
  // Selects, not arithmetic: no FLOPs; the bytes are its operands' and
  // result's.
  return withFlops(*this, options, 0);
}

OpCost ExpandCSROp::getCost(const CostOptions &options) {
  // Stores, not arithmetic.
  return withFlops(*this, options, 0);
}

OpCost QuantizeOp::getCost(const CostOptions &options) {
  // Multiply, round, add and clamp (2) per element.
  return withFlops(*this, options, 5 * elements(getResult(), options));
}

OpCost ScaledFp8MatmulOp::getCost(const CostOptions &options) {
  // Result elements × K multiply-adds (the two scales are one multiply per
  // result element, not counted).
  auto lhs = getLhs().getType();
  return withFlops(*this, options,
                   2.0 * elements(getResult(), options) *
                       dimSize(lhs, lhs.getRank() - 1, options));
}

OpCost IntegerMatmulOp::getCost(const CostOptions &options) {
  // Result elements × K multiply-adds, integer ones counted as FLOPs.
  auto lhs = getLhs().getType();
  return withFlops(*this, options,
                   2.0 * elements(getResult(), options) *
                       dimSize(lhs, lhs.getRank() - 1, options));
}
