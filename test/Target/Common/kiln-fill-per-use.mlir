// RUN: kiln-opt %s --kiln-fill-per-use --split-input-file | FileCheck %s

// A fill with several uses: the earliest use keeps it, each later one gets
// a fill (and empty tensor) of its own right before the op of the fill's
// block that holds it (here an scf.forall), so bufferization does not
// copy one filled buffer for each.
// CHECK-LABEL: func.func @shared
// CHECK: %[[E:.*]] = tensor.empty() : tensor<8x8xf32>
// CHECK: %[[Z:.*]] = linalg.fill ins(%[[C:.*]] : f32) outs(%[[E]] : tensor<8x8xf32>)
// CHECK: %[[M1:.*]] = linalg.matmul ins(%{{.*}}, %{{.*}} : {{.*}}) outs(%[[Z]] : tensor<8x8xf32>)
// CHECK: %[[V:.*]] = tensor.empty() : tensor<8xf32>
// CHECK: %[[ZV:.*]] = linalg.fill ins(%[[C]] : f32) outs(%[[V]] : tensor<8xf32>)
// CHECK: %[[E2:.*]] = tensor.empty() : tensor<8x8xf32>
// CHECK: %[[Z2:.*]] = linalg.fill ins(%[[C]] : f32) outs(%[[E2]] : tensor<8x8xf32>)
// CHECK: %[[M2:.*]] = linalg.matmul ins(%[[M1]], %{{.*}} : {{.*}}) outs(%[[Z2]] : tensor<8x8xf32>)
// CHECK: %[[E3:.*]] = tensor.empty() : tensor<8x8xf32>
// CHECK: %[[Z3:.*]] = linalg.fill ins(%[[C]] : f32) outs(%[[E3]] : tensor<8x8xf32>)
// CHECK: scf.forall {{.*}} shared_outs(%{{.*}} = %[[Z3]])
// CHECK-NOT: linalg.fill
// CHECK: return %[[M1]], %[[M2]], %[[ZV]], %{{.*}}
func.func @shared(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>) -> (tensor<8x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<8x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<8x8xf32>) -> tensor<8x8xf32>
  %m1 = linalg.matmul ins(%a, %b : tensor<8x8xf32>, tensor<8x8xf32>) outs(%z : tensor<8x8xf32>) -> tensor<8x8xf32>
  %e1 = tensor.empty() : tensor<8xf32>
  %z1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<8xf32>) -> tensor<8xf32>
  %m2 = linalg.matmul ins(%m1, %b : tensor<8x8xf32>, tensor<8x8xf32>) outs(%z : tensor<8x8xf32>) -> tensor<8x8xf32>
  %f = scf.forall (%i) in (8) shared_outs(%o = %z) -> tensor<8x8xf32> {
    %row = tensor.extract_slice %a[%i, 0] [1, 8] [1, 1] : tensor<8x8xf32> to tensor<1x8xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %row into %o[%i, 0] [1, 8] [1, 1] : tensor<1x8xf32> into tensor<8x8xf32>
    }
  }
  return %m1, %m2, %z1, %f : tensor<8x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<8x8xf32>
}

// -----

// A fill into a tensor that is not an empty one is cloned alone; fills
// with one use and fills of buffers stay as they are.
// CHECK-LABEL: func.func @not_empty
// CHECK-SAME: (%[[T:.*]]: tensor<4xf32>, %[[B:.*]]: memref<4xf32>)
// CHECK: %[[F1:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[T]] : tensor<4xf32>)
// CHECK: %[[S1:.*]] = linalg.generic {{.*}} ins(%[[F1]]
// CHECK: %[[F2:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[T]] : tensor<4xf32>)
// CHECK: %[[S2:.*]] = linalg.generic {{.*}} ins(%[[F2]]
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[B]] : memref<4xf32>)
// CHECK-NOT: linalg.fill
func.func @not_empty(%t: tensor<4xf32>, %b: memref<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %one = arith.constant 1.0 : f32
  %f = linalg.fill ins(%one : f32) outs(%t : tensor<4xf32>) -> tensor<4xf32>
  %e = tensor.empty() : tensor<4xf32>
  %s1 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
       ins(%f : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%x: f32, %y: f32):
    %r = arith.addf %x, %x : f32
    linalg.yield %r : f32
  } -> tensor<4xf32>
  %s2 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
       ins(%f : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%x: f32, %y: f32):
    %r = arith.mulf %x, %x : f32
    linalg.yield %r : f32
  } -> tensor<4xf32>
  linalg.fill ins(%one : f32) outs(%b : memref<4xf32>)
  return %s1, %s2 : tensor<4xf32>, tensor<4xf32>
}

// -----

// A splat tensor constant of 4 KiB or more that something writes into (a
// loop's initial value here) becomes a fill of an empty tensor right
// before its first use (then one per use), not read-only data that
// bufferization copies into each buffer it initializes; smaller ones,
// non-splats and large ones only read stay.
// CHECK-LABEL: func.func @splat
// CHECK-DAG: %[[SMALL:.*]] = arith.constant dense<1.000000e+00> : tensor<16xf32>
// CHECK-DAG: %[[DENSE:.*]] = arith.constant dense<[1, 2]> : tensor<2xi32>
// CHECK-DAG: %[[READ:.*]] = arith.constant dense<2.000000e+00> : tensor<32x32xf32>
// CHECK: %[[SUM:.*]] = arith.addf %{{.*}}, %[[READ]]
// CHECK: %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[E:.*]] = tensor.empty() : tensor<32x32xf32>
// CHECK: %[[F:.*]] = linalg.fill ins(%[[Z]] : f32) outs(%[[E]] : tensor<32x32xf32>)
// CHECK: %[[L:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %[[F]])
// CHECK: %[[E2:.*]] = tensor.empty() : tensor<32x32xf32>
// CHECK: %[[F2:.*]] = linalg.fill ins(%[[Z]] : f32) outs(%[[E2]] : tensor<32x32xf32>)
// CHECK: return %[[L]], %[[F2]], %[[SMALL]], %[[DENSE]], %[[SUM]]
func.func @splat(%a: tensor<32x32xf32>) -> (tensor<32x32xf32>, tensor<32x32xf32>, tensor<16xf32>, tensor<2xi32>, tensor<32x32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zeros = arith.constant dense<0.0> : tensor<32x32xf32>
  %small = arith.constant dense<1.0> : tensor<16xf32>
  %dense = arith.constant dense<[1, 2]> : tensor<2xi32>
  %twos = arith.constant dense<2.0> : tensor<32x32xf32>
  %read = arith.addf %a, %twos : tensor<32x32xf32>
  %sum = scf.for %i = %c0 to %c4 step %c1 iter_args(%acc = %zeros) -> tensor<32x32xf32> {
    %next = arith.addf %acc, %a : tensor<32x32xf32>
    scf.yield %next : tensor<32x32xf32>
  }
  return %sum, %zeros, %small, %dense, %read : tensor<32x32xf32>, tensor<32x32xf32>, tensor<16xf32>, tensor<2xi32>, tensor<32x32xf32>
}
