// RUN: kiln-opt %s --convert-kiln-to-linalg --kiln-tile-and-vectorize-contractions --split-input-file | FileCheck %s
// RUN: kiln-opt %s --convert-kiln-to-linalg --kiln-tile-and-vectorize-contractions="tile-m=6 tile-n=16" --split-input-file | FileCheck %s --check-prefix=AVX2
// RUN: not kiln-opt %s --convert-kiln-to-linalg --kiln-tile-and-vectorize-contractions="tile-m=0" --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not kiln-opt %s --convert-kiln-to-linalg --kiln-tile-and-vectorize-contractions="k-block=-1" --split-input-file 2>&1 | FileCheck %s --check-prefix=BADK
// RUN: kiln-opt %s --convert-kiln-to-linalg --kiln-tile-and-vectorize-contractions="l2-bytes=65536" --split-input-file | FileCheck %s --check-prefix=KBLOCK
// RUN: kiln-opt %s --convert-kiln-to-linalg --kiln-tile-and-vectorize-contractions="tile-m=6 tile-n=64" --split-input-file | FileCheck %s --check-prefix=STORED
// RUN: kiln-opt %s --convert-kiln-to-linalg --kiln-tile-and-vectorize-contractions="tile-m=6 tile-n=64 prefetch-stored-panels=0" --split-input-file | FileCheck %s --check-prefix=NOPF
// RUN: kiln-opt %s --convert-kiln-to-linalg --kiln-tile-and-vectorize-contractions="tile-m=6 tile-n=64 l2-bytes=2097152" --split-input-file | FileCheck %s --check-prefix=LHSK

// The tiles kiln-compile picks for AVX2 (16 ymm registers): panels of 16
// columns, 6 x 16 accumulators, the lhs packed in tiles of 6 rows.
// AVX2-LABEL: func @matmul
// 12 rows are two whole tiles: no padding.
// AVX2-NOT: tensor.pad
// AVX2: tensor.empty() : tensor<2x16x6xf32>
// AVX2: scf.forall (%{{.*}}) = (0) to (64) step (16)
// AVX2: scf.for %{{.*}} = %c0 to %c16 step %c1 iter_args({{.*}}) -> ({{.*}}, vector<6x16xf32>)
// AVX2-COUNT-6: vector.fma {{.*}} : vector<16xf32>
// AVX2-NOT: vector.fma
// AVX2: scf.yield
// BAD: tile-m, tile-n, l2-bytes and l3-bytes must be positive (got 0, 32, 1048576, 33554432)
// BADK: k-block must be 0 (no blocking) or positive (got -1)

