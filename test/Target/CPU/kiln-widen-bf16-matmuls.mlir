// RUN: kiln-opt %s --split-input-file --convert-kiln-to-linalg --kiln-widen-bf16-matmuls | FileCheck %s
// RUN: kiln-opt %s --split-input-file --convert-kiln-to-linalg --kiln-widen-bf16-matmuls="min-rows=8" | FileCheck %s --check-prefix=FEW

// A bf16 matmul becomes an f32 contraction of operands widened by
// elementwise extf generics; the bf16 result is still rounded once, after.
// CHECK-LABEL: func @row_major
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<12x64xbf16>, %[[W:[a-z0-9]+]]: tensor<64x40xbf16>
// CHECK: %[[ZEROS:.*]] = linalg.fill {{.*}} -> tensor<12x40xf32>
// CHECK: %[[XW:.*]] = linalg.generic {{.*}} ins(%[[X]] : tensor<12x64xbf16>) outs(%{{.*}} : tensor<12x64xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.*]]: bf16, %{{.*}}: f32):
// CHECK-NEXT: %[[E:.*]] = arith.extf %[[IN]] : bf16 to f32
// CHECK-NEXT: linalg.yield %[[E]] : f32
// CHECK: %[[WW:.*]] = linalg.generic {{.*}} ins(%[[W]] : tensor<64x40xbf16>) outs(%{{.*}} : tensor<64x40xf32>)
// CHECK: arith.extf
// CHECK: %[[Y:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[XW]], %[[WW]] : tensor<12x64xf32>, tensor<64x40xf32>) outs(%[[ZEROS]] : tensor<12x40xf32>)
// CHECK-NEXT: ^bb0(%[[A:.*]]: f32, %[[B:.*]]: f32, %[[ACC:.*]]: f32):
// CHECK-NEXT: %[[P:.*]] = arith.mulf %[[A]], %[[B]] : f32
// CHECK-NEXT: %[[S:.*]] = arith.addf %[[ACC]], %[[P]] : f32
// CHECK-NEXT: linalg.yield %[[S]] : f32
// CHECK: linalg.generic {{.*}} ins(%[[Y]] : tensor<12x40xf32>) outs(%{{.*}} : tensor<12x40xbf16>)
// CHECK: arith.truncf
func.func @row_major(%x: tensor<12x64xbf16>, %w: tensor<64x40xbf16>) -> tensor<12x40xbf16> {
  %y = kiln.matmul %x, %w : (tensor<12x64xbf16>, tensor<64x40xbf16>) -> tensor<12x40xbf16>
  return %y : tensor<12x40xbf16>
}

// -----

// A transposed weight is widened under its transpose, which the f32 tiles
// then read in place; the bf16 transpose goes.
// CHECK-LABEL: func @transposed_rhs
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<40x64xbf16>
// CHECK-NOT: linalg.transpose ins(%[[W]]
// CHECK: %[[WW:.*]] = linalg.generic {{.*}} ins(%[[W]] : tensor<40x64xbf16>) outs(%{{.*}} : tensor<40x64xf32>)
// CHECK: %[[T:.*]] = linalg.transpose ins(%[[WW]] : tensor<40x64xf32>) outs(%{{.*}} : tensor<64x40xf32>) permutation = [1, 0]
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[T]] : tensor<12x64xf32>, tensor<64x40xf32>) outs(%{{.*}} : tensor<12x40xf32>)
// CHECK-NOT: linalg.transpose
func.func @transposed_rhs(%x: tensor<12x64xbf16>, %w: tensor<40x64xbf16>) -> tensor<12x40xbf16> {
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<12x64xbf16>, tensor<40x64xbf16>) -> tensor<12x40xbf16>
  return %y : tensor<12x40xbf16>
}

// -----

// f32 matmuls are left as they are.
// CHECK-LABEL: func @f32_untouched
// CHECK-NOT: arith.extf
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<12x64xf32>, tensor<64x40xf32>)
// CHECK-NOT: arith.extf
func.func @f32_untouched(%x: tensor<12x64xf32>, %w: tensor<64x40xf32>) -> tensor<12x40xf32> {
  %y = kiln.matmul %x, %w : (tensor<12x64xf32>, tensor<64x40xf32>) -> tensor<12x40xf32>
  return %y : tensor<12x40xf32>
}

// -----

// One transpose read as both operands is widened for each and erased once.
// CHECK-LABEL: func @one_transpose_twice
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<40x40xbf16>
// CHECK-COUNT-2: linalg.transpose ins(%{{.*}} : tensor<40x40xf32>)
// CHECK-NOT: linalg.transpose
func.func @one_transpose_twice(%w: tensor<40x40xbf16>) -> tensor<40x40xbf16> {
  %t = kiln.transpose %w permutation = [1, 0] : (tensor<40x40xbf16>) -> tensor<40x40xbf16>
  %y = kiln.matmul %t, %t : (tensor<40x40xbf16>, tensor<40x40xbf16>) -> tensor<40x40xbf16>
  return %y : tensor<40x40xbf16>
}

// -----

// Few rows (a decoding step, here 2 x 3 rows, folded into 6): widened by
// default; with min-rows=8 left bf16 (for vdpbf16ps tiles), while 12 rows
// are widened.
// CHECK-LABEL: func @few_rows
// CHECK: arith.extf
// FEW-LABEL: func @few_rows
// FEW-NOT: outs(%{{.*}} : tensor<6x64xf32>)
// FEW: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<6x64xbf16>, tensor<64x40xbf16>) outs(%{{.*}} : tensor<6x40xf32>)
// FEW: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<12x64xf32>, tensor<64x40xf32>) outs(%{{.*}} : tensor<12x40xf32>)
func.func @few_rows(%x: tensor<2x3x64xbf16>, %z: tensor<12x64xbf16>, %w: tensor<64x40xbf16>) -> (tensor<2x3x40xbf16>, tensor<12x40xbf16>) {
  %y = kiln.matmul %x, %w : (tensor<2x3x64xbf16>, tensor<64x40xbf16>) -> tensor<2x3x40xbf16>
  %v = kiln.matmul %z, %w : (tensor<12x64xbf16>, tensor<64x40xbf16>) -> tensor<12x40xbf16>
  return %y, %v : tensor<2x3x40xbf16>, tensor<12x40xbf16>
}
