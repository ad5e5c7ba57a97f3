// RUN: kiln-opt %s --split-input-file --verify-diagnostics --kiln-gpu-prepare-loops | FileCheck %s

// kiln-gpu-prepare-loops readies buffers-level code for the loop mapping:
// memref.copy becomes linalg.copy, generic ops get their reduction dims
// innermost (loop dims and indexing maps interchanged alike), and work
// without a parallel dim (linalg ops without one, top-level scf.for,
// scf.while and scf.if that touch memory) is wrapped in a one-iteration
// scf.parallel (0 to 1 step 1), unless it already is in an scf.parallel.
// The test holds it to each of these, to what it must leave as it is
// (parallel linalg ops, host loops that do not touch memory, work already
// in a parallel loop), and to its error on a host loop with results that
// touches memory (which cannot be moved into a kernel).

// The interchanged maps (printed as aliases before the functions).
// CHECK-DAG: #[[$TRANSPOSED:.*]] = affine_map<(d0, d1) -> (d1, d0)>
// CHECK-DAG: #[[$FIRST:.*]] = affine_map<(d0, d1) -> (d0)>
// CHECK-DAG: #[[$IN3:.*]] = affine_map<(d0, d1, d2) -> (d0, d2, d1)>
// CHECK-DAG: #[[$OUT3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>

// CHECK-LABEL: func.func @copy(
// CHECK-SAME: %[[X:[^:]*]]: memref<4x8xf32>, %[[Y:[^:]*]]: memref<4x8xf32>)
// CHECK-NEXT: linalg.copy ins(%[[X]] : memref<4x8xf32>) outs(%[[Y]] : memref<4x8xf32>)
// CHECK-NEXT: return
func.func @copy(%x: memref<4x8xf32>, %y: memref<4x8xf32>) {
  memref.copy %x, %y : memref<4x8xf32> to memref<4x8xf32>
  return
}

// Column sums (reduction, parallel) become (parallel, reduction): the
// input map is interchanged to (d1, d0), the output's to (d0).
// CHECK-LABEL: func.func @column_sums(
// CHECK-NOT: scf.parallel
// CHECK: linalg.generic {indexing_maps = [#[[$TRANSPOSED]], #[[$FIRST]]], iterator_types = ["parallel", "reduction"]} ins(%{{.*}} : memref<16x8xf32>) outs(%{{.*}} : memref<8xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.*]]: f32, %[[OUT:.*]]: f32):
// CHECK-NEXT: arith.addf %[[OUT]], %[[IN]] : f32
func.func @column_sums(%x: memref<16x8xf32>, %out: memref<8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>],
                  iterator_types = ["reduction", "parallel"]}
      ins(%x : memref<16x8xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}

// (parallel, reduction, parallel) becomes (parallel, parallel, reduction).
// CHECK-LABEL: func.func @middle_reduction(
// CHECK: linalg.generic {indexing_maps = [#[[$IN3]], #[[$OUT3]]], iterator_types = ["parallel", "parallel", "reduction"]}
func.func @middle_reduction(%x: memref<4x16x8xf32>, %out: memref<4x8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, k, j) -> (i, k, j)>, affine_map<(i, k, j) -> (i, j)>],
                  iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x : memref<4x16x8xf32>) outs(%out : memref<4x8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}

// Work with a parallel dim, already in order, is left for the mapping.
// CHECK-LABEL: func.func @row_sums(
// CHECK-NOT: scf.parallel
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}], iterator_types = ["parallel", "reduction"]} ins(%{{.*}} : memref<8x16xf32>)
// CHECK-NOT: scf.parallel
// CHECK: return
func.func @row_sums(%x: memref<8x16xf32>, %out: memref<8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<8x16xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}

// A full reduction and a 0-d fill have no parallel dim: each is wrapped
// in its own one-iteration parallel loop, in place.
// CHECK-LABEL: func.func @sequential_linalg(
// CHECK-SAME: %{{[^:]*}}: memref<16x8xf32>, %[[OUT:[^:]*]]: memref<f32>)
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[C1:.*]] = arith.constant 1 : index
// CHECK: scf.parallel (%{{.*}}) = (%[[C0]]) to (%[[C1]]) step (%[[C1]]) {
// CHECK-NEXT: linalg.fill ins(%{{.*}} : f32) outs(%[[OUT]] : memref<f32>)
// CHECK-NEXT: scf.reduce
// CHECK-NEXT: }
// CHECK: %[[D0:.*]] = arith.constant 0 : index
// CHECK: %[[D1:.*]] = arith.constant 1 : index
// CHECK: scf.parallel (%{{.*}}) = (%[[D0]]) to (%[[D1]]) step (%[[D1]]) {
// CHECK-NEXT: linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]
// CHECK: scf.reduce
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func @sequential_linalg(%x: memref<16x8xf32>, %out: memref<f32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%out : memref<f32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> ()>],
                  iterator_types = ["reduction", "reduction"]}
      ins(%x : memref<16x8xf32>) outs(%out : memref<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}

