//===- KilnGradients.cpp - Reverse-mode derivative rules ------------------===//
//
// GradientOpInterface for the primitives and for the composites whose own
// rule beats differentiating their decomposition (softmax, log_softmax,
// layer_norm, cross_entropy: fewer ops, no detour through a max). Each rule
// receives the gradients of the op's results and builds, at the builder's
// insertion point, the gradients of its operands in kiln ops; null stands
// for "no gradient" both ways (an unused result, an integer operand).
// Broadcasting operands get their gradient summed back to their own shape.
// The formulas follow torch.autograd's (ties of max/min split evenly).
//
//===----------------------------------------------------------------------===//

#include "KilnBuildHelpers.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <cmath>
#include <numeric>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::detail;

namespace {

using Gradients = FailureOr<SmallVector<Value>>;

bool isFloatTensor(Value value) {
  return isa<FloatType>(tensorType(value).getElementType());
}

Type elementTypeOf(Value value) { return tensorType(value).getElementType(); }

Value scalar(OpBuilder &b, Location loc, Value like, double value) {
  return floatConst(b, loc, elementTypeOf(like), value);
}

/// A tensor of zeros shaped like `like` (float element types).
Value zerosLike(OpBuilder &b, Location loc, Value like) {
  auto type = tensorType(like);
  Value zero = floatConst(b, loc, type.getElementType(), 0.0);
  return BroadcastToOp::create(b, loc, type, zero,
                               dynamicSizesLike(b, loc, type, like));
}

/// Reshapes `value` to `target`'s type, where `value` holds `target`'s dims
/// without the size-1 dims listed in `dropped` (sorted). Static sizes of
/// `target` refine dynamic ones of `value` first, so that both have the same
/// dynamic dims, as kiln.reshape requires.
Value restoreDroppedDims(OpBuilder &b, Location loc, Value value,
                         RankedTensorType target, ArrayRef<int64_t> dropped) {
  SmallVector<int64_t> kept;
  for (int64_t i = 0; i < target.getRank(); ++i)
    if (!llvm::is_contained(dropped, i))
      kept.push_back(target.getDimSize(i));
  auto refined = RankedTensorType::get(kept, target.getElementType());
  value = matchType(b, loc, value, refined);
  if (refined == target)
    return value;
  return ReshapeOp::create(b, loc, target, value);
}

/// Sums `grad` (shaped like a broadcast result) back to the shape of
/// `operand`: over the leading dims the operand lacks and over the dims
/// where the operand has size 1. A dynamic operand dim is taken to match.
Value sumToShape(OpBuilder &b, Location loc, Value grad, Value operand) {
  auto g = tensorType(grad), t = tensorType(operand);
  if (g == t)
    return grad;
  int64_t lead = g.getRank() - t.getRank();
  SmallVector<int64_t> axes = llvm::to_vector(llvm::seq<int64_t>(0, lead));
  SmallVector<int64_t> droppedTargetDims;
  for (int64_t i = 0; i < t.getRank(); ++i) {
    if (t.getDimSize(i) == 1 && g.getDimSize(lead + i) != 1) {
      axes.push_back(lead + i);
      droppedTargetDims.push_back(i);
    }
  }
  Value summed = grad;
  if (!axes.empty())
    summed = reduce(b, loc, ReduceKind::sum, grad, axes, /*keepdim=*/false);
  return restoreDroppedDims(b, loc, summed, t, droppedTargetDims);
}

/// `grad` for a float operand, null for an integer one.
Value ifFloat(Value operand, Value grad) {
  return isFloatTensor(operand) ? grad : Value();
}

/// Broadcasts a reduction's result gradient back over the reduced `axes`
/// of `input`.
Value broadcastOverAxes(OpBuilder &b, Location loc, Value grad, Value input,
                        ArrayRef<int64_t> axes, bool keepdim) {
  auto inputType = tensorType(input);
  Value kept = grad;
  if (!keepdim) {
    SmallVector<int64_t> sortedAxes(axes);
    llvm::sort(sortedAxes);
    SmallVector<int64_t> shape(inputType.getShape());
    for (int64_t axis : sortedAxes)
      shape[axis] = 1;
    kept = restoreDroppedDims(
        b, loc, grad,
        RankedTensorType::get(shape, inputType.getElementType()), sortedAxes);
  }
  return BroadcastToOp::create(b, loc, inputType, kept,
                               dynamicSizesLike(b, loc, inputType, input));
}

/// Product of the sizes of `axes` of `value` as a rank-0 float tensor.
Value countOver(OpBuilder &b, Location loc, Value value,
                ArrayRef<int64_t> axes) {
  Type et = elementTypeOf(value);
  Value count;
  for (int64_t axis : axes) {
    Value size = sizeAsFloat(b, loc, value, axis, et);
    count = count ? Value(MulOp::create(b, loc, count, size)) : size;
  }
  return count ? count : floatConst(b, loc, et, 1.0);
}

/// The unary rule shape: the operand's gradient is `rule(grad)` for float
/// operands with a result gradient.
template <typename Rule>
Gradients unaryGradient(Value input, ValueRange grads, Rule rule) {
  if (!grads[0] || !isFloatTensor(input))
    return SmallVector<Value>{Value()};
  return SmallVector<Value>{rule(grads[0])};
}

/// Gradients of d(op(A) · op(B)) for kiln.matmul, summed over broadcast
/// batch dims. When B is a matrix and A's leading dims are static, dB is
/// one matmul over the flattened rows of A instead of a batch of matmuls
/// reduced afterwards.
SmallVector<Value> matmulGradients(OpBuilder &b, Location loc, Value lhs,
                                   Value rhs, Value grad, bool tl, bool tr) {
  auto mm = [&](Value x, Value y, bool tx, bool ty) -> Value {
    return MatmulOp::create(b, loc, x, y, tx, ty);
  };
  Value dLhs, dRhs;
  // d op(A) = g · op(B)ᵀ; A stored transposed gets (g · op(B)ᵀ)ᵀ = op(B) · gᵀ.
  if (!tl)
    dLhs = tr ? mm(grad, rhs, false, false) : mm(grad, rhs, false, true);
  else
    dLhs = tr ? mm(rhs, grad, true, true) : mm(rhs, grad, false, true);

  auto lhsType = tensorType(lhs), gradType = tensorType(grad);
  bool flatten = !tl && tensorType(rhs).getRank() == 2 &&
                 lhsType.getRank() > 2 &&
                 llvm::all_of(lhsType.getShape().drop_back(), [](int64_t d) {
                   return !ShapedType::isDynamic(d);
                 }) &&
                 gradType.getRank() == lhsType.getRank();
  Value a = lhs, g = grad;
  if (flatten) {
    int64_t rows = 1;
    for (int64_t d : lhsType.getShape().drop_back())
      rows *= d;
    a = reshape(b, loc, lhs, {rows, lhsType.getShape().back()});
    g = matchType(b, loc, grad,
                  RankedTensorType::get(
                      llvm::to_vector(llvm::concat<const int64_t>(
                          lhsType.getShape().drop_back(),
                          ArrayRef<int64_t>{gradType.getShape().back()})),
                      gradType.getElementType()));
    g = reshape(b, loc, g, {rows, gradType.getShape().back()});
  }
  // d op(B) = op(A)ᵀ · g; B stored transposed gets gᵀ · op(A).
  if (!tr)
    dRhs = tl ? mm(a, g, false, false) : mm(a, g, true, false);
  else
    dRhs = tl ? mm(g, a, true, true) : mm(g, a, true, false);
  return {sumToShape(b, loc, dLhs, lhs), sumToShape(b, loc, dRhs, rhs)};
}

} // namespace

