// RUN: kiln-opt %s --split-input-file --kiln-convert-amx-to-llvm | FileCheck %s

// A sum tile carried around a loop (what kiln-lower-amx-matmuls leaves
// after scf-to-cf): the AMX ops become the x86 tile intrinsics and the
// branches carry !llvm.x86_amx.
// CHECK-LABEL: func.func @carried(
// CHECK: llvm.call_intrinsic "llvm.x86.tilezero.internal"
// CHECK: llvm.br ^bb1({{.*}} : i64, !llvm.x86_amx)
// CHECK: ^bb1(%{{.*}}: i64, %[[ACC:.+]]: !llvm.x86_amx):
// CHECK: llvm.cond_br
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"
// CHECK: llvm.call_intrinsic "llvm.x86.tdpbf16ps.internal"
// CHECK: llvm.call_intrinsic "llvm.x86.tilestored64.internal"
// CHECK-NOT: amx.
// CHECK-NOT: cf.
func.func @carried(%a: memref<16x32xbf16>, %out: memref<16x16xf32>, %n: i64) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0 : i64
  %one = arith.constant 1 : i64
  %z = amx.tile_zero : !amx.tile<16x16xf32>
  cf.br ^loop(%zero, %z : i64, !amx.tile<16x16xf32>)
^loop(%i: i64, %acc: !amx.tile<16x16xf32>):
  %more = arith.cmpi slt, %i, %n : i64
  cf.cond_br %more, ^body, ^done
^body:
  %t = amx.tile_load %a[%c0, %c0] : memref<16x32xbf16> into !amx.tile<16x32xbf16>
  %next = amx.tile_mulf %t, %t, %acc : !amx.tile<16x32xbf16>, !amx.tile<16x32xbf16>, !amx.tile<16x16xf32>
  %j = arith.addi %i, %one : i64
  cf.br ^loop(%j, %next : i64, !amx.tile<16x16xf32>)
^done:
  amx.tile_store %out[%c0, %c0], %acc : memref<16x16xf32>, !amx.tile<16x16xf32>
  return
}

// -----

// Without AMX ops the module is left alone (cf-to-llvm converts it later).
// CHECK-LABEL: func.func @plain(
// CHECK: cf.br
func.func @plain(%x: i64) -> i64 {
  cf.br ^next(%x : i64)
^next(%y: i64):
  return %y : i64
}
