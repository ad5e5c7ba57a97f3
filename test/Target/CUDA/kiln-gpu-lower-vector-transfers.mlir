// RUN: kiln-opt %s --kiln-gpu-lower-vector-transfers | FileCheck %s

// kiln-gpu-lower-vector-transfers rewrites, inside gpu.modules, the 1-D
// vector transfers that are in bounds, read along the memref's contiguous
// (minor) dim of unit stride, into vector.load and vector.store at the
// same indices (masked ones into vector.maskedload with the padding as
// pass-through, and vector.maskedstore), which the NVVM lowering turns
// into plain loads and stores. The test holds it to the operands and types
// of the new ops, and to leaving alone what those ops cannot express
// (transfers that may be out of bounds, 2-D transfers, transfers along a
// non-minor dim or a strided minor dim, transfers on tensors) and transfers
// outside gpu.modules (host code).

// CHECK-LABEL: gpu.func @row(
// CHECK-SAME: %[[X:[^:]*]]: memref<4x64xf32>, %[[Y:[^:]*]]: memref<4x64xf32>)
// CHECK-NEXT: %[[I:.*]] = gpu.block_id x
// CHECK-NEXT: %[[J:.*]] = gpu.thread_id x
// CHECK-NEXT: %[[V:.*]] = vector.load %[[X]][%[[I]], %[[J]]] : memref<4x64xf32>, vector<8xf32>
// CHECK-NEXT: %[[W:.*]] = arith.addf %[[V]], %[[V]] : vector<8xf32>
// CHECK-NEXT: vector.store %[[W]], %[[Y]][%[[I]], %[[J]]] : memref<4x64xf32>, vector<8xf32>
// CHECK-NEXT: gpu.return

// CHECK-LABEL: gpu.func @masked_and_single(
// CHECK-SAME: %[[X:[^:]*]]: memref<4x64xf32>, %[[Y:[^:]*]]: memref<4x64xf32>, %[[M:[^:]*]]: vector<8xi1>)
// CHECK-DAG: %[[PAD:.*]] = arith.constant dense<2.500000e+00> : vector<8xf32>
// CHECK-DAG: %[[I:.*]] = gpu.block_id x
// CHECK-DAG: %[[J:.*]] = gpu.thread_id x
// CHECK: %[[A:.*]] = vector.maskedload %[[X]][%[[I]], %[[J]]], %[[M]], %[[PAD]] : memref<4x64xf32>, vector<8xi1>, vector<8xf32> into vector<8xf32>
// CHECK-NEXT: %[[B:.*]] = vector.load %[[X]][%[[J]], %[[I]]] : memref<4x64xf32>, vector<1xf32>
// CHECK-NEXT: vector.maskedstore %[[Y]][%[[I]], %[[J]]], %[[M]], %[[A]] : memref<4x64xf32>, vector<8xi1>, vector<8xf32>
// CHECK-NEXT: vector.store %[[B]], %[[Y]][%[[J]], %[[I]]] : memref<4x64xf32>, vector<1xf32>
// CHECK-NEXT: gpu.return

