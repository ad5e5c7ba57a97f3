// RUN: kiln-opt %s --split-input-file --kiln-lower-amx-matmuls | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-lower-amx-matmuls="panel-blocks=1" | FileCheck %s --check-prefix=ONE
// RUN: not kiln-opt %s --split-input-file --kiln-lower-amx-matmuls="panel-blocks=0" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: kiln-opt %s --split-input-file --kiln-lower-amx-matmuls="bf16-dot=avx512" | FileCheck %s --check-prefix=REG --implicit-check-not=amx.
// RUN: not kiln-opt %s --split-input-file --kiln-lower-amx-matmuls="bf16-dot=tiles" 2>&1 | FileCheck %s --check-prefix=BADDOT

// BAD: panel-blocks must be positive (got 0)
// BADDOT: bf16-dot must be amx or avx512 (got 'tiles')

#lhs = affine_map<(d0, d1, d2) -> (d0, d2)>
#rhsT = affine_map<(d0, d1, d2) -> (d1, d2)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>

// A [?, 70] x [40, 70]^T bf16 matmul into f32: K = 70 pads to 96 (48
// words; every block of lhs rows is copied zero-padded), N = 40 is one
// ragged panel of 128 columns (two 32-column blocks are needed). The panel
// packs its rhs as [48, 128] words, transposing 16 x 16 blocks of words;
// each 32 x 32 block of sums is four f32 tiles over k steps of 32 (two lhs
// and two rhs tiles each), stored to a buffer and added to the output,
// masked at the ragged panel. The module asks for the AMX state when it
// is loaded.
// CHECK-LABEL: func.func @transposed(
// CHECK-SAME: %[[X:.+]]: memref<?x70xbf16>, %[[W:.+]]: memref<40x70xbf16>, %[[Y:.+]]: memref<?x40xf32>
// CHECK: scf.parallel
// CHECK: %[[BYTES:.+]] = memref.alloc() : memref<24576xi8>
// CHECK: %[[WORDS:.+]] = memref.view %[[BYTES]]{{.*}} to memref<48x128xi32>
// CHECK: %[[PAIRS:.+]] = memref.view %[[BYTES]]{{.*}} to memref<48x256xbf16>
// CHECK: vector.transfer_read %[[W]]{{.*}} : memref<40x70xbf16>, vector<16x32xbf16>
// CHECK: vector.bitcast %{{.*}} : vector<16x32xbf16> to vector<16x16xi32>
// CHECK: vector.transpose
// CHECK: vector.transfer_write {{.*}}, %[[WORDS]]
// CHECK: %[[SUMS:.+]] = memref.alloc() : memref<32x32xf32>
// CHECK: %[[PADDED:.+]] = memref.alloc() : memref<32x96xbf16>
// CHECK: linalg.fill {{.*}} outs(%[[PADDED]]
// CHECK: vector.transfer_read %[[X]]
// CHECK: amx.tile_zero : !amx.tile<16x16xf32>
// CHECK: %[[T:.+]]:4 = scf.for {{.*}} iter_args
// CHECK-COUNT-2: amx.tile_load %[[PADDED]]
// CHECK-COUNT-2: amx.tile_load %[[PAIRS]]
// CHECK-COUNT-4: amx.tile_mulf
// CHECK: amx.tile_store %[[SUMS]]
// CHECK: vector.load %[[SUMS]]
// CHECK: vector.transfer_read %[[Y]]{{.*}} : memref<?x40xf32>, vector<16xf32>
// CHECK: vector.transfer_write %{{.*}}, %[[Y]]
// CHECK-NOT: linalg.generic
// CHECK: llvm.func @syscall(i64, ...) -> i64
// CHECK: llvm.func internal @kiln_request_amx_state()
// CHECK: llvm.mlir.global_ctors ctors = [@kiln_request_amx_state]
// With bf16-dot=avx512 the same panels and padded rows, and each block's
// sums in four register tiles of 8 rows by 32 columns: 16 accumulators,
// per pair of k two rhs vectors and, per row, the lhs pair broadcast as a
// 32-bit word into two vdpbf16ps. No tiles, no AMX state.
// REG-LABEL: func.func @transposed(
// REG: %[[PAIRS:.+]] = memref.view %{{.*}} to memref<48x256xbf16>
// REG: %[[SUMS:.+]] = memref.alloc() : memref<32x32xf32>
// REG: %[[PADDED:.+]] = memref.alloc() : memref<32x96xbf16>
// REG: scf.for %{{.*}} = %{{.*}} to %[[COUNT:.+]] step %c8
// REG: %[[R:.+]]:16 = scf.for %{{.*}} = %{{.*}} to %c48{{[_0-9]*}} step %{{.*}} iter_args
// REG-COUNT-2: vector.load %[[PAIRS]]{{.*}} : memref<48x256xbf16>, vector<32xbf16>
// REG: vector.load %[[PADDED]]{{.*}} : memref<32x96xbf16>, vector<2xbf16>
// REG: vector.bitcast %{{.*}} : vector<2xbf16> to vector<1xi32>
// REG: vector.broadcast %{{.*}} : i32 to vector<16xi32>
// REG: vector.bitcast %{{.*}} : vector<16xi32> to vector<32xbf16>
// REG-COUNT-2: x86vector.avx512.dot
// REG-COUNT-16: vector.store %[[R]]#{{[0-9]+}}, %[[SUMS]]
// REG-NOT: kiln_request_amx_state
// ONE-LABEL: func.func @transposed(
// ONE: memref.alloc() : memref<6144xi8>
// ONE: memref<48x32xi32>
func.func @transposed(%x: memref<?x70xbf16>, %w: memref<40x70xbf16>, %y: memref<?x40xf32>) {
  linalg.generic {indexing_maps = [#lhs, #rhsT, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x70xbf16>, memref<40x70xbf16>) outs(%y : memref<?x40xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

// -----

#lhs = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
#rhs = affine_map<(d0, d1, d2, d3) -> (d3, d2)>
#out = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>

// [2, 64, 128] x [128, 256]: batch rows collapse into 128 rows, whole
// blocks loaded straight from the lhs; the row-major rhs packs by
// interleaving rows 2w and 2w + 1 of each 16 columns.
// CHECK-LABEL: func.func @row_major(
// CHECK-SAME: %[[X:.+]]: memref<2x64x128xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[X]]
// CHECK: scf.parallel
// CHECK: vector.transfer_read %{{.*}} : memref<128x256xbf16>, vector<2x16xbf16>
// CHECK: vector.shuffle {{.*}} [0, 16, 1, 17
// CHECK: amx.tile_load %[[ROWS]]
// CHECK-NOT: linalg.generic
func.func @row_major(%x: memref<2x64x128xbf16>, %w: memref<128x256xbf16>, %y: memref<2x64x256xf32>) {
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<2x64x128xbf16>, memref<128x256xbf16>) outs(%y : memref<2x64x256xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

// -----

#lhs = affine_map<(d0, d1, d2) -> (d0, d2)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>

// Left alone: f32 operands, a bf16 accumulator, a transposed lhs.
// CHECK-LABEL: func.func @others(
// CHECK-NOT: amx.
// CHECK-COUNT-3: linalg.generic
// CHECK-NOT: llvm.mlir.global_ctors
func.func @others(%a: memref<8x32xf32>, %b: memref<32x16xf32>, %c: memref<8x16xf32>,
                  %p: memref<8x32xbf16>, %q: memref<32x16xbf16>, %r: memref<8x16xbf16>, %t: memref<32x8xbf16>, %o: memref<8x16xf32>) {
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<8x32xf32>, memref<32x16xf32>) outs(%c : memref<8x16xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %0 = arith.mulf %x, %y : f32
    %1 = arith.addf %acc, %0 : f32
    linalg.yield %1 : f32
  }
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%p, %q : memref<8x32xbf16>, memref<32x16xbf16>) outs(%r : memref<8x16xbf16>) {
  ^bb0(%x: bf16, %y: bf16, %acc: bf16):
    %0 = arith.mulf %x, %y : bf16
    %1 = arith.addf %acc, %0 : bf16
    linalg.yield %1 : bf16
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0)>, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%t, %q : memref<32x8xbf16>, memref<32x16xbf16>) outs(%o : memref<8x16xf32>) {
  ^bb0(%x: bf16, %y: bf16, %acc: f32):
    %0 = arith.extf %x : bf16 to f32
    %1 = arith.extf %y : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

// -----

#lhs = affine_map<(d0, d1, d2) -> (d0, d2)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>

// A transposed weight copied to the plain layout (kiln's lowering of
// transpose_rhs) is read in place: the kernel packs the [N, K] source as a
// transposed rhs and the copy is gone.
// CHECK-LABEL: func.func @copied_transpose(
// CHECK-SAME: %[[X:.+]]: memref<?x64xbf16>, %[[T:.+]]: memref<96x64xbf16>
// CHECK-NOT: linalg.transpose
// CHECK: vector.transfer_read %[[T]]{{.*}} : memref<96x64xbf16>, vector<16x32xbf16>
// CHECK: amx.tile_mulf
// CHECK-NOT: linalg.transpose
func.func @copied_transpose(%x: memref<?x64xbf16>, %t: memref<96x64xbf16>, %y: memref<?x96xf32>) {
  %w = memref.alloc() : memref<64x96xbf16>
  linalg.transpose ins(%t : memref<96x64xbf16>) outs(%w : memref<64x96xbf16>) permutation = [1, 0]
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xbf16>, memref<64x96xbf16>) outs(%y : memref<?x96xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

// -----

#lhs = affine_map<(d0, d1, d2) -> (d0, d2)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>
#id = affine_map<(d0, d1) -> (d0, d1)>

// f32 weights cast to bf16 where they are used (mixed precision), two
// layers sharing the cast's buffer: each kernel rounds its f32 weight as
// it packs it, and both casts are gone. A cast whose buffer is read again
// after the matmul stays.
// CHECK-LABEL: func.func @cast_weights(
// CHECK-SAME: %[[F:[^:]+]]: memref<64x96xf32>, %[[G:[^:]+]]: memref<64x96xf32>
// CHECK-NOT: linalg.generic
// CHECK: vector.transfer_read %[[F]]{{.*}} : memref<64x96xf32>, vector<2x16xf32>
// CHECK: arith.truncf %{{.*}} : vector<2x16xf32> to vector<2x16xbf16>
// CHECK: vector.transfer_read %[[G]]{{.*}} : memref<64x96xf32>, vector<2x16xf32>
// CHECK-NOT: linalg.generic
// CHECK: return
// CHECK-LABEL: func.func @cast_read_again(
// CHECK: linalg.generic
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: amx.tile_mulf
// CHECK: memref.copy
func.func @cast_weights(%x: memref<?x64xbf16>, %f: memref<64x96xf32>, %g: memref<64x96xf32>, %y: memref<?x96xf32>) {
  %w = memref.alloc() : memref<64x96xbf16>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%f : memref<64x96xf32>) outs(%w : memref<64x96xbf16>) {
  ^bb0(%in: f32, %out: bf16):
    %0 = arith.truncf %in : f32 to bf16
    linalg.yield %0 : bf16
  }
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xbf16>, memref<64x96xbf16>) outs(%y : memref<?x96xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%g : memref<64x96xf32>) outs(%w : memref<64x96xbf16>) {
  ^bb0(%in: f32, %out: bf16):
    %0 = arith.truncf %in : f32 to bf16
    linalg.yield %0 : bf16
  }
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xbf16>, memref<64x96xbf16>) outs(%y : memref<?x96xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

func.func @cast_read_again(%x: memref<?x64xbf16>, %f: memref<64x96xf32>, %y: memref<?x96xf32>, %keep: memref<64x96xbf16>) {
  %w = memref.alloc() : memref<64x96xbf16>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%f : memref<64x96xf32>) outs(%w : memref<64x96xbf16>) {
  ^bb0(%in: f32, %out: bf16):
    %0 = arith.truncf %in : f32 to bf16
    linalg.yield %0 : bf16
  }
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xbf16>, memref<64x96xbf16>) outs(%y : memref<?x96xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  memref.copy %w, %keep : memref<64x96xbf16> to memref<64x96xbf16>
  return
}

// -----

#lhs = affine_map<(d0, d1, d2) -> (d0, d2)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>

// A transposed lhs (a weight gradient xᵀ·dy: [K, M] = [70, 45]) copied
// by kiln's lowering: the kernel packs the source into zero-padded rows
// ([64, 96]: pairs of k interleaved, 16 x 16 words transposed) in parallel
// stripes, every block of rows loads its tiles from them, and the copy is
// gone.
// CHECK-LABEL: func.func @transposed_lhs(
// CHECK-SAME: %[[S:[^:]+]]: memref<70x45xbf16>
// CHECK-NOT: linalg.transpose
// CHECK: %[[P:.+]] = memref.alloc() : memref<64x96xbf16>
// CHECK: scf.parallel
// CHECK: vector.transfer_read %[[S]]{{.*}} : memref<70x45xbf16>, vector<32x16xbf16>
// CHECK: vector.shuffle
// CHECK: vector.transpose
// CHECK: vector.transfer_write %{{.*}}, %[[P]]
// CHECK: scf.parallel
// CHECK: amx.tile_load %[[P]]
// CHECK-NOT: linalg.transpose
func.func @transposed_lhs(%s: memref<70x45xbf16>, %w: memref<70x40xbf16>, %y: memref<45x40xf32>) {
  %x = memref.alloc() : memref<45x70xbf16>
  linalg.transpose ins(%s : memref<70x45xbf16>) outs(%x : memref<45x70xbf16>) permutation = [1, 0]
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<45x70xbf16>, memref<70x40xbf16>) outs(%y : memref<45x40xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

// -----

#lhs = affine_map<(d0, d1, d2) -> (d0, d2)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>
#id = affine_map<(d0, d1) -> (d0, d1)>

// Copies the kernel must not read through: a cast whose f32 source is
// overwritten before the matmul (the matmul must see the old values), and
// one buffer read as both operands.
// CHECK-LABEL: func.func @source_overwritten(
// CHECK: linalg.generic
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: linalg.fill
// CHECK: amx.tile_mulf
// CHECK-LABEL: func.func @both_operands(
// CHECK: linalg.transpose
// CHECK: amx.tile_mulf
func.func @source_overwritten(%x: memref<?x64xbf16>, %f: memref<64x64xf32>, %y: memref<?x64xf32>) {
  %w = memref.alloc() : memref<64x64xbf16>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%f : memref<64x64xf32>) outs(%w : memref<64x64xbf16>) {
  ^bb0(%in: f32, %out: bf16):
    %0 = arith.truncf %in : f32 to bf16
    linalg.yield %0 : bf16
  }
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%f : memref<64x64xf32>)
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xbf16>, memref<64x64xbf16>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

func.func @both_operands(%t: memref<64x64xbf16>, %y: memref<64x64xf32>) {
  %w = memref.alloc() : memref<64x64xbf16>
  linalg.transpose ins(%t : memref<64x64xbf16>) outs(%w : memref<64x64xbf16>) permutation = [1, 0]
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%w, %w : memref<64x64xbf16>, memref<64x64xbf16>) outs(%y : memref<64x64xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

// -----

#lhs = affine_map<(d0, d1, d2) -> (d0, d2)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>

// The output zero-filled just before (the lowering's init of the sums):
// each element gets one block's sums, stored without reading the output,
// and the fill goes.
// CHECK-LABEL: func.func @zero_filled(
// CHECK-SAME: %[[Y:[^:]+]]: memref<?x40xf32>
// CHECK-NOT: linalg.fill ins(%{{.*}} : f32)
// CHECK-NOT: vector.transfer_read %[[Y]]
// CHECK: vector.transfer_write %{{.*}}, %[[Y]]
func.func @zero_filled(%x: memref<?x64xbf16>, %w: memref<40x64xbf16>, %y: memref<?x40xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<?x40xf32>)
  linalg.generic {indexing_maps = [#lhs, affine_map<(d0, d1, d2) -> (d1, d2)>, #out], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xbf16>, memref<40x64xbf16>) outs(%y : memref<?x40xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}

// -----

// A bf16 weight stored as the kernel's panels of pairs ([P, K / 2, 128, 2],
// kiln-pack-weights), read through (n floordiv 128, k floordiv 2, n mod
// 128, k mod 2): each panel's rhs tiles load from the stored panel p where
// it lies ([32, 256] bf16 rows of pairs), nothing is packed. With 32-column
// panels (panel-blocks=1) the stored width does not match: left to loops.
#lhsP = affine_map<(d0, d1, d2) -> (d0, d2)>
#pairs = affine_map<(d0, d1, d2) -> (d1 floordiv 128, d2 floordiv 2, d1 mod 128, d2 mod 2)>
#outP = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @stored_pairs(
// CHECK-SAME: %[[X:[a-z0-9]+]]: memref<?x64xbf16>, %[[W:[a-z0-9]+]]: memref<2x32x128x2xbf16>
// CHECK: scf.parallel (%[[P:.+]]) =
// CHECK-NOT: memref.alloc() : memref<{{.*}}xi8>
// CHECK: %[[PANEL:.+]] = memref.subview %[[W]][%[[P]], 0, 0, 0] [1, 32, 128, 2] [1, 1, 1, 1]
// CHECK: %[[PAIRS:.+]] = memref.collapse_shape %[[PANEL]] {{\[}}[0], [1, 2]] : memref<32x128x2xbf16, strided<[256, 2, 1], offset: ?>> into memref<32x256xbf16, strided<[256, 1], offset: ?>>
// CHECK-NOT: vector.shuffle
// CHECK: amx.tile_load %[[PAIRS]]
// CHECK: amx.tile_mulf
// ONE-LABEL: func.func @stored_pairs(
// ONE-NOT: amx.tile_load
// ONE: linalg.generic
func.func @stored_pairs(%x: memref<?x64xbf16>, %w: memref<2x32x128x2xbf16>, %y: memref<?x200xf32>) {
  linalg.generic {indexing_maps = [#lhsP, #pairs, #outP], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xbf16>, memref<2x32x128x2xbf16>) outs(%y : memref<?x200xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %b : bf16 to f32
    %2 = arith.mulf %0, %1 : f32
    %3 = arith.addf %acc, %2 : f32
    linalg.yield %3 : f32
  }
  return
}
