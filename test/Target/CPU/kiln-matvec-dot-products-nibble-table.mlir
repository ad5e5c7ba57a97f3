// RUN: kiln-opt %s --kiln-matvec-dot-products=nibble-table --canonicalize --cse --split-input-file | FileCheck %s
// RUN: kiln-opt %s --kiln-matvec-dot-products=nibble-table --split-input-file | kiln-opt --split-input-file --verify-each > /dev/null

// nibble-table (AVX-512): 4-bit codes in groups of 32 are looked up, not
// converted. x is deinterleaved once per call (each block of 32: its even
// inputs, then its odd ones); per output column and group, the table of the
// 16 code values (two's complement nibbles) times the group's scale; per
// step 16 code bytes zero-extended, the low nibbles (the bytes as they are:
// vpermps reads the low 4 bits) and the high ones (shifted down) looked up
// by a call of the intrinsic, times the even and the odd inputs; partial
// sums over the whole row, no group sum scaled. vpermps is declared once.
// CHECK-LABEL: func.func @w4_signed(
// CHECK-SAME: %[[X:.*]]: tensor<1x64xf32>, %[[Q:.*]]: tensor<96x32xi8>, %[[S:.*]]: tensor<96x2xf32>)
// CHECK-DAG: %[[VALUES:.*]] = arith.constant dense<[0.000000e+00, 1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00, 5.000000e+00, 6.000000e+00, 7.000000e+00, -8.000000e+00, -7.000000e+00, -6.000000e+00, -5.000000e+00, -4.000000e+00, -3.000000e+00, -2.000000e+00, -1.000000e+00]> : vector<16xf32>
// CHECK-DAG: %[[FOUR:.*]] = arith.constant dense<4> : vector<16xi32>
// The one row's blocks of 32 (the row loop folded away).
// CHECK: %[[XD:.*]] = scf.for %[[AT:.*]] = %c0 to %c64 step %c32 iter_args(%[[INTO:.*]] =
// CHECK:   %[[PAIR:.*]] = vector.transfer_read %[[X]][%c0, %[[AT]]]{{.*}} vector<32xf32>
// CHECK:   %[[EVEN:.*]], %[[ODD:.*]] = vector.deinterleave %[[PAIR]]
// CHECK:   %[[W0:.*]] = vector.transfer_write %[[EVEN]], %[[INTO]][%c0, %[[AT]]]
// CHECK:   %[[AT16:.*]] = arith.addi %[[AT]], %c16
// CHECK:   vector.transfer_write %[[ODD]], %[[W0]][%c0, %[[AT16]]]
// CHECK: scf.forall (%[[N:.*]]) in (96)
// CHECK:   scf.for %[[J:.*]] = %c0 to %c2 {{.*}} iter_args(%[[A0:.*]] = %{{.*}}, %[[A1:.*]] = %{{.*}})
// CHECK:     %[[K:.*]] = arith.muli %[[J]], %c32
// CHECK:     %[[SCALE:.*]] = tensor.extract %[[S]][%[[N]], %[[J]]]
// CHECK:     %[[SPLAT:.*]] = vector.broadcast %[[SCALE]]
// CHECK:     %[[TABLE:.*]] = arith.mulf %[[SPLAT]], %[[VALUES]]
// CHECK:     %[[BYTE:.*]] = arith.divui %[[K]], %c2
// CHECK:     %[[B:.*]] = vector.transfer_read %[[Q]][%[[N]], %[[BYTE]]], %{{.*}} {in_bounds = [true]} : tensor<96x32xi8>, vector<16xi8>
// CHECK:     %[[LANES:.*]] = arith.extui %[[B]] : vector<16xi8> to vector<16xi32>
// CHECK:     %[[HIGH:.*]] = arith.shrui %[[LANES]], %[[FOUR]]
// CHECK:     %[[K16:.*]] = arith.addi %[[K]], %c16
// CHECK:     %[[LO:.*]] = func.call @llvm.x86.avx512.permvar.sf.512(%[[TABLE]], %[[LANES]])
// CHECK:     %[[XE:.*]] = vector.transfer_read %[[XD]][%c0, %[[K]]]
// CHECK:     %[[F0:.*]] = vector.fma %[[LO]], %[[XE]], %[[A0]]
// CHECK:     %[[HI:.*]] = func.call @llvm.x86.avx512.permvar.sf.512(%[[TABLE]], %[[HIGH]])
// CHECK:     %[[XO:.*]] = vector.transfer_read %[[XD]][%c0, %[[K16]]]
// CHECK:     %[[F1:.*]] = vector.fma %[[HI]], %[[XO]], %[[A1]]
// CHECK:     scf.yield %[[F0]], %[[F1]]
// CHECK:   arith.addf
// CHECK:   vector.reduction <add>
// CHECK-NOT: arith.sitofp
// CHECK-LABEL: func.func @w4_signed_again(
// CHECK: func.call @llvm.x86.avx512.permvar.sf.512
// The intrinsic is declared once for both.
// CHECK: func.func private @llvm.x86.avx512.permvar.sf.512(vector<16xf32>, vector<16xi32>) -> vector<16xf32>
// CHECK-NOT: func.func private @llvm.x86.avx512.permvar.sf.512
func.func @w4_signed(%x: tensor<1x64xf32>, %q: tensor<96x32xi8>, %s: tensor<96x2xf32>) -> tensor<1x96xf32> {
  %w = kiln.dequantize %q, %s bits = 4 : (tensor<96x32xi8>, tensor<96x2xf32>) -> tensor<96x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<1x64xf32>, tensor<96x64xf32>) -> tensor<1x96xf32>
  return %y : tensor<1x96xf32>
}