// CHECK-LABEL: gpu.func @left_alone(
// CHECK-NOT: vector.load
// CHECK-NOT: vector.store
// CHECK: vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}], %{{.*}} : memref<4x64xf32>, vector<8xf32>
// CHECK: vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}], %{{.*}} {in_bounds = [true, true]} : memref<4x64xf32>, vector<2x8xf32>
// CHECK: vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}], %{{.*}} {in_bounds = [true], permutation_map = #{{.*}}} : memref<4x64xf32>, vector<4xf32>
// CHECK: vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<4x64xf32, strided<[64, 2]>>, vector<8xf32>
// CHECK: vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}], %{{.*}} {in_bounds = [true]} : tensor<4x64xf32>, vector<8xf32>
// CHECK: vector.transfer_write %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] : vector<8xf32>, memref<4x64xf32>
// CHECK: vector.transfer_write %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {in_bounds = [true, true]} : vector<2x8xf32>, memref<4x64xf32>
// CHECK: vector.transfer_write %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {in_bounds = [true], permutation_map = #{{.*}}} : vector<4xf32>, memref<4x64xf32>
// CHECK: vector.transfer_write %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {in_bounds = [true]} : vector<8xf32>, memref<4x64xf32, strided<[64, 2]>>
// CHECK: vector.transfer_write %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {in_bounds = [true]} : vector<8xf32>, memref<4x64xf32, strided<[64, 2]>>
// CHECK-NOT: vector.load
// CHECK-NOT: vector.store
// CHECK: gpu.return
gpu.module @kernels {
  gpu.func @row(%x: memref<4x64xf32>, %y: memref<4x64xf32>) kernel {
    %i = gpu.block_id x
    %j = gpu.thread_id x
    %pad = arith.constant 0.0 : f32
    %v = vector.transfer_read %x[%i, %j], %pad {in_bounds = [true]} : memref<4x64xf32>, vector<8xf32>
    %w = arith.addf %v, %v : vector<8xf32>
    vector.transfer_write %w, %y[%i, %j] {in_bounds = [true]} : vector<8xf32>, memref<4x64xf32>
    gpu.return
  }

  gpu.func @masked_and_single(%x: memref<4x64xf32>, %y: memref<4x64xf32>, %m: vector<8xi1>) kernel {
    %i = gpu.block_id x
    %j = gpu.thread_id x
    %pad = arith.constant 2.5 : f32
    %a = vector.transfer_read %x[%i, %j], %pad, %m {in_bounds = [true]} : memref<4x64xf32>, vector<8xf32>
    %b = vector.transfer_read %x[%j, %i], %pad {in_bounds = [true]} : memref<4x64xf32>, vector<1xf32>
    vector.transfer_write %a, %y[%i, %j], %m {in_bounds = [true]} : vector<8xf32>, memref<4x64xf32>
    vector.transfer_write %b, %y[%j, %i] {in_bounds = [true]} : vector<1xf32>, memref<4x64xf32>
    gpu.return
  }

  gpu.func @left_alone(%x: memref<4x64xf32>, %y: memref<4x64xf32>, %s: memref<4x64xf32, strided<[64, 2]>>, %t: tensor<4x64xf32>) kernel {
    %i = gpu.block_id x
    %j = gpu.thread_id x
    %pad = arith.constant 0.0 : f32
    // May be out of bounds.
    %a = vector.transfer_read %x[%i, %j], %pad : memref<4x64xf32>, vector<8xf32>
    // 2-D.
    %b = vector.transfer_read %x[%i, %j], %pad {in_bounds = [true, true]} : memref<4x64xf32>, vector<2x8xf32>
    // Along the rows (a column).
    %c = vector.transfer_read %x[%i, %j], %pad {in_bounds = [true], permutation_map = affine_map<(d0, d1) -> (d0)>} : memref<4x64xf32>, vector<4xf32>
    // The minor dim has stride 2.
    %d = vector.transfer_read %s[%i, %j], %pad {in_bounds = [true]} : memref<4x64xf32, strided<[64, 2]>>, vector<8xf32>
    // A tensor.
    %e = vector.transfer_read %t[%i, %j], %pad {in_bounds = [true]} : tensor<4x64xf32>, vector<8xf32>
    vector.transfer_write %a, %y[%i, %j] : vector<8xf32>, memref<4x64xf32>
    vector.transfer_write %b, %y[%i, %j] {in_bounds = [true, true]} : vector<2x8xf32>, memref<4x64xf32>
    vector.transfer_write %c, %y[%i, %j] {in_bounds = [true], permutation_map = affine_map<(d0, d1) -> (d0)>} : vector<4xf32>, memref<4x64xf32>
    vector.transfer_write %d, %s[%i, %j] {in_bounds = [true]} : vector<8xf32>, memref<4x64xf32, strided<[64, 2]>>
    vector.transfer_write %e, %s[%j, %i] {in_bounds = [true]} : vector<8xf32>, memref<4x64xf32, strided<[64, 2]>>
    gpu.return
  }
}

// Host code is not the pass's: its transfers stay.
// CHECK-LABEL: func.func @host(
// CHECK-NEXT: arith.constant
// CHECK-NEXT: %[[V:.*]] = vector.transfer_read %{{.*}}[%{{.*}}], %{{.*}} {in_bounds = [true]} : memref<64xf32>, vector<8xf32>
// CHECK-NEXT: vector.transfer_write %[[V]], %{{.*}}[%{{.*}}] {in_bounds = [true]} : vector<8xf32>, memref<64xf32>
// CHECK-NEXT: return
func.func @host(%x: memref<64xf32>, %i: index) {
  %pad = arith.constant 0.0 : f32
  %v = vector.transfer_read %x[%i], %pad {in_bounds = [true]} : memref<64xf32>, vector<8xf32>
  vector.transfer_write %v, %x[%i] {in_bounds = [true]} : vector<8xf32>, memref<64xf32>
  return
}
