// RUN: kiln-opt %s --split-input-file --kiln-lower-integer-matmuls | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-lower-integer-matmuls="int8-dot=generic tile-m=4 tile-n=16" | FileCheck %s --check-prefix=GENERIC
// RUN: kiln-opt %s --split-input-file --kiln-lower-integer-matmuls="int8-dot=avx2 tile-m=6 tile-n=16" | FileCheck %s --check-prefix=AVX2
// RUN: not kiln-opt %s --split-input-file --kiln-lower-integer-matmuls="tile-n=24" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not kiln-opt %s --split-input-file --kiln-lower-integer-matmuls="int8-dot=amx" 2>&1 | FileCheck %s --check-prefix=BADDOT

// BAD: tile-n a positive multiple of 16 (got 8, 24)
// BADDOT: int8-dot must be vnni, avx2 or generic (got 'amx')

#lhs = affine_map<(d0, d1, d2) -> (d0, d1)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d2)>

// A [?, 70] x [40, 70]^T matmul: K = 70 is not a multiple of 4 (18 words,
// the last read padded), N = 40 is one whole panel of 32 and a ragged one.
// The lhs is copied once as words of unsigned bytes (x xor 0x80); panels
// run in parallel, each packing its [18, 32] words and their column sums;
// tiles of 8 rows keep 16 accumulators across k, then single rows; the
// epilogue takes 128 x the column sums off and adds to the output, masked
// (not in bounds) at the ragged panel.
// CHECK-LABEL: func.func @vnni(
// CHECK-SAME: %[[X:.+]]: memref<?x70xi8>, %[[W:.+]]: memref<40x70xi8>, %[[Y:.+]]: memref<?x40xi32>
// CHECK: %[[WORDS:.+]] = memref.alloc(%{{.*}}) : memref<?x18xi32>
// CHECK: scf.for
// CHECK: scf.for
// CHECK: vector.transfer_read %[[X]]{{.*}} : memref<?x70xi8>, vector<4xi8>
// CHECK: arith.xori
// CHECK: vector.bitcast %{{.*}} : vector<4xi8> to vector<1xi32>
// CHECK: scf.parallel
// CHECK: %[[PACKED:.+]] = memref.alloc() : memref<18x32xi32>
// CHECK: scf.if
// CHECK: vector.transfer_read %[[W]]
// CHECK: memref.store %{{.*}}, %[[PACKED]]
// CHECK: } else {
// CHECK: func.call @llvm.x86.avx512.vpdpbusd.512
// CHECK: arith.shli
// CHECK: scf.for
// CHECK: %[[TILE:.+]]:16 = scf.for {{.*}} iter_args
// CHECK-COUNT-2: vector.load %[[PACKED]]
// CHECK: memref.load %[[WORDS]]
// CHECK: vector.broadcast %{{.*}} : i32 to vector<16xi32>
// CHECK-COUNT-2: func.call @llvm.x86.avx512.vpdpbusd.512
// CHECK: arith.subi %[[TILE]]#0
// CHECK: vector.transfer_read %[[Y]]{{.*}} : memref<?x40xi32>, vector<16xi32>
// CHECK: vector.transfer_write %{{.*}}, %[[Y]]{{.*}} : vector<16xi32>, memref<?x40xi32>
// CHECK-NOT: in_bounds = [true]
// CHECK: scf.for
// CHECK: scf.for {{.*}} iter_args
// CHECK-COUNT-2: func.call @llvm.x86.avx512.vpdpbusd.512
// CHECK-NOT: linalg.generic
// CHECK: return
// CHECK: func.func private @llvm.x86.avx512.vpdpbusd.512(vector<16xi32>, vector<64xi8>, vector<64xi8>) -> vector<16xi32>