// An f32 matmul: the lhs packed in tiles of 8 rows, column panels of 32
// in parallel, rows of 8 (the partial last row tile peeled), k innermost,
// each tile vectorized.
// CHECK-LABEL: func @matmul
// The accumulators start from zeros: the result is not zero-filled first.
// CHECK-DAG: %[[ZERO4:.*]] = arith.constant dense<0.000000e+00> : vector<4x32xf32>
// CHECK-DAG: %[[ZERO8:.*]] = arith.constant dense<0.000000e+00> : vector<8x32xf32>
// The lhs [12, 16] has one whole tile of 8 rows, packed as [1, 16, 8]: tile
// t, step k holds rows 8t..8t+7 of column k, contiguous. Nothing is
// padded: the last 4 rows are read where they lie.
// CHECK-NOT: tensor.pad
// CHECK: %[[WHOLE:.*]] = tensor.extract_slice %arg0[0, 0] [8, 16] [1, 1]
// CHECK: %[[TILES:.*]] = tensor.expand_shape %[[WHOLE]] {{\[}}[0, 1], [2]] output_shape [1, 8, 16] : tensor<8x16xf32> into tensor<1x8x16xf32>
// CHECK: %[[PACKED:.*]] = scf.forall {{.*}} -> (tensor<1x16x8xf32>)
// CHECK: tensor.extract_slice %[[TILES]]
// CHECK: %[[RESULT:.*]] = tensor.empty() : tensor<12x64xf32>
// CHECK-NOT: linalg.fill
// CHECK: scf.forall (%{{.*}}) = (0) to (64) step (32) shared_outs(%{{.*}} = %[[RESULT]])
// The panel's rhs columns are packed into a contiguous buffer first, one
// row of 32 at a time (a whole-row transfer, which canonicalizes to a
// slice copy).
// CHECK: %[[PANEL:.*]] = scf.for %[[R:.*]] = %c0 to %c16 step %c1 iter_args(%{{.*}} = %{{.*}}) -> (tensor<16x32xf32>)
// CHECK: %[[ROW:.*]] = tensor.extract_slice %{{.*}}[%[[R]], 0] [1, 32] [1, 1] : tensor<16x32xf32> to tensor<1x32xf32>
// CHECK: tensor.insert_slice %[[ROW]] into %{{.*}}[%[[R]], 0] [1, 32] [1, 1] : tensor<1x32xf32> into tensor<16x32xf32>
// The accumulator starts as zeros, is carried in registers through the k
// loop, and written once.
// CHECK-NOT: vector.transfer_read {{.*}} : tensor<8x32xf32>, vector<8x32xf32>
// CHECK: scf.for %[[K:.*]] = %c0 to %c16 step %c1 iter_args({{.*}}, %[[ACC:.*]] = %[[ZERO8]]) -> ({{.*}}, vector<8x32xf32>)
// CHECK: tensor.extract_slice %[[PANEL]][%[[K]], 0] [1, 32]
// CHECK: %[[LHS:.*]] = tensor.extract_slice %[[PACKED]][0, %[[K]], 0] [1, 1, 8] [1, 1, 1] : tensor<1x16x8xf32> to tensor<1x8xf32>
// CHECK: %[[RHS:.*]] = vector.transfer_read {{.*}} : tensor<1x32xf32>, vector<1x32xf32>
// Each step of k is an outer product: each lhs element, read as a scalar,
// broadcast and multiplied with the rhs row into its accumulator row by a
// fused multiply-add.
// CHECK: %[[A0:.*]] = tensor.extract %[[LHS]][%c0, %c0] : tensor<1x8xf32>
// CHECK: %[[C0:.*]] = vector.extract %[[ACC]][0] : vector<32xf32> from vector<8x32xf32>
// CHECK: %[[B:.*]] = vector.extract %[[RHS]][0] : vector<32xf32> from vector<1x32xf32>
// CHECK: %[[S0:.*]] = vector.broadcast %[[A0]] : f32 to vector<32xf32>
// CHECK: vector.fma %[[B]], %[[S0]], %[[C0]] : vector<32xf32>
// CHECK-COUNT-7: vector.fma
// CHECK: scf.yield {{.*}} : {{.*}}, vector<8x32xf32>
// CHECK: vector.transfer_write {{.*}} : vector<8x32xf32>, tensor<8x32xf32>
// The peeled rows 8..11: a tile of 4 rows, reading the lhs itself, a
// [4, 1] column per k.
// CHECK-NOT: vector.transfer_read {{.*}} : tensor<4x32xf32>, vector<4x32xf32>
// CHECK: scf.for %[[K2:.*]] = %c0 to %c16 step %c1 iter_args({{.*}}, %{{.*}} = %[[ZERO4]])
// CHECK: tensor.extract_slice %arg0[8, %[[K2]]] [4, 1] [1, 1] : tensor<12x16xf32> to tensor<4x1xf32>
// CHECK-COUNT-4: vector.fma {{.*}} : vector<32xf32>
// CHECK-NOT: vector.fma
// CHECK: vector.transfer_write {{.*}} : vector<4x32xf32>, tensor<4x32xf32>
// CHECK: scf.forall.in_parallel
func.func @matmul(%a: tensor<12x16xf32>, %b: tensor<16x64xf32>) -> tensor<12x64xf32> {
  %c = kiln.matmul %a, %b : (tensor<12x16xf32>, tensor<16x64xf32>) -> tensor<12x64xf32>
  return %c : tensor<12x64xf32>
}

// -----

// Integer matmuls are left to the plain loops.
// CHECK-LABEL: func @integer_matmul
// CHECK-NOT: scf.forall
// CHECK-NOT: vector.
// CHECK: linalg.generic
func.func @integer_matmul(%a: tensor<12x16xi64>, %b: tensor<16x64xi64>) -> tensor<12x64xi64> {
  %c = kiln.matmul %a, %b : (tensor<12x16xi64>, tensor<16x64xi64>) -> tensor<12x64xi64>
  return %c : tensor<12x64xi64>
}

// -----

