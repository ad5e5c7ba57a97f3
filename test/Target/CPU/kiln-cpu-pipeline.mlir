// RUN: kiln-opt %models/mlp.mlir --kiln-cpu-pipeline | FileCheck %s
// RUN: kiln-opt %s --kiln-cpu-pipeline | FileCheck %s --check-prefix=SMALL
// RUN: kiln-opt %s --kiln-cpu-pipeline | mlir-translate --mlir-to-llvmir | FileCheck %s --check-prefix=LLVMIR

// The hand-written MLP lowers completely: the loss calling forward is
// inlined, parameters become tagged memref arguments, and every entry point
// gets a C interface for the runtime.
// CHECK-NOT: kiln.
// CHECK-DAG: llvm.func @malloc
// CHECK-DAG: llvm.func @_mlir_ciface_forward({{.*}}{kiln.parameter = "fc1.weight", llvm.noalias}
// CHECK-DAG: llvm.func @_mlir_ciface_loss({{.*}}{kiln.parameter = "fc2.bias", llvm.noalias}
// The unpacked data pointers of the arguments are noalias (the runtime
// passes each in its own buffer), the allocated pointers are not.
// CHECK-DAG: llvm.func @forward(%{{[a-z0-9]+}}: !llvm.ptr, %{{[a-z0-9]+}}: !llvm.ptr {llvm.noalias}, %{{[a-z0-9]+}}: i64

// SMALL-LABEL: llvm.func @_mlir_ciface_f
// LLVMIR: define void @_mlir_ciface_f(
kiln.parameter @scale : tensor<3xf32> init ones
func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %s = kiln.read_param @scale : tensor<3xf32>
  %0 = kiln.mul %x, %s : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = kiln.softmax %0 axis = -1 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}

// bf16 arithmetic and conversions reach LLVM as f32 arithmetic and integer
// rounding: no bfloat operation is left for the backend to turn into a
// __truncsfbf2 call (which Debian 12's libgcc lacks).
// LLVMIR-LABEL: define {{.*}} @g(
// LLVMIR-NOT: fadd bfloat
// LLVMIR-NOT: fadd <{{[0-9]+}} x bfloat>
// LLVMIR-NOT: fptrunc {{.*}} bfloat
// LLVMIR-NOT: fpext bfloat
// LLVMIR: ret
func.func @g(%x: tensor<4x16xbf16>, %y: tensor<4x16xf32>) -> tensor<4x16xbf16> {
  %0 = kiln.cast %y : tensor<4x16xf32> -> tensor<4x16xbf16>
  %1 = kiln.add %x, %0 : (tensor<4x16xbf16>, tensor<4x16xbf16>) -> tensor<4x16xbf16>
  return %1 : tensor<4x16xbf16>
}