//===----------------------------------------------------------------------===//
// Elementwise binary
//===----------------------------------------------------------------------===//

Gradients AddOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g)
    return SmallVector<Value>{Value(), Value()};
  Location loc = getLoc();
  return SmallVector<Value>{ifFloat(getLhs(), sumToShape(b, loc, g, getLhs())),
                            ifFloat(getRhs(), sumToShape(b, loc, g, getRhs()))};
}

Gradients SubOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g || !isFloatTensor(getLhs()))
    return SmallVector<Value>{Value(), Value()};
  Location loc = getLoc();
  return SmallVector<Value>{
      sumToShape(b, loc, g, getLhs()),
      sumToShape(b, loc, NegOp::create(b, loc, g), getRhs())};
}

Gradients MulOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g || !isFloatTensor(getLhs()))
    return SmallVector<Value>{Value(), Value()};
  Location loc = getLoc();
  return SmallVector<Value>{
      sumToShape(b, loc, MulOp::create(b, loc, g, getRhs()), getLhs()),
      sumToShape(b, loc, MulOp::create(b, loc, g, getLhs()), getRhs())};
}

// d(l/r) = g/r, -g·l/r² = -(g/r)·result.
Gradients DivOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g || !isFloatTensor(getLhs()))
    return SmallVector<Value>{Value(), Value()};
  Location loc = getLoc();
  Value gOverR = DivOp::create(b, loc, g, getRhs());
  Value dRhs = NegOp::create(b, loc, MulOp::create(b, loc, gOverR, getResult()));
  return SmallVector<Value>{sumToShape(b, loc, gOverR, getLhs()),
                            sumToShape(b, loc, dRhs, getRhs())};
}