// A transpose of the last two dims is copied in parallel 16x16 blocks,
// each transposed in registers.
// CHECK-DAG: #[[$SWAP:.*]] = affine_map<(d0, d1) -> (d1, d0)>
// CHECK-LABEL: func @transpose_blocks
// CHECK: scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (40, 24) step (16, 16)
// CHECK: vector.transfer_read {{.*}} {in_bounds = [true, true], permutation_map = #[[$SWAP]]} : tensor<?x?xf32>, vector<16x16xf32>
// CHECK: vector.transfer_write {{.*}} : vector<16x16xf32>, tensor<?x?xf32>
func.func @transpose_blocks(%x: tensor<24x40xf32>) -> tensor<40x24xf32> {
  %0 = kiln.transpose %x permutation = [1, 0] : (tensor<24x40xf32>) -> tensor<40x24xf32>
  return %0 : tensor<40x24xf32>
}

// -----

// Whole 16x16 blocks read their 16 rows and transpose them with two-source
// shuffles (64 of them), not element by element.
// CHECK-LABEL: func @transpose_whole_blocks
// CHECK: scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (48, 32) step (16, 16)
// CHECK: %[[ROWS:.*]] = vector.transfer_read {{.*}} {in_bounds = [true, true]} : tensor<16x16xf32>, vector<16x16xf32>
// CHECK: %[[R0:.*]] = vector.extract %[[ROWS]][0] : vector<16xf32> from vector<16x16xf32>
// CHECK: %[[R1:.*]] = vector.extract %[[ROWS]][1] : vector<16xf32> from vector<16x16xf32>
// CHECK: vector.shuffle %[[R0]], %[[R1]] [0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29]
// CHECK-COUNT-63: vector.shuffle
// CHECK-NOT: vector.shuffle
// CHECK: vector.transfer_write {{.*}} : vector<16x16xf32>, tensor<16x16xf32>
func.func @transpose_whole_blocks(%x: tensor<32x48xf32>) -> tensor<48x32xf32> {
  %0 = kiln.transpose %x permutation = [1, 0] : (tensor<32x48xf32>) -> tensor<48x32xf32>
  return %0 : tensor<48x32xf32>
}

// -----

// Other permutations keep the plain lowering.
// CHECK-LABEL: func @transpose_other
// CHECK-NOT: scf.forall
// CHECK: linalg.transpose
func.func @transpose_other(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = kiln.transpose %x permutation = [2, 0, 1] : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  return %0 : tensor<4x2x3xf32>
}

// -----

// 100 columns: the 96 that fill whole 32-column panels are tiled apart from
// the last 4, whose tiles are 4 lanes wide: no masks (a 16-lane masked
// access of a 1-wide panel became a full-width load past the end of the
// result on AVX2).
// Only the last 4 columns are zero-filled: the full panels' tiles start
// from zero vectors.
// CHECK-LABEL: func @ragged_columns
// CHECK: %[[RESULT:.*]] = tensor.empty() : tensor<64x100xf32>
// CHECK-NOT: linalg.fill
// CHECK: %[[FULL:.*]] = tensor.extract_slice %{{.*}}[0, 0] [96, 96] [1, 1] : tensor<96x100xf32> to tensor<96x96xf32>
// CHECK: %[[PANELS:.*]] = tensor.extract_slice %[[RESULT]][0, 0] [64, 96] [1, 1] : tensor<64x100xf32> to tensor<64x96xf32>
// CHECK: scf.forall (%{{.*}}) = (0) to (96) step (32) shared_outs(%{{.*}} = %[[PANELS]])
// CHECK: %[[INSERTED:.*]] = tensor.insert_slice %{{.*}} into %[[RESULT]][0, 0] [64, 96] [1, 1] : tensor<64x96xf32> into tensor<64x100xf32>
// CHECK: tensor.extract_slice %{{.*}}[0, 96] [96, 4] [1, 1] : tensor<96x100xf32> to tensor<96x4xf32>
// CHECK: %[[REST:.*]] = tensor.extract_slice %[[INSERTED]][0, 96] [64, 4] [1, 1] : tensor<64x100xf32> to tensor<64x4xf32>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[REST]] : tensor<64x4xf32>)
// CHECK-NOT: vector.create_mask
// CHECK-NOT: vector.constant_mask
// CHECK: vector.fma {{.*}} : vector<4xf32>
// CHECK: tensor.insert_slice %{{.*}}[0, 96] [64, 4] [1, 1] : tensor<64x4xf32> into tensor<64x100xf32>
func.func @ragged_columns(%a: tensor<64x96xf32>, %b: tensor<96x100xf32>) -> tensor<64x100xf32> {
  %0 = kiln.matmul %a, %b : (tensor<64x96xf32>, tensor<96x100xf32>) -> tensor<64x100xf32>
  return %0 : tensor<64x100xf32>
}

