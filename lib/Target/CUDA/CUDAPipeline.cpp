//===- CUDAPipeline.cpp - kiln IR to host code and PTX kernels ------------===//
//
// The first CUDA pipeline is the correctness baseline, as the CPU one once
// was: after the shared front (kiln -> linalg -> buffers),
//   - f32 matmul contractions call cuBLASLt through the runtime
//     (kiln_gpu_gemm, GpuApi.h), looping on the host over all batch dims
//     but the last, which is cuBLASLt's strided batch;
//   - every other loop nest becomes one kernel: copies are linalg ops too,
//     reductions are moved innermost (a thread per output element walks
//     them), the parallel dims are collapsed into one and tiled by the
//     block size (blocks x threads); loop nests without a parallel dim run
//     in a one-thread kernel;
//   - host allocations become device allocations (gpu.alloc), so that the
//     host code never touches device memory (checked: a load or store left
//     on the host is an error).
// Fused reductions (softmax, layer_norm) with warp shuffles, attention and
// bf16 come next; see docs/performance.md.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CUDA/CUDAPipeline.h"

#include "kiln/Runtime/GpuApi.h"
#include "kiln/Target/CPU/CPUPipeline.h"
#include "kiln/Target/CPU/ObjectEmission.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/Transforms/OptimizeForNVVM.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/Dialect/Vector/Transforms/LoweringPatterns.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::kiln;

namespace {

constexpr llvm::StringLiteral kGemmFunction = "kiln_gpu_gemm";

/// True when `op` is nested in a loop or launch that will run on the GPU.
bool isInDeviceCode(Operation *op) {
  return op->getParentOfType<gpu::LaunchOp>() ||
         op->getParentOfType<gpu::GPUFuncOp>();
}

//===----------------------------------------------------------------------===//
// Matmuls to library calls
//===----------------------------------------------------------------------===//

/// Rewrites each f32, f16 or bf16 (batch..., m, k, n) contraction on
/// buffers into calls
/// of kiln_gpu_gemm: one call per index of the batch dims but the last,
/// which becomes the call's strided batch. An operand whose layout cuBLASLt
/// cannot take (no unit stride along either of its matrix dims, or strides
/// unknown at compile time) leaves the op to the generated kernels.
struct MatmulsToLibraryCallsPass
    : PassWrapper<MatmulsToLibraryCallsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(MatmulsToLibraryCallsPass)
  StringRef getArgument() const final { return "kiln-gpu-matmuls-to-library"; }
  StringRef getDescription() const final {
    return "f32/f16/bf16 matmul contractions on buffers to kiln_gpu_gemm "
           "calls";
  }
  void getDependentDialects(DialectRegistry &registry) const final {
    registry.insert<scf::SCFDialect, memref::MemRefDialect,
                    arith::ArithDialect, func::FuncDialect>();
  }

  /// How one operand enters the call: its memref, the positions of its two
  /// matrix dims in the memref and whether it is stored transposed.
  struct Operand {
    Value memref;
    AffineMap map;
    int64_t rowPos = -1, colPos = -1; // memref dims of (m,k), (k,n) or (m,n)
    bool transposed = false;
  };

  /// Finds where loop dims `row` and `col` sit in `map` and picks the
  /// layout: unit stride along `col` (plain) or along `row` (transposed).
  static std::optional<Operand> classify(Value memref, AffineMap map,
                                         unsigned row, unsigned col) {
    auto type = dyn_cast<MemRefType>(memref.getType());
    if (!type)
      return std::nullopt;
    Operand operand{memref, map};
    for (unsigned p = 0; p < map.getNumResults(); ++p) {
      if (map.getResult(p) == getAffineDimExpr(row, map.getContext()))
        operand.rowPos = p;
      if (map.getResult(p) == getAffineDimExpr(col, map.getContext()))
        operand.colPos = p;
    }
    if (operand.rowPos < 0 || operand.colPos < 0)
      return std::nullopt;
    SmallVector<int64_t> strides;
    int64_t offset;
    if (failed(type.getStridesAndOffset(strides, offset)))
      return std::nullopt;
    if (strides[operand.colPos] == 1)
      return operand;
    if (strides[operand.rowPos] == 1) {
      operand.transposed = true;
      return operand;
    }
    return std::nullopt;
  }

  /// The KILN_GPU_* type of a contraction cuBLASLt takes: both inputs of
  /// one type (f32, f16, bf16), the result of that type or f32 (kiln's
  /// narrow matmuls accumulate in f32 and round afterwards).
  static std::optional<int32_t> gemmType(linalg::GenericOp op) {
    Type result = getElementTypeOrSelf(op.getDpsInits()[0].getType());
    Type input = getElementTypeOrSelf(op.getDpsInputs()[0].getType());
    if (getElementTypeOrSelf(op.getDpsInputs()[1].getType()) != input)
      return std::nullopt;
    if (result == input) {
      if (input.isF32())
        return KILN_GPU_F32;
      if (input.isF16())
        return KILN_GPU_F16;
      if (input.isBF16())
        return KILN_GPU_BF16;
    } else if (result.isF32()) {
      if (input.isF16())
        return KILN_GPU_F16_F32;
      if (input.isBF16())
        return KILN_GPU_BF16_F32;
    }
    return std::nullopt;
  }

  void runOnOperation() final {
    ModuleOp module = getOperation();
    SmallVector<linalg::GenericOp> contractions;
    module.walk([&](linalg::GenericOp op) {
      if (op.hasPureBufferSemantics() &&
          isKilnContraction(op, /*requireF32=*/false) && gemmType(op))
        contractions.push_back(op);
    });
    if (contractions.empty())
      return;
    MLIRContext *ctx = &getContext();
    OpBuilder builder(ctx);
    Type i32 = builder.getI32Type(), i64 = builder.getI64Type(),
         f32 = builder.getF32Type();
    if (!module.lookupSymbol<func::FuncOp>(kGemmFunction)) {
      builder.setInsertionPointToEnd(module.getBody());
      SmallVector<Type> args = {i32, i32, i32, i64, i64, i64, i64,
                                i64, i64, i64, i64, i64, i64, i64,
                                i64, i64, f32, f32};
      auto decl = func::FuncOp::create(builder, module.getLoc(), kGemmFunction,
                                       builder.getFunctionType(args, {}));
      decl.setPrivate();
    }
    for (linalg::GenericOp op : contractions)
      rewrite(op);
  }

