// RUN: kiln-opt %s --split-input-file --verify-diagnostics --kiln-gpu-map-parallel-loops | FileCheck %s
// RUN: kiln-opt %s --split-input-file --verify-diagnostics --kiln-gpu-map-parallel-loops=block-size=128 | FileCheck %s --check-prefix=B128

// kiln-gpu-map-parallel-loops maps every outermost scf.parallel of the host
// code onto the GPU: its dims are collapsed into one (the body recovers
// them by div/rem), which is tiled by the block size (256 unless
// block-size says otherwise): an outer loop of blocks (block_x) stepping
// by the block size, an inner loop of threads (thread_x) guarded by the
// collapsed bound. A loop marked kiln.gpu_block_per_iteration is collapsed
// but not tiled: each iteration is a block, and the inner parallel loop of
// lanes (kiln.keep_parallel) its threads. The test holds it to the
// collapsed bounds, the steps, the guard and the mapping attributes, to
// leaving host code without parallel loops alone, and to its errors
// (parallel reductions at the outermost level; a block-per-iteration loop
// without a lanes loop).

// Two dims (n x 3) collapse into one loop of n * 3 iterations, tiled by
// 256; each thread's linear index is split back into (i, j).
// CHECK-LABEL: func.func @two_dims(
// CHECK-SAME: %[[X:[^:]*]]: memref<?x3xf32>, %[[N:[^:]*]]: index)
// CHECK: %[[ROWS:.*]] = arith.muli %{{.*}}, %[[N]] : index
// CHECK: %[[TOTAL:.*]] = arith.muli %[[ROWS]], %[[C3:.*]] : index
// CHECK: %[[STEP:.*]] = arith.muli %{{.*}}, %c256 : index
// CHECK: scf.parallel (%[[BLOCK:.*]]) = (%{{.*}}) to (%[[TOTAL]]) step (%[[STEP]]) {
// CHECK-NEXT: scf.parallel (%[[THREAD:.*]]) = (%{{.*}}) to (%[[STEP]]) step (%{{.*}}) {
// CHECK: %[[LINEAR:.*]] = arith.addi %[[THREAD]], %[[BLOCK]] : index
// CHECK: %[[IN:.*]] = arith.cmpi ult, %{{.*}}, %[[TOTAL]] : index
// CHECK: %[[GUARD:.*]] = arith.andi %{{.*}}, %[[IN]] : i1
// CHECK: scf.if %[[GUARD]] {
// CHECK-DAG: %[[J:.*]] = arith.remsi %[[LINEAR]], %[[C3]] : index
// CHECK-DAG: %[[I:.*]] = arith.divsi %[[LINEAR]], %[[C3]] : index
// CHECK: memref.load %[[X]][%[[I]], %[[J]]] : memref<?x3xf32>
// CHECK: memref.store %{{.*}}, %[[X]][%[[I]], %[[J]]] : memref<?x3xf32>
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = thread_x, map = (d0) -> (d0), bound = (d0) -> (d0)>]}
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = block_x, map = (d0) -> (d0), bound = (d0) -> (d0)>]}
// CHECK-NEXT: return
// B128-LABEL: func.func @two_dims(
// B128: %[[STEP:.*]] = arith.muli %{{.*}}, %c128 : index
// B128: scf.parallel (%{{.*}}) = (%{{.*}}) to (%{{.*}}) step (%[[STEP]])
// B128-NEXT: scf.parallel (%{{.*}}) = (%{{.*}}) to (%[[STEP]]) step
func.func @two_dims(%x: memref<?x3xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c3) step (%c1, %c1) {
    %v = memref.load %x[%i, %j] : memref<?x3xf32>
    %r = arith.maximumf %v, %zero : f32
    memref.store %r, %x[%i, %j] : memref<?x3xf32>
    scf.reduce
  }
  return
}

// One dim is tiled as it is: 1000 elements in blocks of 256 threads, the
// last block's threads past 1000 do nothing.
// CHECK-LABEL: func.func @one_dim(
// CHECK-DAG: %[[C1000:.*]] = arith.constant 1000 : index
// CHECK: %[[STEP:.*]] = arith.muli %{{.*}}, %c256 : index
// CHECK: scf.parallel (%[[BLOCK:.*]]) = (%{{.*}}) to (%[[C1000]]) step (%[[STEP]]) {
// CHECK-NEXT: scf.parallel (%[[THREAD:.*]]) = (%{{.*}}) to (%[[STEP]]) step (%{{.*}}) {
// CHECK: %[[IN:.*]] = arith.cmpi ult, %{{.*}}, %[[C1000]] : index
// CHECK: scf.if
// CHECK: memref.store
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = thread_x
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = block_x
// B128-LABEL: func.func @one_dim(
// B128: arith.muli %{{.*}}, %c128 : index
func.func @one_dim(%x: memref<1000xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c1000 = arith.constant 1000 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i) = (%c0) to (%c1000) step (%c1) {
    memref.store %zero, %x[%i] : memref<1000xf32>
    scf.reduce
  }
  return
}