func.func @w4_signed_again(%x: tensor<1x64xf32>, %q: tensor<96x32xi8>, %s: tensor<96x2xf32>) -> tensor<1x96xf32> {
  %w = kiln.dequantize %q, %s bits = 4 : (tensor<96x32xi8>, tensor<96x2xf32>) -> tensor<96x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<1x64xf32>, tensor<96x64xf32>) -> tensor<1x96xf32>
  return %y : tensor<1x96xf32>
}

// -----

// Unsigned codes with zero points, groups of 64 (two steps a group, two
// unrolled): the table is the codes 0..15 less the group's zero point,
// times its scale, as the dequantization computes (q - z) · s.
// CHECK-LABEL: func.func @w4_unsigned_zero_points
// CHECK-DAG: %[[VALUES:.*]] = arith.constant dense<[0.000000e+00, 1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00, 5.000000e+00, 6.000000e+00, 7.000000e+00, 8.000000e+00, 9.000000e+00, 1.000000e+01, 1.100000e+01, 1.200000e+01, 1.300000e+01, 1.400000e+01, 1.500000e+01]> : vector<16xf32>
// CHECK: scf.forall
// CHECK:   %[[Z:.*]] = tensor.extract %arg3
// CHECK:   %[[ZF:.*]] = arith.uitofp %[[Z]] : i8 to f32
// CHECK:   %[[ZV:.*]] = vector.broadcast %[[ZF]]
// CHECK:   %[[OFF:.*]] = arith.subf %[[VALUES]], %[[ZV]]
// CHECK:   %[[SCALE:.*]] = tensor.extract %arg2
// CHECK:   %[[SV:.*]] = vector.broadcast %[[SCALE]]
// CHECK:   arith.mulf %[[OFF]], %[[SV]]
// CHECK-COUNT-4: func.call @llvm.x86.avx512.permvar.sf.512
// CHECK-NOT: kiln.matmul
func.func @w4_unsigned_zero_points(%x: tensor<2x128xf32>, %q: tensor<48x64xi8>, %s: tensor<48x2xf32>, %z: tensor<48x2xi8>) -> tensor<2x48xf32> {
  %w = kiln.dequantize %q, %s zero_point %z bits = 4 unsigned : (tensor<48x64xi8>, tensor<48x2xf32>, tensor<48x2xi8>) -> tensor<48x128xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<2x128xf32>, tensor<48x128xf32>) -> tensor<2x48xf32>
  return %y : tensor<2x48xf32>
}

// -----

// Groups of 16 (half a step) and 8-bit codes keep the converting kernel.
// CHECK-LABEL: func.func @w4g16_and_w8
// CHECK-NOT: permvar
// CHECK: vector.interleave
// CHECK: arith.sitofp
// CHECK-NOT: permvar
func.func @w4g16_and_w8(%x: tensor<1x64xf32>, %q: tensor<96x32xi8>, %s: tensor<96x4xf32>, %q8: tensor<96x64xi8>, %s8: tensor<96x1xf32>) -> (tensor<1x96xf32>, tensor<1x96xf32>) {
  %w = kiln.dequantize %q, %s bits = 4 : (tensor<96x32xi8>, tensor<96x4xf32>) -> tensor<96x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<1x64xf32>, tensor<96x64xf32>) -> tensor<1x96xf32>
  %w8 = kiln.dequantize %q8, %s8 : (tensor<96x64xi8>, tensor<96x1xf32>) -> tensor<96x64xf32>
  %y8 = kiln.matmul %x, %w8 transpose_rhs : (tensor<1x64xf32>, tensor<96x64xf32>) -> tensor<1x96xf32>
  return %y, %y8 : tensor<1x96xf32>, tensor<1x96xf32>
}

// -----

// Signed codes with zero points: the table is the two's complement
// values less the zero point (sign-extended), times the scale.
// CHECK-LABEL: func.func @w4_signed_zero_points
// CHECK: %[[Z:.*]] = tensor.extract %arg3
// CHECK: %[[ZF:.*]] = arith.sitofp %[[Z]] : i8 to f32
// CHECK: %[[ZV:.*]] = vector.broadcast %[[ZF]]
// CHECK: arith.subf %{{.*}}, %[[ZV]]
// CHECK: func.call @llvm.x86.avx512.permvar.sf.512
func.func @w4_signed_zero_points(%x: tensor<1x32xf32>, %q: tensor<16x16xi8>, %s: tensor<16x1xf32>, %z: tensor<16x1xi8>) -> tensor<1x16xf32> {
  %w = kiln.dequantize %q, %s zero_point %z bits = 4 : (tensor<16x16xi8>, tensor<16x1xf32>, tensor<16x1xi8>) -> tensor<16x32xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<1x32xf32>, tensor<16x32xf32>) -> tensor<1x16xf32>
  return %y : tensor<1x16xf32>
}

// -----

// More static rows than max-rows: the matmul stays, and no declaration of
// the intrinsic is left behind.
// CHECK-LABEL: func.func @w4_many_rows
// CHECK: kiln.matmul
// CHECK-NOT: permvar
func.func @w4_many_rows(%x: tensor<32x64xf32>, %q: tensor<96x32xi8>, %s: tensor<96x2xf32>) -> tensor<32x96xf32> {
  %w = kiln.dequantize %q, %s bits = 4 : (tensor<96x32xi8>, tensor<96x2xf32>) -> tensor<96x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<32x64xf32>, tensor<96x64xf32>) -> tensor<32x96xf32>
  return %y : tensor<32x96xf32>
}
