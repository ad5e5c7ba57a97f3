// RUN: kiln-opt %s --kiln-lower-bf16 | FileCheck %s
// RUN: kiln-opt %s --kiln-lower-bf16 --canonicalize --convert-arith-to-llvm | FileCheck %s --check-prefix=LLVM

// f32 -> bf16 rounding becomes integer arithmetic (round to nearest even,
// NaN kept quiet), scalar and vector alike, so LLVM never calls
// __truncsfbf2, which Debian 12's libgcc lacks (a bf16 module did not link
// on CPUs without AVX512-BF16). Other conversions are left alone.
// CHECK-LABEL: func @to_bf16
// CHECK-NOT: arith.truncf {{.*}} to bf16
// CHECK: arith.bitcast {{.*}} : f32 to i32
// CHECK: arith.shrui
// CHECK: arith.bitcast {{.*}} : i16 to bf16
// CHECK: arith.bitcast {{.*}} : vector<8xf32> to vector<8xi32>
// CHECK: arith.truncf {{.*}} : f32 to f16
// LLVM-LABEL: func @to_bf16
// LLVM-NOT: llvm.fptrunc {{.*}} to bf16
// LLVM-NOT: llvm.fptrunc {{.*}} to vector<8xbf16>
// LLVM: llvm.fptrunc {{.*}} : f32 to f16
func.func @to_bf16(%x: f32, %v: vector<8xf32>) -> (bf16, vector<8xbf16>, f16) {
  %0 = arith.truncf %x : f32 to bf16
  %1 = arith.truncf %v : vector<8xf32> to vector<8xbf16>
  %2 = arith.truncf %x : f32 to f16
  return %0, %1, %2 : bf16, vector<8xbf16>, f16
}

// CHECK-LABEL: func @from_bf16
// CHECK-NOT: arith.extf
// CHECK: arith.shli
func.func @from_bf16(%x: bf16) -> f32 {
  %0 = arith.extf %x : bf16 to f32
  return %0 : f32
}

// bf16 arithmetic runs in f32 and every result is rounded to bf16, also
// between two ops: the rounding of %s survives canonicalization (upstream's
// emulation marks its conversions `contract`, which let a fold drop it, so
// (a + b) + c was rounded once instead of twice).
// CHECK-LABEL: func @chain
// CHECK-NOT: addf {{.*}} : bf16
// CHECK: arith.addf {{.*}} : f32
// CHECK: arith.shrui
// CHECK: arith.addf {{.*}} : f32
// CHECK: arith.shrui
// LLVM-LABEL: func @chain
// LLVM: llvm.fadd {{.*}} : f32
// LLVM: llvm.lshr
// LLVM: llvm.fadd {{.*}} : f32
// LLVM-NOT: llvm.fadd {{.*}} : bf16
func.func @chain(%a: bf16, %b: bf16, %c: bf16) -> bf16 {
  %s = arith.addf %a, %b : bf16
  %t = arith.addf %s, %c : bf16
  return %t : bf16
}