  /// The linalg.fill of zero into `output` that directly precedes `op`
  /// in its block, with no other use of `output` in between, if any.
  static linalg::FillOp zeroFillBefore(linalg::GenericOp op, Value output) {
    for (Operation *prev = op->getPrevNode(); prev;
         prev = prev->getPrevNode()) {
      if (auto fill = dyn_cast<linalg::FillOp>(prev)) {
        if (fill.getDpsInits()[0] != output)
          continue;
        if (!fill.hasPureBufferSemantics() ||
            !matchPattern(fill.getDpsInputs()[0], m_AnyZeroFloat()))
          return nullptr;
        return fill;
      }
      // Any other op touching the output (or anything we cannot see
      // through) ends the search.
      if (llvm::is_contained(prev->getOperands(), output) ||
          prev->getNumRegions() != 0)
        return nullptr;
    }
    return nullptr;
  }

  void rewrite(linalg::GenericOp op) {
    unsigned loops = op.getNumLoops();
    unsigned batch = loops - 3, m = loops - 3, k = loops - 2, n = loops - 1;
    auto maps = op.getIndexingMapsArray();
    auto a = classify(op.getDpsInputs()[0], maps[0], m, k);
    auto b = classify(op.getDpsInputs()[1], maps[1], k, n);
    auto c = classify(op.getDpsInits()[0], maps[2], m, n);
    // The result must be written row-major (cuBLASLt's transposed output
    // is not offered through kiln_gpu_gemm).
    if (!a || !b || !c || c->transposed)
      return;
    // Before any op is added in front of `op`.
    linalg::FillOp zeroFill = zeroFillBefore(op, c->memref);
    int32_t dtype = *gemmType(op);

    OpBuilder builder(op);
    Location loc = op.getLoc();
    auto index = [&](int64_t v) {
      return arith::ConstantIndexOp::create(builder, loc, v).getResult();
    };
    auto toI64 = [&](Value v) {
      return arith::IndexCastOp::create(builder, loc, builder.getI64Type(), v)
          .getResult();
    };
    struct Meta {
      Value aligned, offset;
      SmallVector<Value> sizes, strides;
    };
    auto metadata = [&](Operand &operand) {
      auto meta =
          memref::ExtractStridedMetadataOp::create(builder, loc, operand.memref);
      Meta result;
      result.aligned = memref::ExtractAlignedPointerAsIndexOp::create(
          builder, loc, meta.getBaseBuffer());
      result.offset = meta.getOffset();
      result.sizes.assign(meta.getSizes().begin(), meta.getSizes().end());
      result.strides.assign(meta.getStrides().begin(), meta.getStrides().end());
      return result;
    };
    Meta ma = metadata(*a), mb = metadata(*b), mc = metadata(*c);
    // The stride of loop dim `d` in an operand (0 when the operand does not
    // vary along it: broadcast).
    auto loopStride = [&](Operand &operand, Meta &meta, unsigned d) -> Value {
      for (unsigned p = 0; p < operand.map.getNumResults(); ++p)
        if (operand.map.getResult(p) == getAffineDimExpr(d, op.getContext()))
          return meta.strides[p];
      return index(0);
    };
    auto leading = [&](Operand &operand, Meta &meta) {
      // Row stride of the stored matrix: along the row dim when plain,
      // along the column dim when stored transposed.
      return meta.strides[operand.transposed ? operand.colPos : operand.rowPos];
    };
    Value sizeM = mc.sizes[c->rowPos], sizeN = mc.sizes[c->colPos];
    Value sizeK = ma.sizes[a->colPos];
    Value batchCount = index(1);
    Value strideA = index(0), strideB = index(0), strideC = index(0);
    if (batch > 0) {
      unsigned last = batch - 1;
      batchCount = mc.sizes[c->map.getDimPosition(last)];
      strideA = loopStride(*a, ma, last);
      strideB = loopStride(*b, mb, last);
      strideC = loopStride(*c, mc, last);
    }

    // Host loops over the outer batch dims.
    SmallVector<Value> ivs;
    for (unsigned d = 0; d + 1 < batch; ++d) {
      auto loop = scf::ForOp::create(builder, loc, index(0),
                                     mc.sizes[c->map.getDimPosition(d)],
                                     index(1));
      builder.setInsertionPoint(loop.getBody()->getTerminator());
      ivs.push_back(loop.getInductionVar());
    }
    auto pointer = [&](Operand &operand, Meta &meta) {
      Value offset = meta.offset;
      for (unsigned d = 0; d < ivs.size(); ++d)
        offset = arith::AddIOp::create(
            builder, loc, offset,
            arith::MulIOp::create(builder, loc, ivs[d],
                                  loopStride(operand, meta, d)));
      int64_t elementBytes =
          getElementTypeOrSelf(operand.memref.getType()).getIntOrFloatBitWidth() /
          8;
      Value bytes =
          arith::MulIOp::create(builder, loc, offset, index(elementBytes));
      return toI64(arith::AddIOp::create(builder, loc, meta.aligned, bytes));
    };
    auto i32 = [&](int64_t v) {
      return arith::ConstantIntOp::create(builder, loc, builder.getI32Type(), v)
          .getResult();
    };
    Value one = arith::ConstantFloatOp::create(
        builder, loc, builder.getF32Type(), APFloat(1.0f));
    // The generic accumulates into its output. When that output was just
    // zero-filled, the fill goes and the product overwrites (beta 0);
    // otherwise it accumulates (beta 1).
    Value beta = one;
    if (zeroFill) {
      beta = arith::ConstantFloatOp::create(builder, loc, builder.getF32Type(),
                                            APFloat(0.0f));
      zeroFill.erase();
    }
    SmallVector<Value> args = {i32(dtype), // a KILN_GPU_* type
                               i32(a->transposed),
                               i32(b->transposed),
                               toI64(batchCount),
                               toI64(sizeM),
                               toI64(sizeN),
                               toI64(sizeK),
                               pointer(*a, ma),
                               toI64(leading(*a, ma)),
                               toI64(strideA),
                               pointer(*b, mb),
                               toI64(leading(*b, mb)),
                               toI64(strideB),
                               pointer(*c, mc),
                               toI64(leading(*c, mc)),
                               toI64(strideC),
                               one,
                               beta};
    func::CallOp::create(builder, loc, kGemmFunction, TypeRange{}, args);
    op.erase();
  }
};

/// The combiner of a single-result reduction body: the op yielding the
/// result, one of whose operands is the output block argument (used only
/// there) and that has a neutral element.
Operation *reductionCombiner(linalg::GenericOp op) {
  Block &body = op.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (yield.getNumOperands() != 1)
    return nullptr;
  Operation *combiner = yield.getOperand(0).getDefiningOp();
  BlockArgument out = body.getArguments().back();
  if (!combiner || combiner->getBlock() != &body ||
      combiner->getNumOperands() != 2 || combiner->getNumResults() != 1 ||
      !out.hasOneUse() || out.getUses().begin()->getOwner() != combiner ||
      !isa<arith::ArithDialect>(combiner->getDialect()) ||
      !arith::getNeutralElement(combiner))
    return nullptr;
  return combiner;
}