// d(l^r) = g·r·l^(r-1), g·l^r·log(l) (0 where l == 0, as torch).
Gradients PowOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g)
    return SmallVector<Value>{Value(), Value()};
  Location loc = getLoc();
  Value l = getLhs(), r = getRhs();
  Value rMinusOne = SubOp::create(b, loc, r, scalar(b, loc, r, 1.0));
  Value dLhs = MulOp::create(
      b, loc, g, MulOp::create(b, loc, r, PowOp::create(b, loc, l, rMinusOne)));
  Value zero = scalar(b, loc, l, 0.0);
  Value isZero = CompareOp::create(b, loc, ComparePredicate::eq, l, zero);
  Value logTerm = MulOp::create(b, loc, getResult(), LogOp::create(b, loc, l));
  Value dRhs = MulOp::create(b, loc, g,
                             SelectOp::create(b, loc, isZero, zero, logTerm));
  return SmallVector<Value>{sumToShape(b, loc, dLhs, l),
                            sumToShape(b, loc, dRhs, r)};
}

/// max/min: the gradient goes to the operand that won, split in half on a
/// tie (torch.maximum's rule).
static Gradients extremumGradient(OpBuilder &b, Location loc, Value lhs,
                                  Value rhs, Value g,
                                  ComparePredicate lhsWins) {
  if (!g || !isFloatTensor(lhs))
    return SmallVector<Value>{Value(), Value()};
  ComparePredicate rhsWins = lhsWins == ComparePredicate::gt
                                 ? ComparePredicate::lt
                                 : ComparePredicate::gt;
  Value zero = scalar(b, loc, lhs, 0.0);
  Value half = MulOp::create(b, loc, g, scalar(b, loc, lhs, 0.5));
  Value tie = CompareOp::create(b, loc, ComparePredicate::eq, lhs, rhs);
  Value tieShare = SelectOp::create(b, loc, tie, half, zero);
  Value lhsWon = CompareOp::create(b, loc, lhsWins, lhs, rhs);
  Value rhsWon = CompareOp::create(b, loc, rhsWins, lhs, rhs);
  Value dLhs = SelectOp::create(b, loc, lhsWon, g, tieShare);
  Value dRhs = SelectOp::create(b, loc, rhsWon, g, tieShare);
  return SmallVector<Value>{sumToShape(b, loc, dLhs, lhs),
                            sumToShape(b, loc, dRhs, rhs)};
}

