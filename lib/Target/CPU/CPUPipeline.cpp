//===- CPUPipeline.cpp - kiln IR to the LLVM dialect for CPUs -------------===//
//
// Today's pipeline is the correctness baseline: linalg lowered to scalar
// loops. Tiling, packing and vectorization of matmuls and the thread pool
// replace convert-linalg-to-loops in the performance work; the stages before
// and after stay.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/CPUPipeline.h"
#include "kiln/Target/CPU/ObjectEmission.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/OneShotAnalysis.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Transforms/DialectConversion.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Conversion/VectorToSCF/VectorToSCF.h"
#include "mlir/Dialect/Vector/Transforms/Passes.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::kiln;

namespace {
/// Marks every public function with a body for C-interface wrappers, so
/// the runtime can call `_mlir_ciface_<name>` with memref descriptors.
struct EmitCInterfacesPass
    : PassWrapper<EmitCInterfacesPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(EmitCInterfacesPass)
  StringRef getArgument() const final { return "kiln-emit-c-interfaces"; }
  void runOnOperation() final {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && func.isPublic())
        func->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                      UnitAttr::get(&getContext()));
  }
};
/// Rewrites every scf.parallel nested in another loop into scf.for loops,
/// so that only the outermost parallel loop of a nest becomes a parallel
/// region (one fork/join per nest, not one per outer iteration).
struct SequentializeInnerParallelPass
    : PassWrapper<SequentializeInnerParallelPass,
                  OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(SequentializeInnerParallelPass)
  SequentializeInnerParallelPass() = default;
  SequentializeInnerParallelPass(const SequentializeInnerParallelPass &other)
      : PassWrapper(other) {}
  explicit SequentializeInnerParallelPass(bool splitOuterLoops) {
    this->splitOuterLoops = splitOuterLoops;
  }
  StringRef getArgument() const final {
    return "kiln-sequentialize-inner-parallel";
  }
  Option<bool> splitOuterLoops{
      *this, "split-outer-loops",
      llvm::cl::desc("Also walk the innermost dim of multi-dimensional "
                     "outermost loops sequentially (for OpenMP; a GPU maps "
                     "all their dims to threads)"),
      llvm::cl::init(true)};
  void runOnOperation() final {
    SmallVector<scf::ParallelOp> inner;
    getOperation().walk([&](scf::ParallelOp op) {
      // Loops a backend maps to threads of one block itself keep their
      // parallelism (the CUDA pipeline's row reductions).
      if (op->hasAttr(kKeepParallelAttr))
        return;
      if (op->getParentOfType<scf::ParallelOp>() ||
          op->getParentOfType<scf::ForOp>())
        inner.push_back(op);
    });
    for (scf::ParallelOp op : inner) {
      if (!op.getInitVals().empty()) {
        op.emitOpError("parallel reduction loops are not expected here");
        return signalPassFailure();
      }
      OpBuilder builder(op);
      Location loc = op.getLoc();
      IRMapping mapping;
      for (auto [lb, ub, step, iv] :
           llvm::zip(op.getLowerBound(), op.getUpperBound(), op.getStep(),
                     op.getInductionVars())) {
        auto loop = scf::ForOp::create(builder, loc, lb, ub, step);
        mapping.map(iv, loop.getInductionVar());
        builder.setInsertionPointToStart(loop.getBody());
      }
      for (Operation &nested : op.getBody()->without_terminator())
        builder.clone(nested, mapping);
      op.erase();
    }

    if (!splitOuterLoops)
      return;
    // OpenMP collapses a multi-dimensional parallel loop into one loop
    // whose body recomputes every index by division, which LLVM cannot
    // vectorize. When the outer dims alone give the threads enough work,
    // the innermost dim becomes a plain sequential loop: contiguous, so it
    // vectorizes (an AdamW update over a weight matrix ran scalar).
    SmallVector<scf::ParallelOp> outer;
    getOperation().walk([&](scf::ParallelOp op) {
      if (op.getNumLoops() > 1 && op.getInitVals().empty() &&
          !op->getParentOfType<scf::ParallelOp>())
        outer.push_back(op);
    });
    for (scf::ParallelOp op : outer) {
      // The accessors return SmallVectors: keep them alive.
      SmallVector<Value> lbVec(op.getLowerBound()), ubVec(op.getUpperBound()),
          stepVec(op.getStep()), ivVec(op.getInductionVars());
      ValueRange lbs(lbVec), ubs(ubVec), steps(stepVec);
      int64_t outerTrips = 1;
      bool known = true;
      for (auto [lb, ub, step] :
           llvm::zip(lbs.drop_back(), ubs.drop_back(), steps.drop_back())) {
        std::optional<int64_t> l = getConstantIntValue(lb),
                               u = getConstantIntValue(ub),
                               s = getConstantIntValue(step);
        if (!l || !u || !s || *s <= 0) {
          known = false;
          break;
        }
        outerTrips *= (*u - *l + *s - 1) / *s;
      }
      if (known && outerTrips < kMinOuterTrips)
        continue;
      OpBuilder builder(op);
      Location loc = op.getLoc();
      auto parallel = scf::ParallelOp::create(
          builder, loc, lbs.drop_back(), ubs.drop_back(), steps.drop_back());
      builder.setInsertionPointToStart(parallel.getBody());
      auto loop = scf::ForOp::create(builder, loc, lbs.back(), ubs.back(),
                                     steps.back());
      IRMapping mapping;
      ValueRange ivs(ivVec);
      for (auto [from, to] :
           llvm::zip(ivs.drop_back(), ValueRange(parallel.getInductionVars())))
        mapping.map(from, to);
      mapping.map(ivs.back(), loop.getInductionVar());
      builder.setInsertionPointToStart(loop.getBody());
      for (Operation &nested : op.getBody()->without_terminator())
        builder.clone(nested, mapping);
      op.erase();
    }
  }
  /// Outer iterations below which a loop keeps all its dims parallel.
  static constexpr int64_t kMinOuterTrips = 8;
};
/// Turns each kiln.store_param into bufferization.materialize_in_destination
/// of the value into its parameter argument, marked writable; every other
/// argument is marked read-only (the runtime maps inference weights
/// read-only). Runs right before empty-tensor elimination and bufferization:
/// a canonicalization in between would erase the unused materializations.
struct LowerParameterStoresPass
    : PassWrapper<LowerParameterStoresPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(LowerParameterStoresPass)
  StringRef getArgument() const final { return "kiln-lower-parameter-stores"; }
  StringRef getDescription() const final {
    return "kiln.store_param to bufferization.materialize_in_destination";
  }
  void runOnOperation() final {
    MLIRContext *context = &getContext();
    StringRef writable = bufferization::BufferizationDialect::kWritableAttrName;
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      llvm::SmallDenseSet<unsigned> stored;
      SmallVector<kiln::StoreParamOp> stores;
      func.walk([&](kiln::StoreParamOp store) { stores.push_back(store); });
      for (kiln::StoreParamOp store : stores) {
        auto arg = cast<BlockArgument>(store.getDest());
        if (!stored.insert(arg.getArgNumber()).second) {
          store.emitOpError("stores a parameter a second time");
          return signalPassFailure();
        }
        // At the end of the function: values read after the store (the
        // step count the bias corrections use) must not see the buffer
        // being written under them.
        OpBuilder builder(store->getBlock()->getTerminator());
        bufferization::MaterializeInDestinationOp::create(
            builder, store.getLoc(), store.getValue(), store.getDest());
        store.erase();
      }
      // The runtime passes every argument in its own buffer (inputs may
      // share one only when nothing writes them): telling LLVM lets it
      // vectorize loops that read some arguments and write others, such as
      // an optimizer update, without runtime alias checks.
      for (unsigned i = 0; i < func.getNumArguments(); ++i) {
        if (!isa<TensorType>(func.getArgument(i).getType()))
          continue;
        func.setArgAttr(i, writable, BoolAttr::get(context, stored.contains(i)));
        if (func.isPublic())
          func.setArgAttr(i, LLVM::LLVMDialect::getNoAliasAttrName(),
                          UnitAttr::get(context));
      }
    }
  }
};
/// func-to-llvm unpacks each memref argument into pointers and sizes and
/// drops its `llvm.noalias`. These two passes carry it over: the first
/// records, per function, the positions of the aligned data pointers of
/// the noalias memref arguments in the unpacked signature; the second, after
/// func-to-llvm, marks those llvm.func arguments noalias.
constexpr llvm::StringLiteral kNoAliasPositions = "kiln.noalias_positions";
struct RecordNoAliasArgumentsPass
    : PassWrapper<RecordNoAliasArgumentsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(RecordNoAliasArgumentsPass)
  StringRef getArgument() const final { return "kiln-record-noalias-arguments"; }
  void runOnOperation() final {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      SmallVector<int32_t> positions;
      int32_t position = 0;
      for (unsigned i = 0; i < func.getNumArguments(); ++i) {
        Type type = func.getArgumentTypes()[i];
        if (isa<UnrankedMemRefType>(type)) {
          position += 2; // rank, descriptor pointer
          continue;
        }
        auto memref = dyn_cast<MemRefType>(type);
        if (!memref) {
          ++position;
          continue;
        }
        if (func.getArgAttr(i, LLVM::LLVMDialect::getNoAliasAttrName()))
          positions.push_back(position + 1);
        position += 3 + 2 * static_cast<int32_t>(memref.getRank());
      }
      if (!positions.empty())
        func->setAttr(kNoAliasPositions,
                      DenseI32ArrayAttr::get(&getContext(), positions));
    }
  }
};
struct ApplyNoAliasArgumentsPass
    : PassWrapper<ApplyNoAliasArgumentsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(ApplyNoAliasArgumentsPass)
  StringRef getArgument() const final { return "kiln-apply-noalias-arguments"; }
  void runOnOperation() final {
    UnitAttr unit = UnitAttr::get(&getContext());
    for (auto func : getOperation().getOps<LLVM::LLVMFuncOp>()) {
      auto positions = func->getAttrOfType<DenseI32ArrayAttr>(kNoAliasPositions);
      if (!positions)
        continue;
      func->removeAttr(kNoAliasPositions);
      for (int32_t position : positions.asArrayRef())
        if (position < static_cast<int32_t>(func.getNumArguments()) &&
            isa<LLVM::LLVMPointerType>(func.getArgumentTypes()[position]))
          func.setArgAttr(position, LLVM::LLVMDialect::getNoAliasAttrName(),
                          unit);
    }
  }
};
/// Replaces memref.alloca_scope by its body. convert-scf-to-openmp wraps
/// each parallel loop body in one, but its region must stay a single block,
/// which scf-to-cf then breaks. Kiln's bufferized code allocates on the
/// heap, so the scope bounds no stack growth worth keeping.
struct InlineAllocaScopesPass
    : PassWrapper<InlineAllocaScopesPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(InlineAllocaScopesPass)
  StringRef getArgument() const final { return "kiln-inline-alloca-scopes"; }
  void runOnOperation() final {
    SmallVector<memref::AllocaScopeOp> scopes;
    getOperation().walk([&](memref::AllocaScopeOp op) { scopes.push_back(op); });
    for (memref::AllocaScopeOp scope : llvm::reverse(scopes)) {
      Block &body = scope.getBodyRegion().front();
      auto yield = cast<memref::AllocaScopeReturnOp>(body.getTerminator());
      SmallVector<Value> results(yield.getResults());
      yield.erase();
      scope->getBlock()->getOperations().splice(
          Block::iterator(scope), body.getOperations());
      scope.replaceAllUsesWith(results);
      scope.erase();
    }
  }
};
/// Replaces exp, tanh and erf by polynomial approximations (about 1e-7
/// relative error in f32) made of plain arithmetic, so the loops around
/// them vectorize instead of calling libm for every element.
struct ApproximateMathPass
    : PassWrapper<ApproximateMathPass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(ApproximateMathPass)
  StringRef getArgument() const final { return "kiln-approximate-math"; }
  StringRef getDescription() const final {
    return "Polynomial approximations of exp, tanh and erf";
  }
  void runOnOperation() final {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(
        patterns, [](StringRef name) {
          // Names are given with or without the dialect prefix.
          name.consume_front("math.");
          return name == "exp" || name == "tanh" || name == "erf";
        });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

/// Computes bf16 arithmetic in f32, rounding after every op, and rounds f32
/// to bf16 (and widens bf16) with integer arithmetic. LLVM lowers bf16
/// arithmetic and `fptrunc float to bfloat` to calls of `__truncsfbf2` on
/// CPUs without AVX512-BF16, and libgcc before GCC 13 (Debian 12's) has no
/// such function, so a bf16 module would not link on those machines. The
/// conversions round to nearest even and keep NaNs quiet, as the hardware
/// instruction does. Upstream's emulation marks the conversions it inserts
/// `contract`, which lets a fold drop the rounding between two ops
/// (extf(truncf(x)) -> x); bf16 arithmetic rounds every result, so the flag
/// is cleared before anything folds.
struct LowerBF16Pass
    : PassWrapper<LowerBF16Pass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(LowerBF16Pass)
  StringRef getArgument() const final { return "kiln-lower-bf16"; }
  StringRef getDescription() const final {
    return "bf16 arithmetic in f32 rounded per op, bf16 conversions as "
           "integer arithmetic (no libcalls)";
  }
  void runOnOperation() final {
    MLIRContext *context = &getContext();
    TypeConverter converter;
    Type bf16 = BFloat16Type::get(context);
    arith::populateEmulateUnsupportedFloatsConversions(
        converter, {bf16}, Float32Type::get(context));
    RewritePatternSet emulation(context);
    arith::populateEmulateUnsupportedFloatsPatterns(emulation, converter);
    ConversionTarget target(*context);
    arith::populateEmulateUnsupportedFloatsLegality(target, converter);
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(emulation))))
      return signalPassFailure();

    auto none =
        arith::FastMathFlagsAttr::get(context, arith::FastMathFlags::none);
    getOperation().walk([&](Operation *op) {
      if (isa<arith::ExtFOp, arith::TruncFOp>(op))
        op->setAttr("fastmath", none);
    });

    RewritePatternSet expansion(context);
    arith::populateExpandBFloat16Patterns(expansion);
    if (failed(applyPatternsGreedily(getOperation(), std::move(expansion))))
      signalPassFailure();
  }
};
} // namespace