/// Emits, at the rewriter's insertion point, one step of `op`'s reduction
/// at loop indices `ivs`: loads the inputs there and applies the body with
/// `accumulator` as the output value; returns the combined value.
Value emitReductionStep(RewriterBase &rewriter, linalg::GenericOp op,
                        ValueRange ivs, Value accumulator) {
  Location loc = op.getLoc();
  IRMapping mapping;
  Block &body = op.getRegion().front();
  for (OpOperand *input : op.getDpsInputOperands()) {
    BlockArgument arg = body.getArgument(input->getOperandNumber());
    if (!isa<MemRefType>(input->get().getType())) {
      mapping.map(arg, input->get());
      continue;
    }
    AffineMap map = op.getMatchingIndexingMap(input);
    SmallVector<Value> indices;
    for (AffineExpr expr : map.getResults())
      indices.push_back(affine::AffineApplyOp::create(
          rewriter, loc, AffineMap::get(map.getNumDims(), 0, expr), ivs));
    mapping.map(arg,
                memref::LoadOp::create(rewriter, loc, input->get(), indices));
  }
  mapping.map(body.getArguments().back(), accumulator);
  for (Operation &nested : body.without_terminator())
    rewriter.clone(nested, mapping);
  return mapping.lookup(reductionCombiner(op)->getResult(0));
}

/// `combiner` applied to (accumulated, value) in the operand order of the
/// original body (the output argument's side gets `accumulated`).
Value emitCombine(OpBuilder &builder, linalg::GenericOp op, Operation *combiner,
                  Value accumulated, Value value) {
  bool outFirst =
      combiner->getOperand(0) == op.getRegion().front().getArguments().back();
  IRMapping mapping;
  mapping.map(combiner->getOperand(outFirst ? 0 : 1), accumulated);
  mapping.map(combiner->getOperand(outFirst ? 1 : 0), value);
  return builder.clone(*combiner, mapping)->getResult(0);
}

/// The trip count of `ranges` walked as one linear index, and their sizes
/// as the basis that delinearizes it.
std::pair<Value, SmallVector<OpFoldResult>>
linearExtent(RewriterBase &rewriter, Location loc, ArrayRef<Range> ranges) {
  SmallVector<OpFoldResult> basis;
  Value count = arith::ConstantIndexOp::create(rewriter, loc, 1);
  for (const Range &range : ranges) {
    basis.push_back(range.size);
    count = arith::MulIOp::create(
        rewriter, loc, count,
        getValueOrCreateConstantIndexOp(rewriter, loc, range.size));
  }
  return {count, basis};
}

/// Emits a loop folding `op`'s reduction over the linear indices start,
/// start + step, ... below `count` of its trailing loop dims (delinearized
/// by `basis`; `leading` gives the loop dims before them), from `neutral`.
/// Returns the folded value, with the insertion point after the loop.
Value emitStridedFold(RewriterBase &rewriter, linalg::GenericOp op,
                      ValueRange leading, Value start, Value count, Value step,
                      ArrayRef<OpFoldResult> basis, Value neutral) {
  Location loc = op.getLoc();
  auto fold = scf::ForOp::create(rewriter, loc, start, count, step,
                                 ValueRange{neutral});
  rewriter.setInsertionPointToStart(fold.getBody());
  SmallVector<Value> ivs(leading);
  Value linear = fold.getInductionVar();
  if (basis.size() == 1) {
    ivs.push_back(linear);
  } else {
    auto split = affine::AffineDelinearizeIndexOp::create(
        rewriter, loc, linear, basis, /*hasOuterBound=*/true);
    ivs.append(split.getResults().begin(), split.getResults().end());
  }
  Value next = emitReductionStep(rewriter, op, ivs, fold.getRegionIterArgs()[0]);
  scf::YieldOp::create(rewriter, loc, next);
  rewriter.setInsertionPointAfter(fold);
  return fold.getResult(0);
}

//===----------------------------------------------------------------------===//
// Full reductions in parallel
//===----------------------------------------------------------------------===//

/// Splits each linalg.generic without a parallel dim (a sum of squares over
/// a whole parameter for the gradient norm, a mean loss) whose reduction
/// has a recognizable combiner (`out = combine(out, f(inputs))`) into
///   1. a parallel loop over `chunks` partial results: thread p folds
///      elements p, p + chunks, p + 2 chunks, ... of the linearized
///      iteration space (neighbouring threads read neighbouring elements),
///      starting from the combiner's neutral element;
///   2. a generic folding the partials into the output, which is split
///      again while it is longer than kSerialReduction.
/// Without this the whole reduction ran in one GPU thread.
constexpr int64_t kSerialReduction = 1024;

