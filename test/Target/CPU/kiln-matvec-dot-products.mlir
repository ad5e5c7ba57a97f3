// RUN: kiln-opt %s --kiln-matvec-dot-products --canonicalize --cse --split-input-file | FileCheck %s
// RUN: kiln-opt %s --kiln-matvec-dot-products --split-input-file | kiln-opt --split-input-file --verify-each > /dev/null

// A dynamic row count (a decoding step's batch): the dot-product kernel
// under rows <= 16, the matmul as it was otherwise. 4-bit codes: 8 bytes per
// 16 lanes, low nibble first (sign-extended by shifts), converted to f32,
// partial sums over the group (two 16-lane steps, two independent
// accumulators: the loop of one step of two is folded), scaled once per
// group.
// CHECK-LABEL: func.func @w4_dynamic_rows
// CHECK-SAME: (%[[X:.*]]: tensor<?x1x64xf32>, %[[Q:.*]]: tensor<96x32xi8>, %[[S:.*]]: tensor<96x2xf32>)
// CHECK: %[[ROWS:.*]] = tensor.dim %[[X]], %c0
// CHECK: %[[FEW:.*]] = arith.cmpi ule, %[[ROWS]], %c16
// CHECK: scf.if %[[FEW]] -> (tensor<?x1x96xf32>)
// CHECK:   %[[X2:.*]] = tensor.collapse_shape %[[X]] {{\[\[}}0, 1], [2]]
// CHECK:   scf.forall (%[[N:.*]]) in (96)
// CHECK:     scf.for %[[M:.*]] = %c0 to %[[ROWS]]
// CHECK:       scf.for %[[J:.*]] = %c0 to %c2
// CHECK:           %[[B:.*]] = vector.transfer_read %[[Q]][%[[N]], %{{.*}}], %{{.*}} {in_bounds = [true]} : tensor<96x32xi8>, vector<8xi8>
// CHECK:           %[[SHL:.*]] = arith.shli %[[B]]
// CHECK:           %[[LO:.*]] = arith.shrsi %[[SHL]]
// CHECK:           %[[HI:.*]] = arith.shrsi %[[B]]
// CHECK:           %[[CODES:.*]] = vector.interleave %[[LO]], %[[HI]] : vector<8xi8> -> vector<16xi8>
// CHECK:           %[[W:.*]] = arith.sitofp %[[CODES]] : vector<16xi8> to vector<16xf32>
// CHECK:           %[[XV:.*]] = vector.transfer_read %[[X2]][%[[M]], %{{.*}}]
// CHECK:           vector.fma %[[W]], %[[XV]]
// CHECK:         %[[SCALE:.*]] = tensor.extract %[[S]][%[[N]], %[[J]]]
// CHECK:         %[[SPLAT:.*]] = vector.broadcast %[[SCALE]]
// CHECK:         vector.fma %[[SPLAT]]
// CHECK:       vector.reduction <add>
// CHECK:   tensor.expand_shape
// CHECK: } else {
// CHECK:   kiln.dequantize %[[Q]], %[[S]] bits = 4
// CHECK:   kiln.matmul
func.func @w4_dynamic_rows(%x: tensor<?x1x64xf32>, %q: tensor<96x32xi8>, %s: tensor<96x2xf32>) -> tensor<?x1x96xf32> {
  %w = kiln.dequantize %q, %s bits = 4 : (tensor<96x32xi8>, tensor<96x2xf32>) -> tensor<96x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<?x1x64xf32>, tensor<96x64xf32>) -> tensor<?x1x96xf32>
  return %y : tensor<?x1x96xf32>
}

// -----

