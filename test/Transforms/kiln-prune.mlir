// RUN: kiln-opt %s --split-input-file --kiln-prune='method=magnitude sparsity=0.5' | FileCheck %s --check-prefix=MAG
// RUN: kiln-opt %s --split-input-file --kiln-prune='method=wanda sparsity=2:4 skip=h.proj.*' | FileCheck %s --check-prefix=NM
// RUN: kiln-opt %s --split-input-file --kiln-prune='method=magnitude sparsity=0.3 global=true' --kiln-quantize='scheme=w8' | FileCheck %s --check-prefix=QUANT
// RUN: not kiln-opt %s --split-input-file --kiln-prune='sparsity=1.0' 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: not kiln-opt %s --split-input-file --kiln-prune='sparsity=-0.1' 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// RUN: not kiln-opt %s --split-input-file --kiln-prune='sparsity=4:2' 2>&1 | FileCheck %s --check-prefix=NM-ORDER
// RUN: not kiln-opt %s --split-input-file --kiln-prune='sparsity=2:64' 2>&1 | FileCheck %s --check-prefix=DIVIDE
// RUN: not kiln-opt %s --split-input-file --kiln-prune='method=optimal' 2>&1 | FileCheck %s --check-prefix=METHOD
// RUN: not kiln-opt %s --split-input-file --kiln-prune='method=wanda global=true' 2>&1 | FileCheck %s --check-prefix=GLOBAL
// RUN: not kiln-opt %s --split-input-file --kiln-prune='only=nothing.*' 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: kiln-opt %s --split-input-file --kiln-prune='sparsity=2:4 compress=true' | FileCheck %s --check-prefix=COMPRESS
// RUN: kiln-opt %s --split-input-file --kiln-prune='sparsity=2:4 compress=true' --kiln-decompose --convert-kiln-to-linalg | FileCheck %s --check-prefix=EXPAND
// RUN: not kiln-opt %s --split-input-file --kiln-prune='sparsity=1:4 compress=true' 2>&1 | FileCheck %s --check-prefix=COMPRESS-NM
// RUN: kiln-opt %s --split-input-file --kiln-prune='method=wanda sparsity=0.75 compress=true' | FileCheck %s --check-prefix=CSR
// RUN: kiln-opt %s --split-input-file --kiln-prune='sparsity=0.75 compress=true' --kiln-decompose --convert-kiln-to-linalg | FileCheck %s --check-prefix=CSR-EXPAND
// RUN: kiln-opt %s --split-input-file --kiln-prune='sparsity=0.4 compress=true' 2>&1 | FileCheck %s --check-prefix=CSR-BELOW
// RUN: kiln-opt %s --split-input-file --kiln-prune='sparsity=0.6 compress=true global=true' 2>&1 | FileCheck %s --check-prefix=CSR-GLOBAL

// The linears' weights are marked, in their own layout (GPT-2's Conv1D is
// [in, out]: transposed); the embedding, the bias and the LM head are not.
// The graph is unchanged.
// MAG-LABEL: module
// MAG-DAG: kiln.parameter @h.fc.weight : tensor<64x96xf32> init normal std = 2.000000e-02 trainable {kiln.pruned = {global = false, m = 0 : i64, method = "magnitude", n = 0 : i64, sparsity = 5.000000e-01 : f64, transposed = true}}
// MAG-DAG: kiln.parameter @h.proj.weight : tensor<12x96xf32> init normal std = 2.000000e-02 trainable {kiln.pruned = {global = false, m = 0 : i64, method = "magnitude", n = 0 : i64, sparsity = 5.000000e-01 : f64, transposed = false}}
// MAG-DAG: kiln.parameter @wte.weight : tensor<100x64xf32> init normal std = 2.000000e-02 trainable{{$}}
// MAG-DAG: kiln.parameter @h.fc.bias : tensor<96xf32> init zeros trainable{{$}}
// MAG-DAG: kiln.parameter @lm_head.weight : tensor<100x12xf32> init normal std = 2.000000e-02 trainable{{$}}
// MAG: kiln.linear %{{.*}}, %{{.*}} bias %{{.*}} weight_in_out