struct SplitFullReductionsPass
    : PassWrapper<SplitFullReductionsPass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(SplitFullReductionsPass)
  StringRef getArgument() const final { return "kiln-gpu-split-reductions"; }
  StringRef getDescription() const final {
    return "Full reductions on buffers to parallel partial results and a "
           "final fold";
  }
  void getDependentDialects(DialectRegistry &registry) const final {
    registry.insert<scf::SCFDialect, affine::AffineDialect,
                    memref::MemRefDialect, linalg::LinalgDialect>();
  }

  /// Total iteration count, when static.
  static std::optional<int64_t> staticTotal(linalg::GenericOp op) {
    int64_t total = 1;
    for (int64_t size : op.getStaticLoopRanges()) {
      if (ShapedType::isDynamic(size))
        return std::nullopt;
      total *= size;
    }
    return total;
  }

  static bool isCandidate(linalg::GenericOp op) {
    if (!op.hasPureBufferSemantics() || op.getNumParallelLoops() != 0 ||
        op.getNumLoops() == 0 || op.getNumDpsInits() != 1 || !reductionCombiner(op))
      return false;
    // The output is one element: its map has no dims.
    AffineMap outMap = op.getIndexingMapsArray().back();
    if (!llvm::all_of(outMap.getResults(),
                      [](AffineExpr e) { return isa<AffineConstantExpr>(e); }))
      return false;
    std::optional<int64_t> total = staticTotal(op);
    return !total || *total > kSerialReduction;
  }

  void runOnOperation() final {
    IRRewriter rewriter(&getContext());
    for (;;) {
      SmallVector<linalg::GenericOp> work;
      getOperation().walk([&](linalg::GenericOp op) {
        if (isCandidate(op) && !op->getParentOfType<scf::ParallelOp>())
          work.push_back(op);
      });
      if (work.empty())
        return;
      for (linalg::GenericOp op : work)
        split(rewriter, op);
    }
  }

  void split(IRRewriter &rewriter, linalg::GenericOp op) {
    Location loc = op.getLoc();
    rewriter.setInsertionPoint(op);
    Operation *combiner = reductionCombiner(op);
    Value output = op.getDpsInits()[0];
    Type element = getElementTypeOrSelf(output.getType());
    std::optional<int64_t> total = staticTotal(op);
    // Enough partial results to fill the GPU (256 blocks of 256 threads)
    // with at least 16 elements each, a power of two.
    int64_t chunks = 65536;
    if (total)
      while (chunks > kSerialReduction && chunks * 16 > *total)
        chunks /= 2;
    auto index = [&](int64_t v) {
      return arith::ConstantIndexOp::create(rewriter, loc, v).getResult();
    };

    SmallVector<Range, 4> ranges =
        cast<linalg::LinalgOp>(op.getOperation()).createLoopRanges(rewriter, loc);
    auto [count, basis] = linearExtent(rewriter, loc, ranges);
    auto partialType = MemRefType::get({chunks}, element);
    Value partial = memref::AllocOp::create(rewriter, loc, partialType);

    // Stage 1: chunk p folds elements p, p + chunks, ...
    Value zero = index(0), one = index(1), step = index(chunks);
    auto loop = scf::ParallelOp::create(rewriter, loc, ValueRange{zero},
                                        ValueRange{step}, ValueRange{one});
    {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPoint(loop.getBody()->getTerminator());
      Value p = loop.getInductionVars()[0];
      Value neutral = arith::ConstantOp::create(
          rewriter, loc, *arith::getNeutralElement(combiner));
      Value folded = emitStridedFold(rewriter, op, ValueRange{}, p, count,
                                     step, basis, neutral);
      memref::StoreOp::create(rewriter, loc, folded, partial, ValueRange{p});
    }

    // Stage 2: fold the partials into the output (split again if long).
    MLIRContext *ctx = rewriter.getContext();
    AffineMap outMap = op.getIndexingMapsArray().back();
    SmallVector<AffineMap> maps = {
        AffineMap::getMultiDimIdentityMap(1, ctx),
        AffineMap::get(1, 0, outMap.getResults(), ctx)};
    linalg::GenericOp::create(
        rewriter, loc, ValueRange{partial}, ValueRange{output}, maps,
        {utils::IteratorType::reduction},
        [&](OpBuilder &b, Location nestedLoc, ValueRange args) {
          // args: partial element, output element.
          linalg::YieldOp::create(
              b, nestedLoc, emitCombine(b, op, combiner, args[1], args[0]));
        });
    memref::DeallocOp::create(rewriter, loc, partial);
    rewriter.eraseOp(op);
  }
};

//===----------------------------------------------------------------------===//
// Row reductions: a block of threads per output element
//===----------------------------------------------------------------------===//

/// Attribute of an scf.parallel whose iterations each get a whole block
/// (kiln-gpu-map-parallel-loops maps it to blocks without tiling it).
constexpr llvm::StringLiteral kBlockPerIterationAttr =
    "kiln.gpu_block_per_iteration";
constexpr int64_t kBlockReductionThreads = 256;
constexpr int64_t kMinBlockReduction = 64;