Gradients MaxOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return extremumGradient(b, getLoc(), getLhs(), getRhs(), grads[0],
                          ComparePredicate::gt);
}

Gradients MinOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return extremumGradient(b, getLoc(), getLhs(), getRhs(), grads[0],
                          ComparePredicate::lt);
}

//===----------------------------------------------------------------------===//
// Elementwise unary
//===----------------------------------------------------------------------===//

Gradients NegOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    return NegOp::create(b, getLoc(), g);
  });
}

Gradients AbsOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    Location loc = getLoc();
    Value x = getInput(), zero = scalar(b, loc, x, 0.0);
    Value positive = CompareOp::create(b, loc, ComparePredicate::gt, x, zero);
    Value negative = CompareOp::create(b, loc, ComparePredicate::lt, x, zero);
    Value negated = SelectOp::create(b, loc, negative,
                                     NegOp::create(b, loc, g), zero);
    return SelectOp::create(b, loc, positive, g, negated);
  });
}

Gradients ExpOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    return MulOp::create(b, getLoc(), g, getResult());
  });
}

Gradients LogOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    return DivOp::create(b, getLoc(), g, getInput());
  });
}

// d tanh = g·(1 - y²).
Gradients TanhOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    Location loc = getLoc();
    Value y = getResult();
    Value oneMinusSquare = SubOp::create(b, loc, scalar(b, loc, y, 1.0),
                                         MulOp::create(b, loc, y, y));
    return MulOp::create(b, loc, g, oneMinusSquare);
  });
}

// d erf = g·2/√π·exp(-x²).
Gradients ErfOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    Location loc = getLoc();
    Value x = getInput();
    Value gauss =
        ExpOp::create(b, loc, NegOp::create(b, loc, MulOp::create(b, loc, x, x)));
    Value scaled =
        MulOp::create(b, loc, gauss, scalar(b, loc, x, 2.0 / std::sqrt(M_PI)));
    return MulOp::create(b, loc, g, scaled);
  });
}

Gradients SinOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    return MulOp::create(b, getLoc(), g, CosOp::create(b, getLoc(), getInput()));
  });
}

Gradients CosOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    Location loc = getLoc();
    return NegOp::create(
        b, loc, MulOp::create(b, loc, g, SinOp::create(b, loc, getInput())));
  });
}

// d √x = g / (2·y).
Gradients SqrtOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    Location loc = getLoc();
    Value half = MulOp::create(b, loc, g, scalar(b, loc, g, 0.5));
    return DivOp::create(b, loc, half, getResult());
  });
}

// d x^(-1/2) = -g·y³/2.
Gradients RsqrtOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    Location loc = getLoc();
    Value y = getResult();
    Value cube = MulOp::create(b, loc, MulOp::create(b, loc, y, y), y);
    return MulOp::create(b, loc, MulOp::create(b, loc, g, cube),
                         scalar(b, loc, g, -0.5));
  });
}

// d σ = g·y·(1 - y).
Gradients SigmoidOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    Location loc = getLoc();
    Value y = getResult();
    Value slope =
        MulOp::create(b, loc, y, SubOp::create(b, loc, scalar(b, loc, y, 1.0), y));
    return MulOp::create(b, loc, g, slope);
  });
}

// d relu = g where y > 0 (torch's threshold_backward).
Gradients ReluOp::buildGradient(OpBuilder &b, ValueRange grads) {
  return unaryGradient(getInput(), grads, [&](Value g) -> Value {
    Location loc = getLoc();
    Value zero = scalar(b, loc, g, 0.0);
    Value active =
        CompareOp::create(b, loc, ComparePredicate::gt, getResult(), zero);
    return SelectOp::create(b, loc, active, g, zero);
  });
}

//===----------------------------------------------------------------------===//
// Selection, cast, matmul, reduce
//===----------------------------------------------------------------------===//

