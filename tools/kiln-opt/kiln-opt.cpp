//===- kiln-opt.cpp - The kiln optimizer driver ---------------------------===//
//
// mlir-opt with the kiln dialect and passes registered, plus the upstream
// dialects kiln IR uses or lowers to (func, tensor, arith, quant, linalg,
// math) and the upstream transforms (canonicalize, cse, ...).
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Target/CPU/CPUPipeline.h"
#include "kiln/Target/Common/Passes.h"
#include "kiln/Target/CUDA/CUDAPipeline.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/InitAllPasses.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::kiln::KilnDialect, mlir::func::FuncDialect,
                  mlir::tensor::TensorDialect, mlir::arith::ArithDialect,
                  mlir::quant::QuantDialect, mlir::linalg::LinalgDialect,
                  mlir::math::MathDialect>();
  mlir::registerAllPasses();
  mlir::kiln::registerKilnPasses();
  mlir::kiln::registerKilnConversionPasses();
  mlir::kiln::registerKilnTargetCommonPasses();
  mlir::kiln::registerKilnCPUPipeline();
  mlir::kiln::registerKilnCPUDialects(registry);
  mlir::kiln::registerKilnCUDAPipeline();
  mlir::kiln::registerKilnCUDADialects(registry);
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "Kiln optimizer: kiln IR in, transformed kiln IR out\n",
      registry));
}