/// A generic with parallel dims and then a long reduction along the
/// contiguous dim of its first input (softmax and layer-norm statistics,
/// the log-sum-exp of a loss over the vocabulary) becomes a loop over the
/// output elements, each run by a block: its threads fold strided slices
/// of the row (neighbouring threads read neighbouring elements) and
/// combine them with an scf.reduce, which becomes gpu.all_reduce (warp
/// shuffles and shared memory). A thread per output element walked the
/// whole row, and a few hundred rows kept most of the GPU idle.
struct BlockReductionsPass
    : PassWrapper<BlockReductionsPass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(BlockReductionsPass)
  StringRef getArgument() const final { return "kiln-gpu-block-reductions"; }
  StringRef getDescription() const final {
    return "Long reductions along contiguous rows to a block of threads per "
           "output element";
  }
  void getDependentDialects(DialectRegistry &registry) const final {
    registry.insert<scf::SCFDialect, affine::AffineDialect,
                    memref::MemRefDialect>();
  }

  static bool isCandidate(linalg::GenericOp op) {
    if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1 ||
        op.getNumDpsInputs() < 1 || !reductionCombiner(op))
      return false;
    // Warp shuffles move 32-bit values (f16/bf16 rows keep a thread each
    // until their reductions accumulate in f32).
    Type accumulator = reductionCombiner(op)->getResult(0).getType();
    if (!accumulator.isIntOrFloat() || accumulator.getIntOrFloatBitWidth() != 32)
      return false;
    unsigned loops = op.getNumLoops(), parallel = op.getNumParallelLoops();
    if (parallel == 0 || parallel == loops)
      return false;
    auto iterators = op.getIteratorTypesArray();
    for (unsigned i = 0; i < loops; ++i)
      if ((i < parallel) != (iterators[i] == utils::IteratorType::parallel))
        return false;
    // The first input walks its contiguous dim with the innermost loop.
    OpOperand *first = op.getDpsInputOperand(0);
    auto type = dyn_cast<MemRefType>(first->get().getType());
    AffineMap map = op.getMatchingIndexingMap(first);
    if (!type || map.getNumResults() == 0 ||
        map.getResults().back() !=
            getAffineDimExpr(loops - 1, op.getContext()))
      return false;
    SmallVector<int64_t> strides;
    int64_t offset;
    if (failed(type.getStridesAndOffset(strides, offset)) ||
        strides.back() != 1)
      return false;
    int64_t extent = 1;
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    for (int64_t size : ArrayRef<int64_t>(ranges).drop_front(parallel)) {
      if (ShapedType::isDynamic(size))
        return true;
      extent *= size;
    }
    return extent >= kMinBlockReduction;
  }

  void runOnOperation() final {
    SmallVector<linalg::GenericOp> work;
    getOperation().walk([&](linalg::GenericOp op) {
      if (isCandidate(op) && !op->getParentOfType<scf::ParallelOp>())
        work.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : work)
      rewrite(rewriter, op);
  }

  void rewrite(IRRewriter &rewriter, linalg::GenericOp op) {
    Location loc = op.getLoc();
    rewriter.setInsertionPoint(op);
    Operation *combiner = reductionCombiner(op);
    unsigned loops = op.getNumLoops(), parallel = op.getNumParallelLoops();
    auto index = [&](int64_t v) {
      return arith::ConstantIndexOp::create(rewriter, loc, v).getResult();
    };
    SmallVector<Range, 4> ranges =
        cast<linalg::LinalgOp>(op.getOperation()).createLoopRanges(rewriter,
                                                                   loc);
    SmallVector<Value> lbs, ubs, steps;
    for (unsigned d = 0; d < parallel; ++d) {
      lbs.push_back(index(0));
      ubs.push_back(getValueOrCreateConstantIndexOp(rewriter, loc,
                                                    ranges[d].size));
      steps.push_back(index(1));
    }
    auto [count, basis] =
        linearExtent(rewriter, loc, ArrayRef<Range>(ranges).drop_front(parallel));
    Value threads = index(kBlockReductionThreads);
    Value output = op.getDpsInits()[0];
    AffineMap outMap = op.getIndexingMapsArray().back();

    auto rows = scf::ParallelOp::create(rewriter, loc, lbs, ubs, steps);
    rows->setAttr(kBlockPerIterationAttr, rewriter.getUnitAttr());
    rewriter.setInsertionPoint(rows.getBody()->getTerminator());
    SmallVector<Value> ivs(rows.getInductionVars());
    for (unsigned d = parallel; d < loops; ++d)
      ivs.push_back(index(0)); // the output map does not use them
    SmallVector<Value> outIndices;
    for (AffineExpr expr : outMap.getResults())
      outIndices.push_back(affine::AffineApplyOp::create(
          rewriter, loc, AffineMap::get(loops, 0, expr), ivs));
    Value init = memref::LoadOp::create(rewriter, loc, output, outIndices);
    Value neutral = arith::ConstantOp::create(
        rewriter, loc, *arith::getNeutralElement(combiner));

    auto lanes = scf::ParallelOp::create(rewriter, loc, ValueRange{index(0)},
                                         ValueRange{threads},
                                         ValueRange{index(1)},
                                         ValueRange{neutral});
    lanes->setAttr(kKeepParallelAttr, rewriter.getUnitAttr());
    {
      OpBuilder::InsertionGuard guard(rewriter);
      Block *body = lanes.getBody();
      if (!body->empty() && body->back().hasTrait<OpTrait::IsTerminator>())
        rewriter.eraseOp(&body->back());
      rewriter.setInsertionPointToEnd(body);
      Value folded = emitStridedFold(
          rewriter, op, rows.getInductionVars(), lanes.getInductionVars()[0],
          count, threads, basis, neutral);
      auto reduce = scf::ReduceOp::create(rewriter, loc, ValueRange{folded});
      Region &region = reduce.getReductions()[0];
      Block *block = region.empty() ? rewriter.createBlock(&region) : &region.front();
      Type type = neutral.getType();
      if (block->getNumArguments() == 0)
        block->addArguments({type, type}, {loc, loc});
      rewriter.setInsertionPointToEnd(block);
      Value combined = emitCombine(rewriter, op, combiner, block->getArgument(0),
                                   block->getArgument(1));
      scf::ReduceReturnOp::create(rewriter, loc, combined);
    }
    rewriter.setInsertionPointAfter(lanes);
    Value result = emitCombine(rewriter, op, combiner, init, lanes.getResult(0));
    memref::StoreOp::create(rewriter, loc, result, output, outIndices);
    rewriter.eraseOp(op);
  }
};

//===----------------------------------------------------------------------===//
// Loop nests to kernels
//===----------------------------------------------------------------------===//

bool touchesMemory(Operation *op) {
  WalkResult result = op->walk([](Operation *nested) {
    if (isa<memref::LoadOp, memref::StoreOp, memref::CopyOp>(nested) ||
        isa<linalg::LinalgOp>(nested))
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  return result.wasInterrupted();
}

/// Prepares buffers-level code for the loop mapping: memref.copy becomes a
/// linalg.copy (a kernel like any other loop nest), generic ops get their
/// reduction dims innermost (a thread per output element walks them), and
/// work without a parallel dim (full reductions, 0-d ops, the sequential
/// loops of scatter_add) is wrapped in a one-iteration scf.parallel, so
/// that it too runs on the GPU.
struct PrepareLoopsForGPUPass
    : PassWrapper<PrepareLoopsForGPUPass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(PrepareLoopsForGPUPass)
  StringRef getArgument() const final { return "kiln-gpu-prepare-loops"; }
  StringRef getDescription() const final {
    return "Copies to linalg, reductions innermost, sequential work wrapped "
           "in single-iteration parallel loops";
  }
  void getDependentDialects(DialectRegistry &registry) const final {
    registry.insert<scf::SCFDialect, linalg::LinalgDialect>();
  }
  void runOnOperation() final {
    func::FuncOp func = getOperation();
    IRRewriter rewriter(&getContext());

    SmallVector<memref::CopyOp> copies;
    func.walk([&](memref::CopyOp copy) { copies.push_back(copy); });
    for (memref::CopyOp copy : copies) {
      rewriter.setInsertionPoint(copy);
      linalg::CopyOp::create(rewriter, copy.getLoc(), copy.getSource(),
                             copy.getTarget());
      rewriter.eraseOp(copy);
    }

    SmallVector<linalg::GenericOp> generics;
    func.walk([&](linalg::GenericOp op) { generics.push_back(op); });
    for (linalg::GenericOp op : generics) {
      auto iterators = op.getIteratorTypesArray();
      SmallVector<unsigned> order;
      for (unsigned i = 0; i < iterators.size(); ++i)
        if (iterators[i] == utils::IteratorType::parallel)
          order.push_back(i);
      for (unsigned i = 0; i < iterators.size(); ++i)
        if (iterators[i] != utils::IteratorType::parallel)
          order.push_back(i);
      if (llvm::is_sorted(order))
        continue;
      rewriter.setInsertionPoint(op);
      if (failed(linalg::interchangeGenericOp(rewriter, op, order)))
        op.emitWarning("could not move the reduction dims innermost");
    }

    // Work to wrap: linalg ops without a parallel dim, and top-level loops
    // that read or write memory.
    SmallVector<Operation *> sequential;
    func.walk([&](Operation *op) {
      if (op->getParentOfType<scf::ParallelOp>())
        return;
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
        if (linalgOp.getNumParallelLoops() == 0)
          sequential.push_back(op);
        return;
      }
      if (isa<scf::ForOp, scf::WhileOp, scf::IfOp>(op) &&
          op->getParentOp() == func && touchesMemory(op)) {
        if (op->getNumResults() != 0) {
          op->emitOpError("a host loop with results that touches memory "
                          "cannot be moved to the GPU");
          return signalPassFailure();
        }
        sequential.push_back(op);
      }
    });
    for (Operation *op : sequential) {
      rewriter.setInsertionPoint(op);
      Location loc = op->getLoc();
      Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
      Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
      auto wrapper = scf::ParallelOp::create(rewriter, loc, ValueRange{zero},
                                             ValueRange{one}, ValueRange{one});
      op->moveBefore(wrapper.getBody()->getTerminator());
    }
  }
};