Gradients SelectOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g || !isFloatTensor(getOnTrue()))
    return SmallVector<Value>{Value(), Value(), Value()};
  Location loc = getLoc();
  Value zero = scalar(b, loc, g, 0.0);
  Value dTrue = SelectOp::create(b, loc, getCondition(), g, zero);
  Value dFalse = SelectOp::create(b, loc, getCondition(), zero, g);
  return SmallVector<Value>{Value(), sumToShape(b, loc, dTrue, getOnTrue()),
                            sumToShape(b, loc, dFalse, getOnFalse())};
}

Gradients CastOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g || !isFloatTensor(getInput()) || !isFloatTensor(getResult()))
    return SmallVector<Value>{Value()};
  return SmallVector<Value>{
      convert(b, getLoc(), g, elementTypeOf(getInput()))};
}

Gradients MatmulOp::buildGradient(OpBuilder &b, ValueRange grads) {
  if (!grads[0] || !isFloatTensor(getLhs()))
    return SmallVector<Value>{Value(), Value()};
  return matmulGradients(b, getLoc(), getLhs(), getRhs(), grads[0],
                         getTransposeLhs(), getTransposeRhs());
}

// sum: broadcast back; mean: also divide by the count; max/min: to the
// elements equal to the result, split evenly among ties (torch.amax).
Gradients ReduceOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  Value x = getInput();
  if (!g || !isFloatTensor(x))
    return SmallVector<Value>{Value()};
  Location loc = getLoc();
  ArrayRef<int64_t> axes = getAxes();
  Value spread = broadcastOverAxes(b, loc, g, x, axes, getKeepdim());
  switch (getKind()) {
  case ReduceKind::sum:
    return SmallVector<Value>{spread};
  case ReduceKind::mean:
    return SmallVector<Value>{
        DivOp::create(b, loc, spread, countOver(b, loc, x, axes))};
  case ReduceKind::max:
  case ReduceKind::min: {
    Value extreme = broadcastOverAxes(b, loc, getResult(), x, axes,
                                      getKeepdim());
    Value hit = convert(
        b, loc, CompareOp::create(b, loc, ComparePredicate::eq, x, extreme),
        elementTypeOf(x));
    Value ties = broadcastOverAxes(
        b, loc,
        reduce(b, loc, ReduceKind::sum, hit, axes, /*keepdim=*/true), x, axes,
        /*keepdim=*/true);
    return SmallVector<Value>{DivOp::create(
        b, loc, MulOp::create(b, loc, spread, hit), ties)};
  }
  }
  llvm_unreachable("unknown reduce kind");
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

Gradients ReshapeOp::buildGradient(OpBuilder &b, ValueRange grads) {
  if (!grads[0])
    return SmallVector<Value>{Value()};
  return SmallVector<Value>{
      ReshapeOp::create(b, getLoc(), getInput().getType(), grads[0])};
}

Gradients TransposeOp::buildGradient(OpBuilder &b, ValueRange grads) {
  if (!grads[0])
    return SmallVector<Value>{Value()};
  ArrayRef<int64_t> perm = getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = i;
  Value result = TransposeOp::create(b, getLoc(), grads[0], inverse);
  return SmallVector<Value>{
      matchType(b, getLoc(), result, getInput().getType())};
}