// A 0-d memref.copy becomes a linalg.copy without a parallel dim, which
// is wrapped too.
// CHECK-LABEL: func.func @scalar_copy(
// CHECK: scf.parallel
// CHECK-NEXT: linalg.copy ins(%{{.*}} : memref<f32>) outs(%{{.*}} : memref<f32>)
// CHECK-NOT: memref.copy
func.func @scalar_copy(%x: memref<f32>, %y: memref<f32>) {
  memref.copy %x, %y : memref<f32> to memref<f32>
  return
}

// A top-level sequential loop over memory (a running sum in place) and a
// top-level scf.if that stores are wrapped whole; the memref.copy inside
// the loop becomes a linalg.copy with a parallel dim, which is not
// wrapped again.
// CHECK-LABEL: func.func @host_loops(
// CHECK: scf.parallel
// CHECK-NEXT: scf.for %[[I:.*]] = %c1 to %{{.*}} step %c1 {
// CHECK: memref.load
// CHECK: memref.store
// CHECK-NOT: scf.parallel
// CHECK: linalg.copy ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<8xf32>)
// CHECK-NEXT: }
// CHECK-NEXT: scf.reduce
// CHECK-NEXT: }
// CHECK: scf.parallel
// CHECK-NEXT: scf.if %{{.*}} {
// CHECK-NEXT: memref.store
// CHECK-NEXT: }
// CHECK-NEXT: scf.reduce
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func @host_loops(%x: memref<8xf32>, %y: memref<8xf32>, %n: index, %flag: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %one = arith.constant 1.0 : f32
  scf.for %i = %c1 to %n step %c1 {
    %p = arith.subi %i, %c1 : index
    %a = memref.load %x[%p] : memref<8xf32>
    %b = memref.load %x[%i] : memref<8xf32>
    %s = arith.addf %a, %b : f32
    memref.store %s, %x[%i] : memref<8xf32>
    memref.copy %x, %y : memref<8xf32> to memref<8xf32>
  }
  scf.if %flag {
    memref.store %one, %x[%c0] : memref<8xf32>
  }
  return
}

// A top-level scf.while that loads is wrapped.
// CHECK-LABEL: func.func @host_while(
// CHECK: scf.parallel
// CHECK-NEXT: scf.while
// CHECK: memref.load
// CHECK: scf.reduce
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func @host_while(%x: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  scf.while (%i = %c0) : (index) -> () {
    %v = memref.load %x[%i] : memref<8xf32>
    %go = arith.cmpf ogt, %v, %zero : f32
    scf.condition(%go)
  } do {
    memref.store %zero, %x[%c1] : memref<8xf32>
    scf.yield %c1 : index
  }
  return
}

// Left alone: a host loop that does not touch memory (with results: it
// computes a size), and sequential work already inside a parallel loop.
// CHECK-LABEL: func.func @left_alone(
// CHECK-NEXT: arith.constant
// CHECK-NEXT: arith.constant
// CHECK-NEXT: arith.constant
// CHECK-NEXT: %[[N:.*]] = scf.for
// CHECK-NEXT: arith.addi
// CHECK-NEXT: scf.yield
// CHECK-NEXT: }
// CHECK-NEXT: scf.parallel (%{{.*}}) = (%{{.*}}) to (%[[N]]) step
// CHECK-NOT: scf.parallel
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction"]
// CHECK-NOT: scf.parallel
// CHECK: return
func.func @left_alone(%x: memref<4x8xf32>, %out: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %n = scf.for %i = %c0 to %c4 step %c1 iter_args(%acc = %c0) -> index {
    %t = arith.addi %acc, %c1 : index
    scf.yield %t : index
  }
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %row = memref.subview %x[%i, 0] [1, 8] [1, 1] : memref<4x8xf32> to memref<8xf32, strided<[1], offset: ?>>
    %o = memref.subview %out[%i] [1] [1] : memref<4xf32> to memref<f32, strided<[], offset: ?>>
    linalg.generic {indexing_maps = [affine_map<(k) -> (k)>, affine_map<(k) -> ()>],
                    iterator_types = ["reduction"]}
        ins(%row : memref<8xf32, strided<[1], offset: ?>>) outs(%o : memref<f32, strided<[], offset: ?>>) {
    ^bb0(%v: f32, %acc: f32):
      %s = arith.addf %acc, %v : f32
      linalg.yield %s : f32
    }
    scf.reduce
  }
  return
}

// -----

// A host loop with results that reads memory cannot become a kernel.
func.func @loop_with_results(%x: memref<8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @+1 {{'scf.for' op a host loop with results that touches memory cannot be moved to the GPU}}
  %s = scf.for %i = %c0 to %c8 step %c1 iter_args(%acc = %zero) -> f32 {
    %v = memref.load %x[%i] : memref<8xf32>
    %t = arith.addf %acc, %v : f32
    scf.yield %t : f32
  }
  return %s : f32
}