/// Maps every outermost scf.parallel of the host code onto the GPU: its
/// dims are collapsed into one, tiled by the block size and mapped to
/// blocks (x) and threads (x). Inner parallel loops must already be
/// sequential.
struct MapParallelLoopsPass
    : PassWrapper<MapParallelLoopsPass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(MapParallelLoopsPass)
  MapParallelLoopsPass() = default;
  MapParallelLoopsPass(const MapParallelLoopsPass &other)
      : PassWrapper(other) {}
  explicit MapParallelLoopsPass(int64_t blockSize) { this->blockSize = blockSize; }
  StringRef getArgument() const final { return "kiln-gpu-map-parallel-loops"; }
  StringRef getDescription() const final {
    return "Collapses, tiles and maps outermost parallel loops to GPU "
           "blocks and threads";
  }
  void getDependentDialects(DialectRegistry &registry) const final {
    registry.insert<gpu::GPUDialect, affine::AffineDialect>();
  }
  Option<int64_t> blockSize{*this, "block-size",
                            llvm::cl::desc("Threads per block"),
                            llvm::cl::init(256)};

  static SmallVector<scf::ParallelOp> outermost(func::FuncOp func) {
    SmallVector<scf::ParallelOp> loops;
    func.walk([&](scf::ParallelOp op) {
      if (!op->getParentOfType<scf::ParallelOp>())
        loops.push_back(op);
    });
    return loops;
  }

  void runOnOperation() final {
    func::FuncOp func = getOperation();
    IRRewriter rewriter(&getContext());
    for (scf::ParallelOp op : outermost(func)) {
      if (!op.getInitVals().empty()) {
        op.emitOpError("parallel reductions are not mapped to the GPU yet");
        return signalPassFailure();
      }
      unsigned dims = op.getNumLoops();
      if (dims < 2)
        continue;
      std::vector<unsigned> all(dims);
      std::iota(all.begin(), all.end(), 0);
      bool blockPerIteration = op->hasAttr(kBlockPerIterationAttr);
      Operation *next = op->getNextNode();
      rewriter.setInsertionPoint(op);
      collapseParallelLoops(rewriter, op, {all});
      // The collapsed loop replaces `op` right where it was.
      auto collapsed = dyn_cast_or_null<scf::ParallelOp>(next->getPrevNode());
      if (!collapsed) {
        func.emitOpError("lost a parallel loop while collapsing it");
        return signalPassFailure();
      }
      if (blockPerIteration)
        collapsed->setAttr(kBlockPerIterationAttr, rewriter.getUnitAttr());
    }
    MLIRContext *ctx = &getContext();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(1, ctx);
    auto mapping = [&](gpu::Processor processor) {
      return gpu::ParallelLoopDimMappingAttr::get(ctx, processor, identity,
                                                  identity);
    };
    for (scf::ParallelOp op : outermost(func)) {
      if (op->hasAttr(kBlockPerIterationAttr)) {
        // A block per iteration; its threads are the inner lanes loop.
        scf::ParallelOp lanes;
        for (Operation &nested : op.getBody()->without_terminator())
          if (auto inner = dyn_cast<scf::ParallelOp>(nested))
            lanes = inner;
        if (!lanes || failed(gpu::setMappingAttr(
                          op, {mapping(gpu::Processor::BlockX)})) ||
            failed(gpu::setMappingAttr(lanes,
                                       {mapping(gpu::Processor::ThreadX)}))) {
          op.emitOpError("a block-per-iteration loop needs one inner "
                         "parallel loop of lanes");
          return signalPassFailure();
        }
        continue;
      }
      auto [blocks, threads] =
          scf::tileParallelLoop(op, {blockSize}, /*noMinMaxBounds=*/true);
      if (failed(gpu::setMappingAttr(blocks, {mapping(gpu::Processor::BlockX)})) ||
          failed(gpu::setMappingAttr(threads,
                                     {mapping(gpu::Processor::ThreadX)})))
        return signalPassFailure();
    }
  }
};