// Strided slices interleave zeros first: g [.., n, ..] -> [.., n, step, ..]
// (zeros after each element) -> [.., n·step, ..]; then pad to the input.
Gradients SliceOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g)
    return SmallVector<Value>{Value()};
  Location loc = getLoc();
  auto inputType = tensorType(getInput());
  int64_t axis = getAxis(), start = getStart(), end = getEnd(),
          step = getStep();
  int64_t size = inputType.getDimSize(axis);
  if (ShapedType::isDynamic(size))
    return emitOpError("has no gradient along a dynamic axis ") << axis;
  auto gType = tensorType(g);
  int64_t n = gType.getDimSize(axis);
  int64_t rank = gType.getRank();
  Value spread = g;
  if (step > 1) {
    SmallVector<int64_t> expanded(gType.getShape());
    expanded.insert(expanded.begin() + axis + 1, 1);
    Value withAxis = ReshapeOp::create(
        b, loc, RankedTensorType::get(expanded, gType.getElementType()), g);
    SmallVector<int64_t> low(rank + 1, 0), high(rank + 1, 0);
    high[axis + 1] = step - 1;
    Value padded = PadOp::create(b, loc, withAxis, low, high, APFloat(0.0));
    SmallVector<int64_t> merged(gType.getShape());
    merged[axis] = n * step;
    spread = ReshapeOp::create(
        b, loc, RankedTensorType::get(merged, gType.getElementType()), padded);
  }
  int64_t covered = start + tensorType(spread).getDimSize(axis);
  if (covered > size) {
    spread = slice(b, loc, spread, axis, 0, size - start);
    covered = size;
  }
  SmallVector<int64_t> low(rank, 0), high(rank, 0);
  low[axis] = start;
  high[axis] = size - covered;
  (void)end;
  Value result = spread;
  if (low[axis] != 0 || high[axis] != 0)
    result = PadOp::create(b, loc, spread, low, high, APFloat(0.0));
  return SmallVector<Value>{matchType(b, loc, result, inputType)};
}

Gradients ConcatOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  SmallVector<Value> result(getInputs().size());
  if (!g)
    return result;
  Location loc = getLoc();
  int64_t axis = getAxis(), offset = 0;
  for (auto [i, input] : llvm::enumerate(getInputs())) {
    int64_t size = tensorType(input).getDimSize(axis);
    if (ShapedType::isDynamic(size))
      return emitOpError("has no gradient along a dynamic axis ") << axis;
    if (isFloatTensor(input))
      result[i] = matchType(b, loc, slice(b, loc, g, axis, offset, offset + size),
                            input.getType());
    offset += size;
  }
  return result;
}

Gradients PadOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g || !isFloatTensor(getInput()))
    return SmallVector<Value>{Value()};
  Location loc = getLoc();
  auto inputType = tensorType(getInput());
  Value result = g;
  for (int64_t i = 0; i < inputType.getRank(); ++i) {
    int64_t low = getLow()[i], high = getHigh()[i];
    if (low == 0 && high == 0)
      continue;
    int64_t size = inputType.getDimSize(i);
    if (ShapedType::isDynamic(size))
      return emitOpError("has no gradient with padding on dynamic dim ") << i;
    result = slice(b, loc, result, i, low, low + size);
  }
  return SmallVector<Value>{matchType(b, loc, result, inputType)};
}

Gradients BroadcastToOp::buildGradient(OpBuilder &b, ValueRange grads) {
  SmallVector<Value> result(getNumOperands());
  if (grads[0] && isFloatTensor(getInput()))
    result[0] = sumToShape(b, getLoc(), grads[0], getInput());
  return result;
}

Gradients GatherOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g || !isFloatTensor(getInput()))
    return SmallVector<Value>{Value(), Value()};
  Location loc = getLoc();
  Value zeros = zerosLike(b, loc, getInput());
  Value scattered =
      ScatterAddOp::create(b, loc, zeros, getIndices(), g, getAxis());
  return SmallVector<Value>{scattered, Value()};
}

Gradients ScatterAddOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g || !isFloatTensor(getInput()))
    return SmallVector<Value>{Value(), Value(), Value()};
  Location loc = getLoc();
  Value gathered = GatherOp::create(b, loc, g, getIndices(), getAxis());
  return SmallVector<Value>{
      g, Value(), matchType(b, loc, gathered, getUpdates().getType())};
}

//===----------------------------------------------------------------------===//
// Composites with their own rules
//===----------------------------------------------------------------------===//