// N:M records N and M (and the zeros' fraction); skip leaves a layer dense.
// NM-DAG: kiln.parameter @h.fc.weight {{.*}}{kiln.pruned = {global = false, m = 4 : i64, method = "wanda", n = 2 : i64, sparsity = 5.000000e-01 : f64, transposed = true}}
// NM-DAG: kiln.parameter @h.proj.weight : tensor<12x96xf32> init normal std = 2.000000e-02 trainable{{$}}

// A pruned weight's quantized parts carry the pruning: the compiler
// quantizes the pruned values.
// QUANT-DAG: kiln.parameter @h.fc.qweight : tensor<96x64xi8> {{.*}}kiln.pruned = {global = true, m = 0 : i64, method = "magnitude", n = 0 : i64, sparsity = 3.000000e-01 : f64, transposed = true}
// QUANT-DAG: kiln.parameter @h.fc.scales : tensor<96x1xf32> {{.*}}kiln.pruned = {global = true

// 2:4 stored compressed: two values and their positions per four inputs
// ([out, in / 4] each), expanded back to the [out, in] weight, which the
// linear reads untransposed.
// COMPRESS-DAG: kiln.parameter @h.fc.sparse_first : tensor<96x16xf32> init normal std = 2.000000e-02 {kiln.compressed_from = {format = "2:4", part = "first", source = "h.fc.weight", source_shape = array<i64: 64, 96>, transposed = true}, kiln.pruned = {global = false, m = 4 : i64, method = "magnitude", n = 2 : i64
// COMPRESS-DAG: kiln.parameter @h.fc.sparse_second : tensor<96x16xf32>
// COMPRESS-DAG: kiln.parameter @h.fc.sparse_positions : tensor<96x16xi8>
// COMPRESS-DAG: kiln.parameter @h.proj.sparse_first : tensor<12x24xf32>
// COMPRESS-NOT: kiln.parameter @h.fc.weight
// COMPRESS: %[[F:.+]] = kiln.read_param @h.fc.sparse_first
// COMPRESS: %[[S:.+]] = kiln.read_param @h.fc.sparse_second
// COMPRESS: %[[P:.+]] = kiln.read_param @h.fc.sparse_positions
// COMPRESS: %[[W:.+]] = kiln.expand_2of4 %[[F]], %[[S]] positions %[[P]] : (tensor<96x16xf32>, tensor<96x16xf32>, tensor<96x16xi8>) -> tensor<96x64xf32>
// COMPRESS: kiln.linear %{{.*}}, %[[W]] bias %{{.*}} : (tensor<?x64xf32>, tensor<96x64xf32>, tensor<96xf32>)
// The expansion is an elementwise generic over (row, group, position),
// collapsed to [out, in].
// EXPAND: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel"]} ins({{.*}} : tensor<96x16xf32>, tensor<96x16xf32>, tensor<96x16xi8>) outs({{.*}} : tensor<96x16x4xf32>)
// EXPAND: linalg.index 2
// EXPAND: arith.select
// EXPAND: tensor.collapse_shape {{.*}} {{\[}}[0], [1, 2]] : tensor<96x16x4xf32> into tensor<96x64xf32>
// COMPRESS-NM: kiln-prune: compress stores 2:4 sparsity (two values and their positions per four weights) or an unstructured fraction (compressed sparse rows); sparsity 1:4 is neither