/// gpu.all_reduce (from the row reductions' scf.reduce) to shuffles,
/// shared memory and barriers, inside the outlined kernels.
struct LowerAllReducePass
    : PassWrapper<LowerAllReducePass, OperationPass<gpu::GPUModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(LowerAllReducePass)
  StringRef getArgument() const final { return "kiln-gpu-lower-all-reduce"; }
  StringRef getDescription() const final {
    return "gpu.all_reduce to shuffles and shared memory";
  }
  void runOnOperation() final {
    RewritePatternSet patterns(&getContext());
    populateGpuAllReducePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

/// In-bounds 1-D vector transfers (fused attention's row reads and writes)
/// to vector.load/store, which the NVVM lowering turns into plain loads.
struct LowerVectorTransfersPass
    : PassWrapper<LowerVectorTransfersPass, OperationPass<gpu::GPUModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(LowerVectorTransfersPass)
  StringRef getArgument() const final {
    return "kiln-gpu-lower-vector-transfers";
  }
  StringRef getDescription() const final {
    return "In-bounds vector transfers to vector.load and vector.store";
  }
  void runOnOperation() final {
    RewritePatternSet patterns(&getContext());
    vector::populateVectorTransferLoweringPatterns(patterns,
                                                   /*maxTransferRank=*/1);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

/// A small host buffer that only the host reads: the shape operand of a
/// dynamic memref.reshape, filled with stores before it.
bool isHostShapeBuffer(Value buffer) {
  if (!buffer || !isa_and_nonnull<memref::AllocOp, memref::AllocaOp>(
                     buffer.getDefiningOp()))
    return false;
  return llvm::all_of(buffer.getUsers(), [&](Operation *user) {
    if (isInDeviceCode(user))
      return false;
    if (auto reshape = dyn_cast<memref::ReshapeOp>(user))
      return reshape.getShape() == buffer && reshape.getSource() != buffer;
    return isa<memref::StoreOp, memref::LoadOp, memref::DeallocOp>(user);
  });
}

/// The memref a host op reads, writes or frees (or its single result).
Value memrefOperand(Operation *op) {
  if (auto load = dyn_cast<memref::LoadOp>(op))
    return load.getMemRef();
  if (auto store = dyn_cast<memref::StoreOp>(op))
    return store.getMemRef();
  if (auto dealloc = dyn_cast<memref::DeallocOp>(op))
    return dealloc.getMemref();
  return op->getNumResults() == 1 ? op->getResult(0) : Value();
}

/// gpu-to-llvm lowers gpu.alloc, gpu.dealloc and gpu.memcpy in their async
/// form only: each gets a stream of its own (gpu.wait async), and the host
/// waits for it after (the runtime's single stream keeps them in order).
Value newStream(OpBuilder &builder, Location loc) {
  return gpu::WaitOp::create(builder, loc,
                             gpu::AsyncTokenType::get(builder.getContext()),
                             ValueRange{})
      .getAsyncToken();
}
void waitFor(OpBuilder &builder, Location loc, Value token) {
  gpu::WaitOp::create(builder, loc, Type(), ValueRange{token});
}
void emitDeviceDealloc(OpBuilder &builder, Location loc, Value memref) {
  auto done = gpu::DeallocOp::create(
      builder, loc, gpu::AsyncTokenType::get(builder.getContext()),
      ValueRange{newStream(builder, loc)}, memref);
  waitFor(builder, loc, done.getAsyncToken());
}

/// Host allocations become device allocations, constants are copied to
/// device memory where they are used, and nothing else on the host may
/// touch memory: every pointer the host code holds is a device pointer.
struct DeviceMemoryPass
    : PassWrapper<DeviceMemoryPass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(DeviceMemoryPass)
  StringRef getArgument() const final { return "kiln-gpu-device-memory"; }
  StringRef getDescription() const final {
    return "Host allocations to gpu.alloc; no host access to device memory";
  }
  void getDependentDialects(DialectRegistry &registry) const final {
    registry.insert<gpu::GPUDialect>();
  }
  void runOnOperation() final {
    func::FuncOp func = getOperation();
    IRRewriter rewriter(&getContext());
    SmallVector<Operation *> work;
    func.walk([&](Operation *op) {
      if (!isInDeviceCode(op))
        work.push_back(op);
    });
    SmallVector<Value> constantCopies;
    Type token = gpu::AsyncTokenType::get(&getContext());
    for (Operation *op : work) {
      Location loc = op->getLoc();
      rewriter.setInsertionPoint(op);
      if (isa<memref::AllocOp, memref::AllocaOp, memref::LoadOp,
              memref::StoreOp, memref::DeallocOp>(op) &&
          isHostShapeBuffer(memrefOperand(op)))
        continue;
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        auto device = gpu::AllocOp::create(
            rewriter, loc, alloc.getType(), token,
            ValueRange{newStream(rewriter, loc)}, alloc.getDynamicSizes(),
            alloc.getSymbolOperands());
        waitFor(rewriter, loc, device.getAsyncToken());
        rewriter.replaceOp(alloc, device.getMemref());
      } else if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
        emitDeviceDealloc(rewriter, loc, dealloc.getMemref());
        rewriter.eraseOp(dealloc);
      } else if (auto global = dyn_cast<memref::GetGlobalOp>(op)) {
        // The global lives in module.so's (host) data: each use gets a
        // device copy.
        auto type = global.getType();
        if (!type.hasStaticShape()) {
          op->emitOpError("a dynamically shaped constant cannot be copied "
                          "to the GPU");
          return signalPassFailure();
        }
        rewriter.setInsertionPointAfter(global);
        auto device = gpu::AllocOp::create(
            rewriter, loc, type, token, ValueRange{newStream(rewriter, loc)},
            ValueRange{}, ValueRange{});
        rewriter.replaceAllUsesExcept(global, device.getMemref(),
                                      device.getOperation());
        auto copied = gpu::MemcpyOp::create(
            rewriter, loc, token, ValueRange{device.getAsyncToken()},
            device.getMemref(), global);
        waitFor(rewriter, loc, copied.getAsyncToken());
        // Freed when the function returns (results never alias constants:
        // bufferization returns clones of them).
        constantCopies.push_back(device.getMemref());
      } else if (isa<memref::AllocaOp, memref::LoadOp, memref::StoreOp,
                     memref::CopyOp, linalg::LinalgOp>(op)) {
        op->emitOpError("would run on the host and touch device memory; the "
                        "CUDA pipeline maps every access to a kernel");
        return signalPassFailure();
      }
    }
    func.walk([&](func::ReturnOp ret) {
      rewriter.setInsertionPoint(ret);
      for (Value copy : constantCopies)
        emitDeviceDealloc(rewriter, ret.getLoc(), copy);
    });
  }
};

//===----------------------------------------------------------------------===//
// One kernel module per artifact
//===----------------------------------------------------------------------===//

/// Name of the gpu.module that holds every kernel of an artifact.
constexpr llvm::StringLiteral kKernelModuleName = "kiln_kernels";

/// gpu-kernel-outlining makes one gpu.module per kernel (each holding a
/// gpu.func named after the function it came from, so the kernel names
/// repeat across modules). This moves every kernel into one module, each
/// named after the module it came from (unique: they were top-level
/// symbols), and points the launches at them: an artifact's kernels become
/// one PTX module (`kiln-compile --emit=ptx` prints a module ptxas accepts
/// as it is, and the runtime loads one image).
struct MergeKernelModulesPass
    : public PassWrapper<MergeKernelModulesPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(MergeKernelModulesPass)
  StringRef getArgument() const final {
    return "kiln-gpu-merge-kernel-modules";
  }
  StringRef getDescription() const final {
    return "Moves every outlined kernel into one gpu.module (@kiln_kernels), "
           "each kernel named after its former module";
  }

  void runOnOperation() final {
    ModuleOp module = getOperation();
    SmallVector<gpu::GPUModuleOp> kernelModules;
    for (auto kernelModule : module.getOps<gpu::GPUModuleOp>()) {
      // Only what gpu-kernel-outlining makes: a module of one gpu.func.
      Block *body = kernelModule.getBody();
      if (body->empty() || !isa<gpu::GPUFuncOp>(body->front()) ||
          std::next(body->begin()) != body->end())
        return;
      kernelModules.push_back(kernelModule);
    }
    if (kernelModules.size() < 2)
      return;
    SymbolTable symbols(module);
    if (symbols.lookup(kKernelModuleName)) {
      module.emitError() << "a symbol is already named '" << kKernelModuleName
                         << "'";
      return signalPassFailure();
    }
    OpBuilder builder(kernelModules.front());
    auto merged = gpu::GPUModuleOp::create(builder, module.getLoc(),
                                           kKernelModuleName);
    // The container's symbol, then each kernel's new name.
    symbols.insert(merged);
    llvm::DenseMap<StringAttr, StringAttr> kernelOf;
    Block *body = merged.getBody();
    for (gpu::GPUModuleOp kernelModule : kernelModules) {
      auto kernel = cast<gpu::GPUFuncOp>(kernelModule.getBody()->front());
      kernel->moveBefore(body, body->end());
      SymbolTable::setSymbolName(kernel, kernelModule.getSymNameAttr());
      kernelOf[kernelModule.getSymNameAttr()] = kernelModule.getSymNameAttr();
    }
    WalkResult result = module.walk([&](gpu::LaunchFuncOp launch) {
      auto it = kernelOf.find(launch.getKernelModuleName());
      if (it == kernelOf.end()) {
        launch.emitOpError("launches a kernel of no outlined module");
        return WalkResult::interrupt();
      }
      launch.setKernelAttr(SymbolRefAttr::get(
          merged.getSymNameAttr(), {FlatSymbolRefAttr::get(it->second)}));
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();
    for (gpu::GPUModuleOp kernelModule : kernelModules)
      kernelModule.erase();
  }
};

} // namespace