// -----

// An lhs bigger than half the L3 cache (here 4096 x 4096 f32, 64 MB) is
// blocked by rows too: each parallel task takes 512 rows (8 MB of lhs,
// which stays in L3 while its thread walks the panels) by 32 columns.
// CHECK-LABEL: func @big_lhs
// CHECK: scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (4096, 64) step (512, 32)
func.func @big_lhs(%a: tensor<4096x4096xf32>, %b: tensor<4096x64xf32>) -> tensor<4096x64xf32> {
  %0 = kiln.matmul %a, %b : (tensor<4096x4096xf32>, tensor<4096x64xf32>) -> tensor<4096x64xf32>
  return %0 : tensor<4096x64xf32>
}

// -----

// At half the L3 (2048 x 2048, 16 MB) rows stay whole.
// CHECK-LABEL: func @fitting_lhs
// CHECK: scf.forall (%{{.*}}) = (0) to (64) step (32)
func.func @fitting_lhs(%a: tensor<2048x2048xf32>, %b: tensor<2048x64xf32>) -> tensor<2048x64xf32> {
  %0 = kiln.matmul %a, %b : (tensor<2048x2048xf32>, tensor<2048x64xf32>) -> tensor<2048x64xf32>
  return %0 : tensor<2048x64xf32>
}

// -----

