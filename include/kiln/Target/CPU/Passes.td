//===- Passes.td - Passes of the CPU backend ---------------*- tablegen -*-===//
//
// The passes only the CPU pipeline (kiln-cpu-pipeline) runs: register tiles
// for matmuls, bf16 without libcalls, and what OpenMP and LLVM's alias
// analysis need. The target-neutral ones are in Target/Common/Passes.td.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CPU_PASSES_TD
#define KILN_TARGET_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def TileAndVectorizeContractionsPass
    : Pass<"kiln-tile-and-vectorize-contractions", "mlir::func::FuncOp"> {
  let summary = "Register-tiles and vectorizes (batch, m, k, n) contractions";
  let description = [{
    The f32 matmul contractions convert-kiln-to-linalg emits iterate over
    (batch..., m, k, n). This pass packs the lhs in tiles of rows
    (`[M / tile-m, K, tile-m]`, zero-padded; a transposed lhs straight from
    its source), splits the columns into panels run in parallel
    (`scf.forall`), packs each panel's rhs columns contiguously (a loop of
    whole-row vector copies) and walks
    the panel in register tiles of 8 x 32 outputs (by default; `tile-m` x `tile-n`) with
    the k loop innermost. An rhs that an elementwise generic computes from
    the function's arguments alone (`kiln.dequantize` of a quantized
    weight's codes and scales) is computed panel by panel, into the
    packing, so the float weight is never materialized whole. A
    contraction of fewer rows than a register tile (one token per sequence)
    with a row-major rhs gets panels `tile-m / rows` times wider (as many
    accumulators as a full tile) and reads its rhs in place. Each tile is
    vectorized (the last panel of a column count that is not a multiple of
    the panel width at its own width; the last partial row tile is peeled
    and vectorized at its own size), its accumulators are hoisted out of the k
    loop, and its contraction becomes outer products: each step of k is 8
    scalar lhs loads broadcast to vectors and 16 fused multiply-adds on
    registers (AVX-512). Where the result starts as zeros (a `linalg.fill`
    of +0.0, as every contraction does), the hoisted accumulators start
    as zero vectors and the result is not filled (a ragged column split
    fills only its last partial panel; a k-blocked contraction, whose
    blocks add to each other, keeps reading). A transposed rhs is read in place, panel by
    panel; other transposes are copied in 16 x 16 blocks; big lhs operands
    are blocked by rows to stay in the last-level cache (`l3-bytes`). When
    a packed panel would not fit half the L2 cache (`l2-bytes`; GPT-2's
    hidden-state gradient through the LM head has K = 50257), k is walked
    in blocks of `k-block` steps, each a parallel loop over the panels.
    So is a k whose lhs (a quarter of the L2 or more) and two panels (the
    one read and the next, prefetched) outgrow three quarters of the L2,
    in equal blocks of at least 1024 steps that fit it: the lhs columns of
    a block then stay in L2 for all panels instead of being read again from
    L3 for each (gpt2-small's MLP projection at 1 x 128, K = 3072).
    Where weights are stored as panels (`kiln-pack-weights`), the register
    tiles of each panel prefetch the next panel's lines into L2, spread
    evenly over the panel's row tiles and steps of k: one prefetch per step,
    its position a fixed-point count that costs an add per step
    (`prefetch-stored-panels`; the stored weights are read cold from
    memory on every forward, and the first row tile otherwise waited on
    each line). Whole 16 x 16 transpose blocks become 16 row reads and 64
    shuffles. A contraction with a loop of size 0 is left as it is.

    kiln-compile chooses the options for the target CPU (its vector width,
    register count and caches; see docs/performance.md) and records them in
    the manifest's target_options: 8 x 32 on AMD's AVX-512 cores, 6 x 64 on
    Intel's, 6 x 16 on AVX2.
  }];
  let options = [
    Option<"tileM", "tile-m", "int64_t", /*default=*/"8",
           "Rows of a register tile (lhs broadcasts per step of k)">,
    Option<"tileN", "tile-n", "int64_t", /*default=*/"32",
           "Columns of a register tile and of a parallel panel (a multiple "
           "of the vector width)">,
    Option<"kBlock", "k-block", "int64_t", /*default=*/"128",
           "Steps of k per block when a packed panel outgrows half the L2 "
           "cache; 0: never block k">,
    Option<"l2Bytes", "l2-bytes", "int64_t", /*default=*/"1048576",
           "L2 cache of a core: a packed panel bigger than half of it has "
           "its k blocked">,
    Option<"l3Bytes", "l3-bytes", "int64_t", /*default=*/"33554432",
           "Last-level cache the cores share: an lhs bigger than half of "
           "it is blocked by rows">,
    Option<"prefetchStoredPanels", "prefetch-stored-panels", "bool",
           /*default=*/"true",
           "Register tiles over weights stored as panels prefetch the next "
           "panel into L2">,
  ];
  let dependentDialects = ["::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::tensor::TensorDialect"];
}