// GENERIC-LABEL: func.func @vnni(
// GENERIC-NOT: arith.xori
// GENERIC: memref.alloc() : memref<18x16xi32>
// GENERIC-NOT: arith.shli
// GENERIC: %{{.+}}:4 = scf.for {{.*}} iter_args
// GENERIC: vector.shuffle
// GENERIC: arith.extsi %{{.*}} : vector<16xi8> to vector<16xi32>
// GENERIC: arith.muli
// GENERIC-NOT: func.call
// GENERIC: return
// avx2: words of two codes sign-extended to 16 bits (K = 70: 35 words),
// vpmaddwd (8 lanes) against the packed [35, 16] panel, no shift.
// AVX2-LABEL: func.func @vnni(
// AVX2-NOT: arith.xori
// AVX2: arith.extsi %{{.*}} : vector<32xi8> to vector<32xi16>
// AVX2: memref.alloc() : memref<35x16xi32>
// AVX2-NOT: arith.shli
// AVX2: %{{.+}}:12 = scf.for {{.*}} iter_args
// AVX2: %[[P:.+]] = func.call @llvm.x86.avx2.pmadd.wd(%{{.*}}, %{{.*}}) : (vector<16xi16>, vector<16xi16>) -> vector<8xi32>
// AVX2: arith.addi %{{.*}}, %[[P]] : vector<8xi32>
// AVX2: func.func private @llvm.x86.avx2.pmadd.wd(vector<16xi16>, vector<16xi16>) -> vector<8xi32>
func.func @vnni(%x: memref<?x70xi8>, %w: memref<40x70xi8>, %y: memref<?x40xi32>) {
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<?x70xi8>, memref<40x70xi8>) outs(%y : memref<?x40xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %0 = arith.extsi %a : i8 to i32
    %1 = arith.extsi %b : i8 to i32
    %2 = arith.muli %0, %1 : i32
    %3 = arith.addi %acc, %2 : i32
    linalg.yield %3 : i32
  }
  return
}

// -----

#lhs = affine_map<(d0, d1, d2) -> (d0, d1)>
#rhsRowMajor = affine_map<(d0, d1, d2) -> (d1, d2)>
#out = affine_map<(d0, d1, d2) -> (d0, d2)>

// A row-major rhs ([K, N]) is left to the plain loops.
// CHECK-LABEL: func.func @row_major_rhs(
// CHECK: linalg.generic
// CHECK-NOT: func.call
func.func @row_major_rhs(%x: memref<4x8xi8>, %w: memref<8x16xi8>, %y: memref<4x16xi32>) {
  linalg.generic {indexing_maps = [#lhs, #rhsRowMajor, #out], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x8xi8>, memref<8x16xi8>) outs(%y : memref<4x16xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %0 = arith.extsi %a : i8 to i32
    %1 = arith.extsi %b : i8 to i32
    %2 = arith.muli %0, %1 : i32
    %3 = arith.addi %acc, %2 : i32
    linalg.yield %3 : i32
  }
  return
}

// -----

#lhs = affine_map<(d0, d1, d2) -> (d0, d1)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d2)>

// Unsigned extension is another computation: left alone.
// CHECK-LABEL: func.func @unsigned(
// CHECK: linalg.generic
func.func @unsigned(%x: memref<4x8xi8>, %w: memref<16x8xi8>, %y: memref<4x16xi32>) {
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x8xi8>, memref<16x8xi8>) outs(%y : memref<4x16xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %0 = arith.extui %a : i8 to i32
    %1 = arith.extsi %b : i8 to i32
    %2 = arith.muli %0, %1 : i32
    %3 = arith.addi %acc, %2 : i32
    linalg.yield %3 : i32
  }
  return
}

// -----

#lhs3 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
#rhs3 = affine_map<(d0, d1, d2, d3) -> (d3, d2)>
#out3 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>

// A [B, S, K] lhs: the kernel collapses lhs and output into [B·S, K] and
// [B·S, N] rows (a whole panel of 32 columns: reads and writes in bounds).
// CHECK-LABEL: func.func @batched(
// CHECK: %[[X:.+]] = memref.collapse_shape %{{.*}} {{\[\[}}0, 1], [2]] : memref<?x?x64xi8> into memref<?x64xi8>
// CHECK: %[[Y:.+]] = memref.collapse_shape %{{.*}} {{\[\[}}0, 1], [2]] : memref<?x?x32xi32> into memref<?x32xi32>
// CHECK: memref.dim %[[X]], %{{.*}} : memref<?x64xi8>
// CHECK: vector.transfer_write %{{.*}}, %[[Y]]{{.*}} {in_bounds = [true]} : vector<16xi32>, memref<?x32xi32>
func.func @batched(%x: memref<?x?x64xi8>, %w: memref<32x64xi8>, %y: memref<?x?x32xi32>) {
  linalg.generic {indexing_maps = [#lhs3, #rhs3, #out3], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<?x?x64xi8>, memref<32x64xi8>) outs(%y : memref<?x?x32xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %0 = arith.extsi %a : i8 to i32
    %1 = arith.extsi %b : i8 to i32
    %2 = arith.muli %0, %1 : i32
    %3 = arith.addi %acc, %2 : i32
    linalg.yield %3 : i32
  }
  return
}

