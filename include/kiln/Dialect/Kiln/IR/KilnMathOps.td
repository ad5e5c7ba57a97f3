//===- KilnMathOps.td - Arithmetic primitives ----------------*- tablegen -*-===//
//
// Elementwise math, comparisons, casts, matmul and reductions: the primitives
// every composite decomposes into and every backend lowers.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_MATH_OPS_TD
#define KILN_MATH_OPS_TD

include "kiln/Dialect/Kiln/IR/KilnBase.td"

//===----------------------------------------------------------------------===//
// Elementwise binary
//===----------------------------------------------------------------------===//

def Kiln_AddOp : Kiln_BinaryElementwiseOp<"add", "1", Kiln_NumericTensor,
                                          [Commutative]> {
  let summary = "elementwise addition with broadcasting";
  let description = [{
    `lhs + rhs` with NumPy broadcasting: shapes are aligned on the right and
    a dimension of size 1 stretches to the other's size.

    ```mlir
    %0 = kiln.add %x, %bias : (tensor<?x768xf32>, tensor<768xf32>) -> tensor<?x768xf32>
    ```
  }];
  let hasFolder = 1;
}

def Kiln_SubOp : Kiln_BinaryElementwiseOp<"sub", "1"> {
  let summary = "elementwise subtraction with broadcasting";
  let description = [{
    `lhs - rhs` with NumPy broadcasting.

    ```mlir
    %0 = kiln.sub %x, %mean : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
    ```
  }];
  let hasFolder = 1;
}

def Kiln_MulOp : Kiln_BinaryElementwiseOp<"mul", "1", Kiln_NumericTensor,
                                          [Commutative]> {
  let summary = "elementwise multiplication with broadcasting";
  let description = [{
    `lhs * rhs` with NumPy broadcasting.

    ```mlir
    %0 = kiln.mul %x, %scale : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    ```
  }];
  let hasFolder = 1;
}

def Kiln_DivOp : Kiln_BinaryElementwiseOp<"div", "1"> {
  let summary = "elementwise division with broadcasting";
  let description = [{
    `lhs / rhs` with NumPy broadcasting; integer division truncates toward
    zero.

    ```mlir
    %0 = kiln.div %x, %sum : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
    ```
  }];
  let hasFolder = 1;
}

def Kiln_PowOp : Kiln_BinaryElementwiseOp<"pow", "1", Kiln_FloatTensor> {
  let summary = "elementwise power with broadcasting";
  let description = [{
    `lhs ** rhs` with NumPy broadcasting.

    ```mlir
    %0 = kiln.pow %x, %three : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    ```
  }];
}

def Kiln_MaxOp : Kiln_BinaryElementwiseOp<"max", "1", Kiln_NumericTensor,
                                          [Commutative]> {
  let summary = "elementwise maximum with broadcasting";
  let description = [{
    `max(lhs, rhs)` with NumPy broadcasting; NaN propagates.

    ```mlir
    %0 = kiln.max %x, %zero : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    ```
  }];
}

