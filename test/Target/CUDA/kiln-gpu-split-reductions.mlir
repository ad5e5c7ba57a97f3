// RUN: kiln-opt %s --kiln-gpu-split-reductions | FileCheck %s
// The split reductions compute the same values: lowered for the host with
// upstream passes and run with mlir-runner. Every partial sum is an integer
// below 2^24, so the result is exact whatever the order.
// RUN: kiln-opt %s --kiln-gpu-split-reductions --convert-linalg-to-loops \
// RUN:   --convert-scf-to-cf --lower-affine --expand-strided-metadata --lower-affine \
// RUN:   --finalize-memref-to-llvm --convert-vector-to-llvm --convert-arith-to-llvm \
// RUN:   --convert-index-to-llvm --convert-cf-to-llvm --convert-func-to-llvm \
// RUN:   --reconcile-unrealized-casts \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:   -shared-libs=%llvm_lib_dir/libmlir_c_runner_utils.so \
// RUN: | FileCheck %s --check-prefix=EXEC

// 64000 squares: 2048 partials of ~31 elements, folded into 1024 partials,
// folded by one (serial) generic.
// CHECK-LABEL: func.func @sum_of_squares
// CHECK: %[[P1:.*]] = memref.alloc() : memref<2048xf32>
// CHECK: scf.parallel (%[[P:.*]]) = (%{{.*}}) to (%c2048) step
// CHECK:   scf.for %[[E:.*]] = %[[P]] to %{{.*}} step %c2048 iter_args(%{{.*}} = %cst{{.*}}) -> (f32)
// CHECK:     affine.delinearize_index %[[E]] into (64, 1000)
// CHECK:   memref.store %{{.*}}, %[[P1]][%[[P]]] : memref<2048xf32>
// CHECK: %[[P2:.*]] = memref.alloc() : memref<1024xf32>
// CHECK: scf.parallel (%{{.*}}) = (%{{.*}}) to (%c1024) step
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction"]} ins(%[[P2]] : memref<1024xf32>) outs(%arg1 : memref<f32>)
// CHECK: memref.dealloc %[[P2]]
// CHECK: memref.dealloc %[[P1]]
func.func @sum_of_squares(%x: memref<64x1000xf32>, %out: memref<f32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> ()>],
                  iterator_types = ["reduction", "reduction"]}
      ins(%x : memref<64x1000xf32>) outs(%out : memref<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  }
  return
}

// A dynamic size: 65536 partials, then 4096, then 1024.
// CHECK-LABEL: func.func @dynamic_max
// CHECK: memref.alloc() : memref<65536xf32>
// CHECK: memref.alloc() : memref<4096xf32>
// CHECK: memref.alloc() : memref<1024xf32>
func.func @dynamic_max(%x: memref<?x3xf32>, %out: memref<f32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> ()>],
                  iterator_types = ["reduction", "reduction"]}
      ins(%x : memref<?x3xf32>) outs(%out : memref<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %m = arith.maximumf %v, %acc : f32
    linalg.yield %m : f32
  }
  return
}

// Short reductions stay whole.
// CHECK-LABEL: func.func @short
// CHECK-NOT: memref.alloc
// CHECK: linalg.generic
func.func @short(%x: memref<3x5xf32>, %out: memref<f32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> ()>],
                  iterator_types = ["reduction", "reduction"]}
      ins(%x : memref<3x5xf32>) outs(%out : memref<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}

// x[i, j] = (1000 i + j) mod 7: 9143 of each residue 0..5 and 9142 sixes,
// so the sum of squares is 9143 * 55 + 9142 * 36 = 831977. The max of
// 70000 x 3 values (3 i + j) mod 1000 with 12345 planted at [69999, 1] is
// 12345, and after adding 1 to the output's start value the short sum of
// 3 x 5 ones is 16.
// EXEC: 831977
// EXEC-NEXT: 12345
// EXEC-NEXT: 16
func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %x = memref.alloc() : memref<64x1000xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]}
      outs(%x : memref<64x1000xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %c1000 = arith.constant 1000 : index
    %c7 = arith.constant 7 : index
    %l = arith.muli %i, %c1000 : index
    %k = arith.addi %l, %j : index
    %r = arith.remui %k, %c7 : index
    %ri = arith.index_cast %r : index to i64
    %f = arith.uitofp %ri : i64 to f32
    linalg.yield %f : f32
  }
  %out = memref.alloc() : memref<f32>
  memref.store %zero, %out[] : memref<f32>
  call @sum_of_squares(%x, %out) : (memref<64x1000xf32>, memref<f32>) -> ()
  %a = memref.load %out[] : memref<f32>
  vector.print %a : f32

  %n = arith.constant 70000 : index
  %y = memref.alloc(%n) : memref<?x3xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]}
      outs(%y : memref<?x3xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %c3 = arith.constant 3 : index
    %c1000 = arith.constant 1000 : index
    %l = arith.muli %i, %c3 : index
    %k = arith.addi %l, %j : index
    %r = arith.remui %k, %c1000 : index
    %ri = arith.index_cast %r : index to i64
    %f = arith.uitofp %ri : i64 to f32
    linalg.yield %f : f32
  }
  %last = arith.constant 69999 : index
  %big = arith.constant 12345.0 : f32
  memref.store %big, %y[%last, %c1] : memref<?x3xf32>
  %ninf = arith.constant 0xFF800000 : f32
  memref.store %ninf, %out[] : memref<f32>
  call @dynamic_max(%y, %out) : (memref<?x3xf32>, memref<f32>) -> ()
  %b = memref.load %out[] : memref<f32>
  vector.print %b : f32

  %z = memref.alloc() : memref<3x5xf32>
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%one : f32) outs(%z : memref<3x5xf32>)
  memref.store %one, %out[] : memref<f32>
  call @short(%z, %out) : (memref<3x5xf32>, memref<f32>) -> ()
  %c = memref.load %out[] : memref<f32>
  vector.print %c : f32
  return
}
