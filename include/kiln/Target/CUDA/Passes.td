//===- Passes.td - Passes of the CUDA backend --------------*- tablegen -*-===//
//
// The passes only the CUDA pipeline (kiln-cuda-pipeline) runs, in pipeline
// order: on buffers after the shared front (Target/Common), matmuls to
// cuBLASLt calls and every other loop nest to a kernel; then, on the
// outlined kernels, what the NVVM lowering needs.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CUDA_PASSES_TD
#define KILN_TARGET_CUDA_PASSES_TD

include "mlir/Pass/PassBase.td"

def MatmulsToLibraryCallsPass
    : Pass<"kiln-gpu-matmuls-to-library", "mlir::ModuleOp"> {
  let summary = "Rewrites f32, f16, bf16, int8 and fp8 matmul contractions "
                "on buffers into kiln_gpu_gemm calls";
  let description = [{
    Rewrites each f32, f16 or bf16 (batch..., m, k, n) contraction on
    buffers into calls of `kiln_gpu_gemm` (cuBLASLt through the runtime,
    include/kiln/Runtime/GpuApi.h): one call per index of the batch dims
    but the last, which becomes the call's strided batch. An operand whose
    layout cuBLASLt cannot take (no unit stride along either of its matrix
    dims, or strides unknown at compile time) leaves the op to the
    generated kernels.

    An int8 contraction (`out + sext(lhs) * sext(rhs)` into i32, what
    `kiln.integer_matmul` lowers to) becomes a `KILN_GPU_I8_I32` call
    (cuBLASLt's int8 gemm, exact int32 sums) only where it meets the int8
    kernels' layout rules: the rhs stored `[n, k]` (transposed) and the
    lhs `[m, k]` (cuBLASLt's "TN" once the row-major product is swapped
    into its column-major one), n and k static multiples of 4, and every
    offset, leading dim and batch stride a known multiple of 4 elements
    (static, or a dynamic stride of a contiguous buffer whose static inner
    sizes multiply to one). Any other int8 contraction stays a generated
    kernel.

    An fp8 contraction (what `kiln.scaled_fp8_matmul` lowers to: two
    `f8E4M3FN` operands, two one-element f32 scales read through constant
    maps, an f32 output it accumulates into) becomes a
    `kiln_gpu_gemm_scaled` call of type `KILN_GPU_E4M3_F32` (cuBLASLt's
    fp8 gemm, the scales' addresses as its scale pointers) where it meets
    the fp8 kernels' rules: "TN" as for int8, n and k static multiples of
    16, the operands' offsets, leading dims and batch strides multiples of
    16 elements (bytes), the output's multiples of 4, and the output
    zero-filled right before (beta 0). Any other stays a generated kernel.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect"];
}

def SplitFullReductionsPass
    : Pass<"kiln-gpu-split-reductions", "mlir::func::FuncOp"> {
  let summary = "Full reductions on buffers to parallel partial results and "
                "a final fold";
  let description = [{
    Splits each `linalg.generic` without a parallel dim (a sum of squares
    over a whole parameter for the gradient norm, a mean loss) whose
    reduction has a recognizable combiner (`out = combine(out, f(inputs))`)
    into a parallel loop over partial results (thread p folds elements p,
    p + chunks, ... of the linearized iteration space, from the combiner's
    neutral element) and a generic folding the partials into the output,
    split again while it is longer than 1024. Without it the whole
    reduction ran in one GPU thread.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::affine::AffineDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::linalg::LinalgDialect"];
}

def PrepareLoopsForGPUPass
    : Pass<"kiln-gpu-prepare-loops", "mlir::func::FuncOp"> {
  let summary = "Copies to linalg, reductions innermost, sequential work "
                "wrapped in single-iteration parallel loops";
  let description = [{
    Prepares buffers-level code for the loop mapping: `memref.copy` becomes
    a `linalg.copy` (a kernel like any other loop nest), generic ops get
    their reduction dims innermost (a thread per output element walks
    them), and work without a parallel dim (full reductions, 0-d ops, the
    sequential loops of scatter_add) is wrapped in a one-iteration
    `scf.parallel`, so that it too runs on the GPU.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::linalg::LinalgDialect"];
}

def BlockReductionsPass
    : Pass<"kiln-gpu-block-reductions", "mlir::func::FuncOp"> {
  let summary = "Long reductions along contiguous rows to a block of threads "
                "per output element";
  let description = [{
    A generic with parallel dims and then a long reduction (at least 64)
    along the contiguous dim of its first input (softmax and layer-norm
    statistics, the log-sum-exp of a loss over the vocabulary) becomes a
    loop over the output elements, each run by a block of 256 threads:
    they fold strided slices of the row (neighbouring threads read
    neighbouring elements) and combine them with an `scf.reduce`, which
    becomes `gpu.all_reduce` (warp shuffles and shared memory). The loop is
    marked `kiln.gpu_block_per_iteration` for kiln-gpu-map-parallel-loops.
    Rows of 16-bit floats keep a thread each (shuffles move 32-bit values).
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::affine::AffineDialect",
                           "::mlir::memref::MemRefDialect"];
}

def MapParallelLoopsPass
    : Pass<"kiln-gpu-map-parallel-loops", "mlir::func::FuncOp"> {
  let summary = "Collapses, tiles and maps outermost parallel loops to GPU "
                "blocks and threads";
  let description = [{
    Maps every outermost `scf.parallel` of the host code onto the GPU: its
    dims are collapsed into one, tiled by the block size and mapped to
    blocks (x) and threads (x). A loop marked
    `kiln.gpu_block_per_iteration` gets a block per iteration instead, its
    inner `kiln.keep_parallel` loop the block's threads. Inner parallel
    loops must already be sequential (kiln-sequentialize-inner-parallel).
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", "256", "Threads per block">
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::affine::AffineDialect"];
}

def DeviceMemoryPass : Pass<"kiln-gpu-device-memory", "mlir::func::FuncOp"> {
  let summary = "Moves host allocations to the GPU and refuses host access "
                "to device memory";
  let description = [{
    Host allocations become device allocations (`gpu.alloc`, freed with
    `gpu.dealloc`), constants are copied to device memory where they are
    used, and nothing else on the host may touch memory: every pointer the
    host code holds is a device pointer. An alloca, load, store, copy or
    linalg op left on the host (outside a kernel) is an error, except on
    the small shape buffers of dynamic reshapes, which only the host
    reads.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def MergeKernelModulesPass
    : Pass<"kiln-gpu-merge-kernel-modules", "mlir::ModuleOp"> {
  let summary = "Moves every outlined kernel into one gpu.module "
                "(@kiln_kernels)";
  let description = [{
    gpu-kernel-outlining makes one `gpu.module` per kernel (each holding a
    `gpu.func` named after the function it came from, so the kernel names
    repeat across modules). This moves every kernel into one module,
    `@kiln_kernels`, each named after the module it came from (unique: they
    were top-level symbols), and points the launches at them: an
    artifact's kernels become one PTX module (`kiln-compile --emit=ptx`
    prints a module ptxas accepts as it is, and the runtime loads one
    image). A module with a symbol already named `kiln_kernels` is an
    error.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def LowerAllReducePass
    : Pass<"kiln-gpu-lower-all-reduce", "mlir::gpu::GPUModuleOp"> {
  let summary = "Lowers gpu.all_reduce to shuffles and shared memory";
  let description = [{
    Inside the outlined kernels, `gpu.all_reduce` (from the row reductions'
    `scf.reduce`) becomes warp shuffles, shared memory and barriers
    (upstream's all-reduce lowering patterns).
  }];
}

def LowerVectorTransfersPass
    : Pass<"kiln-gpu-lower-vector-transfers", "mlir::gpu::GPUModuleOp"> {
  let summary = "Lowers in-bounds vector transfers to vector.load and "
                "vector.store";
  let description = [{
    Inside the outlined kernels, in-bounds 1-D vector transfers (fused
    attention's row reads and writes) become `vector.load` and
    `vector.store`, which the NVVM lowering turns into plain loads and
    stores.
  }];
}

#endif // KILN_TARGET_CUDA_PASSES_TD
