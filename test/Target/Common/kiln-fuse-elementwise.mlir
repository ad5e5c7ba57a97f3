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

// -----

// A producer with another user after the consumer is fused into the
// elementwise consumer, which yields its values for that user: one loop.
// CHECK-LABEL: func @shared_producer_yielded
// CHECK: %[[F:.*]]:2 = linalg.generic
// CHECK: arith.addf
// CHECK: arith.mulf
// CHECK: linalg.yield
// CHECK-NOT: linalg.generic
// CHECK: return %[[F]]#{{[01]}}, %[[F]]#{{[01]}}
func.func @shared_producer_yielded(%a: tensor<8xf32>, %b: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %s = kiln.add %a, %b : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %t = kiln.mul %s, %a : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %s, %t : tensor<8xf32>, tensor<8xf32>
}

// -----

// ... but not when the other user comes first (the fused op could not
// give it the values), nor into a reduction: the sum stays materialized.
// CHECK-LABEL: func @shared_producer_used_before
// CHECK-COUNT-3: linalg.generic
// CHECK-NOT: linalg.generic
func.func @shared_producer_used_before(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) -> (tensor<4xf32>, tensor<4x8xf32>) {
  %s = kiln.add %a, %b : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %r = kiln.reduce sum %s axes = [1] : (tensor<4x8xf32>) -> tensor<4xf32>
  %t = kiln.mul %s, %a : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %r, %t : tensor<4xf32>, tensor<4x8xf32>
}

// -----

// A producer that reads one operand of its size and broadcasts the rest
// is recomputed by each user: the exponentials are never written.
// CHECK-LABEL: func @cheap_producer_recomputed
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: arith.subf
// CHECK: math.exp
// CHECK: arith.addf
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK: arith.subf
// CHECK: math.exp
// CHECK: arith.mulf
// CHECK-NOT: linalg.generic
func.func @cheap_producer_recomputed(%x: tensor<4x8xf32>, %m: tensor<4x1xf32>) -> (tensor<4xf32>, tensor<4x8xf32>) {
  %d = kiln.sub %x, %m : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %e = kiln.exp %d : tensor<4x8xf32>
  %s = kiln.reduce sum %e axes = [1] : (tensor<4x8xf32>) -> tensor<4xf32>
  %y = kiln.mul %e, %x : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %s, %y : tensor<4xf32>, tensor<4x8xf32>
}

// -----

// A narrowing cast is cheaper to read than its input, so it is not
// recomputed by each user: the first elementwise user computes it once and
// yields it for the rest (here the return).
// CHECK-LABEL: func @narrowing_not_recomputed
// CHECK: %[[F:.*]]:2 = linalg.generic
// CHECK-COUNT-1: arith.truncf
// CHECK-NOT: arith.truncf
// CHECK: math.tanh
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @narrowing_not_recomputed(%x: tensor<64x768xf32>, %y: tensor<64x768xbf16>) -> (tensor<64x768xbf16>, tensor<64x768xbf16>) {
  %c = kiln.cast %x : tensor<64x768xf32> -> tensor<64x768xbf16>
  %t = kiln.tanh %c : tensor<64x768xbf16>
  %m = kiln.mul %c, %y : (tensor<64x768xbf16>, tensor<64x768xbf16>) -> tensor<64x768xbf16>
  %s = kiln.add %t, %m : (tensor<64x768xbf16>, tensor<64x768xbf16>) -> tensor<64x768xbf16>
  return %s, %c : tensor<64x768xbf16>, tensor<64x768xbf16>
}
