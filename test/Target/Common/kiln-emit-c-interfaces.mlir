// RUN: kiln-opt %s --kiln-emit-c-interfaces | FileCheck %s
// RUN: kiln-opt %s --kiln-emit-c-interfaces --convert-func-to-llvm | FileCheck %s --check-prefix=LLVM

// Every public func.func with a body gets llvm.emit_c_interface, so that
// func-to-llvm emits the `_mlir_ciface_<name>` wrapper the runtime calls
// with memref descriptors. The test holds the pass to: public definitions
// are marked (whatever their signature); private definitions, nested-
// visibility definitions and declarations are not; attributes already
// there are kept; other function ops are not touched. The LLVM run checks
// that exactly the marked functions get a wrapper.

// CHECK-LABEL: func.func @entry(%arg0: memref<4xf32>, %arg1: f32) -> memref<4xf32> attributes {llvm.emit_c_interface} {
// CHECK-LABEL: func.func @no_arguments() attributes {kiln.keep, llvm.emit_c_interface} {
// CHECK-LABEL: func.func private @helper(%arg0: f32) -> f32 {
// CHECK-LABEL: func.func nested @nested_helper(%arg0: f32) -> f32 {
// CHECK-LABEL: func.func private @external(memref<4xf32>){{$}}
// CHECK-LABEL: llvm.func @already_llvm(%arg0: !llvm.ptr) {
func.func @entry(%m: memref<4xf32>, %x: f32) -> memref<4xf32> {
  return %m : memref<4xf32>
}
func.func @no_arguments() attributes {kiln.keep} {
  return
}
func.func private @helper(%x: f32) -> f32 {
  return %x : f32
}
func.func nested @nested_helper(%x: f32) -> f32 {
  return %x : f32
}
func.func private @external(memref<4xf32>)
llvm.func @already_llvm(%p: !llvm.ptr) {
  llvm.return
}

// Wrappers for the two public definitions, and for nothing else.
// LLVM-NOT: _mlir_ciface_
// LLVM: llvm.func @entry(
// LLVM: llvm.func @_mlir_ciface_entry(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: f32)
// LLVM: llvm.func @no_arguments()
// LLVM: llvm.func @_mlir_ciface_no_arguments()
// LLVM-NOT: _mlir_ciface_