// A row reduction (kiln-gpu-block-reductions' output): the 4 x 6 rows
// collapse into 24 blocks, not tiled (step 1, no guard), the loop keeps
// its marker, and the lanes loop (with its reduction) is the block's
// threads. The block size does not change it.
// CHECK-LABEL: func.func @block_per_row(
// CHECK: %[[ROWS:.*]] = arith.muli %{{.*}}, %[[C4:.*]] : index
// CHECK: %[[TOTAL:.*]] = arith.muli %[[ROWS]], %[[C6:.*]] : index
// CHECK: scf.parallel (%[[ROW:.*]]) = (%{{.*}}) to (%[[TOTAL]]) step (%[[ONE:.*]]) {
// CHECK-DAG: %[[J:.*]] = arith.remsi %[[ROW]], %[[C6]] : index
// CHECK-DAG: %[[I:.*]] = arith.divsi %[[ROW]], %[[C6]] : index
// CHECK-NOT: scf.if
// CHECK: %[[SUM:.*]] = scf.parallel (%{{.*}}) = (%{{.*}}) to (%c256) step (%{{.*}}) init (%{{.*}}) -> f32 {
// CHECK: memref.load %{{.*}}[%[[I]], %[[J]], %{{.*}}] : memref<4x6x1000xf32>
// CHECK: scf.reduce(%{{.*}} : f32) {
// CHECK: } {kiln.keep_parallel, mapping = [#gpu.loop_dim_map<processor = thread_x, map = (d0) -> (d0), bound = (d0) -> (d0)>]}
// CHECK: memref.store %{{.*}}, %{{.*}}[%[[I]], %[[J]]] : memref<4x6xf32>
// CHECK: } {kiln.gpu_block_per_iteration, mapping = [#gpu.loop_dim_map<processor = block_x, map = (d0) -> (d0), bound = (d0) -> (d0)>]}
// CHECK-NEXT: return
// B128-LABEL: func.func @block_per_row(
// B128-NOT: %c128
// B128: } {kiln.keep_parallel, mapping = [#gpu.loop_dim_map<processor = thread_x
// B128: } {kiln.gpu_block_per_iteration, mapping = [#gpu.loop_dim_map<processor = block_x
func.func @block_per_row(%x: memref<4x6x1000xf32>, %out: memref<4x6xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c6 = arith.constant 6 : index
  %c256 = arith.constant 256 : index
  %c1000 = arith.constant 1000 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%c4, %c6) step (%c1, %c1) {
    %init = memref.load %out[%i, %j] : memref<4x6xf32>
    %sum = scf.parallel (%lane) = (%c0) to (%c256) step (%c1) init (%zero) -> f32 {
      %part = scf.for %k = %lane to %c1000 step %c256 iter_args(%acc = %zero) -> f32 {
        %v = memref.load %x[%i, %j, %k] : memref<4x6x1000xf32>
        %a = arith.addf %acc, %v : f32
        scf.yield %a : f32
      }
      scf.reduce(%part : f32) {
      ^bb0(%a: f32, %b: f32):
        %s = arith.addf %a, %b : f32
        scf.reduce.return %s : f32
      }
    } {kiln.keep_parallel}
    %new = arith.addf %init, %sum : f32
    memref.store %new, %out[%i, %j] : memref<4x6xf32>
    scf.reduce
  } {kiln.gpu_block_per_iteration}
  return
}

// Host code without a parallel loop (a host loop of library calls) is
// left as it is.
// CHECK-LABEL: func.func @host_only(
// CHECK-NEXT: arith.constant
// CHECK-NEXT: arith.constant
// CHECK-NEXT: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT: func.call @library(%{{.*}}) : (index) -> ()
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func private @library(index)
func.func @host_only(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
    func.call @library(%i) : (index) -> ()
  }
  return
}

// -----

// A parallel loop with reductions at the outermost level is not mapped.
func.func @outer_reduction(%x: memref<8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @+1 {{'scf.parallel' op parallel reductions are not mapped to the GPU yet}}
  %s = scf.parallel (%i) = (%c0) to (%c8) step (%c1) init (%zero) -> f32 {
    %v = memref.load %x[%i] : memref<8xf32>
    scf.reduce(%v : f32) {
    ^bb0(%a: f32, %b: f32):
      %t = arith.addf %a, %b : f32
      scf.reduce.return %t : f32
    }
  }
  return %s : f32
}

// -----

// A block-per-iteration loop needs the lanes loop directly in its body.
func.func @block_without_lanes(%x: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @+1 {{'scf.parallel' op a block-per-iteration loop needs one inner parallel loop of lanes}}
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %x[%i] : memref<8xf32>
    scf.reduce
  } {kiln.gpu_block_per_iteration}
  return
}
