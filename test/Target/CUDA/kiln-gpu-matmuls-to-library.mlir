// RUN: kiln-opt %s --split-input-file --kiln-gpu-matmuls-to-library --canonicalize | FileCheck %s

// kiln-gpu-matmuls-to-library rewrites each (batch..., m, k, n) contraction
// on buffers whose operands cuBLASLt can take (f32, f16 or bf16 inputs of
// one type, an f32 or same-type result; a unit stride along one matrix dim
// of each input, along n for the output) into calls of
//   kiln_gpu_gemm(dtype, transA, transB, batch, m, n, k,
//                 a, lda, strideA, b, ldb, strideB, c, ldc, strideC,
//                 alpha, beta)
// with host loops over every batch dim but the last, which is the call's
// strided batch. Pointers are the aligned pointer plus the offset in bytes,
// leading dims and batch strides are in elements (GpuApi.h). A zero fill of
// the output right before the contraction is dropped and beta is 0;
// otherwise beta is 1 (the generic accumulates). The test holds it to each
// argument (the IR is canonicalized so that static sizes and strides are
// constants), to one declaration of kiln_gpu_gemm, and to leaving alone
// what cuBLASLt cannot take.

// A plain matmul: m = 8, n = 4, k = 16; the strided lhs and output give
// leading dims 32 and 10 distinct from the sizes, and the output's offset
// of 3 elements is 12 bytes past its aligned pointer.
// CHECK-LABEL: func.func @plain(
// CHECK-SAME: %[[X:[^:]*]]: memref<8x16xf32, strided<[32, 1]>>, %[[W:[^:]*]]: memref<16x4xf32>, %[[Y:[^:]*]]: memref<8x4xf32, strided<[10, 1], offset: 3>>)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[XBASE:[^,]*]], %{{.*}} = memref.extract_strided_metadata %[[X]]
// CHECK-DAG: %[[XPTR:.*]] = memref.extract_aligned_pointer_as_index %[[XBASE]]
// CHECK-DAG: %[[WBASE:[^,]*]], %{{.*}} = memref.extract_strided_metadata %[[W]]
// CHECK-DAG: %[[WPTR:.*]] = memref.extract_aligned_pointer_as_index %[[WBASE]]
// CHECK-DAG: %[[YBASE:[^,]*]], %{{.*}} = memref.extract_strided_metadata %[[Y]]
// CHECK-DAG: %[[YPTR:.*]] = memref.extract_aligned_pointer_as_index %[[YBASE]]
// CHECK-DAG: %[[A:.*]] = arith.index_cast %[[XPTR]] : index to i64
// CHECK-DAG: %[[B:.*]] = arith.index_cast %[[WPTR]] : index to i64
// CHECK-DAG: %[[YOFF:.*]] = arith.addi %[[YPTR]], %c12 : index
// CHECK-DAG: %[[C:.*]] = arith.index_cast %[[YOFF]] : index to i64
// CHECK-NOT: linalg.fill
// CHECK: call @kiln_gpu_gemm(%c0_i32, %c0_i32, %c0_i32, %c1_i64, %c8_i64, %c4_i64, %c16_i64, %[[A]], %c32_i64, %c0_i64, %[[B]], %c4_i64, %c0_i64, %[[C]], %c10_i64, %c0_i64, %[[ONE]], %[[ZERO]]) : (i32, i32, i32, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, f32, f32) -> ()
// CHECK-NOT: linalg.generic
// CHECK: return
#a = affine_map<(m, k, n) -> (m, k)>
#b = affine_map<(m, k, n) -> (k, n)>
#bt = affine_map<(m, k, n) -> (n, k)>
#c = affine_map<(m, k, n) -> (m, n)>
func.func @plain(%x: memref<8x16xf32, strided<[32, 1]>>, %w: memref<16x4xf32>, %y: memref<8x4xf32, strided<[10, 1], offset: 3>>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<8x4xf32, strided<[10, 1], offset: 3>>)
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf32, strided<[32, 1]>>, memref<16x4xf32>) outs(%y : memref<8x4xf32, strided<[10, 1], offset: 3>>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// The rhs stored n x k (unit stride along k): transB = 1, ldb = 16. The
// rows are dynamic: m is the output's runtime size. Nothing zero-fills
// the output, so the product accumulates: beta = 1.
// CHECK-LABEL: func.func @transposed_rhs_accumulate(
// CHECK-SAME: %{{[^:]*}}: memref<?x16xf32>, %{{[^:]*}}: memref<4x16xf32>, %[[Y:[^:]*]]: memref<?x4xf32>)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %{{[^,]*}}, %{{[^,]*}}, %[[YSIZES:[^:]*]]:2, %{{.*}}:2 = memref.extract_strided_metadata %[[Y]]
// CHECK-DAG: %[[M:.*]] = arith.index_cast %[[YSIZES]]#0 : index to i64
// CHECK: call @kiln_gpu_gemm(%c0_i32, %c0_i32, %c1_i32, %c1_i64, %[[M]], %c4_i64, %c16_i64, %{{.*}}, %c16_i64, %c0_i64, %{{.*}}, %c16_i64, %c0_i64, %{{.*}}, %c4_i64, %c0_i64, %[[ONE]], %[[ONE]])
func.func @transposed_rhs_accumulate(%x: memref<?x16xf32>, %w: memref<4x16xf32>, %y: memref<?x4xf32>) {
  linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<?x16xf32>, memref<4x16xf32>) outs(%y : memref<?x4xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// The lhs stored k x m (unit stride along m): transA = 1, lda = 8; f16
// in and out is dtype 1 (KILN_GPU_F16), and the lhs's offset of 5
// elements is 10 bytes.
// CHECK-LABEL: func.func @transposed_lhs_f16(
// CHECK-DAG: %[[XPTR:.*]] = memref.extract_aligned_pointer_as_index
// CHECK-DAG: %[[XOFF:.*]] = arith.addi %[[XPTR]], %c10 : index
// CHECK-DAG: %[[A:.*]] = arith.index_cast %[[XOFF]] : index to i64
// CHECK: call @kiln_gpu_gemm(%c1_i32, %c1_i32, %c0_i32, %c1_i64, %c8_i64, %c4_i64, %c16_i64, %[[A]], %c8_i64, %c0_i64, %{{.*}}, %c4_i64, %c0_i64, %{{.*}}, %c4_i64, %c0_i64,
#at = affine_map<(m, k, n) -> (k, m)>
func.func @transposed_lhs_f16(%x: memref<16x8xf16, strided<[8, 1], offset: 5>>, %w: memref<16x4xf16>, %y: memref<8x4xf16>) {
  linalg.generic {indexing_maps = [#at, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<16x8xf16, strided<[8, 1], offset: 5>>, memref<16x4xf16>) outs(%y : memref<8x4xf16>) {
  ^bb0(%u: f16, %v: f16, %acc: f16):
    %p = arith.mulf %u, %v : f16
    %s = arith.addf %acc, %p : f16
    linalg.yield %s : f16
  }
  return
}

// Two batch dims (2 x 3): the first is a host loop whose index moves each
// pointer by that dim's stride in bytes (x: 384 elements = 1536 bytes,
// w: 192 = 768, y: 96 = 384), the second is the call's batch of 3 with
// strides 128, 64 and 32 elements. The zero fill goes: beta = 0.
// CHECK-LABEL: func.func @batched(
// CHECK-SAME: %[[X:[^:]*]]: memref<2x3x8x16xf32>, %[[W:[^:]*]]: memref<2x3x16x4xf32>, %[[Y:[^:]*]]: memref<2x3x8x4xf32>)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[XBASE:[^,]*]], %{{.*}} = memref.extract_strided_metadata %[[X]]
// CHECK-DAG: %[[XPTR:.*]] = memref.extract_aligned_pointer_as_index %[[XBASE]]
// CHECK-DAG: %[[WBASE:[^,]*]], %{{.*}} = memref.extract_strided_metadata %[[W]]
// CHECK-DAG: %[[WPTR:.*]] = memref.extract_aligned_pointer_as_index %[[WBASE]]
// CHECK-DAG: %[[YBASE:[^,]*]], %{{.*}} = memref.extract_strided_metadata %[[Y]]
// CHECK-DAG: %[[YPTR:.*]] = memref.extract_aligned_pointer_as_index %[[YBASE]]
// CHECK-NOT: linalg.fill
// CHECK: scf.for %[[I:.*]] = %c0 to %c2 step %c1 {
// CHECK-DAG:   %[[XB:.*]] = arith.muli %[[I]], %c1536 : index
// CHECK-DAG:   %[[XA:.*]] = arith.addi %[[XPTR]], %[[XB]] : index
// CHECK-DAG:   %[[A:.*]] = arith.index_cast %[[XA]] : index to i64
// CHECK-DAG:   %[[WB:.*]] = arith.muli %[[I]], %c768 : index
// CHECK-DAG:   %[[WA:.*]] = arith.addi %[[WPTR]], %[[WB]] : index
// CHECK-DAG:   %[[B:.*]] = arith.index_cast %[[WA]] : index to i64
// CHECK-DAG:   %[[YB:.*]] = arith.muli %[[I]], %c384 : index
// CHECK-DAG:   %[[YA:.*]] = arith.addi %[[YPTR]], %[[YB]] : index
// CHECK-DAG:   %[[C:.*]] = arith.index_cast %[[YA]] : index to i64
// CHECK:   func.call @kiln_gpu_gemm(%c0_i32, %c0_i32, %c0_i32, %c3_i64, %c8_i64, %c4_i64, %c16_i64, %[[A]], %c16_i64, %c128_i64, %[[B]], %c4_i64, %c64_i64, %[[C]], %c4_i64, %c32_i64, %[[ONE]], %[[ZERO]])
// CHECK-NEXT: }
// CHECK-NEXT: return
#a4 = affine_map<(b0, b1, m, k, n) -> (b0, b1, m, k)>
#b4 = affine_map<(b0, b1, m, k, n) -> (b0, b1, k, n)>
#c4 = affine_map<(b0, b1, m, k, n) -> (b0, b1, m, n)>
func.func @batched(%x: memref<2x3x8x16xf32>, %w: memref<2x3x16x4xf32>, %y: memref<2x3x8x4xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<2x3x8x4xf32>)
  linalg.generic {indexing_maps = [#a4, #b4, #c4], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<2x3x8x16xf32>, memref<2x3x16x4xf32>) outs(%y : memref<2x3x8x4xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// A rhs without the batch dim is broadcast (strideB = 0); bf16 inputs
// with an f32 result are dtype 4 (KILN_GPU_BF16_F32).
// CHECK-LABEL: func.func @broadcast_bf16_f32(
// CHECK-NOT: scf.for
// CHECK: call @kiln_gpu_gemm(%c4_i32, %c0_i32, %c0_i32, %c5_i64, %c8_i64, %c4_i64, %c16_i64, %{{.*}}, %c16_i64, %c128_i64, %{{.*}}, %c4_i64, %c0_i64, %{{.*}}, %c4_i64, %c32_i64,
#a3 = affine_map<(b, m, k, n) -> (b, m, k)>
#b3 = affine_map<(b, m, k, n) -> (k, n)>
#c3 = affine_map<(b, m, k, n) -> (b, m, n)>
func.func @broadcast_bf16_f32(%x: memref<5x8x16xbf16>, %w: memref<16x4xbf16>, %y: memref<5x8x4xf32>) {
  linalg.generic {indexing_maps = [#a3, #b3, #c3], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<5x8x16xbf16>, memref<16x4xbf16>) outs(%y : memref<5x8x4xf32>) {
  ^bb0(%u: bf16, %v: bf16, %acc: f32):
    %ue = arith.extf %u : bf16 to f32
    %ve = arith.extf %v : bf16 to f32
    %p = arith.mulf %ue, %ve : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// A fill that is not zero, or a zero fill whose value something reads
// before the contraction, stays, and the product accumulates: beta = 1.
// CHECK-LABEL: func.func @fills_kept(
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2.000000e+00 : f32
// CHECK: linalg.fill ins(%[[TWO]] : f32)
// CHECK: call @kiln_gpu_gemm({{.*}}, %[[ONE]], %[[ONE]])
// CHECK: linalg.fill
// CHECK: linalg.copy
// CHECK: call @kiln_gpu_gemm({{.*}}, %[[ONE]], %[[ONE]])
// One declaration for all the calls of the module, at its end.
// CHECK: func.func private @kiln_gpu_gemm(i32, i32, i32, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, f32, f32)
// CHECK-NOT: @kiln_gpu_gemm(
func.func @fills_kept(%x: memref<8x16xf32>, %w: memref<16x4xf32>, %y: memref<8x4xf32>, %z: memref<8x4xf32>) {
  %two = arith.constant 2.0 : f32
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%two : f32) outs(%y : memref<8x4xf32>)
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf32>, memref<16x4xf32>) outs(%y : memref<8x4xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.fill ins(%zero : f32) outs(%y : memref<8x4xf32>)
  linalg.copy ins(%y : memref<8x4xf32>) outs(%z : memref<8x4xf32>)
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf32>, memref<16x4xf32>) outs(%y : memref<8x4xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Layouts cuBLASLt cannot take stay generics for the kernels: an input
// without a unit stride along either matrix dim, an input whose unit
// stride is not known at compile time, and an output stored transposed.
// CHECK-LABEL: func.func @no_unit_stride(
// CHECK-NOT: call
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : memref<8x16xf32, strided<[32, 2]>>, memref<16x4xf32>) outs(%{{.*}} : memref<8x4xf32>)
// CHECK-NOT: call
// CHECK-LABEL: func.func @dynamic_strides(
// CHECK-NOT: call
// CHECK: linalg.generic
// CHECK-NOT: call
// CHECK-LABEL: func.func @transposed_output(
// CHECK-NOT: call
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : memref<4x8xf32>)
// CHECK-NOT: call
// CHECK: return
#a = affine_map<(m, k, n) -> (m, k)>
#b = affine_map<(m, k, n) -> (k, n)>
#c = affine_map<(m, k, n) -> (m, n)>
#ct = affine_map<(m, k, n) -> (n, m)>
func.func @no_unit_stride(%x: memref<8x16xf32, strided<[32, 2]>>, %w: memref<16x4xf32>, %y: memref<8x4xf32>) {
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf32, strided<[32, 2]>>, memref<16x4xf32>) outs(%y : memref<8x4xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}
func.func @dynamic_strides(%x: memref<8x16xf32>, %w: memref<16x4xf32, strided<[?, ?]>>, %y: memref<8x4xf32>) {
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf32>, memref<16x4xf32, strided<[?, ?]>>) outs(%y : memref<8x4xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}
func.func @transposed_output(%x: memref<8x16xf32>, %w: memref<16x4xf32>, %y: memref<4x8xf32>) {
  linalg.generic {indexing_maps = [#a, #b, #ct], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf32>, memref<16x4xf32>) outs(%y : memref<4x8xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Element types cuBLASLt is not asked for (f64; inputs of two types; an
// integer matmul) and contractions on tensors are left alone, and with
// nothing to rewrite no declaration is added.
// CHECK-LABEL: func.func @f64(
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : memref<8x16xf64>, memref<16x4xf64>)
// CHECK-LABEL: func.func @mixed_inputs(
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : memref<8x16xf16>, memref<16x4xf32>)
// CHECK-LABEL: func.func @i32(
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : memref<8x16xi32>, memref<16x4xi32>)
// CHECK-LABEL: func.func @on_tensors(
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<8x16xf32>, tensor<16x4xf32>)
// CHECK-NOT: kiln_gpu_gemm
#a = affine_map<(m, k, n) -> (m, k)>
#b = affine_map<(m, k, n) -> (k, n)>
#c = affine_map<(m, k, n) -> (m, n)>
func.func @f64(%x: memref<8x16xf64>, %w: memref<16x4xf64>, %y: memref<8x4xf64>) {
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf64>, memref<16x4xf64>) outs(%y : memref<8x4xf64>) {
  ^bb0(%u: f64, %v: f64, %acc: f64):
    %p = arith.mulf %u, %v : f64
    %s = arith.addf %acc, %p : f64
    linalg.yield %s : f64
  }
  return
}
func.func @mixed_inputs(%x: memref<8x16xf16>, %w: memref<16x4xf32>, %y: memref<8x4xf32>) {
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf16>, memref<16x4xf32>) outs(%y : memref<8x4xf32>) {
  ^bb0(%u: f16, %v: f32, %acc: f32):
    %ue = arith.extf %u : f16 to f32
    %p = arith.mulf %ue, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}
func.func @i32(%x: memref<8x16xi32>, %w: memref<16x4xi32>, %y: memref<8x4xi32>) {
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xi32>, memref<16x4xi32>) outs(%y : memref<8x4xi32>) {
  ^bb0(%u: i32, %v: i32, %acc: i32):
    %p = arith.muli %u, %v : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
func.func @on_tensors(%x: tensor<8x16xf32>, %w: tensor<16x4xf32>, %y: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %r = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : tensor<8x16xf32>, tensor<16x4xf32>) outs(%y : tensor<8x4xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  } -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// A module that already declares kiln_gpu_gemm keeps its one declaration
// (where it was: no second one is added at the end).
// CHECK-LABEL: func.func @declared(
// CHECK: call @kiln_gpu_gemm(
// CHECK: func.func private @kiln_gpu_gemm(
// CHECK-NOT: @kiln_gpu_gemm
#a = affine_map<(m, k, n) -> (m, k)>
#b = affine_map<(m, k, n) -> (k, n)>
#c = affine_map<(m, k, n) -> (m, n)>
func.func @declared(%x: memref<8x16xf32>, %w: memref<16x4xf32>, %y: memref<8x4xf32>) {
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<8x16xf32>, memref<16x4xf32>) outs(%y : memref<8x4xf32>) {
  ^bb0(%u: f32, %v: f32, %acc: f32):
    %p = arith.mulf %u, %v : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}
func.func private @kiln_gpu_gemm(i32, i32, i32, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, f32, f32)

// -----

// An output that stores the batch dims permuted, (b1, m, b0, n): the batch
// count and the host loop's bound are the sizes of the loop dims b1 (2)
// and b0 (3) wherever they sit in the output (they were read from the
// output dims at the loop dims' indices: a batch of 4 and a loop to 2).
// ldc is m's stride (3 * 6 = 18), strideC b1's (4 * 3 * 6 = 72).
// CHECK-LABEL: func.func @permuted_batch_output(
// CHECK: scf.for %[[B0:.*]] = %c0 to %c3 step %c1 {
// CHECK: call @kiln_gpu_gemm(%c0_i32, %c0_i32, %c0_i32, %c2_i64, %c4_i64, %c6_i64, %c5_i64, %{{.*}}, %c5_i64, %c20_i64, %{{.*}}, %c6_i64, %c30_i64, %{{.*}}, %c18_i64, %c72_i64,
#pa = affine_map<(b0, b1, m, k, n) -> (b0, b1, m, k)>
#pb = affine_map<(b0, b1, m, k, n) -> (b0, b1, k, n)>
#pc = affine_map<(b0, b1, m, k, n) -> (b1, m, b0, n)>
func.func @permuted_batch_output(%x: memref<3x2x4x5xf32>, %w: memref<3x2x5x6xf32>,
                                 %y: memref<2x4x3x6xf32>) {
  linalg.generic {indexing_maps = [#pa, #pb, #pc],
                  iterator_types = ["parallel", "parallel", "parallel",
                                    "reduction", "parallel"]}
      ins(%x, %w : memref<3x2x4x5xf32>, memref<3x2x5x6xf32>)
      outs(%y : memref<2x4x3x6xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %0 = arith.mulf %p, %q : f32
    %1 = arith.addf %r, %0 : f32
    linalg.yield %1 : f32
  }
  return
}

// -----

// int8 x int8 -> int32 (kiln.integer_matmul's contraction: sign-extended
// codes into i32 sums) becomes dtype 5 (KILN_GPU_I8_I32), cuBLASLt's int8
// gemm, in the one layout its int8 kernels take: activations [m, k] plain,
// the weight stored [n, k] (transB = 1), n and k multiples of 4 and every
// leading dim and batch stride a multiple of 4. Here a [2, ?, 16] batch of
// activations against one [8, 16] weight (broadcast: strideB 0): the
// batch dim is the strided batch, m the dynamic rows, lda 16, ldb 16, ldc 8;
// the i32 zero fill goes (beta 0). The activations' batch stride is
// dynamic (? x 16, a multiple of 16) and read from the buffer.
// CHECK-LABEL: func.func @int8_weight_transposed(
// CHECK-SAME: %[[X:[^:]*]]: memref<2x?x16xi8>, %{{[^:]*}}: memref<8x16xi8>, %[[Y:[^:]*]]: memref<2x?x8xi32>)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %{{[^,]*}}, %{{[^,]*}}, %{{[^:]*}}:3, %[[XSTRIDES:[^:]*]]:3 = memref.extract_strided_metadata %[[X]]
// CHECK-DAG: %{{[^,]*}}, %{{[^,]*}}, %[[YSIZES:[^:]*]]:3, %[[YSTRIDES:[^:]*]]:3 = memref.extract_strided_metadata %[[Y]]
// CHECK-DAG: %[[M:.*]] = arith.index_cast %[[YSIZES]]#1 : index to i64
// CHECK-DAG: %[[SA:.*]] = arith.index_cast %[[XSTRIDES]]#0 : index to i64
// CHECK-DAG: %[[SC:.*]] = arith.index_cast %[[YSTRIDES]]#0 : index to i64
// CHECK-NOT: linalg.fill
// CHECK: call @kiln_gpu_gemm(%c5_i32, %c0_i32, %c1_i32, %c2_i64, %[[M]], %c8_i64, %c16_i64, %{{.*}}, %c16_i64, %[[SA]], %{{.*}}, %c16_i64, %c0_i64, %{{.*}}, %c8_i64, %[[SC]], %[[ONE]], %[[ZERO]])
// CHECK-NOT: linalg.generic
// CHECK: return
#a = affine_map<(b, m, k, n) -> (b, m, k)>
#bt = affine_map<(b, m, k, n) -> (n, k)>
#c = affine_map<(b, m, k, n) -> (b, m, n)>
func.func @int8_weight_transposed(%x: memref<2x?x16xi8>, %w: memref<8x16xi8>, %y: memref<2x?x8xi32>) {
  %zero = arith.constant 0 : i32
  linalg.fill ins(%zero : i32) outs(%y : memref<2x?x8xi32>)
  linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<2x?x16xi8>, memref<8x16xi8>) outs(%y : memref<2x?x8xi32>) {
  ^bb0(%u: i8, %v: i8, %acc: i32):
    %ue = arith.extsi %u : i8 to i32
    %ve = arith.extsi %v : i8 to i32
    %p = arith.muli %ue, %ve : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}

// -----

// int8 contractions cuBLASLt's int8 kernels cannot take stay generics (the
// generated int8 kernel): a weight stored [k, n] (not "TN"), k not a
// multiple of 4, n not a multiple of 4, a leading dim of 18, an offset
// unknown at compile time, a dynamic stride of a non-contiguous buffer,
// and zero-extended (unsigned) codes, which are another product.
// CHECK-LABEL: func.func @int8_weight_k_by_n(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @int8_k_6(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @int8_n_6(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @int8_ld_18(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @int8_dynamic_offset(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @int8_dynamic_stride(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @int8_unsigned(
// CHECK: linalg.generic
// CHECK-NOT: kiln_gpu_gemm
#a = affine_map<(m, k, n) -> (m, k)>
#b = affine_map<(m, k, n) -> (k, n)>
#bt = affine_map<(m, k, n) -> (n, k)>
#c = affine_map<(m, k, n) -> (m, n)>
func.func @int8_weight_k_by_n(%x: memref<4x16xi8>, %w: memref<16x8xi8>, %y: memref<4x8xi32>) {
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x16xi8>, memref<16x8xi8>) outs(%y : memref<4x8xi32>) {
  ^bb0(%u: i8, %v: i8, %acc: i32):
    %ue = arith.extsi %u : i8 to i32
    %ve = arith.extsi %v : i8 to i32
    %p = arith.muli %ue, %ve : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
func.func @int8_k_6(%x: memref<4x6xi8>, %w: memref<8x6xi8>, %y: memref<4x8xi32>) {
  linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x6xi8>, memref<8x6xi8>) outs(%y : memref<4x8xi32>) {
  ^bb0(%u: i8, %v: i8, %acc: i32):
    %ue = arith.extsi %u : i8 to i32
    %ve = arith.extsi %v : i8 to i32
    %p = arith.muli %ue, %ve : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
func.func @int8_n_6(%x: memref<4x16xi8>, %w: memref<6x16xi8>, %y: memref<4x6xi32>) {
  linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x16xi8>, memref<6x16xi8>) outs(%y : memref<4x6xi32>) {
  ^bb0(%u: i8, %v: i8, %acc: i32):
    %ue = arith.extsi %u : i8 to i32
    %ve = arith.extsi %v : i8 to i32
    %p = arith.muli %ue, %ve : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
func.func @int8_ld_18(%x: memref<4x16xi8, strided<[18, 1]>>, %w: memref<8x16xi8>, %y: memref<4x8xi32>) {
  linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x16xi8, strided<[18, 1]>>, memref<8x16xi8>) outs(%y : memref<4x8xi32>) {
  ^bb0(%u: i8, %v: i8, %acc: i32):
    %ue = arith.extsi %u : i8 to i32
    %ve = arith.extsi %v : i8 to i32
    %p = arith.muli %ue, %ve : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
func.func @int8_dynamic_offset(%x: memref<4x16xi8, strided<[16, 1], offset: ?>>, %w: memref<8x16xi8>, %y: memref<4x8xi32>) {
  linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x16xi8, strided<[16, 1], offset: ?>>, memref<8x16xi8>) outs(%y : memref<4x8xi32>) {
  ^bb0(%u: i8, %v: i8, %acc: i32):
    %ue = arith.extsi %u : i8 to i32
    %ve = arith.extsi %v : i8 to i32
    %p = arith.muli %ue, %ve : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
func.func @int8_dynamic_stride(%x: memref<4x16xi8, strided<[?, 1]>>, %w: memref<8x16xi8>, %y: memref<4x8xi32>) {
  linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x16xi8, strided<[?, 1]>>, memref<8x16xi8>) outs(%y : memref<4x8xi32>) {
  ^bb0(%u: i8, %v: i8, %acc: i32):
    %ue = arith.extsi %u : i8 to i32
    %ve = arith.extsi %v : i8 to i32
    %p = arith.muli %ue, %ve : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
func.func @int8_unsigned(%x: memref<4x16xi8>, %w: memref<8x16xi8>, %y: memref<4x8xi32>) {
  linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<4x16xi8>, memref<8x16xi8>) outs(%y : memref<4x8xi32>) {
  ^bb0(%u: i8, %v: i8, %acc: i32):
    %ue = arith.extui %u : i8 to i32
    %ve = arith.extui %v : i8 to i32
    %p = arith.muli %ue, %ve : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}

// -----

// fp8: kiln.scaled_fp8_matmul's generic (two f8E4M3FN operands, two
// one-element f32 scales read through constant maps, a zero-filled f32
// output) becomes kiln_gpu_gemm_scaled of dtype 6 (KILN_GPU_E4M3_F32),
// "TN" (transA 0, transB 1), beta 0, with the scales' addresses last (the
// activations' then the weight's). The body is not looked at: its decoding
// of the codes is the generated kernel's business.
// CHECK-LABEL: func.func @fp8_weight_transposed(
// CHECK-SAME: %[[X:[^:]*]]: memref<2x?x32xf8E4M3FN>, %{{[^:]*}}: memref<16x32xf8E4M3FN>, %[[SX:[^:]*]]: memref<1xf32>, %[[SW:[^:]*]]: memref<1xf32>, %[[Y:[^:]*]]: memref<2x?x16xf32>)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[SXBASE:[^,]*]], %{{.*}} = memref.extract_strided_metadata %[[SX]]
// CHECK-DAG: %[[SWBASE:[^,]*]], %{{.*}} = memref.extract_strided_metadata %[[SW]]
// CHECK-DAG: %[[SXPTR:.*]] = memref.extract_aligned_pointer_as_index %[[SXBASE]]
// CHECK-DAG: %[[SWPTR:.*]] = memref.extract_aligned_pointer_as_index %[[SWBASE]]
// CHECK-DAG: %[[SXI:.*]] = arith.index_cast %[[SXPTR]] : index to i64
// CHECK-DAG: %[[SWI:.*]] = arith.index_cast %[[SWPTR]] : index to i64
// CHECK-NOT: linalg.fill
// CHECK: call @kiln_gpu_gemm_scaled(%c6_i32, %c0_i32, %c1_i32, %c2_i64, %{{.*}}, %c16_i64, %c32_i64, %{{.*}}, %c32_i64, %{{.*}}, %{{.*}}, %c32_i64, %c0_i64, %{{.*}}, %c16_i64, %{{.*}}, %[[ONE]], %[[ZERO]], %[[SXI]], %[[SWI]])
// CHECK-NOT: linalg.generic
// CHECK: return
// CHECK: func.func private @kiln_gpu_gemm_scaled(i32, i32, i32, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, f32, f32, i64, i64)
#a = affine_map<(b, m, k, n) -> (b, m, k)>
#bt = affine_map<(b, m, k, n) -> (n, k)>
#s = affine_map<(b, m, k, n) -> (0)>
#c = affine_map<(b, m, k, n) -> (b, m, n)>
func.func @fp8_weight_transposed(%x: memref<2x?x32xf8E4M3FN>, %w: memref<16x32xf8E4M3FN>, %sx: memref<1xf32>, %sw: memref<1xf32>, %y: memref<2x?x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<2x?x16xf32>)
  linalg.generic {indexing_maps = [#a, #bt, #s, #s, #c], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
      ins(%x, %w, %sx, %sw : memref<2x?x32xf8E4M3FN>, memref<16x32xf8E4M3FN>, memref<1xf32>, memref<1xf32>) outs(%y : memref<2x?x16xf32>) {
  ^bb0(%u: f8E4M3FN, %v: f8E4M3FN, %p: f32, %q: f32, %acc: f32):
    %ue = arith.extf %u : f8E4M3FN to f32
    %ve = arith.extf %v : f8E4M3FN to f32
    %t = arith.mulf %ue, %ve : f32
    %pq = arith.mulf %p, %q : f32
    %tt = arith.mulf %t, %pq : f32
    %s = arith.addf %acc, %tt : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// fp8 contractions cuBLASLt's fp8 kernels cannot take stay generics (the
// generated kernel): a weight stored [k, n] (not "TN"), k or n not a
// multiple of 16, a leading dim of 40 (40 bytes), an output not zeroed
// right before (cuBLASLt's fp8 product here overwrites, beta 0).
// CHECK-LABEL: func.func @fp8_weight_k_by_n(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @fp8_k_8(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @fp8_n_8(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @fp8_ld_40(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @fp8_accumulating(
// CHECK: linalg.generic
// A layout cuBLASLt takes, but a body that is not the scaled product of
// the codes (a row sum; a product without the scales): not a gemm.
// CHECK-LABEL: func.func @fp8_row_sum(
// CHECK: linalg.generic
// CHECK-LABEL: func.func @fp8_unscaled(
// CHECK: linalg.generic
// CHECK-NOT: kiln_gpu_gemm
#a = affine_map<(m, k, n) -> (m, k)>
#b = affine_map<(m, k, n) -> (k, n)>
#bt = affine_map<(m, k, n) -> (n, k)>
#s = affine_map<(m, k, n) -> (0)>
#c = affine_map<(m, k, n) -> (m, n)>
func.func @fp8_weight_k_by_n(%x: memref<4x32xf8E4M3FN>, %w: memref<32x16xf8E4M3FN>, %sx: memref<1xf32>, %sw: memref<1xf32>, %y: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<4x16xf32>)
  linalg.generic {indexing_maps = [#a, #b, #s, #s, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w, %sx, %sw : memref<4x32xf8E4M3FN>, memref<32x16xf8E4M3FN>, memref<1xf32>, memref<1xf32>) outs(%y : memref<4x16xf32>) {
  ^bb0(%u: f8E4M3FN, %v: f8E4M3FN, %p: f32, %q: f32, %acc: f32):
    %ue = arith.extf %u : f8E4M3FN to f32
    %s = arith.addf %acc, %ue : f32
    linalg.yield %s : f32
  }
  return
}
func.func @fp8_k_8(%x: memref<4x8xf8E4M3FN>, %w: memref<16x8xf8E4M3FN>, %sx: memref<1xf32>, %sw: memref<1xf32>, %y: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<4x16xf32>)
  linalg.generic {indexing_maps = [#a, #bt, #s, #s, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w, %sx, %sw : memref<4x8xf8E4M3FN>, memref<16x8xf8E4M3FN>, memref<1xf32>, memref<1xf32>) outs(%y : memref<4x16xf32>) {
  ^bb0(%u: f8E4M3FN, %v: f8E4M3FN, %p: f32, %q: f32, %acc: f32):
    %ue = arith.extf %u : f8E4M3FN to f32
    %s = arith.addf %acc, %ue : f32
    linalg.yield %s : f32
  }
  return
}
func.func @fp8_n_8(%x: memref<4x32xf8E4M3FN>, %w: memref<8x32xf8E4M3FN>, %sx: memref<1xf32>, %sw: memref<1xf32>, %y: memref<4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<4x8xf32>)
  linalg.generic {indexing_maps = [#a, #bt, #s, #s, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w, %sx, %sw : memref<4x32xf8E4M3FN>, memref<8x32xf8E4M3FN>, memref<1xf32>, memref<1xf32>) outs(%y : memref<4x8xf32>) {
  ^bb0(%u: f8E4M3FN, %v: f8E4M3FN, %p: f32, %q: f32, %acc: f32):
    %ue = arith.extf %u : f8E4M3FN to f32
    %s = arith.addf %acc, %ue : f32
    linalg.yield %s : f32
  }
  return
}
func.func @fp8_ld_40(%x: memref<4x32xf8E4M3FN, strided<[40, 1]>>, %w: memref<16x32xf8E4M3FN>, %sx: memref<1xf32>, %sw: memref<1xf32>, %y: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<4x16xf32>)
  linalg.generic {indexing_maps = [#a, #bt, #s, #s, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w, %sx, %sw : memref<4x32xf8E4M3FN, strided<[40, 1]>>, memref<16x32xf8E4M3FN>, memref<1xf32>, memref<1xf32>) outs(%y : memref<4x16xf32>) {
  ^bb0(%u: f8E4M3FN, %v: f8E4M3FN, %p: f32, %q: f32, %acc: f32):
    %ue = arith.extf %u : f8E4M3FN to f32
    %s = arith.addf %acc, %ue : f32
    linalg.yield %s : f32
  }
  return
}
func.func @fp8_accumulating(%x: memref<4x32xf8E4M3FN>, %w: memref<16x32xf8E4M3FN>, %sx: memref<1xf32>, %sw: memref<1xf32>, %y: memref<4x16xf32>) {
  linalg.generic {indexing_maps = [#a, #bt, #s, #s, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w, %sx, %sw : memref<4x32xf8E4M3FN>, memref<16x32xf8E4M3FN>, memref<1xf32>, memref<1xf32>) outs(%y : memref<4x16xf32>) {
  ^bb0(%u: f8E4M3FN, %v: f8E4M3FN, %p: f32, %q: f32, %acc: f32):
    %ue = arith.extf %u : f8E4M3FN to f32
    %s = arith.addf %acc, %ue : f32
    linalg.yield %s : f32
  }
  return
}
func.func @fp8_row_sum(%x: memref<4x32xf8E4M3FN>, %w: memref<16x32xf8E4M3FN>, %sx: memref<1xf32>, %sw: memref<1xf32>, %y: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<4x16xf32>)
  linalg.generic {indexing_maps = [#a, #bt, #s, #s, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w, %sx, %sw : memref<4x32xf8E4M3FN>, memref<16x32xf8E4M3FN>, memref<1xf32>, memref<1xf32>) outs(%y : memref<4x16xf32>) {
  ^bb0(%u: f8E4M3FN, %v: f8E4M3FN, %p: f32, %q: f32, %acc: f32):
    %ue = arith.extf %u : f8E4M3FN to f32
    %s = arith.addf %acc, %ue : f32
    linalg.yield %s : f32
  }
  return
}
func.func @fp8_unscaled(%x: memref<4x32xf8E4M3FN>, %w: memref<16x32xf8E4M3FN>, %sx: memref<1xf32>, %sw: memref<1xf32>, %y: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<4x16xf32>)
  linalg.generic {indexing_maps = [#a, #bt, #s, #s, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w, %sx, %sw : memref<4x32xf8E4M3FN>, memref<16x32xf8E4M3FN>, memref<1xf32>, memref<1xf32>) outs(%y : memref<4x16xf32>) {
  ^bb0(%u: f8E4M3FN, %v: f8E4M3FN, %p: f32, %q: f32, %acc: f32):
    %ue = arith.extf %u : f8E4M3FN to f32
    %ve = arith.extf %v : f8E4M3FN to f32
    %t = arith.mulf %ue, %ve : f32
    %tt = arith.mulf %t, %p : f32
    %s = arith.addf %acc, %tt : f32
    linalg.yield %s : f32
  }
  return
}
