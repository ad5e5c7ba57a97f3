//===- CUDAPipeline.cpp - kiln IR to host code and PTX kernels ------------===//
//
// After the shared front (Target/Common: kiln -> linalg -> buffers), in the
// order of buildKilnCUDAKernelPipeline:
//   - f32, f16 and bf16 matmul contractions call cuBLASLt through the
//     runtime (kiln_gpu_gemm, GpuApi.h), looping on the host over all batch
//     dims but the last, which is cuBLASLt's strided batch;
//   - full reductions are split into parallel partial results, long row
//     reductions (softmax, layer_norm, the loss's log-sum-exp) get a block
//     of threads per row, and fused attention's row loops run a row per
//     thread;
//   - every other loop nest becomes one kernel: copies are linalg ops too,
//     reductions are moved innermost, the parallel dims are collapsed into
//     one and tiled by the block size (blocks x threads); loop nests
//     without a parallel dim run in a one-thread kernel;
//   - host allocations become device allocations (gpu.alloc), so that the
//     host code never touches device memory (checked: an access left on
//     the host is an error);
//   - the outlined kernels become one gpu.module, lowered through NVVM to
//     PTX (or a cubin or fatbin) embedded in the host code.
// The passes are declared in include/kiln/Target/CUDA/Passes.td, one source
// file each.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CUDA/CUDAPipeline.h"
#include "kiln/Target/CUDA/Passes.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Target/Common/ObjectEmission.h"
#include "kiln/Target/Common/Passes.h"
#include "kiln/Target/Common/Pipelines.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/Transforms/OptimizeForNVVM.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::kiln;

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
    pm.addPass(createMatmulsToLibraryCallsPass());
  pm.addNestedPass<func::FuncOp>(createSplitFullReductionsPass());
  pm.addNestedPass<func::FuncOp>(createPrepareLoopsForGPUPass());
  pm.addNestedPass<func::FuncOp>(createBlockReductionsPass());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  pm.addNestedPass<func::FuncOp>(createSequentializeInnerParallelPass(
      SequentializeInnerParallelPassOptions{/*splitOuterLoops=*/false}));
  pm.addNestedPass<func::FuncOp>(createMapParallelLoopsPass(
      MapParallelLoopsPassOptions{options.blockSize}));
  pm.addNestedPass<func::FuncOp>(createConvertParallelLoopToGpuPass());
  pm.addNestedPass<func::FuncOp>(createDeviceMemoryPass());
  // exp, tanh and erf as the CPU backend computes them (no libdevice).
  pm.addNestedPass<func::FuncOp>(createApproximateMathPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createMergeKernelModulesPass());
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
  pm.addNestedPass<gpu::GPUModuleOp>(createLowerAllReducePass());
  pm.addNestedPass<gpu::GPUModuleOp>(createLowerVectorTransfersPass());
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
  registerKilnTargetCUDAPasses();
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
  // The fused kernels' decomposition policy (Decomposition.h).
  registerKilnToLinalgInterfaces(registry);
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