// d softmax = y·(g - Σ g·y) along the axis (narrow floats in f32).
Gradients SoftmaxOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g)
    return SmallVector<Value>{Value()};
  Location loc = getLoc();
  Value y = widenNarrowFloat(b, loc, getResult());
  g = widenNarrowFloat(b, loc, g);
  FailureOr<int64_t> axis =
      normalizeAxis(loc, getAxis(), tensorType(y).getRank());
  if (failed(axis))
    return failure();
  Value dot = reduce(b, loc, ReduceKind::sum, MulOp::create(b, loc, g, y),
                     {*axis}, /*keepdim=*/true);
  Value dx = MulOp::create(b, loc, y, SubOp::create(b, loc, g, dot));
  return SmallVector<Value>{convert(b, loc, dx, elementTypeOf(getInput()))};
}

// d log_softmax = g - exp(y)·Σ g along the axis (narrow floats in f32).
Gradients LogSoftmaxOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g)
    return SmallVector<Value>{Value()};
  Location loc = getLoc();
  Value y = widenNarrowFloat(b, loc, getResult());
  g = widenNarrowFloat(b, loc, g);
  FailureOr<int64_t> axis =
      normalizeAxis(loc, getAxis(), tensorType(y).getRank());
  if (failed(axis))
    return failure();
  Value total = reduce(b, loc, ReduceKind::sum, g, {*axis}, /*keepdim=*/true);
  Value dx = SubOp::create(
      b, loc, g, MulOp::create(b, loc, ExpOp::create(b, loc, y), total));
  return SmallVector<Value>{convert(b, loc, dx, elementTypeOf(getInput()))};
}

// With x̂ = (x - μ)·r, r = 1/√(σ² + ε) and ĝ = g·w:
//   dx = r·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)), dw = Σ g·x̂, db = Σ g
// (sums over every dim but the last). Narrow floats are computed in f32 and
// each gradient rounded once to its operand's type.
Gradients LayerNormOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  SmallVector<Value> result(getNumOperands());
  if (!g)
    return result;
  Location loc = getLoc();
  Value x = widenNarrowFloat(b, loc, getInput());
  g = widenNarrowFloat(b, loc, g);
  Value weight = getWeight() ? widenNarrowFloat(b, loc, getWeight()) : Value();
  auto type = tensorType(x);
  int64_t last = type.getRank() - 1;
  Value mean = reduce(b, loc, ReduceKind::mean, x, {last}, true);
  Value centered = SubOp::create(b, loc, x, mean);
  Value var = reduce(b, loc, ReduceKind::mean,
                     MulOp::create(b, loc, centered, centered), {last}, true);
  Value eps = scalar(b, loc, x, getEps().convertToDouble());
  Value inv = RsqrtOp::create(b, loc, AddOp::create(b, loc, var, eps));
  Value xhat = MulOp::create(b, loc, centered, inv);
  Value ghat = weight ? Value(MulOp::create(b, loc, g, weight)) : g;
  Value meanG = reduce(b, loc, ReduceKind::mean, ghat, {last}, true);
  Value meanGX = reduce(b, loc, ReduceKind::mean,
                        MulOp::create(b, loc, ghat, xhat), {last}, true);
  Value ghatCentered = SubOp::create(b, loc, ghat, meanG);
  Value projected = MulOp::create(b, loc, xhat, meanGX);
  Value inner = SubOp::create(b, loc, ghatCentered, projected);
  unsigned next = 0;
  Value dx = MulOp::create(b, loc, inv, inner);
  result[next++] = matchType(
      b, loc, convert(b, loc, dx, elementTypeOf(getInput())),
      getInput().getType());
  SmallVector<int64_t> leading = llvm::to_vector(llvm::seq<int64_t>(0, last));
  auto overRows = [&](Value v, Value like) -> Value {
    Value summed =
        leading.empty() ? v : reduce(b, loc, ReduceKind::sum, v, leading, false);
    return matchType(b, loc, convert(b, loc, summed, elementTypeOf(like)),
                     like.getType());
  };
  if (getWeight())
    result[next++] = overRows(MulOp::create(b, loc, g, xhat), getWeight());
  if (getBias())
    result[next++] = overRows(g, getBias());
  return result;
}