void mlir::kiln::buildKilnCUDAKernelPipeline(
    OpPassManager &pm, const CUDAPipelineOptions &options) {
  buildKilnToLinalgStages(pm, llvm::to_vector(options.keepComposites),
                          options.attentionBlock);
  buildKilnBufferizeStages(pm);
  // Fused attention's row loops (scf.forall) join the other parallel loops.
  pm.addNestedPass<func::FuncOp>(createForallToParallelLoopPass());
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addPass(createConvertBufferizationToMemRefPass());
  pm.addPass(createCanonicalizerPass());

  if (options.libraryMatmuls)
    pm.addPass(std::make_unique<MatmulsToLibraryCallsPass>());
  pm.addNestedPass<func::FuncOp>(std::make_unique<SplitFullReductionsPass>());
  pm.addNestedPass<func::FuncOp>(std::make_unique<PrepareLoopsForGPUPass>());
  pm.addNestedPass<func::FuncOp>(std::make_unique<BlockReductionsPass>());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  pm.addNestedPass<func::FuncOp>(
      createSequentializeInnerParallelPass(/*splitOuterLoops=*/false));
  pm.addNestedPass<func::FuncOp>(
      std::make_unique<MapParallelLoopsPass>(options.blockSize));
  pm.addNestedPass<func::FuncOp>(createConvertParallelLoopToGpuPass());
  pm.addNestedPass<func::FuncOp>(std::make_unique<DeviceMemoryPass>());
  // exp, tanh and erf as the CPU backend computes them (no libdevice).
  pm.addNestedPass<func::FuncOp>(createApproximateMathPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(std::make_unique<MergeKernelModulesPass>());
}

void mlir::kiln::buildKilnCUDAPipeline(OpPassManager &pm,
                                       const CUDAPipelineOptions &options) {
  buildKilnCUDAKernelPipeline(pm, options);

  // Common lowering (host and kernels), as upstream's
  // gpu-lower-to-nvvm-pipeline does it.
  pm.addPass(createEmitCInterfacesPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertNVVMToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  GpuNVVMAttachTargetOptions target;
  target.chip = options.arch;
  target.features = options.ptxVersion;
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  pm.addPass(createLowerAffinePass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Kernels.
  pm.addNestedPass<gpu::GPUModuleOp>(std::make_unique<LowerAllReducePass>());
  pm.addNestedPass<gpu::GPUModuleOp>(
      std::make_unique<LowerVectorTransfersPass>());
  pm.addNestedPass<gpu::GPUModuleOp>(createStripDebugInfoPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps());
  pm.addNestedPass<gpu::GPUModuleOp>(LLVM::createNVVMOptimizeForTargetPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCSEPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createReconcileUnrealizedCastsPass());

  // Host. Memref ops gpu-to-llvm leaves alone (the dynamic reshapes'
  // shape buffers) go first.
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createGpuToLLVMConversionPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = options.image;
  binary.toolkitPath = options.toolkit;
  pm.addPass(createGpuModuleToBinaryPass(binary));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::kiln::registerKilnCUDAPipeline() {
  PassRegistration<MatmulsToLibraryCallsPass>();
  PassRegistration<SplitFullReductionsPass>();
  PassRegistration<PrepareLoopsForGPUPass>();
  PassRegistration<BlockReductionsPass>();
  PassRegistration<LowerAllReducePass>();
  PassRegistration<LowerVectorTransfersPass>();
  PassRegistration<MapParallelLoopsPass>();
  PassRegistration<DeviceMemoryPass>();
  PassRegistration<MergeKernelModulesPass>();
  PassPipelineRegistration<CUDAPipelineOptions>(
      "kiln-cuda-pipeline",
      "Lowers kiln IR to LLVM-dialect host code with embedded NVVM kernels "
      "(what kiln-compile --target cuda runs)",
      buildKilnCUDAPipeline);
  PassPipelineRegistration<CUDAPipelineOptions>(
      "kiln-cuda-kernel-pipeline",
      "The CUDA pipeline up to kernel outlining (host code launching "
      "gpu.func kernels, before LLVM/NVVM lowering)",
      buildKilnCUDAKernelPipeline);
}

void mlir::kiln::registerKilnCUDADialects(DialectRegistry &registry) {
  registerAllDialects(registry);
  registerAllExtensions(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  gpu::registerOffloadingLLVMTranslationInterfaceExternalModels(registry);
}

LogicalResult
mlir::kiln::lowerToCUDAArtifactLLVM(ModuleOp module,
                                    const CUDAPipelineOptions &options) {
  MLIRContext *context = module.getContext();
  DialectRegistry registry;
  registerKilnCUDADialects(registry);
  context->appendDialectRegistry(registry);
  context->loadAllAvailableDialects();
  PassManager pm(context);
  buildKilnCUDAPipeline(pm, options);
  if (failed(pm.run(module)))
    return failure();
  addArtifactEntryPoints(module);
  return success();
}

std::vector<KernelPTX> mlir::kiln::getEmbeddedPTX(ModuleOp module) {
  std::vector<KernelPTX> result;
  for (auto binary : module.getOps<gpu::BinaryOp>())
    for (Attribute attr : binary.getObjects()) {
      auto object = dyn_cast<gpu::ObjectAttr>(attr);
      if (object && object.getFormat() == gpu::CompilationTarget::Assembly)
        result.emplace_back(binary.getSymName().str(),
                            object.getObject().str());
    }
  return result;
}
