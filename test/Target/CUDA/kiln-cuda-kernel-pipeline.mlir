// RUN: kiln-opt %s --kiln-cuda-kernel-pipeline | FileCheck %s
// RUN: kiln-opt %s --kiln-cuda-kernel-pipeline="library-matmuls=false" | FileCheck %s --check-prefix=NOLIB
// RUN: kiln-opt %s --kiln-cuda-pipeline | FileCheck %s --check-prefix=LLVM
// RUN: kiln-opt %s --kiln-cuda-kernel-pipeline | FileCheck %s --check-prefix=BETA

// Both products overwrite their zero-filled outputs: beta is 0.
// BETA: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// BETA: call @kiln_gpu_gemm({{.*}}, %[[ZERO]]) :
// BETA: call @kiln_gpu_gemm({{.*}}, %[[ZERO]]) :

// Host code keeps only device allocations, launches and library calls
// (allocations in the async form gpu-to-llvm lowers, each waited for):
// every loop nest is a kernel of 256-thread blocks, matmuls call cuBLASLt
// through kiln_gpu_gemm, and nothing on the host touches memory.
// CHECK-LABEL: func.func @f(
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.load
// CHECK-NOT: memref.store
// CHECK-NOT: linalg.
// The transposed rhs of the attention scores is copied by a kernel first.
// CHECK: %[[KT:.*]], %{{.*}} = gpu.alloc async [%{{.*}}] () : memref<2x4x16x8xf32>
// CHECK: gpu.launch_func @kiln_kernels::@f_kernel blocks in (%{{.*}}) threads in (%c256, %c1, %c1)
// Batch dim 0 is a host loop, batch dim 1 (4 heads) the call's strided
// batch: m = 8, n = 8, k = 16, plain layouts, leading dims 16, 8, 8.
// CHECK: scf.for
// CHECK: call @kiln_gpu_gemm(%c0_i32, %c0_i32, %c0_i32, %c4_i64, %c8_i64, %c8_i64, %c16_i64, %{{.*}}, %c16_i64, %c128_i64, %{{.*}}, %c8_i64, %c128_i64, %{{.*}}, %c8_i64, %c64_i64, %cst{{.*}}, %cst{{.*}})
// The dynamic-row matmul: one call, m from the runtime size; the output's
// zero fill is dropped for beta = 0 (the last argument).
// CHECK: %[[DIM:.*]] = memref.dim %arg2, %c0 : memref<?x17xf32>
// CHECK: gpu.alloc async [%{{.*}}] (%[[DIM]]) : memref<?x3xf32>
// CHECK-NOT: gpu.launch_func
// CHECK: call @kiln_gpu_gemm(%c0_i32, %c0_i32, %c0_i32, %c1_i64, %{{.*}}, %c3_i64, %c17_i64, %{{.*}}, %c17_i64, %c0_i64, %{{.*}}, %c3_i64, %c0_i64, %{{.*}}, %c3_i64, %c0_i64, %[[ONE:.*]], %[[ZERO:.*]]) :
// The relu is one loop over dim * 3 elements.
// CHECK: %[[N:.*]] = arith.muli %[[DIM]], %c3 : index
// CHECK: %[[BLOCKS:.*]] = affine.apply #map()[%[[N]]]
// CHECK: gpu.launch_func @{{.*}} blocks in (%[[BLOCKS]], %c1, %c1) threads in (%c256, %c1, %c1)
// The full mean has no parallel dim: a one-block kernel.
// CHECK: %[[MEAN:.*]], %{{.*}} = gpu.alloc async [%{{.*}}] () : memref<f32>
// CHECK: gpu.launch_func @{{.*}} blocks in (%c1, %c1, %c1) threads in (%c256, %c1, %c1) args({{.*}}%[[MEAN]] : memref<f32>)
// CHECK: gpu.dealloc
// CHECK: return
// Every kernel in one module, named after the module outlining made for it.
// CHECK: gpu.module @kiln_kernels
// CHECK: gpu.func @f_kernel(
// CHECK: gpu.func @f_kernel_0(
// CHECK-NOT: gpu.module
// CHECK: func.func private @kiln_gpu_gemm(i32, i32, i32, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, f32, f32)
// CHECK-NOT: gpu.module

// Without the library, matmuls are kernels too.
// NOLIB-NOT: kiln_gpu_gemm

// After lowering: the kernels are PTX for sm_90 in a gpu.binary, the host
// code is the LLVM dialect with a C interface for the runtime.
// LLVM-DAG: llvm.func @_mlir_ciface_f(
// LLVM-DAG: llvm.func @kiln_gpu_gemm(i32, i32, i32, i64
// LLVM-DAG: gpu.binary @kiln_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">, {{.*}}assembly = "{{.*}}.target sm_90
// LLVM-DAG: gpu.launch_func @kiln_kernels::@f_kernel_9

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %x: tensor<?x17xf32>, %w: tensor<17x3xf32>) -> (tensor<2x4x8x8xf32>, tensor<?x3xf32>, tensor<f32>) {
  %s = kiln.matmul %q, %k transpose_rhs : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x8xf32>
  %p = kiln.softmax %s axis = -1 : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %h = kiln.matmul %x, %w : (tensor<?x17xf32>, tensor<17x3xf32>) -> tensor<?x3xf32>
  %r = kiln.relu %h : tensor<?x3xf32>
  %m = kiln.reduce mean %r axes = [0, 1] : (tensor<?x3xf32>) -> tensor<f32>
  return %p, %r, %m : tensor<2x4x8x8xf32>, tensor<?x3xf32>, tensor<f32>
}
