// RUN: kiln-opt %s --convert-kiln-to-linalg --kiln-fuse-elementwise --split-input-file | FileCheck %s

// An elementwise producer read once per consumer iteration is fused.
// CHECK-LABEL: func @exp_into_sum
// CHECK-COUNT-1: linalg.generic
// CHECK-NOT: linalg.generic
// CHECK: math.exp
// CHECK: arith.addf
func.func @exp_into_sum(%x: tensor<4x8xf32>) -> tensor<4xf32> {
  %e = kiln.exp %x : tensor<4x8xf32>
  %s = kiln.reduce sum %e axes = [1] : (tensor<4x8xf32>) -> tensor<4xf32>
  return %s : tensor<4xf32>
}

// -----

// A producer feeding a matmul operand is not fused: the contraction reads
// each of its values once per output column, so fusing would recompute it.
// CHECK-LABEL: func @no_fusion_into_matmul
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK: math.tanh
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]
// CHECK-NOT: math.tanh
func.func @no_fusion_into_matmul(%x: tensor<16x32xf32>, %w: tensor<32x64xf32>) -> tensor<16x64xf32> {
  %t = kiln.tanh %x : tensor<16x32xf32>
  %y = kiln.matmul %t, %w : (tensor<16x32xf32>, tensor<32x64xf32>) -> tensor<16x64xf32>
  return %y : tensor<16x64xf32>
}
