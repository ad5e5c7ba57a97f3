// RUN: kiln-opt %s --split-input-file --kiln-fuse-row-loops | FileCheck %s

// A row sum, then the rows divided by it: the second loop reads only its
// own row of what the first wrote (a fresh buffer; the [128, 1] view keeps
// the row dim), and the allocation between them moves up. One loop.
// CHECK-LABEL: func.func @row_local(
// CHECK: %[[SUM:.+]] = memref.alloc() : memref<128xf32>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<128x64xf32>
// CHECK: %[[VIEW:.+]] = memref.expand_shape %[[SUM]]
// CHECK: scf.parallel (%[[I:.+]]) =
// CHECK: memref.store %{{.*}}, %[[SUM]][%[[I]]]
// CHECK: memref.load %[[VIEW]][%[[I]], %{{.*}}]
// CHECK: memref.store %{{.*}}, %[[OUT]][%[[I]], %{{.*}}]
// CHECK-NOT: scf.parallel
// CHECK: return %[[OUT]]
func.func @row_local(%x: memref<128x64xf32>) -> memref<128x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %zero = arith.constant 0.0 : f32
  %sum = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %s = scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> f32 {
      %v = memref.load %x[%i, %j] : memref<128x64xf32>
      %a = arith.addf %acc, %v : f32
      scf.yield %a : f32
    }
    memref.store %s, %sum[%i] : memref<128xf32>
    scf.reduce
  }
  %out = memref.alloc() : memref<128x64xf32>
  %view = memref.expand_shape %sum [[0, 1]] output_shape [128, 1] : memref<128xf32> into memref<128x1xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    scf.for %j = %c0 to %c64 step %c1 {
      %v = memref.load %x[%i, %j] : memref<128x64xf32>
      %s = memref.load %view[%i, %c0] : memref<128x1xf32>
      %d = arith.divf %v, %s : f32
      memref.store %d, %out[%i, %j] : memref<128x64xf32>
    }
    scf.reduce
  }
  return %out : memref<128x64xf32>
}

// -----

// The second loop reads row 0 of what the first wrote (every iteration
// needs the first loop's iteration 0 done): two loops.
// CHECK-LABEL: func.func @other_row(
// CHECK-COUNT-2: scf.parallel
func.func @other_row(%x: memref<128xf32>) -> memref<128xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  %t = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %v = memref.load %x[%i] : memref<128xf32>
    memref.store %v, %t[%i] : memref<128xf32>
    scf.reduce
  }
  %out = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %v = memref.load %t[%c0] : memref<128xf32>
    memref.store %v, %out[%i] : memref<128xf32>
    scf.reduce
  }
  return %out : memref<128xf32>
}

// -----

// A written function argument may alias what the other loop reads; other
// bounds; a copy between the loops; a view that moves rows (a subview
// from row 1): each keeps its loops apart.
// CHECK-LABEL: func.func @not_fused(
// CHECK-COUNT-3: scf.parallel
// CHECK: memref.copy
// CHECK-COUNT-3: scf.parallel
func.func @not_fused(%x: memref<128xf32>, %y: memref<128xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c127 = arith.constant 127 : index
  %c128 = arith.constant 128 : index
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %v = memref.load %x[%i] : memref<128xf32>
    memref.store %v, %y[%i] : memref<128xf32>
    scf.reduce
  }
  %t = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %v = memref.load %x[%i] : memref<128xf32>
    memref.store %v, %t[%i] : memref<128xf32>
    scf.reduce
  }
  %t2 = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %t[%i] : memref<128xf32>
    memref.store %v, %t2[%i] : memref<128xf32>
    scf.reduce
  }
  %u = memref.alloc() : memref<128xf32>
  memref.copy %t2, %u : memref<128xf32> to memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %u[%i] : memref<128xf32>
    memref.store %v, %t2[%i] : memref<128xf32>
    scf.reduce
  }
  %w = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c127) step (%c1) {
    %v = memref.load %x[%i] : memref<128xf32>
    memref.store %v, %w[%i] : memref<128xf32>
    scf.reduce
  }
  %shifted = memref.subview %w[1] [127] [1] : memref<128xf32> to memref<127xf32, strided<[1], offset: 1>>
  scf.parallel (%i) = (%c0) to (%c127) step (%c1) {
    %v = memref.load %shifted[%i] : memref<127xf32, strided<[1], offset: 1>>
    memref.store %v, %u[%i] : memref<128xf32>
    scf.reduce
  }
  return
}

// -----

// What the second loop reads of the first's buffer is not its own row:
// through a linalg op on buffers (not followed), a vector that spans rows
// (a load of 4 rows, a transfer along the row dim), an alias the pass
// cannot see through (a select of two buffers). Each pair stays apart;
// only the loop that fills %e, which shares nothing with the one before
// it, joins that one: seven loops of eight.
// CHECK-LABEL: func.func @hidden_rows(
// CHECK-COUNT-7: scf.parallel
// CHECK-NOT: scf.parallel
#column = affine_map<(d0, d1) -> (d0)>
func.func @hidden_rows(%x: memref<68xf32>, %m: memref<64x64xf32>, %o: memref<64xf32>, %c: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c63 = arith.constant 63 : index
  %c64 = arith.constant 64 : index
  %pad = arith.constant 0.0 : f32
  %a = memref.alloc() : memref<68xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %x[%i] : memref<68xf32>
    memref.store %v, %a[%i] : memref<68xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %s = memref.subview %a[63] [1] [1] : memref<68xf32> to memref<1xf32, strided<[1], offset: 63>>
    %d = memref.subview %o[%i] [1] [1] : memref<64xf32> to memref<1xf32, strided<[1], offset: ?>>
    linalg.copy ins(%s : memref<1xf32, strided<[1], offset: 63>>) outs(%d : memref<1xf32, strided<[1], offset: ?>>)
    scf.reduce
  }
  %b = memref.alloc() : memref<68xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %x[%i] : memref<68xf32>
    memref.store %v, %b[%i] : memref<68xf32>
    scf.reduce
  }
  %t = memref.alloc() : memref<64x4xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = vector.load %b[%i] : memref<68xf32>, vector<4xf32>
    vector.store %v, %t[%i, %c0] : memref<64x4xf32>, vector<4xf32>
    scf.reduce
  }
  %e = memref.alloc() : memref<64x64xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = vector.transfer_read %m[%i, %c0], %pad : memref<64x64xf32>, vector<64xf32>
    vector.transfer_write %v, %e[%i, %c0] : vector<64xf32>, memref<64x64xf32>
    scf.reduce
  }
  %col = memref.alloc() : memref<64x64xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = vector.transfer_read %e[%i, %i], %pad {permutation_map = #column} : memref<64x64xf32>, vector<64xf32>
    vector.transfer_write %v, %col[%i, %c0] : vector<64xf32>, memref<64x64xf32>
    scf.reduce
  }
  %f = memref.alloc() : memref<64xf32>
  %g = memref.alloc() : memref<64xf32>
  %either = arith.select %c, %f, %g : memref<64xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %x[%i] : memref<68xf32>
    memref.store %v, %f[%i] : memref<64xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %either[%c63] : memref<64xf32>
    memref.store %v, %o[%i] : memref<64xf32>
    scf.reduce
  }
  return
}
