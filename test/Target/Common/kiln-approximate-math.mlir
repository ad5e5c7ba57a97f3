// RUN: kiln-opt %s --kiln-approximate-math | FileCheck %s

// exp, tanh and erf become plain arithmetic (vectorizable); other math
// functions are left to the libm / LLVM lowering.
// CHECK-LABEL: func @approximated
// CHECK-NOT: math.exp
// CHECK-NOT: math.tanh
// CHECK-NOT: math.erf
// CHECK: math.log
// CHECK: return
func.func @approximated(%x: f32) -> (f32, f32, f32, f32) {
  %0 = math.exp %x : f32
  %1 = math.tanh %x : f32
  %2 = math.erf %x : f32
  %3 = math.log %x : f32
  return %0, %1, %2, %3 : f32, f32, f32, f32
}
