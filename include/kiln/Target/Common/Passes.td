//===- Passes.td - Lowering passes every backend runs ------*- tablegen -*-===//
//
// The target-neutral part of code generation: the tensor-level fusion, the
// parameter-store lowering before bufferization, loop shaping, math
// approximation and the artifact ABI's C interfaces. The CPU and CUDA
// pipelines both run them (docs/design.md, "Layers").
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_COMMON_PASSES_TD
#define KILN_TARGET_COMMON_PASSES_TD

include "mlir/Pass/PassBase.td"

def FuseElementwiseWithoutRecomputationPass
    : Pass<"kiln-fuse-elementwise", "mlir::func::FuncOp"> {
  let summary = "Fuses elementwise producers into consumers that read each "
                "produced value once";
  let description = [{
    linalg elementwise fusion that never recomputes what costs more than
    reading it: a producer is fused into a consumer only when the consumer
    reads each of its values once (the operand's indexing map is a
    permutation of all the consumer's loops). Upstream's default also fuses
    into contractions, where a layer_norm feeding a matmul would be
    recomputed for every output column.

    A producer with several users:
    - is fused into each of them (each computes the values again, and the
      producer goes once none is left) when it is cheap to recompute: it
      reads at most one operand of its own size, with elements no wider
      than its own (not a narrowing cast), the others broadcast (a row
      maximum, a scalar), and its body is at most 12 arith/math ops (no
      gather). A consumer then reads no more than it did, and the
      intermediate is never written: a softmax's exponentials read by its
      sum and by the backward, a cross-entropy's one-hot mask read by the
      loss and by the gradient.
    - otherwise, is fused into its first user when that user is
      elementwise (all loops parallel), does not write into the producer's
      values, and every other user comes after it in the same block: the
      fused op yields the producer's values too, and
      the other users read those. An AdamW update's new moments, written to
      their state and read by the parameter's update, become one loop that
      reads the parameter, gradient and moments once and writes the three.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def FillPerUsePass : Pass<"kiln-fill-per-use", "mlir::func::FuncOp"> {
  let summary = "Gives each use of a linalg.fill on tensors a fill of its "
                "own";
  let description = [{
    CSE merges equal fills (the zeros every matmul and sum accumulates
    into), and one-shot bufferization then fills one buffer and copies it
    for every consumer that writes into it: a copy reads and writes what
    a fill only writes. This pass clones the fill (and the `tensor.empty`
    it fills, when it fills one) for every use but the first, right before
    the op of the fill's block that holds the use, so each consumer
    accumulates into a buffer of its own that lives no longer than before.
    gpt2-small's training step made 334 such copies per step, none now.

    A splat tensor constant of 4 KiB or more that an op writes into (a
    destination-style op's init, a loop's initial value) becomes such a
    fill first, right before the first op that uses it: bufferized, a
    constant is read-only data in the module that each consumer writing
    into it copies (gpt2-small's token embedding gradient accumulated into
    a 154 MB table of zeros stored in module.so and copied on every step).
    One that is only read stays.

    Runs right before bufferization, after the last CSE.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def LowerParameterStoresPass
    : Pass<"kiln-lower-parameter-stores", "mlir::ModuleOp"> {
  let summary = "Lowers kiln.store_param to "
                "bufferization.materialize_in_destination";
  let description = [{
    Turns each `kiln.store_param` into a
    `bufferization.materialize_in_destination` of the value into its
    parameter argument, at the end of the function, so parameter updates
    are computed in the parameters' own buffers. The written arguments are
    marked `bufferization.writable = true`, every other tensor argument
    `false` (the runtime maps inference weights read-only), and the tensor
    arguments of public functions `llvm.noalias` (the runtime passes every
    argument in its own buffer). Runs right before empty-tensor
    elimination and bufferization: a canonicalization in between would
    erase the unused materializations. A function that stores one
    parameter twice, or stores one inside a region (an `scf.if`), is an
    error.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect",
                           "::mlir::LLVM::LLVMDialect"];
}

def SequentializeInnerParallelPass
    : Pass<"kiln-sequentialize-inner-parallel", "mlir::func::FuncOp"> {
  let summary = "Rewrites scf.parallel loops nested in other loops into "
                "scf.for loops";
  let description = [{
    Only the outermost parallel loop of a nest becomes a parallel region
    (one fork/join per nest, not one per outer iteration): nested
    `scf.parallel` loops without reductions become `scf.for` nests, except
    those marked `kiln.keep_parallel` (loops a backend maps to the threads
    of one block itself) and those whose enclosing loops are all `scf.for`
    loops marked `kiln.parallel_body` (each iteration is work enough for a
    fork and join: the k blocks of a CPU matmul). A nested parallel loop
    with reductions is an error.

    With `split-outer-loops` (the CPU default), the innermost dim of a
    multi-dimensional outermost loop with at least 8 outer iterations
    becomes a sequential loop too: OpenMP collapses the dims into one loop
    that recomputes every index by division, which LLVM cannot vectorize.
  }];
  let options = [
    Option<"splitOuterLoops", "split-outer-loops", "bool", "true",
           "Also walk the innermost dim of multi-dimensional outermost "
           "loops sequentially (for OpenMP; a GPU maps all their dims to "
           "threads)">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect"];
}

def ApproximateMathPass : Pass<"kiln-approximate-math", "mlir::func::FuncOp"> {
  let summary = "Polynomial approximations of exp, tanh and erf";
  let description = [{
    Replaces `math.exp`, `math.tanh` and `math.erf` by upstream's polynomial
    approximations (about 1e-7 relative error in f32) made of plain
    arithmetic, so the loops around them vectorize instead of calling libm
    for every element, and GPU kernels compute them as the CPU does
    (no libdevice).
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::vector::VectorDialect"];
}

def SplitRowSumsPass
    : Pass<"kiln-split-row-sums", "mlir::func::FuncOp"> {
  let summary = "Sums rows in lanes of partial sums";
  let description = [{
    Splits every floating-point row sum (a `linalg.generic` adding values
    computed from its inputs over its innermost loop: a layer norm's mean,
    its variance from the row and the broadcast mean, a softmax's
    denominator from the row and the broadcast max) of a static count of
    at least four times `lanes` elements into `lanes` partial sums (lane l
    adds elements l, l + lanes, l + 2 lanes, ... in order) and the sum of
    those (as upstream `linalg::splitReduction` does, dynamic rows too),
    then the count % `lanes` elements left at the end of each row, added
    in order (a vocabulary of 50257: 3141 steps of 16 lanes, then one). As one
    sequential sum, a row was a chain of dependent scalar additions, one
    add latency per element; the partial sums are independent, so LLVM
    vectorizes them across the lanes. The order of the additions is fixed by the IR, not by whether
    LLVM vectorizes a loop (a reassociation flag instead let the order
    depend on a runtime aliasing check, and so on where buffers were
    allocated). The result differs from the sequential sum by rounding
    only, as PyTorch's vectorized sums do.

    ```mlir
    // Before: %s = sum over k of %x[r, k], k < 768, in order.
    // After:
    %e = tensor.expand_shape %x [[0], [1, 2]] : tensor<128x768xf32> into tensor<128x48x16xf32>
    %p = linalg.generic {iterator_types = ["parallel", "reduction", "parallel"]}
        ins(%e) outs(%zeros : tensor<128x16xf32>)  // partial sums
    %s = linalg.generic {iterator_types = ["parallel", "reduction"]}
        ins(%p) outs(%acc : tensor<128xf32>)        // their sum
    ```
  }];
  let options = [
    Option<"lanes", "lanes", "int64_t", "16",
           "Partial sums per row (the f32 lanes of a vector register)">
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def EmitCInterfacesPass : Pass<"kiln-emit-c-interfaces", "mlir::ModuleOp"> {
  let summary = "Marks entry points for `_mlir_ciface_` wrappers";
  let description = [{
    Sets `llvm.emit_c_interface` on every public function with a body, so
    func-to-llvm emits `_mlir_ciface_<name>` wrappers taking memref
    descriptors by pointer: the artifact ABI's entry points
    (`kiln_entry_<name>`, docs/artifacts.md) call them.
  }];
}

#endif // KILN_TARGET_COMMON_PASSES_TD