// An unstructured fraction at or above csr-min-sparsity: compressed sparse
// rows with as many entries as the method keeps (Wanda, per output row:
// h.fc's 96 rows of 64 inputs keep 64 - floor(0.75 * 64) = 16 each), read
// through kiln.expand_csr.
// CSR-DAG: kiln.parameter @h.fc.sparse_offsets : tensor<97xi32> {{.*}}{kiln.compressed_from = {format = "csr", nnz = 1536 : i64, part = "offsets", source = "h.fc.weight", source_shape = array<i64: 64, 96>, transposed = true}
// CSR-DAG: kiln.parameter @h.fc.sparse_indices : tensor<1536xi16>
// CSR-DAG: kiln.parameter @h.fc.sparse_values : tensor<1536xf32>
// CSR-DAG: kiln.parameter @h.proj.sparse_values : tensor<288xf32>
// CSR-NOT: kiln.parameter @h.fc.weight
// CSR: %[[O:.+]] = kiln.read_param @h.fc.sparse_offsets
// CSR: %[[I:.+]] = kiln.read_param @h.fc.sparse_indices
// CSR: %[[V:.+]] = kiln.read_param @h.fc.sparse_values
// CSR: %[[W:.+]] = kiln.expand_csr %[[O]], %[[I]], %[[V]] : (tensor<97xi32>, tensor<1536xi16>, tensor<1536xf32>) -> tensor<96x64xf32>
// CSR: kiln.linear %{{.*}}, %[[W]] bias %{{.*}} : (tensor<?x64xf32>, tensor<96x64xf32>, tensor<96xf32>)
// The expansion adds each row's entries into a zeroed matrix, offsets and
// indices clamped into range.
// CSR-EXPAND: linalg.fill
// CSR-EXPAND: scf.for
// CSR-EXPAND: arith.minui
// CSR-EXPAND: scf.for
// CSR-EXPAND: tensor.extract %{{.*}} : tensor<1536xi16>
// CSR-EXPAND: arith.minui
// CSR-EXPAND: arith.addf
// CSR-EXPAND: tensor.insert
// Below the break-even, or with global, the weights stay dense, and a
// remark says why.
// CSR-BELOW: remark: kiln-prune: 2 weight(s) kept dense: sparsity 0.4 is below the break-even for compressed sparse rows (0.5)
// CSR-BELOW: kiln.parameter @h.fc.weight : tensor<64x96xf32>
// CSR-GLOBAL: remark: kiln-prune: 2 weight(s) kept dense: a global pruning's share of zeros in each layer follows from the weights

// RANGE: kiln-prune: sparsity 1.0 is outside [0, 1): it is the fraction of weights set to zero
// NEGATIVE: kiln-prune: sparsity -0.1 is outside [0, 1)
// NM-ORDER: kiln-prune: sparsity '4:2': N:M needs integers 0 < N < M <= 64
// DIVIDE: error: kiln-prune: 2:64 sparsity needs an input dim divisible by 64; 'h.proj.weight' has 96 inputs (leave it dense: skip=h.proj.weight, kiln-compile --prune-skip h.proj.weight)
// METHOD: kiln-prune: unknown pruning method 'optimal' (known: magnitude, wanda, sparsegpt)
// GLOBAL: kiln-prune: global takes method=magnitude and a fraction
// NONE: kiln-prune: no parameter to prune: none is only the weight of kiln.linear ops and matches 'only'

kiln.parameter @"wte.weight" : tensor<100x64xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"h.fc.weight" : tensor<64x96xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"h.fc.bias" : tensor<96xf32> init zeros trainable
kiln.parameter @"h.proj.weight" : tensor<12x96xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"lm_head.weight" : tensor<100x12xf32> init normal std = 2.000000e-02 trainable
func.func @forward(%ids: tensor<?xi64>) -> tensor<?x100xf32> {
  %wte = kiln.read_param @"wte.weight" : tensor<100x64xf32>
  %x = kiln.gather %wte[%ids] axis = 0 : (tensor<100x64xf32>, tensor<?xi64>) -> tensor<?x64xf32>
  %w = kiln.read_param @"h.fc.weight" : tensor<64x96xf32>
  %b = kiln.read_param @"h.fc.bias" : tensor<96xf32>
  %h = kiln.linear %x, %w bias %b weight_in_out : (tensor<?x64xf32>, tensor<64x96xf32>, tensor<96xf32>) -> tensor<?x96xf32>
  %p = kiln.read_param @"h.proj.weight" : tensor<12x96xf32>
  %y = kiln.linear %h, %p : (tensor<?x96xf32>, tensor<12x96xf32>) -> tensor<?x12xf32>
  %head = kiln.read_param @"lm_head.weight" : tensor<100x12xf32>
  %logits = kiln.linear %y, %head : (tensor<?x12xf32>, tensor<100x12xf32>) -> tensor<?x100xf32>
  return %logits : tensor<?x100xf32>
}
