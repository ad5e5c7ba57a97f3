// RUN: kiln-opt %s --kiln-matvec-dot-products=row-block=4 --canonicalize --cse --split-input-file | FileCheck %s
// RUN: kiln-opt %s '--kiln-matvec-dot-products=row-block=4 nibble-table' --canonicalize --cse --split-input-file | FileCheck %s --check-prefix=TABLE
// RUN: kiln-opt %s --kiln-matvec-dot-products=row-block=4 --split-input-file | kiln-opt --split-input-file --verify-each > /dev/null
// RUN: not kiln-opt %s --kiln-matvec-dot-products=row-block=9 --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// row-block=4: four rows of x at a time share each weight vector: per
// step one load and conversion of 16 codes, four reads of x (rows r0 ..
// r0 + 3) and four multiply-adds into their own partial sums (two steps
// unrolled: eight), scaled and summed per row; the rows left over
// (rows mod 4) one at a time as without the option. Fewer rows than a
// block take the one-row kernel alone (a second forall).
// CHECK-LABEL: func.func @w8_rows
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[Q:.*]]: tensor<96x64xi8>, %[[S:.*]]: tensor<96x1xf32>)
// CHECK: %[[ROWS:.*]] = tensor.dim %[[X]], %c0
// CHECK: %[[MANY:.*]] = arith.cmpi uge, %[[ROWS]], %c4
// CHECK: scf.if %[[MANY]]
// CHECK: scf.forall (%[[N:.*]]) in (96)
// CHECK:   %[[REST:.*]] = arith.remui %[[ROWS]], %c4
// CHECK:   %[[BLOCKED:.*]] = arith.subi %[[ROWS]], %[[REST]]
// CHECK:   %[[BLOCKS:.*]] = scf.for %[[R0:.*]] = %c0 to %[[BLOCKED]] step %c4
// CHECK:     %[[R1:.*]] = arith.addi %[[R0]], %c1
// CHECK:     %[[R2:.*]] = arith.addi %[[R0]], %c2
// CHECK:     %[[R3:.*]] = arith.addi %[[R0]], %c3
// CHECK:     scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:       %[[B:.*]] = vector.transfer_read %[[Q]][%[[N]], %[[K:.*]]], {{.*}} vector<16xi8>
// CHECK:       %[[W:.*]] = arith.sitofp %[[B]]
// CHECK:       %[[X0:.*]] = vector.transfer_read %[[X]][%[[R0]], %[[K]]]
// CHECK:       vector.fma %[[W]], %[[X0]]
// CHECK:       %[[X1:.*]] = vector.transfer_read %[[X]][%[[R1]], %[[K]]]
// CHECK:       vector.fma %[[W]], %[[X1]]
// CHECK:       %[[X2:.*]] = vector.transfer_read %[[X]][%[[R2]], %[[K]]]
// CHECK:       vector.fma %[[W]], %[[X2]]
// CHECK:       %[[X3:.*]] = vector.transfer_read %[[X]][%[[R3]], %[[K]]]
// CHECK:       vector.fma %[[W]], %[[X3]]
// The second step of the unroll: one conversion, four multiply-adds.
// CHECK:       arith.sitofp
// CHECK-COUNT-4: vector.fma
// CHECK:       scf.yield
// CHECK:     tensor.extract %[[S]][%[[N]], %c0]
// CHECK-COUNT-4: vector.reduction <add>
// CHECK:     %[[I0:.*]] = tensor.insert %{{.*}} into %{{.*}}[%[[R0]]]
// CHECK:     %[[I1:.*]] = tensor.insert %{{.*}} into %[[I0]][%[[R1]]]
// CHECK:     %[[I2:.*]] = tensor.insert %{{.*}} into %[[I1]][%[[R2]]]
// CHECK:     %[[I3:.*]] = tensor.insert %{{.*}} into %[[I2]][%[[R3]]]
// CHECK:     scf.yield %[[I3]]
// CHECK:   scf.for %[[R:.*]] = %[[BLOCKED]] to %[[ROWS]] step %c1 iter_args(%{{.*}} = %[[BLOCKS]])
// CHECK:     vector.transfer_read %[[X]][%[[R]],
// CHECK: } else {
// CHECK:   scf.forall
// CHECK-NOT: arith.remui
// CHECK:     scf.for %[[ONE:.*]] = %c0 to %[[ROWS]] step %c1
// CHECK:       vector.transfer_read %[[X]][%[[ONE]],

// With the table kernel the two lookups of a step are shared by the four
// rows: two calls of vpermps and eight multiply-adds in the block loop,
// two calls for the single rows after it; two for fewer rows than a block.
// TABLE-LABEL: func.func @w8_rows
// TABLE-LABEL: func.func @w4_rows
// TABLE: scf.for %{{.*}} step %c4
// TABLE:   scf.for
// TABLE:     func.call @llvm.x86.avx512.permvar.sf.512
// TABLE-COUNT-4: vector.fma
// TABLE:     func.call @llvm.x86.avx512.permvar.sf.512
// TABLE-COUNT-4: vector.fma
// TABLE:     scf.yield
// TABLE: scf.for
// TABLE-COUNT-2: func.call @llvm.x86.avx512.permvar.sf.512
// TABLE: } else {
// TABLE-COUNT-2: func.call @llvm.x86.avx512.permvar.sf.512
// TABLE-NOT: func.call

// BAD: row-block in 1..8
func.func @w8_rows(%x: tensor<?x64xf32>, %q: tensor<96x64xi8>, %s: tensor<96x1xf32>) -> tensor<?x96xf32> {
  %w = kiln.dequantize %q, %s : (tensor<96x64xi8>, tensor<96x1xf32>) -> tensor<96x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<?x64xf32>, tensor<96x64xf32>) -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}

func.func @w4_rows(%x: tensor<?x64xf32>, %q: tensor<96x32xi8>, %s: tensor<96x2xf32>) -> tensor<?x96xf32> {
  %w = kiln.dequantize %q, %s bits = 4 : (tensor<96x32xi8>, tensor<96x2xf32>) -> tensor<96x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<?x64xf32>, tensor<96x64xf32>) -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}