def MatvecDotProductsPass
    : Pass<"kiln-matvec-dot-products", "mlir::ModuleOp"> {
  let summary = "Few-row matmuls by a transposed weight as dot products";
  let description = [{
    Rewrites `kiln.matmul %x, %w transpose_rhs` where `%x` (f32,
    `[..., K]`) has at most `max-rows` rows (a decoding step) and `%w` is
    an f32 `[N, K]` tensor (a linear's `[out, in]` weight, a tied LM head)
    or a `kiln.dequantize` of 8- or 4-bit codes `[N, K]` (scales
    `[N or 1, G]`, optional zero points). Each output column is a parallel
    iteration (`scf.forall`); for each row of `%x` it walks K 16 weights at
    a time (codes: bytes, or 8 bytes split into low and high nibbles,
    converted to f32 with the group's zero point taken off) into
    independent partial sums, scaling each group's sum once. The weights
    are read once per row and never packed or dequantized into memory, as
    the register-tiled matmul does panel by panel. With a dynamic row count
    the kernel runs under `scf.if rows <= max-rows` and the matmul as it
    was otherwise. It needs a static K that is a multiple of 16, groups of
    a multiple of 16, and at most one dynamic dim among `%x`'s rows; other
    matmuls are left alone.

    Three more weights take kernels of their own. A 2:4 weight stored
    compressed (`kiln.expand_2of4`, up to 4 rows) multiplies each group's
    two kept values with the elements of x their positions pick (gathers).
    A weight in compressed sparse rows (`kiln.expand_csr`; up to 2 rows
    from sparsity 0.5 on, 1 below) walks each
    output's entries 16 at a time under a mask, x gathered at their
    indices (clamped into range); with more rows and a sparsity of at
    least 0.5, x is transposed once (padded to 64 rows) and each entry
    adds value · x[:, index] into accumulators 64 rows at a time. An f32 weight read as stored,
    `[K, N]` from a `kiln.read_param` (GPT-2's Conv1D; one row, N a
    multiple of 16) is not a dot product: each iteration owns 16 to 64
    output columns and adds x[k] times the weight's row k into them.

    With `nibble-table` (AVX-512 targets), 4-bit codes in groups of a
    multiple of 32 are not converted: per group, the 16 values a code can
    stand for, `(q - z) · s`, are one vector, and vpermps (a call of
    `llvm.x86.avx512.permvar.sf.512`, declared in the module) looks each
    code up in it; a step takes 16 code bytes, their low nibbles times the
    block's even inputs and their high nibbles times its odd ones (x is
    deinterleaved per block of 32 once per call). No group sum is scaled.

    With `row-block` R > 1 the dense and quantized kernels take R rows of
    x at a time: each weight vector is loaded (and converted or looked
    up) once and multiplied with each of the R rows into their own
    partial sums; the rows left over (rows mod R) go one at a time, and
    fewer rows than R take the one-row kernel alone (a branch on the row
    count).
  }];
  let options = [
    Option<"maxRows", "max-rows", "int64_t", /*default=*/"16",
           "The most rows of x the dot-product kernel takes">,
    Option<"rowBlock", "row-block", "int64_t", /*default=*/"1",
           "Rows of x the dense and quantized dot-product kernels multiply "
           "together, sharing each weight vector's load and conversion "
           "(1..8; the rows left over go one at a time)">,
    Option<"nibbleTable", "nibble-table", "bool", /*default=*/"false",
           "Look 4-bit codes up in a per-group table with vpermps "
           "(AVX-512) instead of converting them">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::vector::VectorDialect"];
}

def WidenBF16MatmulsPass
    : Pass<"kiln-widen-bf16-matmuls", "mlir::func::FuncOp"> {
  let summary = "bf16 matmuls as f32 matmuls over widened operands, for the "
                "f32 register tiles";
  let description = [{
    Rewrites each bf16 matmul contraction (bf16 operands that its body
    widens to f32, multiplied and added into an f32 result, as
    convert-kiln-to-linalg builds it) into an f32 contraction of widened
    operands: an elementwise `arith.extf` generic for each (under the
    transpose, where an operand is a transpose of the last two dims, so
    that a transposed weight is still read in place).
    kiln-tile-and-vectorize-contractions then runs it on the f32 register
    tiles, widening a weight panel by panel into the packing it does
    anyway. Widening is exact, so the products and sums are those of the
    bf16 body, summed in another order.

    The CPU pipeline runs it for `bf16-dot=f32`, the default where a CPU
    has no AMX-BF16 and its AVX512-BF16 `vdpbf16ps` runs at half the FMA
    rate (Intel), or it has no AVX512-BF16 at all: there the f32 tiles
    multiply bf16 weights twice as fast as bf16 dot products, or than the
    plain loops. A matmul of fewer static rows than `min-rows` (a decoding
    step) is left as it is: widening its weight would double the bytes a
    step streams, where a CPU with AVX512-BF16 multiplies it in
    `vdpbf16ps` tiles instead (kiln-lower-amx-matmuls; the pipeline asks
    for that where the CPU has them).
  }];
  let options = [
    Option<"minRows", "min-rows", "int64_t", /*default=*/"0",
           "Leave matmuls of fewer static rows than this bf16">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def LowerAMXMatmulsPass
    : Pass<"kiln-lower-amx-matmuls", "mlir::ModuleOp"> {
  let summary = "bf16 x bf16 -> f32 matmul kernels on AMX tiles or AVX512-BF16 register tiles";
  let description = [{
    Rewrites the buffer-form contraction of a bf16 matmul (bf16 lhs
    `[..., M, K]`, bf16 rhs `[K, N]` or `[N, K]` read transposed, each
    widened to f32 and summed into an f32 `[..., M, N]` output) into a
    kernel of AMX tile instructions (`tdpbf16ps`, through the upstream `amx`
    dialect):

    - column panels of `32 * panel-blocks` columns are spread over threads
      (`scf.parallel`); each packs its rhs as `[K/2, panel]` 32-bit words of
      two bf16 of consecutive k (the layout the rhs tile of `tdpbf16ps`
      takes: a transpose of words for a transposed rhs, two rows
      interleaved for a row-major one), zero past K and N;
    - 32-row blocks of the lhs run through each 32-column block of the
      panel: four 16 x 16 f32 sum tiles, two lhs tiles (16 rows x 32 steps
      of k) loaded straight from the lhs and two rhs tiles per step of 32;
      a ragged last block of rows, and every block where K is not a
      multiple of 32, is copied zero-padded first;
    - each block's sums are stored to a 32 x 32 buffer and added to the
      output (masked at a ragged last panel), or stored to it where the op
      just before zero-fills the output (the lowering's init of the sums,
      which is then removed: every output element gets exactly one block);
    - a rhs that kiln's lowering copied from a transposed `[N, K]` buffer
      (`linalg.transpose`, for `transpose_rhs`: GPT-2's tied LM head) is
      packed from that buffer, and the copy is removed; a 2-d lhs copied
      from a transposed `[K, M]` buffer (`transpose_lhs`: a weight
      gradient's xᵀ·dy) is packed from it into zero-padded `[M, K]` rows
      (pairs of k interleaved, 16 x 16 words transposed in registers)
      before the panels run. A copy counts as read by the matmul alone when
      the next use of its buffer overwrites it (bufferization gives every
      layer's copy one buffer);
    - a rhs that an elementwise `arith.truncf` filled from an f32 buffer
      (a mixed-precision model's f32 weight cast where it is used), read by
      this matmul alone, is packed from the f32 buffer, rounding as it
      packs (the same rounding), and the cast is removed.

    With `int8`, the contraction of `kiln.integer_matmul` (i8 lhs, i8 rhs
    `[N, K]` read transposed, sign-extended, summed into i32) runs on the
    same blocks with `tdpbssd`: operand tiles of 16 rows by 64 bytes, k in
    words of four codes (the transposed rhs packs as the same transpose of
    32-bit words), exact i32 sums.

    With `bf16-dot=avx512` (a CPU with AVX512-BF16 and no AMX-BF16), the
    bf16 blocks are multiplied in zmm registers instead, with the same
    panels, stored pairs and lhs handling: each 32 x 32 block is four
    register tiles of 8 rows by 32 columns (16 f32 accumulators), each step
    a pair of k: the two 32-bf16 halves (16 columns each) of the
    sub-panel's packed row, and per row the lhs's pair broadcast as a
    32-bit word into `vdpbf16ps` (the upstream `x86vector.avx512.dot`),
    which adds both products to each f32 lane. Only the tiles holding some
    of a block's real rows run (a decoding step's one row: one tile).

    A module that uses AMX tiles gets a constructor that asks Linux for the
    AMX tile state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`),
    without which tile instructions fault. The CPU pipeline runs this pass
    where kiln-compile chose `bf16_dot` `amx` (the target CPU has AMX-BF16)
    or `avx512` (AVX512-BF16 only), or `int8_dot` `amx`; other
    contractions are left to the other kernels and the plain loops.
  }];
  let options = [
    Option<"panelBlocks", "panel-blocks", "int64_t", /*default=*/"4",
           "32-column blocks per parallel panel (a block of lhs rows is "
           "reused across them)">,
    Option<"bf16", "bf16", "bool", /*default=*/"true",
           "Lower bf16 x bf16 -> f32 matmuls (on the kernel of bf16-dot)">,
    Option<"bf16Dot", "bf16-dot", "std::string", /*default=*/"\"amx\"",
           "What multiplies the bf16 blocks: amx (tdpbf16ps on tiles) or "
           "avx512 (vdpbf16ps in zmm register tiles; AVX512-BF16)">,
    Option<"int8", "int8", "bool", /*default=*/"false",
           "Lower i8 x i8 -> i32 matmuls with a transposed rhs "
           "(kiln.integer_matmul; tdpbssd, AMX-INT8)">,
  ];
  let dependentDialects = ["::mlir::amx::AMXDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::x86vector::X86VectorDialect"];
}

def LowerAMXAttentionPass
    : Pass<"kiln-lower-amx-attention", "mlir::func::FuncOp"> {
  let summary = "bf16 kiln.attention and kiln.attention_grad as flash-attention kernels on AMX tiles";
  let description = [{
    Rewrites a bf16 `kiln.attention` (no mask operand, no key lengths, head
    dims that are multiples of 32, at least 16 query rows where static)
    into a flash-attention forward whose two products run on AMX tiles
    (`tdpbf16ps`, through the upstream `amx` dialect), at the tensor level,
    before `convert-kiln-attention` would give it the f32 row loop:

    - K is copied zero-padded to whole blocks of 32 keys and V transposed
      per block (`[B, KVH, Sk'/32, Dv, 32]`), once per key/value head;
    - a parallel loop over (batch, head, block of 32 query rows) packs its
      queries as pairs of d (the rhs tile layout: 16 x 16 transposes of
      32-bit words) and walks the blocks of keys its rows can see (all, or
      up to the causal diagonal);
    - per key block, the transposed scores `Sᵀ = K_blk · Q_blkᵀ` are four
      16 x 16 f32 tiles; scaled and masked (a causally hidden key scores the
      lowest f32, as in the fused lowering; keys past the end count for
      nothing), they update the running max and sum of each query
      elementwise across the block's rows, a vector of 32 queries, with no
      horizontal reduction;
    - `exp(s - m)` is rounded to bf16 into the pair layout (keys 2p, 2p+1
      interleaved per query) and `Vᵀ_blk · Pᵀ` is summed on tiles, 32 value
      dims at a time, into the f32 accumulator `Oᵀ` rescaled by each
      query's factor;
    - the block's rows of the result are `Oᵀ / l`, transposed 16 x 16 and
      rounded to bf16.

    A bf16 `kiln.attention_grad` (same conditions) becomes two parallel
    loops whose five products all run on tiles. Q and the output gradient
    g are laid out once as column pairs (for products over the head dim)
    and row pairs (for products over the rows), K also transposed per
    block:

    - over (batch, head, block of queries): the forward again (m, l, and
      Oᵀ for δ = g·o), then per key block Sᵀ, `dPᵀ = V_blk · gᵀ`,
      `dSᵀ = Pᵀ (dPᵀ - δ)` as key pairs and `dqᵀ += Kᵀ_blk · dSᵀ` summed on
      its tiles; it writes dq and each row's m, 1/l (zero past the last
      row) and δ;
    - over (batch, key/value head, block of keys): for each query head of
      the group and each query block that sees the keys, Sᵀ and dPᵀ again
      from the stored statistics, `dv += Pᵀ · g` and `dk += dSᵀ · q` summed
      on tiles; no atomics.

    Scores and sums are f32; the probabilities (and score gradients) are
    rounded to bf16 before the products that take them (as flash attention
    rounds them to the operands' type), which is the one difference in
    numerics from the fused loop.
    The CPU pipeline runs it where the target CPU has AMX-BF16
    (`bf16-dot=amx`); `kiln-lower-amx-matmuls` then adds the module's
    request for the AMX state.
  }];
  let dependentDialects = ["::mlir::amx::AMXDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::vector::VectorDialect"];
}

def ConvertAMXToLLVMPass
    : Pass<"kiln-convert-amx-to-llvm", "mlir::ModuleOp"> {
  let summary = "AMX tile ops and the cf branches that carry tiles, to LLVM";
  let description = [{
    kiln-lower-amx-matmuls carries its sum tiles through loops, so after
    scf-to-cf `!amx.tile` values are block arguments of `cf` branches. The
    upstream cf-to-llvm conversion does not know that type, and the AMX
    legalization lives in convert-vector-to-llvm, which runs later. This
    pass converts the `amx` ops (to the `llvm.x86.tile*.internal`
    intrinsics) and every `cf` op with one type converter that maps
    `!amx.tile` to `!llvm.x86_amx`. A module without AMX ops is left as
    it is. The CPU pipeline runs it before cf-to-llvm.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def LowerIntegerMatmulsPass
    : Pass<"kiln-lower-integer-matmuls", "mlir::ModuleOp"> {
  let summary = "Register-tiled int8 x int8 -> int32 matmul kernels "
                "(AVX-512 VNNI where the CPU has it)";
  let description = [{
    Rewrites the buffer-form contraction that `kiln.integer_matmul` lowers to
    (`[M, K]` i8 lhs, `[N, K]` i8 rhs read transposed, `[M, N]` i32 sums
    added to the output) into a kernel of its own:

    - the lhs is copied once into 4-byte groups along k (`[M, K/4]` i32,
      zero-padded past K), as unsigned bytes `x + 128` for VNNI;
    - column panels of `tile-n` are spread over threads (`scf.parallel`);
      each packs its rhs rows as `[K/4, tile-n]` 4-byte groups (the VNNI
      layout: for a 4-byte transposed rhs that is a transpose of 32-bit
      words) and, for VNNI, their column sums;
    - register tiles of `tile-m` rows x `tile-n` columns keep their i32
      sums in registers across k: each step of k/4 broadcasts one 4-byte
      group per row and runs `vpdpbusd` (u8 x s8, four products per lane;
      a call of `@llvm.x86.avx512.vpdpbusd.512`, which LLVM takes for the
      intrinsic) on each 16-lane vector of the panel; rows past the last whole tile
      run one at a time;
    - the epilogue subtracts `128 · Σₖ rhs` (the lhs shift) and adds the
      tile to the output (masked at a ragged last panel).

    With `int8-dot=avx2` (AVX2 CPUs without VNNI) a word holds two codes
    sign-extended to 16 bits and `vpmaddwd` adds two products per lane of
    8; with `int8-dot=generic` the same kernel multiplies sign-extended
    lanes with portable vector ops. Neither needs the shift. Contractions of other shapes (a row-major rhs, a
    dynamic K or N, strided rows) are left to the plain loops.
  }];
  let options = [
    Option<"int8Dot", "int8-dot", "std::string", /*default=*/"\"vnni\"",
           "vnni (AVX-512 VNNI vpdpbusd), avx2 (vpmaddwd on sign-extended "
           "pairs) or generic (portable vector ops)">,
    Option<"tileM", "tile-m", "int64_t", /*default=*/"8",
           "Rows of a register tile">,
    Option<"tileN", "tile-n", "int64_t", /*default=*/"32",
           "Columns of a register tile and of a parallel panel (a multiple "
           "of 16)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
}

def ParallelizeReductionsPass
    : Pass<"kiln-parallelize-reductions", "mlir::func::FuncOp"> {
  let summary = "Splits reductions whose outermost loop reduces into "
                "parallel chunks of their output";
  let description = [{
    A `linalg.generic` on tensors whose outermost loop is a reduction and
    that has a parallel loop inside (a column sum: the gradient of a bias
    or of a norm's scale, summed over the batch and sequence) would become
    a sequential loop nest around its parallel loops, and run on one
    thread: only an outermost parallel loop runs on threads. This pass
    tiles such an op (at the top of a function) into an `scf.forall` over
    chunks of its innermost parallel loop (16 to 64 elements: a quarter of
    the loop, in whole vectors), every other parallel loop one step at a
    time and the reductions whole. Each chunk keeps the order of its sums,
    so results are bitwise those of the untiled op; its inner loop runs
    along contiguous elements and vectorizes. Ops whose innermost parallel
    loop fits one chunk are left alone.

    Besides the threads, the loops move out of the function they were in
    (kiln-outline-parallel-loops), where gpt2-small's training step kept
    thousands of lines of sequential LLVM IR that one code generation
    thread compiled.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::affine::AffineDialect"];
}

def FuseRowLoopsPass : Pass<"kiln-fuse-row-loops", "mlir::func::FuncOp"> {
  let summary = "Adjacent parallel loops over the same rows as one loop";
  let description = [{
    Fuses an `scf.parallel` into the one before it in the same block when
    both have the same bounds and steps and no reductions, and every buffer
    either writes is a fresh allocation (`memref.alloc`/`memref.alloca`
    whose uses, through views, make no other value of it: no select, yield
    or non-view memref result, so nothing else aliases it) that both
    access, where both touch it, only at their own row: the leading
    indices of every load and store (`memref`, `vector.load/store`,
    `vector.transfer_read/write`) are the loop's induction variables, on
    the allocation itself or, for a one-dimensional loop, through expand
    and collapse shapes that keep its leading dim, and a vector access
    covers only dims after the row.
    Iteration i of the fused loop runs the first loop's iteration i, then
    the second's; since neither touches another row of what the other
    writes, that is the order the two loops had. Allocations and ops
    without memory effects between the loops (whose operands are defined
    above the first) move above it; any other op between them, or any op
    with other memory effects inside either (a call, a copy), stops the
    fusion.

    The CPU pipeline runs it after linalg becomes loops (one parallel loop
    per loop nest) and before buffer deallocation: a layer norm's thirteen
    row loops (fills, the split row sums, their sums, the divisions, the
    centring, the normalization) and the elementwise loops around it
    become one OpenMP region, whose rows pass through every step while
    their temporaries are in cache. Loops over other dims (a matmul's
    column panels) keep their own regions.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect"];
}

def StridedCopiesToLoopsPass
    : Pass<"kiln-strided-copies-to-loops", "mlir::func::FuncOp"> {
  let summary = "Copies between strided buffers as linalg.copy loop nests";
  let description = [{
    A `memref.copy` whose source or target is not one contiguous run of
    static shape (a matmul operand copied into the zero-padded buffer of
    its row tiles, a slice of a bigger tensor) lowers to a call of the
    support library's generic `memrefCopy`, which walks the elements one by
    one through their strides on one thread. This pass makes such copies
    `linalg.copy`, which become parallel loops like any other loop nest
    (threads, contiguous inner loops that vectorize). Contiguous copies
    stay `memref.copy` (a `memcpy`). gpt2-small's training step made 172
    strided copies per step.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def LowerBF16Pass : Pass<"kiln-lower-bf16", "mlir::func::FuncOp"> {
  let summary = "Computes bf16 arithmetic in f32 rounded per op, bf16 "
                "conversions as integer arithmetic (no libcalls)";
  let description = [{
    Computes bf16 arithmetic in f32, rounding after every op, and rounds
    f32 to bf16 (and widens bf16) with integer arithmetic. LLVM lowers bf16
    arithmetic and `fptrunc float to bfloat` to calls of `__truncsfbf2` on
    CPUs without AVX512-BF16, and libgcc before GCC 13 (Debian 12's) has no
    such function, so a bf16 module would not link on those machines. The
    conversions round to nearest even and keep NaNs quiet, as the hardware
    instruction does. Upstream's emulation marks the conversions it inserts
    `contract`, which lets a fold drop the rounding between two ops
    (extf(truncf(x)) -> x); bf16 arithmetic rounds every result, so the
    flag is cleared before anything folds.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def InlineAllocaScopesPass
    : Pass<"kiln-inline-alloca-scopes", "mlir::ModuleOp"> {
  let summary = "Replaces memref.alloca_scope by its body";
  let description = [{
    convert-scf-to-openmp wraps each parallel loop body in a
    `memref.alloca_scope`, whose region must stay a single block, which
    scf-to-cf then breaks. Kiln's bufferized code allocates on the heap, so
    the scope bounds no stack growth worth keeping: the body replaces it.
  }];
}

def OutlineParallelLoopsPass
    : Pass<"kiln-outline-parallel-loops", "mlir::ModuleOp"> {
  let summary = "Moves each outermost parallel loop into a function of its "
                "own";
  let description = [{
    Moves every outermost `scf.parallel` of a function with more than one
    into a private function of its own, `@<function>_parallel<N>`, called
    where the loop was: the values the loop uses from above become
    arguments, constants are cloned in. The functions get internal linkage
    and LLVM's `noinline` (`llvm.linkage` and `passthrough`, which
    func-to-llvm carries over).

    Translation to LLVM IR outlines each OpenMP parallel region with
    LLVM's CodeExtractor, which scans the whole enclosing function for
    every region: a training step with hundreds of parallel loops in one
    function took minutes (gpt2-small: 87 s of a 186 s compile). Each loop
    in its own function makes that linear, and gives parallel code
    generation (one module partition per core) functions of a size it can
    balance. A parallel region already ran as its own function, so nothing
    changes at run time but one call.

    A loop equivalent to one already outlined (same function type, same
    ops and attributes, values used in the same places:
    `OperationEquivalence`), in the same function or another, calls that
    function instead of getting a copy: a model's blocks repeat the same
    loops with other buffers, and an optimizer updates same-shaped
    parameters alike. The gpt2-small training artifact had 2,554 outlined
    loops and keeps 156 distinct ones.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::LLVM::LLVMDialect"];
}

def RecordNoAliasArgumentsPass
    : Pass<"kiln-record-noalias-arguments", "mlir::ModuleOp"> {
  let summary = "Records where noalias memref arguments land in the "
                "unpacked LLVM signature";
  let description = [{
    func-to-llvm unpacks each memref argument into pointers and sizes and
    drops its `llvm.noalias`. This pass records, per function with a body,
    the positions of the aligned data pointers of its `llvm.noalias` memref
    arguments in the unpacked signature, as `kiln.noalias_positions`;
    `kiln-apply-noalias-arguments` marks those `llvm.func` arguments
    `noalias` after func-to-llvm. Runs before any conversion touches the
    signatures.
  }];
}

def ApplyNoAliasArgumentsPass
    : Pass<"kiln-apply-noalias-arguments", "mlir::ModuleOp"> {
  let summary = "Marks the recorded llvm.func pointer arguments noalias";
  let description = [{
    The second half of `kiln-record-noalias-arguments`: every `llvm.func`
    with `kiln.noalias_positions` gets `llvm.noalias` on those arguments
    that are pointers, and the attribute is removed. The positions count
    the unpacked signature, so the `_mlir_ciface_` wrappers func-to-llvm
    copies the attribute to (one descriptor pointer per memref) only lose
    it. LLVM then vectorizes
    loops that read some arguments and write others (an optimizer update)
    without runtime alias checks.
  }];
}

#endif // KILN_TARGET_CPU_PASSES_TD
