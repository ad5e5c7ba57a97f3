// RUN: kiln-opt %s --kiln-gpu-lower-all-reduce | FileCheck %s

// kiln-gpu-lower-all-reduce lowers each uniform gpu.all_reduce of an
// outlined kernel (the row reductions' scf.reduce, mapped to a block's
// threads) with upstream's all-reduce patterns: each warp folds its values
// with shuffles (xor 1, 2, 4, 8, 16), lane 0 of each warp writes its
// partial to a 32-element workgroup buffer added to the kernel, a barrier,
// the first warp folds the partials and writes the result to element 0,
// a barrier, and every thread reads it back. The combiner is the op's
// (add) or its region's body. The test holds it to that structure, to the
// combiner used at each step, to one buffer per reduction, to the result
// replacing the op's uses, and to leaving alone kernels whose reductions
// are not uniform (the patterns do not take them) and kernels without
// gpu.all_reduce.

// CHECK-LABEL: gpu.func @row_sum(
// CHECK-SAME: %[[X:[^:]*]]: memref<4x256xf32>, %[[OUT:[^:]*]]: memref<4xf32>)
// CHECK-SAME: workgroup(%[[SHARED:.*]] : memref<32xf32, #gpu.address_space<workgroup>>) kernel
// CHECK: %[[ROW:.*]] = gpu.block_id x
// CHECK: %[[V:.*]] = memref.load %[[X]]
// A partial warp (fewer than 32 active lanes): each shuffle's result is
// used only where valid.
// CHECK: %[[P1:.*]], %[[VALID:.*]] = gpu.shuffle xor %[[V]], %c1_i32, %[[ACTIVE:.*]] : f32
// CHECK: cf.cond_br %[[VALID]]
// CHECK: arith.addf %[[V]], %[[P1]] : f32
// A full warp: five shuffles of width 32, each added.
// CHECK: %[[W1:[^,]*]], %{{.*}} = gpu.shuffle xor %[[V]], %c1_i32, %c32_i32 : f32
// CHECK-NEXT: %[[S1:.*]] = arith.addf %[[V]], %[[W1]] : f32
// CHECK-NEXT: %[[W2:[^,]*]], %{{.*}} = gpu.shuffle xor %[[S1]], %c2_i32, %c32_i32 : f32
// CHECK-NEXT: %[[S2:.*]] = arith.addf %[[S1]], %[[W2]] : f32
// CHECK-NEXT: %[[W4:[^,]*]], %{{.*}} = gpu.shuffle xor %[[S2]], %c4_i32, %c32_i32 : f32
// CHECK-NEXT: %[[S4:.*]] = arith.addf %[[S2]], %[[W4]] : f32
// CHECK-NEXT: %[[W8:[^,]*]], %{{.*}} = gpu.shuffle xor %[[S4]], %c8_i32, %c32_i32 : f32
// CHECK-NEXT: %[[S8:.*]] = arith.addf %[[S4]], %[[W8]] : f32
// CHECK-NEXT: %[[W16:[^,]*]], %{{.*}} = gpu.shuffle xor %[[S8]], %c16_i32, %c32_i32 : f32
// CHECK-NEXT: %[[S16:.*]] = arith.addf %[[S8]], %[[W16]] : f32
// Lane 0 of warp w writes its partial to shared[w].
// CHECK: %[[WARP:.*]] = arith.divsi %{{.*}}, %c32_i32 : i32
// CHECK: %[[WARPIDX:.*]] = arith.index_cast %[[WARP]] : i32 to index
// CHECK: memref.store %{{.*}}, %[[SHARED]][%[[WARPIDX]]] : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// The first warps fold the partials into shared[0].
// CHECK: %[[PART:.*]] = memref.load %[[SHARED]][%{{.*}}] : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK: gpu.shuffle xor %[[PART]], %c1_i32
// CHECK: memref.store %{{.*}}, %[[SHARED]][%c0] : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// Every thread reads the result, which replaces the all_reduce.
// CHECK-NEXT: %[[SUM:.*]] = memref.load %[[SHARED]][%c0] : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK-NEXT: memref.store %[[SUM]], %[[OUT]][%[[ROW]]] : memref<4xf32>
// CHECK-NEXT: gpu.return
// CHECK-NOT: gpu.all_reduce