// A contraction with an empty loop (K = 0 here; M or N alike) is left
// untiled: upstream tiling divides by the loop size and crashed. Its loops
// run zero times, leaving the zero-filled result.
// CHECK-LABEL: func @empty_k
// CHECK-NOT: scf.forall
// CHECK: linalg.generic
// CHECK-NOT: kiln.register_tile
func.func @empty_k(%a: tensor<2x0xf32>, %b: tensor<0x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.matmul %a, %b : (tensor<2x0xf32>, tensor<0x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// A transposed rhs (x · wᵀ, GPT-2's tied LM head) is read in place: no
// transposed copy of the whole operand; each 32-column panel transposes its
// [32, K] rows of w into the packed [K, 32] buffer (in 16 x 16 blocks).
// CHECK-LABEL: func @transposed_rhs
// CHECK-NOT: linalg.transpose
// CHECK: scf.forall (%[[J:.*]]) = (0) to (64) step (32)
// CHECK: %[[ROWS:.*]] = tensor.extract_slice %arg1[%[[J]], 0] [32, 16] [1, 1] : tensor<64x16xf32> to tensor<32x16xf32>
// CHECK: scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (16, 32) step (16, 16)
// CHECK: tensor.extract_slice %[[ROWS]]
// CHECK: vector.transfer_read {{.*}} : tensor<16x16xf32>, vector<16x16xf32>
// CHECK: vector.fma {{.*}} : vector<32xf32>
func.func @transposed_rhs(%x: tensor<12x16xf32>, %w: tensor<64x16xf32>) -> tensor<12x64xf32> {
  %t = kiln.transpose %w permutation = [1, 0] : (tensor<64x16xf32>) -> tensor<16x64xf32>
  %0 = kiln.matmul %x, %t : (tensor<12x16xf32>, tensor<16x64xf32>) -> tensor<12x64xf32>
  return %0 : tensor<12x64xf32>
}

// -----

// A transpose with another user stays (copied in blocks for that user),
// and the matmul still reads its input in place.
// CHECK-LABEL: func @shared_transpose
// CHECK: %[[T:.*]] = scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (16, 64) step (16, 16)
// CHECK: %[[C:.*]] = scf.forall (%[[J:.*]]) = (0) to (64) step (32)
// CHECK: tensor.extract_slice %arg1[%[[J]], 0] [32, 16] [1, 1]
// CHECK: return %[[C]], %[[T]]
func.func @shared_transpose(%x: tensor<12x16xf32>, %w: tensor<64x16xf32>) -> (tensor<12x64xf32>, tensor<16x64xf32>) {
  %t = kiln.transpose %w permutation = [1, 0] : (tensor<64x16xf32>) -> tensor<16x64xf32>
  %0 = kiln.matmul %x, %t : (tensor<12x16xf32>, tensor<16x64xf32>) -> tensor<12x64xf32>
  return %0, %t : tensor<12x64xf32>, tensor<16x64xf32>
}

// -----

// A transposed lhs (gᵀ · h, a weight gradient) is packed straight from g
// as [13, 64, 8]: its 12 whole tiles from g's first 96 columns, split into
// [64, 12, 8] and permuted, and the last from its 4 columns padded to 8.
// The whole transposed copy ([100, 64], in 16 x 16 blocks) is gone.
// CHECK-LABEL: func @transposed_lhs
// CHECK-NOT: step (16, 16)
// CHECK: %[[INTO:.*]] = tensor.empty() : tensor<13x64x8xf32>
// CHECK: %[[WHOLE:.*]] = tensor.extract_slice %arg0[0, 0] [64, 96] [1, 1]
// CHECK: %[[TILES:.*]] = tensor.expand_shape %[[WHOLE]] {{\[}}[0], [1, 2]] output_shape [64, 12, 8] : tensor<64x96xf32> into tensor<64x12x8xf32>
// CHECK: %[[T12:.*]] = linalg.transpose ins(%[[TILES]] : tensor<64x12x8xf32>) outs(%{{.*}} : tensor<12x64x8xf32>) permutation = [1, 0, 2]
// CHECK: %[[FIRST:.*]] = tensor.insert_slice %[[T12]] into %[[INTO]][0, 0, 0] [12, 64, 8]
// CHECK: %[[REST:.*]] = tensor.extract_slice %arg0[0, 96] [64, 4] [1, 1]
// CHECK: %[[PADDED:.*]] = tensor.pad %[[REST]] low[0, 0] high[0, 4]
// CHECK: %[[T1:.*]] = linalg.transpose ins(%{{.*}} : tensor<64x1x8xf32>) outs(%{{.*}} : tensor<1x64x8xf32>) permutation = [1, 0, 2]
// CHECK: %[[PACKED:.*]] = tensor.insert_slice %[[T1]] into %[[FIRST]][12, 0, 0] [1, 64, 8]
// One panel of 32 columns: its loop is folded away; the rows of 8.
// CHECK: scf.for %{{.*}} = %c0 to %c96 step %c8
// CHECK: tensor.extract_slice %[[PACKED]][%{{.*}}, %{{.*}}, 0] [1, 1, 8] [1, 1, 1] : tensor<13x64x8xf32> to tensor<1x8xf32>
// CHECK: vector.fma {{.*}} : vector<32xf32>
func.func @transposed_lhs(%g: tensor<64x100xf32>, %h: tensor<64x32xf32>) -> tensor<100x32xf32> {
  %t = kiln.transpose %g permutation = [1, 0] : (tensor<64x100xf32>) -> tensor<100x64xf32>
  %0 = kiln.matmul %t, %h : (tensor<100x64xf32>, tensor<64x32xf32>) -> tensor<100x32xf32>
  return %0 : tensor<100x32xf32>
}

// -----

// A packed panel bigger than half the L2 cache (here [512, 32] f32, 64 KB,
// against l2-bytes=65536) has its k walked in blocks of k-block steps: an
// scf.for over the blocks, marked to keep the panels' parallel loop inside
// it parallel, reading the packed lhs at the block's k. With the default
// L2 (1 MiB) the same matmul is not blocked.
// KBLOCK-LABEL: func @long_k
// KBLOCK: %[[PACKED:.*]] = scf.forall {{.*}} -> (tensor<1x512x8xf32>)
// KBLOCK: scf.for %[[KB:.*]] = %c0 to %c512 step %c128 iter_args
// KBLOCK: tensor.extract_slice %arg1[%[[KB]], 0] [128, 64]
// KBLOCK: scf.forall (%{{.*}}) = (0) to (64) step (32)
// KBLOCK: scf.for %{{.*}} = %c0 to %c128 step %c1 iter_args(%{{.*}} = %{{.*}}) -> (tensor<128x32xf32>)
// Each block adds to the sums of the blocks before it: its tiles read them.
// KBLOCK: vector.transfer_read {{.*}} : tensor<8x32xf32>, vector<8x32xf32>
// KBLOCK: scf.for %[[K:.*]] = %c0 to %c128 step %c1
// KBLOCK: %[[AT:.*]] = affine.apply #{{.*}}()[%[[K]], %[[KB]]]
// KBLOCK: tensor.extract_slice %[[PACKED]][0, %[[AT]], 0] [1, 1, 8]
// KBLOCK: } {kiln.parallel_body}
// CHECK-LABEL: func @long_k
// CHECK-NOT: kiln.parallel_body
// CHECK: return
func.func @long_k(%a: tensor<12x512xf32>, %b: tensor<512x64xf32>) -> tensor<12x64xf32> {
  %0 = kiln.matmul %a, %b : (tensor<12x512xf32>, tensor<512x64xf32>) -> tensor<12x64xf32>
  return %0 : tensor<12x64xf32>
}

// -----

// A dequantized weight (4-bit codes in groups of 32) read transposed: each
// column panel dequantizes its own 16 rows of codes ([16, 2, 16, 2] of the
// blocked iteration space) right before packing them; the [48, 64] float
// weight is never computed whole.
// AVX2-LABEL: func @dequantized_rhs
// AVX2-NOT: linalg.generic {{.*}} outs(%{{.*}} : tensor<48x2x16x2xf32>)
// AVX2: scf.forall (%[[N:.+]]) = (0) to (48) step (16)
// AVX2: %[[CODES:.+]] = tensor.extract_slice %{{.*}}[%[[N]], 0, 0] [16, 2, 16] [1, 1, 1] : tensor<48x2x16xi8> to tensor<16x2x16xi8>
// AVX2: %[[DEQ:.+]] = linalg.generic {{.*}} ins(%[[CODES]], %{{.*}} : tensor<16x2x16xi8>, tensor<16x2xf32>)
// AVX2: tensor.collapse_shape %[[DEQ]] {{\[\[}}0], [1, 2, 3]] : tensor<16x2x16x2xf32> into tensor<16x64xf32>
func.func @dequantized_rhs(%x: tensor<12x64xf32>, %q: tensor<48x32xi8>, %s: tensor<48x2xf32>) -> tensor<12x48xf32> {
  %w = kiln.dequantize %q, %s bits = 4 : (tensor<48x32xi8>, tensor<48x2xf32>) -> tensor<48x64xf32>
  %y = kiln.matmul %x, %w transpose_rhs : (tensor<12x64xf32>, tensor<48x64xf32>) -> tensor<12x48xf32>
  return %y : tensor<12x48xf32>
}

// -----

// One row (a decoding step): the panels widen to 6 x 16 = 96 columns, so
// the tile keeps twelve 8-lane accumulators, and the row-major rhs is read
// in place, not packed. A transposed rhs keeps 16-column panels.
// AVX2-LABEL: func @one_row
// AVX2: scf.forall (%{{.*}}) = (0) to (192) step (96)
// AVX2-NOT: linalg.copy
// AVX2: vector.fma {{.*}} : vector<96xf32>
// AVX2-LABEL: func @one_row_transposed
// AVX2: scf.forall (%{{.*}}) = (0) to (192) step (16)
func.func @one_row(%x: tensor<1x64xf32>, %w: tensor<64x192xf32>) -> tensor<1x192xf32> {
  %0 = kiln.matmul %x, %w : (tensor<1x64xf32>, tensor<64x192xf32>) -> tensor<1x192xf32>
  return %0 : tensor<1x192xf32>
}
func.func @one_row_transposed(%x: tensor<1x64xf32>, %w: tensor<192x64xf32>) -> tensor<1x192xf32> {
  %0 = kiln.matmul %x, %w transpose_rhs : (tensor<1x64xf32>, tensor<192x64xf32>) -> tensor<1x192xf32>
  return %0 : tensor<1x192xf32>
}

// -----

// Dynamic rows and columns with a static k (not blocked): the masked tiles
// start from zeros too, and the result is not filled.
// CHECK-LABEL: func @dynamic_rows_columns
// CHECK-DAG: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<8x32xf32>
// CHECK-NOT: linalg.fill
// CHECK: scf.for %{{.*}} = %c0 to %c16 step %c1 iter_args(%{{.*}}, %{{.*}}, %{{.*}} = %[[ZERO]]) -> (tensor<?x?xf32>, tensor<8x?xf32>, vector<8x32xf32>)
// CHECK: return
func.func @dynamic_rows_columns(%a: tensor<?x16xf32>, %b: tensor<16x?xf32>) -> tensor<?x?xf32> {
  %c = kiln.matmul %a, %b : (tensor<?x16xf32>, tensor<16x?xf32>) -> tensor<?x?xf32>
  return %c : tensor<?x?xf32>
}

// -----

// A weight stored as column panels (kiln-pack-weights) of the tile's
// width (6 x 64): each panel's register tiles read the stored [K, 64]
// panel in place, the full panels at panel index column / 64 and the last,
// split-off 8 columns from panel 3, and nothing unpacks or packs the
// weight. With other panels (8 x 32 and 6 x 16 tiles), the stored
// 64-column ones do not fit: unpacked whole (correct, slow).
//
// The full panels' register tiles prefetch the next stored panel into L2
// (the last panel itself): step k of row tile t takes element
// ((64 t + k) S) >> 16 of the panel's 4096, S = 4096 * 2^16 / (2 * 64)
// its floats per step in fixed point (32 here: a line every other step,
// the adjacent-line prefetcher the other), clamped to the last one (the
// peeled partial tile), as row e / 64, column e mod 64. The split-off
// last panel has no next one.
// STORED-DAG: #[[$NEXT:.*]] = affine_map<()[s0] -> (s0 floordiv 64 + 1, 3)>
// STORED-LABEL: func @stored_panels
// STORED-SAME: %[[P:[a-z0-9]+]]: tensor<4x64x64xf32>
// STORED-NOT: linalg.unpack
// STORED-NOT: linalg.copy
// STORED-DAG: %[[C6:.*]] = arith.constant 6 : index
// STORED-DAG: %[[C64:.*]] = arith.constant 64 : index
// STORED-DAG: %[[C16:.*]] = arith.constant 16 : index
// STORED-DAG: %[[LAST:.*]] = arith.constant 4095 : index
// STORED-DAG: %[[SCALE:.*]] = arith.constant 2097152 : index
// STORED-DAG: %[[TILE:.*]] = arith.constant 134217728 : index
// STORED: %[[BUF:.*]] = bufferization.to_buffer %[[P]] read_only : tensor<4x64x64xf32> to memref<4x64x64xf32, strided<[?, ?, ?], offset: ?>>
// STORED: scf.forall (%[[COL0:.*]]) = (0) to (192) step (64)
// STORED: tensor.extract_slice %[[P]][%{{.*}}, 0, 0] [1, 64, 64] [1, 1, 1] : tensor<4x64x64xf32> to tensor<64x64xf32>
// STORED: %[[NEXTP:.*]] = affine.min #[[$NEXT]]()[%[[COL0]]]
// STORED: scf.for %[[M:[a-z0-9]+]] =
// STORED: %[[T:.*]] = arith.divui %[[M]], %[[C6]] : index
// STORED: %[[START:.*]] = arith.muli %[[T]], %[[TILE]] : index
// STORED: scf.for %[[K:[a-z0-9]+]] =
// STORED: %[[STEP:.*]] = arith.muli %[[K]], %[[SCALE]] : index
// STORED: %[[FIXED:.*]] = arith.addi %[[START]], %[[STEP]] : index
// STORED: %[[E:.*]] = arith.shrui %[[FIXED]], %[[C16]] : index
// STORED: %[[CL:.*]] = arith.minui %[[E]], %[[LAST]] : index
// STORED: %[[R:.*]] = arith.divui %[[CL]], %[[C64]] : index
// STORED: %[[C:.*]] = arith.remui %[[CL]], %[[C64]] : index
// STORED: memref.prefetch %[[BUF]][%[[NEXTP]], %[[R]], %[[C]]], read, locality<2>, data
// STORED: tensor.extract_slice %[[P]][3, 0, 0] [1, 64, 8] [1, 1, 1] : tensor<4x64x64xf32> to tensor<64x8xf32>
// STORED-NOT: memref.prefetch
// STORED-NOT: linalg.unpack
// STORED-LABEL: func @stored_pairs
// NOPF-LABEL: func @stored_panels
// NOPF-NOT: memref.prefetch
// NOPF-LABEL: func @stored_pairs
// CHECK-LABEL: func @stored_panels
// CHECK: linalg.transpose ins(%{{.*}} : tensor<4x64x64xf32>) outs(%{{.*}} : tensor<64x4x64xf32>) permutation = [1, 0, 2]
// CHECK-NOT: linalg.unpack
// AVX2-LABEL: func @stored_panels
// AVX2: linalg.transpose ins(%{{.*}} : tensor<4x64x64xf32>) outs(%{{.*}} : tensor<64x4x64xf32>) permutation = [1, 0, 2]
// AVX2-NOT: linalg.unpack
func.func @stored_panels(%x: tensor<12x64xf32>, %p: tensor<4x64x64xf32>) -> tensor<12x200xf32> {
  %w = kiln.unpack_panels %p columns = 200 : (tensor<4x64x64xf32>) -> tensor<64x200xf32>
  %y = kiln.matmul %x, %w : (tensor<12x64xf32>, tensor<64x200xf32>) -> tensor<12x200xf32>
  return %y : tensor<12x200xf32>
}

// -----

// Stored bf16 pairs (for the AMX kernel): the contraction reads the stored
// panels through (n floordiv 128, k floordiv 2, n mod 128, k mod 2) and
// the unpacking goes.
// CHECK: #{{.+}} = affine_map<(d0, d1, d2) -> (d2 floordiv 128, d1 floordiv 2, d2 mod 128, d1 mod 2)>
// CHECK-LABEL: func @stored_pairs
// CHECK-SAME: %[[Q:[a-z0-9]+]]: tensor<2x32x128x2xbf16>
// CHECK-NOT: linalg.unpack
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[Q]] : tensor<40x64xbf16>, tensor<2x32x128x2xbf16>)
func.func @stored_pairs(%x: tensor<40x64xbf16>, %q: tensor<2x32x128x2xbf16>) -> tensor<40x200xf32> {
  %w = kiln.unpack_panels %q columns = 200 : (tensor<2x32x128x2xbf16>) -> tensor<64x200xbf16>
  %y = kiln.matmul %x, %w : (tensor<40x64xbf16>, tensor<64x200xbf16>) -> tensor<40x200xbf16>
  %yf = kiln.cast %y : tensor<40x200xbf16> -> tensor<40x200xf32>
  return %yf : tensor<40x200xf32>
}