// d logits = (softmax(logits) - onehot(target))·w, w the per-element weight
// of the reduction (the result gradient, divided by the kept count for
// mean, 0 where the target is ignore_index, NaN where it is outside the
// classes, as the loss).
Gradients CrossEntropyOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  if (!g)
    return SmallVector<Value>{Value(), Value()};
  Location loc = getLoc();
  Value logits = getLogits(), target = getTarget();
  auto logitsType = tensorType(logits), targetType = tensorType(target);
  Type et = logitsType.getElementType(), it = targetType.getElementType();
  int64_t classAxis = logitsType.getRank() - 1;

  Value probs = SoftmaxOp::create(b, loc, logits, classAxis);
  auto classesType =
      RankedTensorType::get({logitsType.getDimSize(classAxis)}, it);
  Value classes =
      IotaOp::create(b, loc, classesType,
                     dynamicSizes(b, loc, classesType, {{logits, classAxis}}),
                     b.getI64IntegerAttr(0));
  SmallVector<int64_t> expandedShape(targetType.getShape());
  expandedShape.push_back(1);
  Value onehot = convert(
      b, loc,
      CompareOp::create(b, loc, ComparePredicate::eq,
                        reshape(b, loc, target, expandedShape), classes),
      et);
  Value keptMask = CompareOp::create(b, loc, ComparePredicate::ne, target,
                                     intConst(b, loc, it, getIgnoreIndex()));
  Value kept = convert(b, loc, keptMask, et);
  Value weight;
  switch (getReduction()) {
  case LossReduction::none:
  case LossReduction::sum:
    weight = MulOp::create(b, loc, kept, g);
    break;
  case LossReduction::mean: {
    Value count = reduceAll(b, loc, ReduceKind::sum, kept);
    weight = MulOp::create(b, loc, kept, DivOp::create(b, loc, g, count));
    break;
  }
  case LossReduction::batchmean:
    return emitOpError("reduction 'batchmean' is only for kl_div");
  }
  // NaN where a kept target is out of range; ignored ones keep their 0.
  Value ignored = CompareOp::create(b, loc, ComparePredicate::eq, target,
                                    intConst(b, loc, it, getIgnoreIndex()));
  Value valid = SelectOp::create(
      b, loc, keptMask, targetInRange(b, loc, target, logits), ignored);
  weight = SelectOp::create(b, loc, valid, weight, floatConst(b, loc, et, NAN));
  SmallVector<int64_t> weightShape(tensorType(weight).getShape());
  weightShape.push_back(1);
  Value perClass = reshape(b, loc, weight, weightShape);
  Value dLogits = MulOp::create(
      b, loc, SubOp::create(b, loc, probs, onehot), perClass);
  return SmallVector<Value>{matchType(b, loc, dLogits, logitsType), Value()};
}

// The fused rule: kiln.attention_grad recomputes the softmax statistics and
// returns the query, key and value gradients; the mask gets none (autodiff
// keeps attention whole only when its mask does not depend on anything being
// differentiated).
Gradients AttentionOp::buildGradient(OpBuilder &b, ValueRange grads) {
  Value g = grads[0];
  SmallVector<Value> result(getNumOperands());
  if (!g)
    return result;
  // key_lengths hide keys like an additive mask; attention_grad takes them
  // as one.
  Value mask = getMask();
  if (Value lengths = getKeyLengths()) {
    Type et = tensorType(getQuery()).getElementType();
    Value lengthMask = keyLengthMask(b, getLoc(), lengths, getKey(), et);
    mask = mask ? Value(AddOp::create(b, getLoc(), convert(b, getLoc(), mask, et),
                                      lengthMask))
                : lengthMask;
  }
  auto grad = AttentionGradOp::create(b, getLoc(), getQuery(), getKey(),
                                      getValue(), g, mask, getCausal(),
                                      getScaleAttr());
  result[0] = grad.getQueryGrad();
  result[1] = grad.getKeyGrad();
  result[2] = grad.getValueGrad();
  return result;
}
