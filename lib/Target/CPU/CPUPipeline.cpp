//===- CPUPipeline.cpp - kiln IR to the LLVM dialect for CPUs -------------===//
//
// After the shared front (Target/Common: kiln -> linalg -> buffers), matmul
// contractions get register tiles and vectors, parallel loops become
// OpenMP, and everything lowers to the LLVM dialect; ObjectEmission then
// makes module.so of it.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/CPUPipeline.h"
#include "kiln/Target/CPU/Passes.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Target/Common/ObjectEmission.h"
#include "kiln/Target/Common/Passes.h"
#include "kiln/Target/Common/Pipelines.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/VectorToSCF/VectorToSCF.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Dialect/Vector/Transforms/Passes.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::kiln;

void mlir::kiln::buildKilnCPUPipeline(OpPassManager &pm,
                                      const CPUPipelineOptions &options) {
  // At the graph level: decoding steps (few rows) by transposed f32 or
  // weight-only quantized weights become dot products over the weight rows
  // (before matmuls become linalg), and bf16 attention goes onto AMX tiles
  // where the CPU has them (before the fused f32 loop takes the rest).
  const bool bf16Amx = options.bf16Dot == "amx";
  // bf16 matmuls on the same blocks, multiplied in AMX tiles or in zmm
  // registers (AVX512-BF16): all of them, or, where the others are widened
  // for the f32 tiles, those of few rows.
  const bool fewRowsBlocks =
      options.bf16Dot == "f32" && options.bf16FewRowsDot == "avx512";
  const bool bf16Blocks =
      bf16Amx || options.bf16Dot == "avx512" || fewRowsBlocks;
  buildKilnToLinalgStages(pm, llvm::to_vector(options.keepComposites),
                          /*attentionBlock=*/16, [&](OpPassManager &graph) {
                            MatvecDotProductsPassOptions matvec;
                            matvec.nibbleTable = options.nibbleTable;
                            matvec.rowBlock = options.matvecRowBlock;
                            graph.addPass(createMatvecDotProductsPass(matvec));
                            if (bf16Amx)
                              graph.addNestedPass<func::FuncOp>(
                                  createLowerAMXAttentionPass());
                          });

  // Register tiles for matmuls (bf16 ones too, widened, where chosen).
  if (options.bf16Dot == "f32") {
    WidenBF16MatmulsPassOptions widen;
    widen.minRows = fewRowsBlocks ? options.tileM : 0;
    pm.addNestedPass<func::FuncOp>(createWidenBF16MatmulsPass(widen));
  }
  TileAndVectorizeContractionsPassOptions tiles;
  tiles.tileM = options.tileM;
  tiles.tileN = options.tileN;
  tiles.kBlock = options.kBlock;
  tiles.l2Bytes = options.l2Bytes;
  tiles.l3Bytes = options.l3Bytes;
  pm.addNestedPass<func::FuncOp>(createTileAndVectorizeContractionsPass(tiles));
  // Column sums on threads too.
  pm.addNestedPass<func::FuncOp>(createParallelizeReductionsPass());
  // Row sums in vector lanes (LLVM keeps a float sum sequential otherwise).
  pm.addNestedPass<func::FuncOp>(createSplitRowSumsPass());
  // Masks become masked transfers here: later passes (buffer deallocation)
  // would insert ops into vector.mask regions, which hold exactly one op.
  pm.addNestedPass<func::FuncOp>(vector::createLowerVectorMaskPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Buffers.
  buildKilnBufferizeStages(pm);
  // int8 matmuls (kiln.integer_matmul) get kernels of their own.
  // bf16 and int8 matmuls on AMX tiles where the CPU has them and they
  // are chosen (bf16 ones in zmm registers where it has AVX512-BF16
  // instead); int8 ones of other shapes then go to the VNNI kernel (every
  // CPU with AMX-INT8 has AVX-512 VNNI).
  const bool int8Amx = options.int8Dot == "amx";
  if (bf16Blocks || int8Amx) {
    LowerAMXMatmulsPassOptions amx;
    amx.bf16 = bf16Blocks;
    amx.bf16Dot = bf16Amx ? "amx" : "avx512";
    amx.int8 = int8Amx;
    pm.addPass(createLowerAMXMatmulsPass(amx));
  }
  // With AMX chosen, the pass's own defaults: the VNNI kernel and its tile.
  LowerIntegerMatmulsPassOptions integer;
  if (!int8Amx) {
    integer.int8Dot = options.int8Dot;
    integer.tileM = options.int8TileM;
    integer.tileN = options.int8TileN;
  }
  pm.addPass(createLowerIntegerMatmulsPass(integer));
  // Parallel dimensions become scf.parallel; only the outermost parallel
  // loop of each nest runs on threads (OpenMP), inner ones stay sequential.
  pm.addNestedPass<func::FuncOp>(createForallToParallelLoopPass());
  // Bufferization leaves copies of a buffer onto itself where a tile or a
  // panel is written in place and then "inserted" where it already is
  // (two equal subviews, or a loop result that is its init): CSE makes
  // them one value and the canonicalizer erases the copy. As loops, they
  // read and wrote every matmul result once more.
  pm.addPass(createCSEPass());
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createStridedCopiesToLoopsPass());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  pm.addNestedPass<func::FuncOp>(createSequentializeInnerParallelPass());
  // Row loops that follow one another (a layer norm's steps, elementwise
  // epilogues) as one parallel region.
  pm.addNestedPass<func::FuncOp>(createFuseRowLoopsPass());
  bufferization::buildBufferDeallocationPipeline(pm);
  // Results that alias an argument or a constant are returned as clones.
  pm.addPass(createConvertBufferizationToMemRefPass());

  // Vectors: masks to selects/masked transfers, n-D transfers to loops of
  // 1-D ones; contractions become outer products (FMAs) in vector-to-llvm.
  VectorTransferToSCFOptions transfers;
  transfers.enableFullUnroll();
  pm.addNestedPass<func::FuncOp>(createConvertVectorToSCFPass(transfers));
  pm.addPass(createCanonicalizerPass());

  // LLVM. Each parallel loop in a function of its own first: OpenMP's
  // outlining in the translation to LLVM IR is quadratic in the size of
  // the function around the loops.
  pm.addPass(createOutlineParallelLoopsPass());
  pm.addPass(createEmitCInterfacesPass());
  // Before any conversion touches the signatures (openmp-to-llvm converts
  // functions too).
  pm.addPass(createRecordNoAliasArgumentsPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createConvertSCFToOpenMPPass());
  pm.addPass(createInlineAllocaScopesPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addNestedPass<func::FuncOp>(createApproximateMathPass());
  // No bf16 arithmetic or conversion reaches LLVM (see the pass).
  pm.addNestedPass<func::FuncOp>(createLowerBF16Pass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  // AMX tiles are carried by branches: converted with them.
  pm.addPass(createConvertAMXToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  ConvertVectorToLLVMPassOptions vectorToLLVM;
  vectorToLLVM.vectorContractLowering =
      vector::VectorContractLowering::OuterProduct;
  vectorToLLVM.vectorTransposeLowering =
      vector::VectorTransposeLowering::Shuffle16x16;
  // x86vector.avx512.dot (vdpbf16ps) of the avx512 bf16 kernel.
  vectorToLLVM.x86Vector = true;
  pm.addPass(createConvertVectorToLLVMPass(vectorToLLVM));
  pm.addPass(createConvertOpenMPToLLVMPass());
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createApplyNoAliasArgumentsPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::kiln::registerKilnCPUPipeline() {
  registerKilnTargetCPUPasses();
  PassPipelineRegistration<CPUPipelineOptions>(
      "kiln-cpu-pipeline",
      "Lowers kiln IR to the LLVM dialect for the CPU (what kiln-compile "
      "--target cpu runs)",
      buildKilnCPUPipeline);
}

std::string mlir::kiln::getOpenMPRuntimePath() {
  return KILN_LLVM_LIBRARY_DIR "/libomp.so.5";
}

void mlir::kiln::registerKilnCPUDialects(DialectRegistry &registry) {
  registerAllDialects(registry);
  registerAllExtensions(registry);
  // The fused kernels' decomposition policy (Decomposition.h).
  registerKilnToLinalgInterfaces(registry);
}

LogicalResult mlir::kiln::lowerToArtifactLLVM(ModuleOp module,
                                              ArrayRef<std::string> keep,
                                              const CPUKernelConfig &kernels,
                                              TimingScope *timing) {
  MLIRContext *context = module.getContext();
  DialectRegistry registry;
  registerKilnCPUDialects(registry);
  context->appendDialectRegistry(registry);
  context->loadAllAvailableDialects();
  PassManager pm(context);
  CPUPipelineOptions options;
  options.keepComposites = llvm::to_vector(keep);
  options.tileM = kernels.tileM;
  options.tileN = kernels.tileN;
  options.kBlock = kernels.kBlock;
  options.l2Bytes = kernels.l2Bytes;
  options.l3Bytes = kernels.l3Bytes;
  options.int8Dot = kernels.int8Dot;
  options.int8TileM = kernels.int8TileM;
  options.int8TileN = kernels.int8TileN;
  options.bf16Dot = kernels.bf16Dot;
  options.nibbleTable = kernels.isa == "avx512";
  // Four rows' partial sums (and the shared weight vector) fit AVX-512's 32
  // registers; AVX2's 16 take one row at a time.
  options.matvecRowBlock = kernels.isa == "avx512" ? 4 : 1;
  if (kernels.bf16Dot == "f32" &&
      llvm::is_contained(kernels.bf16Dots, "avx512"))
    options.bf16FewRowsDot = "avx512";
  buildKilnCPUPipeline(pm, options);
  // --mlir-print-ir-* and the other pass manager options, where the tool
  // registered them (kiln-compile does).
  if (failed(applyPassManagerCLOptions(pm)))
    return failure();
  std::optional<TimingScope> passes;
  if (timing) {
    passes.emplace(timing->nest("kiln-cpu-pipeline"));
    pm.enableTiming(*passes);
  }
  if (failed(pm.run(module)))
    return failure();
  addArtifactEntryPoints(module);
  return success();
}
