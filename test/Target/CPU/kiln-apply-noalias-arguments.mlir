// RUN: kiln-opt %s --split-input-file --kiln-apply-noalias-arguments | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-record-noalias-arguments --convert-func-to-llvm --kiln-apply-noalias-arguments | FileCheck %s --check-prefix=CHAIN

// After func-to-llvm, every llvm.func that carries `kiln.noalias_positions`
// (left by kiln-record-noalias-arguments, see its test) gets llvm.noalias
// on the arguments at those positions, and loses the attribute. The test
// holds the pass to: exactly the listed pointer arguments are marked;
// positions past the end or at a non-pointer are skipped; the attribute
// is removed; an llvm.func without it and a func.func are left alone; and,
// run around func-to-llvm, the marks land on the aligned data pointer of
// each noalias memref argument (CHAIN) and on nothing else.

// CHECK-LABEL: llvm.func @marked
// CHECK-SAME: (%arg0: !llvm.ptr, %arg1: !llvm.ptr {llvm.noalias}, %arg2: i64, %arg3: !llvm.ptr {llvm.noalias}) {
llvm.func @marked(%p: !llvm.ptr, %q: !llvm.ptr, %n: i64, %r: !llvm.ptr)
    attributes {kiln.noalias_positions = array<i32: 1, 3>} {
  llvm.return
}

// An i64 and a position past the end: nothing is marked, the attribute
// still goes.
// CHECK-LABEL: llvm.func @skipped
// CHECK-SAME: (%arg0: i64, %arg1: !llvm.ptr) {
llvm.func @skipped(%n: i64, %p: !llvm.ptr)
    attributes {kiln.noalias_positions = array<i32: 0, 2>} {
  llvm.return
}

// Left alone: an llvm.func without the attribute (its own noalias stays),
// and a func.func (not converted yet) keeps its attribute.
// CHECK-LABEL: llvm.func @untouched
// CHECK-SAME: (%arg0: !llvm.ptr {llvm.noalias}, %arg1: !llvm.ptr) {
// CHECK-LABEL: func.func @not_converted
// CHECK-SAME: (%arg0: memref<4xf32>) attributes {kiln.noalias_positions = array<i32: 1>}
llvm.func @untouched(%p: !llvm.ptr {llvm.noalias}, %q: !llvm.ptr) {
  llvm.return
}
func.func @not_converted(%m: memref<4xf32>) attributes {kiln.noalias_positions = array<i32: 1>} {
  return
}

// -----

// The pair around func-to-llvm. Unpacked: %lr 0 | %w 1-7, aligned 2 |
// %g 8-14, aligned 9 | %x 15-19 | %y 20-22, aligned 21. The allocated
// pointers (1, 8, 20) and %x's pointers stay unmarked.
// CHAIN-LABEL: llvm.func @update
// CHAIN-SAME: (%arg0: f32,
// CHAIN-SAME: %arg1: !llvm.ptr, %arg2: !llvm.ptr {llvm.noalias}, %arg3: i64, %arg4: i64, %arg5: i64, %arg6: i64, %arg7: i64,
// CHAIN-SAME: %arg8: !llvm.ptr, %arg9: !llvm.ptr {llvm.noalias}, %arg10: i64, %arg11: i64, %arg12: i64, %arg13: i64, %arg14: i64,
// CHAIN-SAME: %arg15: !llvm.ptr, %arg16: !llvm.ptr, %arg17: i64, %arg18: i64, %arg19: i64,
// CHAIN-SAME: %arg20: !llvm.ptr, %arg21: !llvm.ptr {llvm.noalias}, %arg22: i64) {
// A function without noalias arguments gets no marks.
// CHAIN-LABEL: llvm.func @plain
// CHAIN-SAME: (%arg0: !llvm.ptr, %arg1: !llvm.ptr, %arg2: i64, %arg3: i64, %arg4: i64, %arg5: !llvm.ptr, %arg6: !llvm.ptr, %arg7: i64, %arg8: i64, %arg9: i64) {
// Without func-to-llvm the pass finds no llvm.func: the input stays.
// CHECK-LABEL: func.func @update
// CHECK-SAME: (%arg0: f32, %arg1: memref<4x8xf32> {llvm.noalias}, %arg2: memref<?x?xf32> {llvm.noalias}, %arg3: memref<?xf32>, %arg4: memref<f32> {llvm.noalias}) {
// CHECK-LABEL: func.func @plain
// CHECK-SAME: (%arg0: memref<4xf32>, %arg1: memref<4xf32>) {
func.func @update(%lr: f32, %w: memref<4x8xf32> {llvm.noalias},
                  %g: memref<?x?xf32> {llvm.noalias}, %x: memref<?xf32>,
                  %y: memref<f32> {llvm.noalias}) {
  return
}
func.func @plain(%a: memref<4xf32>, %b: memref<4xf32>) {
  return
}

// -----

// func-to-llvm copies kiln.noalias_positions to the C-interface wrapper,
// whose arguments are one descriptor pointer per memref: the positions
// (counted in the unpacked signature) must not mark them. Unpacked, %a's
// aligned pointer is 1, so only %arg1 of @f is noalias; in the wrapper,
// func-to-llvm itself keeps %a's noalias on its descriptor (%arg0), and
// %b's descriptor (%arg1, position 1) stays unmarked.
// CHAIN-LABEL: llvm.func @f
// CHAIN-SAME: (%arg0: !llvm.ptr, %arg1: !llvm.ptr {llvm.noalias}, %arg2: i64
// CHAIN-LABEL: llvm.func @_mlir_ciface_f
// CHAIN-SAME: (%arg0: !llvm.ptr {llvm.noalias}, %arg1: !llvm.ptr)
// CHAIN-NOT: kiln.noalias_positions
// CHECK-LABEL: func.func @f
func.func @f(%a: memref<4xf32> {llvm.noalias}, %b: memref<4xf32>)
    attributes {llvm.emit_c_interface} {
  return
}
