//===- Passes.td - Conversions out of the kiln dialect -------*- tablegen -*-===//
//
// Declarations of the passes that lower kiln IR toward code.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CONVERSION_PASSES_TD
#define KILN_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertKilnToLinalgPass : Pass<"convert-kiln-to-linalg", "mlir::ModuleOp"> {
  let summary = "Lowers kiln primitives to linalg, tensor, arith and math";
  let description = [{
    Rewrites every kiln primitive into upstream tensor-level IR: elementwise
    ops and broadcasts become `linalg.generic`s, matmul a contraction
    `linalg.generic` (batch dims broadcast; against a 2-D rhs, a weight,
    the lhs's batch dims are collapsed into its rows, one product for all,
    expanded back), reductions `linalg.generic`s
    with reduction iterators, shape ops `linalg.transpose`,
    `tensor.expand_shape` or `tensor.collapse_shape` (a reshape whose dims
    group) or `tensor.reshape`, `tensor.extract_slice`, `tensor.concat` and
    `tensor.pad`, gathers a `linalg.generic` extracting from the table. Composites must have been
    decomposed (`kiln-decompose`); the pass says so if one remains.
    Parameters (`kiln.read_param`) are left for
    `kiln-externalize-parameters`.

    Broadcasting follows the static types: a dimension broadcasts when it is
    statically 1 and the other side's is not. Two dynamic dimensions are
    taken to be equal.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect"];
}

def ConvertKilnAttentionPass : Pass<"convert-kiln-attention", "mlir::ModuleOp"> {
  let summary = "Lowers kiln.attention and kiln.attention_grad to fused loop nests";
  let description = [{
    Flash-attention style lowering of the attention ops a pipeline keeps
    whole (`keep=kiln.attention`). The forward is one `scf.forall` over
    (batch, head, query row); each row visits its keys once with an online
    softmax whose running max, sum and accumulator live in vector registers,
    so the score matrix is never stored. `kiln.attention_grad` becomes two
    such loops: per query row (recomputing the softmax statistics, then dq)
    and per key row (dk and dv, summed over the query heads that share the
    key/value head). Causal rows stop at their last visible key. Arithmetic
    is f32 for every element type, rounded once when a row is written.

    ```
    kiln-opt --kiln-decompose='keep=kiln.attention' --convert-kiln-attention model.mlir
    ```

    Head dims must be static (and head counts, for grouped-query
    attention); otherwise the op is an error that says to decompose it.

    Keys (and, in the key-row loop, query rows) go `block` at a time:
    independent dot products and one vector exp per step, then a tail one
    at a time. The CPU pipeline uses 16; the CUDA pipeline 1, since a GPU
    thread holds the block's rows in registers (with head dim 64, blocks of
    16 make ptxas spill 464 bytes per thread in the forward and 23 KB in
    the key-row gradient; blocks of 1 spill nothing in the forward).
  }];
  let options = [
    Option<"block", "block", "int64_t", "16",
           "Keys (or query rows) per step of the row loops">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

#endif // KILN_CONVERSION_PASSES_TD