// Two reductions in one kernel, one with a region (as the pipeline makes
// them): each gets its own buffer, and the region's maximumf is the
// combiner of the first (its body is inlined between branches), addf of
// the second.
// CHECK-LABEL: gpu.func @max_and_sum(
// CHECK-SAME: workgroup(%[[MAXBUF:.*]] : memref<32xf32, #gpu.address_space<workgroup>>, %[[SUMBUF:.*]] : memref<32xf32, #gpu.address_space<workgroup>>) kernel
// CHECK-NOT: gpu.all_reduce
// CHECK: %[[SH:[^,]*]], %{{.*}} = gpu.shuffle xor %[[V:.*]], %c1_i32, %c32_i32 : f32
// CHECK: arith.maximumf %[[V]], %[[SH]] : f32
// CHECK: memref.store %{{.*}}, %[[MAXBUF]][%c0]
// CHECK: %[[MAX:.*]] = memref.load %[[MAXBUF]][%c0]
// CHECK-NOT: gpu.all_reduce
// CHECK: %[[SH2:[^,]*]], %{{.*}} = gpu.shuffle xor %[[V]], %c1_i32, %c32_i32 : f32
// CHECK-NEXT: arith.addf %[[V]], %[[SH2]] : f32
// CHECK: memref.store %{{.*}}, %[[SUMBUF]][%c0]
// CHECK: %[[SUM:.*]] = memref.load %[[SUMBUF]][%c0]
// CHECK: memref.store %[[MAX]], %{{.*}}[%{{.*}}] : memref<2xf32>
// CHECK: memref.store %[[SUM]], %{{.*}}[%{{.*}}] : memref<2xf32>
// CHECK-NEXT: gpu.return

// A reduction that is not uniform is not lowered (nor anything else in
// its kernel), and a kernel without reductions is unchanged.
// CHECK-LABEL: gpu.func @not_uniform(
// CHECK-SAME: %{{[^:]*}}: memref<256xf32>, %{{[^:]*}}: memref<f32>) kernel {
// CHECK: %[[S:.*]] = gpu.all_reduce add %{{.*}} {
// CHECK: } : (f32) -> f32
// CHECK: %[[T:.*]] = gpu.all_reduce add %{{.*}} uniform {
// CHECK-NOT: gpu.shuffle
// CHECK-NOT: gpu.barrier
// CHECK-LABEL: gpu.func @no_reduction(
// CHECK-SAME: %[[X:[^:]*]]: memref<256xf32>) kernel {
// CHECK-NEXT: %[[TID:.*]] = gpu.thread_id x
// CHECK-NEXT: %[[V:.*]] = memref.load %[[X]][%[[TID]]] : memref<256xf32>
// CHECK-NEXT: %[[D:.*]] = arith.addf %[[V]], %[[V]] : f32
// CHECK-NEXT: memref.store %[[D]], %[[X]][%[[TID]]] : memref<256xf32>
// CHECK-NEXT: gpu.return
gpu.module @kernels {
  gpu.func @row_sum(%x: memref<4x256xf32>, %out: memref<4xf32>) kernel attributes {known_block_size = array<i32: 256, 1, 1>} {
    %row = gpu.block_id x
    %lane = gpu.thread_id x
    %v = memref.load %x[%row, %lane] : memref<4x256xf32>
    %s = gpu.all_reduce add %v uniform {} : (f32) -> f32
    memref.store %s, %out[%row] : memref<4xf32>
    gpu.return
  }

  gpu.func @max_and_sum(%x: memref<256xf32>, %out: memref<2xf32>) kernel {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %lane = gpu.thread_id x
    %v = memref.load %x[%lane] : memref<256xf32>
    %m = gpu.all_reduce %v uniform {
    ^bb0(%a: f32, %b: f32):
      %r = arith.maximumf %a, %b : f32
      gpu.yield %r : f32
    } : (f32) -> f32
    %s = gpu.all_reduce add %v uniform {} : (f32) -> f32
    memref.store %m, %out[%c0] : memref<2xf32>
    memref.store %s, %out[%c1] : memref<2xf32>
    gpu.return
  }

  gpu.func @not_uniform(%x: memref<256xf32>, %out: memref<f32>) kernel {
    %lane = gpu.thread_id x
    %v = memref.load %x[%lane] : memref<256xf32>
    %s = gpu.all_reduce add %v {} : (f32) -> f32
    %t = gpu.all_reduce add %s uniform {} : (f32) -> f32
    memref.store %t, %out[] : memref<f32>
    gpu.return
  }

  gpu.func @no_reduction(%x: memref<256xf32>) kernel {
    %lane = gpu.thread_id x
    %v = memref.load %x[%lane] : memref<256xf32>
    %d = arith.addf %v, %v : f32
    memref.store %d, %x[%lane] : memref<256xf32>
    gpu.return
  }
}