void mlir::kiln::buildKilnToLinalgStages(OpPassManager &pm,
                                         ArrayRef<std::string> keep,
                                         int64_t attentionBlock) {
  // Graph level.
  KilnDecomposePassOptions decompose;
  decompose.keep = llvm::to_vector(keep);
  pm.addNestedPass<func::FuncOp>(createKilnDecomposePass(decompose));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Tensor level.
  // Entry points that call other parameter-reading functions (a loss
  // calling forward) are flattened, so every parameter read sits in the
  // function whose arguments will carry it.
  pm.addPass(createInlinerPass());
  // Kept attention ops become fused loop nests; the rest becomes linalg.
  ConvertKilnAttentionPassOptions attention;
  attention.block = attentionBlock;
  pm.addPass(createConvertKilnAttentionPass(attention));
  pm.addPass(createConvertKilnToLinalgPass());
  pm.addPass(createKilnExternalizeParametersPass());
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createFuseElementwiseWithoutRecomputationPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::kiln::buildKilnBufferizeStages(OpPassManager &pm) {
  // Parameter updates are computed in the parameters' buffers.
  pm.addPass(std::make_unique<LowerParameterStoresPass>());
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
}

std::unique_ptr<Pass> mlir::kiln::createEmitCInterfacesPass() {
  return std::make_unique<EmitCInterfacesPass>();
}

std::unique_ptr<Pass>
mlir::kiln::createSequentializeInnerParallelPass(bool splitOuterLoops) {
  return std::make_unique<SequentializeInnerParallelPass>(splitOuterLoops);
}

std::unique_ptr<Pass> mlir::kiln::createApproximateMathPass() {
  return std::make_unique<ApproximateMathPass>();
}

void mlir::kiln::buildKilnCPUPipeline(OpPassManager &pm,
                                      const CPUPipelineOptions &options) {
  buildKilnToLinalgStages(pm, llvm::to_vector(options.keepComposites));

  // Register tiles for matmuls.
  pm.addNestedPass<func::FuncOp>(createTileAndVectorizeContractionsPass());
  // Masks become masked transfers here: later passes (buffer deallocation)
  // would insert ops into vector.mask regions, which hold exactly one op.
  pm.addNestedPass<func::FuncOp>(vector::createLowerVectorMaskPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Buffers.
  buildKilnBufferizeStages(pm);
  // Parallel dimensions become scf.parallel; only the outermost parallel
  // loop of each nest runs on threads (OpenMP), inner ones stay sequential.
  pm.addNestedPass<func::FuncOp>(createForallToParallelLoopPass());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  pm.addNestedPass<func::FuncOp>(std::make_unique<SequentializeInnerParallelPass>());
  bufferization::buildBufferDeallocationPipeline(pm);
  // Results that alias an argument or a constant are returned as clones.
  pm.addPass(createConvertBufferizationToMemRefPass());

  // Vectors: masks to selects/masked transfers, n-D transfers to loops of
  // 1-D ones; contractions become outer products (FMAs) in vector-to-llvm.
  VectorTransferToSCFOptions transfers;
  transfers.enableFullUnroll();
  pm.addNestedPass<func::FuncOp>(createConvertVectorToSCFPass(transfers));
  pm.addPass(createCanonicalizerPass());

  // LLVM.
  pm.addPass(std::make_unique<EmitCInterfacesPass>());
  // Before any conversion touches the signatures (openmp-to-llvm converts
  // functions too).
  pm.addPass(std::make_unique<RecordNoAliasArgumentsPass>());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createConvertSCFToOpenMPPass());
  pm.addPass(std::make_unique<InlineAllocaScopesPass>());
  pm.addPass(createSCFToControlFlowPass());
  pm.addNestedPass<func::FuncOp>(std::make_unique<ApproximateMathPass>());
  // No bf16 arithmetic or conversion reaches LLVM (see the pass).
  pm.addNestedPass<func::FuncOp>(std::make_unique<LowerBF16Pass>());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  ConvertVectorToLLVMPassOptions vectorToLLVM;
  vectorToLLVM.vectorContractLowering =
      vector::VectorContractLowering::OuterProduct;
  vectorToLLVM.vectorTransposeLowering =
      vector::VectorTransposeLowering::Shuffle16x16;
  pm.addPass(createConvertVectorToLLVMPass(vectorToLLVM));
  pm.addPass(createConvertOpenMPToLLVMPass());
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(std::make_unique<ApplyNoAliasArgumentsPass>());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::kiln::registerKilnCPUPipeline() {
  PassRegistration<SequentializeInnerParallelPass>();
  PassRegistration<LowerBF16Pass>();
  PassRegistration<InlineAllocaScopesPass>();
  PassRegistration<LowerParameterStoresPass>();
  registerPass([] { return createTileAndVectorizeContractionsPass(); });
  registerPass([] { return createFuseElementwiseWithoutRecomputationPass(); });
  PassRegistration<ApproximateMathPass>();
  PassPipelineRegistration<CPUPipelineOptions>(
      "kiln-cpu-pipeline",
      "Lowers kiln IR to the LLVM dialect for the CPU (what kiln-compile "
      "--target cpu runs)",
      buildKilnCPUPipeline);
}

void mlir::kiln::registerKilnCPUDialects(DialectRegistry &registry) {
  registerAllDialects(registry);
  registerAllExtensions(registry);
}

LogicalResult mlir::kiln::lowerToArtifactLLVM(ModuleOp module,
                                              ArrayRef<std::string> keep) {
  MLIRContext *context = module.getContext();
  DialectRegistry registry;
  registerKilnCPUDialects(registry);
  context->appendDialectRegistry(registry);
  context->loadAllAvailableDialects();
  PassManager pm(context);
  CPUPipelineOptions options;
  options.keepComposites = llvm::to_vector(keep);
  buildKilnCPUPipeline(pm, options);
  if (failed(pm.run(module)))
    return failure();
  addArtifactEntryPoints(module);
  return success();
}
