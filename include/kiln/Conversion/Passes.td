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

#endif // KILN_CONVERSION_PASSES_TD
