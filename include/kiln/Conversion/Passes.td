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
    `linalg.generic` (batch dims broadcast), reductions `linalg.generic`s
    with reduction iterators, shape ops `linalg.transpose`, `tensor.reshape`,
    `tensor.extract_slice`, `tensor.concat` and `tensor.pad`, gathers a
    `linalg.generic` extracting from the table. Composites must have been
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
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

#endif // KILN_CONVERSION_PASSES_TD
