// RUN: kiln-opt %s --kiln-record-noalias-arguments | FileCheck %s

// func-to-llvm unpacks a ranked memref argument into 3 + 2 * rank arguments
// (allocated pointer, aligned pointer, offset, sizes, strides), an unranked
// one into 2 (rank, descriptor pointer), anything else into 1, and drops
// llvm.noalias. Before it runs, this pass records in
// `kiln.noalias_positions` the position, in that unpacked signature, of the
// aligned pointer of every noalias ranked memref argument
// (kiln-apply-noalias-arguments marks them after func-to-llvm). The test
// holds the pass to: the positions count every kind of argument as
// func-to-llvm does, ranks 0 to 3, static and dynamic, strided layouts
// included; only noalias ranked memrefs are recorded; results do not shift
// positions; private definitions are recorded too; functions without a
// noalias memref argument, and declarations, get no attribute.

// Unpacked: %s 0 | %a 1-5, aligned 2 | %u 6-7 | %b 8-14 | %c 15-17,
// aligned 16 | %d 18-26, aligned 19 | %i 27.
// CHECK-LABEL: func.func @mixed
// CHECK-SAME: attributes {kiln.noalias_positions = array<i32: 2, 16, 19>}
func.func @mixed(%s: f32, %a: memref<4xf32> {llvm.noalias},
                 %u: memref<*xf32> {llvm.noalias}, %b: memref<4x8xf32>,
                 %c: memref<f32> {llvm.noalias},
                 %d: memref<?x8x?xf32, strided<[?, ?, 1], offset: ?>> {llvm.noalias},
                 %i: index) {
  return
}

// Memref results are returned in a struct: the arguments keep their
// positions. Private definitions are recorded (func-to-llvm unpacks them
// alike).
// CHECK-LABEL: func.func private @results
// CHECK-SAME: attributes {kiln.noalias_positions = array<i32: 1, 6>}
func.func private @results(%a: memref<4xf32> {llvm.noalias},
                           %b: memref<?xf32> {llvm.noalias}) -> (memref<4xf32>, f32) {
  %c0 = arith.constant 0 : index
  %x = memref.load %b[%c0] : memref<?xf32>
  return %a, %x : memref<4xf32>, f32
}

// Nothing to record: no noalias memref argument (a noalias scalar does
// not count), or no body.
// CHECK-LABEL: func.func @no_noalias
// CHECK-NOT: kiln.noalias_positions
// CHECK-LABEL: func.func private @declaration
// CHECK-NOT: kiln.noalias_positions
// CHECK-LABEL: func.func @scalars_only
// CHECK-NOT: kiln.noalias_positions
func.func @no_noalias(%a: memref<4xf32>, %b: memref<4x4xf32>) {
  return
}
func.func private @declaration(memref<4xf32> {llvm.noalias})
func.func @scalars_only(%p: !llvm.ptr {llvm.noalias}, %x: f32) {
  return
}
