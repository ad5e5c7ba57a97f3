// RUN: kiln-opt %s --kiln-gpu-block-reductions | FileCheck %s
// The rewritten reductions compute the same values: lowered for the host
// with upstream passes (scf.parallel reductions become sequential loops)
// and run with mlir-runner. Sums of small integers are exact in any order.
// RUN: kiln-opt %s --kiln-gpu-block-reductions --convert-linalg-to-loops \
// RUN:   --convert-scf-to-cf --lower-affine --expand-strided-metadata --lower-affine \
// RUN:   --finalize-memref-to-llvm --convert-vector-to-llvm --convert-arith-to-llvm \
// RUN:   --convert-index-to-llvm --convert-cf-to-llvm --convert-func-to-llvm \
// RUN:   --reconcile-unrealized-casts \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:   -shared-libs=%llvm_lib_dir/libmlir_c_runner_utils.so \
// RUN: | FileCheck %s --check-prefix=EXEC

// Rows of 1000: one block per (i, j), 256 lanes folding strided slices,
// combined by scf.reduce (gpu.all_reduce on the GPU), then added to the
// output's value.
// CHECK-LABEL: func.func @row_sums
// CHECK: scf.parallel (%[[I:.*]], %[[J:.*]]) = {{.*}} {
// CHECK:   %[[INIT:.*]] = memref.load %arg1[%{{.*}}, %{{.*}}] : memref<?x3xf32>
// CHECK:   %[[SUM:.*]] = scf.parallel (%[[LANE:.*]]) = (%{{.*}}) to (%c256) step (%{{.*}}) init (%{{.*}}) -> f32 {
// CHECK:     scf.for %{{.*}} = %[[LANE]] to %{{.*}} step %c256 iter_args
// CHECK:     scf.reduce(%{{.*}} : f32) {
// CHECK:       arith.addf
// CHECK:   } {kiln.keep_parallel}
// CHECK:   %[[NEW:.*]] = arith.addf %[[INIT]], %[[SUM]] : f32
// CHECK:   memref.store %[[NEW]], %arg1
// CHECK: } {kiln.gpu_block_per_iteration}
func.func @row_sums(%x: memref<?x3x1000xf32>, %out: memref<?x3xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, j, k)>, affine_map<(i, j, k) -> (i, j)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : memref<?x3x1000xf32>) outs(%out : memref<?x3xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}

// The combiner's operand order is kept (maximumf(in, out) here).
// CHECK-LABEL: func.func @row_max
// CHECK: scf.reduce
// CHECK: arith.maximumf
// CHECK: kiln.gpu_block_per_iteration
func.func @row_max(%x: memref<4x300xf32>, %out: memref<4xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<4x300xf32>) outs(%out : memref<4xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %m = arith.maximumf %v, %acc : f32
    linalg.yield %m : f32
  }
  return
}

// Short rows, and reductions along a non-contiguous dim (column sums: a
// thread per column reads coalesced), stay as they are.
// CHECK-LABEL: func.func @short_rows
// CHECK-NOT: kiln.gpu_block_per_iteration
// CHECK: linalg.generic
func.func @short_rows(%x: memref<8x17xf32>, %out: memref<8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<8x17xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}
// CHECK-LABEL: func.func @column_sums
// CHECK-NOT: kiln.gpu_block_per_iteration
// CHECK: linalg.generic
func.func @column_sums(%x: memref<512x768xf32>, %out: memref<768xf32>) {
  linalg.generic {indexing_maps = [affine_map<(j, i) -> (i, j)>, affine_map<(j, i) -> (j)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<512x768xf32>) outs(%out : memref<768xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}

// x[i, j, k] = (i + 2 j + k) mod 5 over 2 x 3 x 1000: each row holds 200
// of each residue, a sum of 2000, plus the output's start value 7 = 2007.
// The max of row 2 of y (values k mod 97, with 500 planted) is 500 and
// of the others 96.
// EXEC: 2007
// EXEC-NEXT: 2007
// EXEC-NEXT: 96
// EXEC-NEXT: 500
func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %x = memref.alloc(%c2) : memref<?x3x1000xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, j, k)>], iterator_types = ["parallel", "parallel", "parallel"]}
      outs(%x : memref<?x3x1000xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %k = linalg.index 2 : index
    %c5 = arith.constant 5 : index
    %j2 = arith.addi %j, %j : index
    %a = arith.addi %i, %j2 : index
    %b = arith.addi %a, %k : index
    %r = arith.remui %b, %c5 : index
    %ri = arith.index_cast %r : index to i64
    %f = arith.uitofp %ri : i64 to f32
    linalg.yield %f : f32
  }
  %out = memref.alloc(%c2) : memref<?x3xf32>
  %seven = arith.constant 7.0 : f32
  linalg.fill ins(%seven : f32) outs(%out : memref<?x3xf32>)
  call @row_sums(%x, %out) : (memref<?x3x1000xf32>, memref<?x3xf32>) -> ()
  %s0 = memref.load %out[%c0, %c0] : memref<?x3xf32>
  vector.print %s0 : f32
  %s1 = memref.load %out[%c1, %c2] : memref<?x3xf32>
  vector.print %s1 : f32

  %y = memref.alloc() : memref<4x300xf32>
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>], iterator_types = ["parallel", "parallel"]}
      outs(%y : memref<4x300xf32>) {
  ^bb0(%o: f32):
    %k = linalg.index 1 : index
    %c97 = arith.constant 97 : index
    %r = arith.remui %k, %c97 : index
    %ri = arith.index_cast %r : index to i64
    %f = arith.uitofp %ri : i64 to f32
    linalg.yield %f : f32
  }
  %c299 = arith.constant 299 : index
  %big = arith.constant 500.0 : f32
  memref.store %big, %y[%c2, %c299] : memref<4x300xf32>
  %m = memref.alloc() : memref<4xf32>
  %ninf = arith.constant 0xFF800000 : f32
  linalg.fill ins(%ninf : f32) outs(%m : memref<4xf32>)
  call @row_max(%y, %m) : (memref<4x300xf32>, memref<4xf32>) -> ()
  %m0 = memref.load %m[%c0] : memref<4xf32>
  vector.print %m0 : f32
  %m2 = memref.load %m[%c2] : memref<4xf32>
  vector.print %m2 : f32
  return
}