// One static row, unsigned 8-bit codes with a zero point per row: no
// branch; the zero point comes off the converted codes.
// CHECK-LABEL: func.func @w8_asymmetric_one_row
// CHECK-NOT: scf.if
// CHECK: scf.forall
// CHECK:   %[[Z:.*]] = tensor.extract %arg3
// CHECK:   %[[ZF:.*]] = arith.uitofp %[[Z]] : i8 to f32
// CHECK:   %[[ZV:.*]] = vector.broadcast %[[ZF]]
// CHECK:   %[[W:.*]] = arith.uitofp %{{.*}} : vector<16xi8> to vector<16xf32>
// CHECK:   arith.subf %[[W]], %[[ZV]]
// CHECK-NOT: kiln.matmul
func.func @w8_asymmetric_one_row(%x: tensor<1x64xf32>, %q: tensor<96x64xi8>, %s: tensor<96x1xf32>, %z: tensor<96x1xi8>) -> tensor<1x96xf32> {
  %w = kiln.dequantize %q, %s zero_point %z unsigned : (tensor<96x64xi8>, tensor<96x1xf32>, tensor<96x1xi8>) -> tensor<96x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<1x64xf32>, tensor<96x64xf32>) -> tensor<1x96xf32>
  return %y : tensor<1x96xf32>
}

// -----

// An f32 weight read transposed (a tied LM head): 16 floats per step, no
// scale.
// CHECK-LABEL: func.func @f32_head
// CHECK: scf.forall
// CHECK:   vector.transfer_read %arg1[%{{.*}}, %{{.*}}], %{{.*}} {in_bounds = [true]} : tensor<1000x64xf32>, vector<16xf32>
// CHECK-NOT: tensor.extract %arg1
func.func @f32_head(%x: tensor<?x1x64xf32>, %w: tensor<1000x64xf32>) -> tensor<?x1x1000xf32> {
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<?x1x64xf32>, tensor<1000x64xf32>) -> tensor<?x1x1000xf32>
  return %y : tensor<?x1x1000xf32>
}

// -----

// Left alone: more static rows than max-rows, a K that 16 lanes do not
// cover, a row-major rhs, two dynamic row dims.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: scf.forall
// CHECK-COUNT-4: kiln.matmul
func.func @left_alone(%x32: tensor<32x64xf32>, %w: tensor<96x64xf32>, %x: tensor<1x72xf32>, %w72: tensor<96x72xf32>, %wt: tensor<64x96xf32>, %xd: tensor<?x?x64xf32>) -> (tensor<32x96xf32>, tensor<1x96xf32>, tensor<32x96xf32>, tensor<?x?x96xf32>) {
  %0 = kiln.matmul %x32, %w transpose_rhs : (tensor<32x64xf32>, tensor<96x64xf32>) -> tensor<32x96xf32>
  %1 = kiln.matmul %x, %w72 transpose_rhs : (tensor<1x72xf32>, tensor<96x72xf32>) -> tensor<1x96xf32>
  %2 = kiln.matmul %x32, %wt : (tensor<32x64xf32>, tensor<64x96xf32>) -> tensor<32x96xf32>
  %3 = kiln.matmul %xd, %w transpose_rhs : (tensor<?x?x64xf32>, tensor<96x64xf32>) -> tensor<?x?x96xf32>
  return %0, %1, %2, %3 : tensor<32x96xf32>, tensor<1x96xf32>, tensor<32x96xf32>, tensor<?x?x96xf32>
}

// -----