// -----

// 128 x 3072 by a stored [3072, 768] weight (gpt2-small's MLP projection at
// 1 x 128) with a 2 MiB L2: the 1.5 MB lhs and two 786 KB panels (the one
// read, the next prefetched) outgrow three quarters of it, so k is walked
// in two blocks of 1536 (a parallel loop over the panels each, adding into
// the result), whose lhs columns stay in L2 for all panels; each block
// prefetches the same rows of the next panel (row k0 + e / 64). With the
// defaults (8 x 32 tiles, a 1 MiB L2) three blocks of 1024; 512 rows of
// K = 768 (blocks shorter than 1024 steps: too short to pay) are not
// blocked, with either.
// LHSK-LABEL: func @lhs_k_blocks
// LHSK: scf.for %[[K0:[a-z0-9]+]] = %c0 to %c3072 step %c1536
// LHSK: scf.forall
// LHSK: tensor.extract_slice %{{.*}}[%{{.*}}, %[[K0]], 0] [1, 1536, 64] [1, 1, 1] : tensor<12x3072x64xf32> to tensor<1536x64xf32>
// LHSK: scf.for %{{.*}} = %c0 to %c1536 step %c1
// LHSK: %[[E:.*]] = arith.minui %{{.*}}, %c98303 : index
// LHSK: %[[R:.*]] = arith.divui %[[E]], %c64 : index
// LHSK: %[[ROW:.*]] = arith.addi %[[K0]], %[[R]] : index
// LHSK: memref.prefetch %{{.*}}[%{{.*}}, %[[ROW]], %{{.*}}]
// LHSK-LABEL: func @rows_512
// LHSK-NOT: to %c768 step %c{{[0-9][0-9]+}}
// LHSK: return
// CHECK-LABEL: func @lhs_k_blocks
// CHECK: scf.for %{{.*}} = %c0 to %c3072 step %c1024
// CHECK: scf.forall
// CHECK-LABEL: func @rows_512
// CHECK-NOT: to %c768 step %c{{[0-9][0-9]+}}
// CHECK: return
func.func @lhs_k_blocks(%x: tensor<128x3072xf32>, %p: tensor<12x3072x64xf32>) -> tensor<128x768xf32> {
  %w = kiln.unpack_panels %p columns = 768 : (tensor<12x3072x64xf32>) -> tensor<3072x768xf32>
  %y = kiln.matmul %x, %w : (tensor<128x3072xf32>, tensor<3072x768xf32>) -> tensor<128x768xf32>
  return %y : tensor<128x768xf32>
}
func.func @rows_512(%x: tensor<512x768xf32>, %p: tensor<48x768x64xf32>) -> tensor<512x3072xf32> {
  %w = kiln.unpack_panels %p columns = 3072 : (tensor<48x768x64xf32>) -> tensor<768x3072xf32>
  %y = kiln.matmul %x, %w : (tensor<512x768xf32>, tensor<768x3072xf32>) -> tensor<512x3072xf32>
  return %y : tensor<512x3072xf32>
}
