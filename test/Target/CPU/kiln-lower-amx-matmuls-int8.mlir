// RUN: kiln-opt %s --kiln-lower-amx-matmuls="int8=true bf16=false" | FileCheck %s
// RUN: kiln-opt %s --kiln-lower-amx-matmuls | FileCheck %s --check-prefix=OFF

#lhs = affine_map<(d0, d1, d2) -> (d0, d1)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d2)>

// kiln.integer_matmul's contraction ([?, 70] x [40, 70]^T, i8 -> i32) on
// AMX-INT8: K = 70 pads to 128 (k in words of four codes: 32 words), the
// transposed rhs packs as a transpose of 32-bit words from 16 x 64-byte
// rows, sums are i32 tiles (tdpbssd: signed by signed, no shift), added to
// the output with integer adds. Static rows fewer than 16 stay (the VNNI
// kernel does not pad them); int8 is off by default.
// CHECK-LABEL: func.func @int8(
// CHECK: scf.parallel
// CHECK: memref.view {{.*}} to memref<32x128xi32>
// CHECK: vector.transfer_read {{.*}} : memref<40x70xi8>, vector<16x64xi8>
// CHECK: vector.bitcast %{{.*}} : vector<16x64xi8> to vector<16x16xi32>
// CHECK: memref.alloc() : memref<32x32xi32>
// CHECK: amx.tile_zero : !amx.tile<16x16xi32>
// CHECK: amx.tile_load {{.*}} into !amx.tile<16x64xi8>
// CHECK: amx.tile_muli
// CHECK: arith.addi %{{.*}} : vector<16xi32>
// CHECK-NOT: linalg.generic
// CHECK-LABEL: func.func @one_row(
// CHECK-NOT: amx.
// CHECK: linalg.generic
// OFF-LABEL: func.func @int8(
// OFF-NOT: amx.
func.func @int8(%x: memref<?x70xi8>, %w: memref<40x70xi8>, %y: memref<?x40xi32>) {
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

func.func @one_row(%x: memref<1x64xi8>, %w: memref<40x64xi8>, %y: memref<1x40xi32>) {
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<1x64xi8>, memref<40x64xi8>) outs(%y : memref<1x40xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %0 = arith.extsi %a : i8 to i32
    %1 = arith.extsi %b : i8 to i32
    %2 = arith.muli %0, %1 : i32
    %3 = arith.addi %acc, %2 : i32
    linalg.yield %3 : i32
  }
  return
}