// A 2:4 weight stored compressed: 16 groups of four a step, each group's
// two kept values times the elements of x their positions pick (4g +
// position, gathered), the zeros skipped.
// CHECK-LABEL: func.func @compressed_2of4
// CHECK-SAME: (%[[X:.*]]: tensor<2x128xf32>, %[[F:.*]]: tensor<8x32xf32>, %[[S:.*]]: tensor<8x32xf32>, %[[P:.*]]: tensor<8x32xi8>)
// CHECK-NOT: kiln.expand_2of4
// CHECK: scf.forall (%[[N:.*]]) in (8)
// CHECK:   vector.transfer_read %[[F]][%[[N]], %{{.*}}]{{.*}} : tensor<8x32xf32>, vector<16xf32>
// CHECK:   vector.transfer_read %[[S]][%[[N]], %{{.*}}]{{.*}} : tensor<8x32xf32>, vector<16xf32>
// CHECK:   %[[POS:.*]] = vector.transfer_read %[[P]][%[[N]], %{{.*}}]{{.*}} : tensor<8x32xi8>, vector<16xi8>
// CHECK:   arith.extui %[[POS]] : vector<16xi8> to vector<16xi32>
// CHECK:   vector.gather %[[X]]
// CHECK:   vector.gather %[[X]]
// CHECK:   vector.fma
// CHECK:   vector.fma
// CHECK: vector.reduction <add>
// CHECK-NOT: kiln.matmul
func.func @compressed_2of4(%x: tensor<2x128xf32>, %f: tensor<8x32xf32>, %s: tensor<8x32xf32>, %p: tensor<8x32xi8>) -> tensor<2x8xf32> {
  %w = kiln.expand_2of4 %f, %s positions %p : (tensor<8x32xf32>, tensor<8x32xf32>, tensor<8x32xi8>) -> tensor<8x128xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<2x128xf32>, tensor<8x128xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

// A CSR weight: each output's entries from offsets[n] to offsets[n + 1],
// 16 at a time under a mask (rows are not multiples of 16), their indices
// widened and clamped to the last input, x gathered there.
// CHECK-LABEL: func.func @compressed_sparse_rows
// CHECK-SAME: (%[[X:.*]]: tensor<2x100xf32>, %[[O:.*]]: tensor<9xi32>, %[[I:.*]]: tensor<300xi16>, %[[V:.*]]: tensor<300xf32>)
// CHECK-NOT: kiln.expand_csr
// CHECK: scf.forall (%[[N:.*]]) in (8)
// CHECK:   tensor.extract %[[O]][%[[N]]]
// CHECK:   arith.minui
// CHECK:   scf.for
// CHECK:     %[[M:.*]] = vector.create_mask
// CHECK:     vector.transfer_read %[[V]][%{{.*}}], %{{.*}}, %[[M]] : tensor<300xf32>, vector<16xf32>
// CHECK:     %[[C:.*]] = vector.transfer_read %[[I]][%{{.*}}], %{{.*}}, %[[M]] : tensor<300xi16>, vector<16xi16>
// CHECK:     arith.extui %[[C]] : vector<16xi16> to vector<16xi32>
// CHECK:     arith.minui {{.*}} : vector<16xi32>
// CHECK:     vector.gather %[[X]]{{.*}}, %[[M]]
// CHECK:     vector.fma
// CHECK: vector.reduction <add>
// CHECK-NOT: kiln.matmul
func.func @compressed_sparse_rows(%x: tensor<2x100xf32>, %o: tensor<9xi32>, %i: tensor<300xi16>, %v: tensor<300xf32>) -> tensor<2x8xf32> {
  %w = kiln.expand_csr %o, %i, %v : (tensor<9xi32>, tensor<300xi16>, tensor<300xf32>) -> tensor<8x100xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<2x100xf32>, tensor<8x100xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

// A [K, N] weight read as stored (GPT-2's Conv1D), one row: each parallel
// iteration owns 64 output columns and adds x[k] times the weight's row k
// into them, two k at a time (8 sums), written back as [1, 64] tiles.
// CHECK-LABEL: func.func @row_major_weight
// CHECK: %[[W:.*]] = kiln.read_param @w : tensor<96x128xf32>
// CHECK: scf.forall (%[[B:.*]]) in (2)
// CHECK:   scf.for
// CHECK:     tensor.extract
// CHECK:     vector.broadcast
// CHECK:     vector.transfer_read %[[W]]
// CHECK-COUNT-8: vector.fma
// CHECK:   tensor.parallel_insert_slice {{.*}} [1, 64] [1, 1]
// CHECK-NOT: kiln.matmul
kiln.parameter @w : tensor<96x128xf32> init zeros
func.func @row_major_weight(%x: tensor<1x96xf32>) -> tensor<1x128xf32> {
  %w = kiln.read_param @w : tensor<96x128xf32>
  %y = kiln.matmul %x, %w : (tensor<1x96xf32>, tensor<96x128xf32>) -> tensor<1x128xf32>
  return %y : tensor<1x128xf32>
}

// -----

// Two rows of a [K, N] weight: the register tiles do better.
// CHECK-LABEL: func.func @row_major_two_rows
// CHECK: kiln.matmul
kiln.parameter @w2 : tensor<96x128xf32> init zeros
func.func @row_major_two_rows(%x: tensor<2x96xf32>) -> tensor<2x128xf32> {
  %w = kiln.read_param @w2 : tensor<96x128xf32>
  %y = kiln.matmul %x, %w : (tensor<2x96xf32>, tensor<96x128xf32>) -> tensor<2x128xf32>
  return %y : tensor<2x128xf32>
}

// -----

// Many rows of a CSR weight of density at most 0.5: x transposed once
// (padded to 112 columns), each output's entries add value · xt[index, 64
// rows) into 4 accumulators (rows 0-63: one chunk, its loop folded away),
// then 16 rows at a time for the 48 left, the [N, rows] result transposed
// back.
// CHECK-LABEL: func.func @csr_many_rows
// CHECK: linalg.fill {{.*}} -> tensor<100x112xf32>
// CHECK: linalg.transpose
// CHECK: scf.forall (%[[N:.*]]) in (8)
// CHECK:   scf.for
// CHECK:     tensor.extract {{.*}} : tensor<300xi16>
// CHECK:     tensor.extract {{.*}} : tensor<300xf32>
// CHECK:     vector.broadcast
// CHECK-COUNT-4: vector.fma
// CHECK:   scf.for %{{.*}} = %c64 to %c112 step %c16
// CHECK:     scf.for
// CHECK:       vector.fma
// CHECK-NOT:   vector.fma
// CHECK: linalg.transpose
// CHECK-NOT: kiln.matmul
func.func @csr_many_rows(%x: tensor<100x100xf32>, %o: tensor<9xi32>, %i: tensor<300xi16>, %v: tensor<300xf32>) -> tensor<100x8xf32> {
  %w = kiln.expand_csr %o, %i, %v : (tensor<9xi32>, tensor<300xi16>, tensor<300xf32>) -> tensor<8x100xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<100x100xf32>, tensor<8x100xf32>) -> tensor<100x8xf32>
  return %y : tensor<100x8xf32>
}

// -----

// A denser CSR weight (0.75 of it kept) and a 2:4 weight leave many rows
// to the register tiles, the weight expanded.
// CHECK-LABEL: func.func @dense_enough_many_rows
// CHECK: kiln.expand_csr
// CHECK: kiln.matmul
// CHECK: kiln.expand_2of4
// CHECK: kiln.matmul
func.func @dense_enough_many_rows(%x: tensor<100x100xf32>, %o: tensor<9xi32>, %i: tensor<600xi16>, %v: tensor<600xf32>, %xs: tensor<8x128xf32>, %f: tensor<8x32xf32>, %p: tensor<8x32xi8>) -> (tensor<100x8xf32>, tensor<8x8xf32>) {
  %w = kiln.expand_csr %o, %i, %v : (tensor<9xi32>, tensor<600xi16>, tensor<600xf32>) -> tensor<8x100xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<100x100xf32>, tensor<8x100xf32>) -> tensor<100x8xf32>
  %w2 = kiln.expand_2of4 %f, %f positions %p : (tensor<8x32xf32>, tensor<8x32xf32>, tensor<8x32xi8>) -> tensor<8x128xf32>
  %y2 = kiln.matmul %xs, %w2 transpose_rhs : (tensor<8x128xf32>, tensor<8x128xf32>) -> tensor<8x8xf32>
  return %y, %y2 : tensor<100x8xf32>, tensor<8x8xf32>
}