def Kiln_MinOp : Kiln_BinaryElementwiseOp<"min", "1", Kiln_NumericTensor,
                                          [Commutative]> {
  let summary = "elementwise minimum with broadcasting";
  let description = [{
    `min(lhs, rhs)` with NumPy broadcasting; NaN propagates.

    ```mlir
    %0 = kiln.min %x, %cap : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Elementwise unary
//===----------------------------------------------------------------------===//

def Kiln_NegOp : Kiln_UnaryElementwiseOp<"neg", "1", Kiln_NumericTensor> {
  let summary = "elementwise negation";
  let description = [{
    ```mlir
    %0 = kiln.neg %x : tensor<4x8xf32>
    ```
  }];
  let hasFolder = 1;
}

def Kiln_AbsOp : Kiln_UnaryElementwiseOp<"abs", "1", Kiln_NumericTensor> {
  let summary = "elementwise absolute value";
  let description = [{
    ```mlir
    %0 = kiln.abs %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_ExpOp : Kiln_UnaryElementwiseOp<"exp", "1"> {
  let summary = "elementwise e**x";
  let description = [{
    ```mlir
    %0 = kiln.exp %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_LogOp : Kiln_UnaryElementwiseOp<"log", "1"> {
  let summary = "elementwise natural logarithm";
  let description = [{
    ```mlir
    %0 = kiln.log %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_TanhOp : Kiln_UnaryElementwiseOp<"tanh", "1"> {
  let summary = "elementwise hyperbolic tangent";
  let description = [{
    ```mlir
    %0 = kiln.tanh %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_ErfOp : Kiln_UnaryElementwiseOp<"erf", "1"> {
  let summary = "elementwise Gauss error function";
  let description = [{
    ```mlir
    %0 = kiln.erf %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_SinOp : Kiln_UnaryElementwiseOp<"sin", "1"> {
  let summary = "elementwise sine";
  let description = [{
    ```mlir
    %0 = kiln.sin %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_CosOp : Kiln_UnaryElementwiseOp<"cos", "1"> {
  let summary = "elementwise cosine";
  let description = [{
    ```mlir
    %0 = kiln.cos %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_SqrtOp : Kiln_UnaryElementwiseOp<"sqrt", "1"> {
  let summary = "elementwise square root";
  let description = [{
    ```mlir
    %0 = kiln.sqrt %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_RsqrtOp : Kiln_UnaryElementwiseOp<"rsqrt", "1"> {
  let summary = "elementwise reciprocal square root";
  let description = [{
    `1 / sqrt(x)`.

    ```mlir
    %0 = kiln.rsqrt %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_SigmoidOp : Kiln_UnaryElementwiseOp<"sigmoid", "1"> {
  let summary = "elementwise logistic sigmoid";
  let description = [{
    `1 / (1 + exp(-x))`.

    ```mlir
    %0 = kiln.sigmoid %x : tensor<4x8xf32>
    ```
  }];
}

def Kiln_ReluOp : Kiln_UnaryElementwiseOp<"relu", "1"> {
  let summary = "elementwise max(x, 0)";
  let description = [{
    ```mlir
    %0 = kiln.relu %x : tensor<4x8xf32>
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Comparison, selection, cast
//===----------------------------------------------------------------------===//

def Kiln_CompareOp : Kiln_InferredOp<"compare", [
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "elementwise comparison with broadcasting";
  let description = [{
    Compares `lhs` and `rhs` (NumPy broadcasting) with `predicate` and yields
    an `i1` tensor. Both operands have the same element type.

    ```mlir
    %0 = kiln.compare lt, %pos, %len : (tensor<8xi64>, tensor<i64>) -> tensor<8xi1>
    ```
  }];
  let arguments = (ins Kiln_ComparePredicate:$predicate,
                       Kiln_NumericTensor:$lhs, Kiln_NumericTensor:$rhs);
  let results = (outs Kiln_BoolTensor:$result);
  let assemblyFormat = [{
    $predicate `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_SelectOp : Kiln_InferredOp<"select", [
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "elementwise choice between two tensors";
  let description = [{
    `condition ? on_true : on_false`, all three broadcast together.

    ```mlir
    %0 = kiln.select %mask, %x, %ninf : (tensor<8x8xi1>, tensor<2x8x8xf32>, tensor<f32>) -> tensor<2x8x8xf32>
    ```
  }];
  let arguments = (ins Kiln_BoolTensor:$condition, Kiln_Tensor:$on_true,
                       Kiln_Tensor:$on_false);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $condition `,` $on_true `,` $on_false attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_CastOp : Kiln_Op<"cast", [Pure, Elementwise,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "elementwise element type conversion";
  let description = [{
    Converts each element to the result's element type: floats round to
    nearest even, float to integer truncates toward zero, `i1` becomes 0 or
    1. Shapes are identical.

    ```mlir
    %0 = kiln.cast %mask : tensor<2x8xi64> -> tensor<2x8xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Matmul and reductions
//===----------------------------------------------------------------------===//

def Kiln_MatmulOp : Kiln_InferredOp<"matmul",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "batched matrix product with optional transposes";
  let description = [{
    `lhs` is `[..., M, K]` (or `[..., K, M]` with `transpose_lhs`), `rhs` is
    `[..., K, N]` (or `[..., N, K]` with `transpose_rhs`); the leading batch
    dimensions broadcast NumPy-style. The result is `[..., M, N]`. Both
    operands have the same element type. Cost: `2·M·N·K` FLOPs per batch
    element.

    ```mlir
    %0 = kiln.matmul %x, %w : (tensor<?x128x768xf32>, tensor<768x2304xf32>) -> tensor<?x128x2304xf32>
    %1 = kiln.matmul %q, %k transpose_rhs : (tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x128xf32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$lhs, Kiln_NumericTensor:$rhs,
                       UnitAttr:$transpose_lhs, UnitAttr:$transpose_rhs);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`transpose_lhs` $transpose_lhs^)?
    (`transpose_rhs` $transpose_rhs^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_ReduceOp : Kiln_InferredOp<"reduce",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "reduction over a set of axes";
  let description = [{
    Combines the elements along `axes` with `kind` (sum, mean, max, min).
    With `keepdim` the reduced axes stay with size 1. Axes are distinct and
    in `[0, rank)`.

    ```mlir
    %0 = kiln.reduce mean %x axes = [1] keepdim : (tensor<4x768xf32>) -> tensor<4x1xf32>
    ```
  }];
  let arguments = (ins Kiln_ReduceKind:$kind, Kiln_NumericTensor:$input,
                       DenseI64ArrayAttr:$axes, UnitAttr:$keepdim);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    $kind $input `axes` `=` $axes (`keepdim` $keepdim^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

#endif // KILN_MATH_OPS_TD
