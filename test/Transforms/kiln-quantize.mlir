// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=w8' | FileCheck %s --check-prefix=W8
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=w4g32 asymmetric=true' | FileCheck %s --check-prefix=W4
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=w8 skip=*.fc.* lm-head=true' | FileCheck %s --check-prefix=SKIP
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=w4g48' 2>&1 | FileCheck %s --check-prefix=GROUP
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=w3' 2>&1 | FileCheck %s --check-prefix=SCHEME
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=w4g32' --kiln-cost-report -o /dev/null | FileCheck %s --check-prefix=COST
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=int8-dynamic' | FileCheck %s --check-prefix=DYN
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=w8 lm-head=true' | FileCheck %s --check-prefix=TIED
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=w4g32 rounding=gptq' | FileCheck %s --check-prefix=GPTQ
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=w8 rounding=best' 2>&1 | FileCheck %s --check-prefix=ROUNDING
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=int8-dynamic lm-head=true' | FileCheck %s --check-prefix=TIEDDYN
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=int8-dynamic asymmetric=true' 2>&1 | FileCheck %s --check-prefix=DYNASYM
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=fp8' 2>/dev/null | FileCheck %s --check-prefix=FP8
// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=fp8 lm-head=true' -o /dev/null 2>&1 | FileCheck %s --check-prefix=FP8REMARK
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=fp8 rounding=gptq' 2>&1 | FileCheck %s --check-prefix=FP8GPTQ
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=fp8 asymmetric=true' 2>&1 | FileCheck %s --check-prefix=FP8ASYM

// fp8: e4m3 codes [out, in] with one scale per tensor ([1]); the linear's
// input quantized to e4m3 with one scale for the whole tensor (max |x| over
// every dim / 448, never 0), the codes multiplied with both scales. No
// dequantize; the LM head (100 x 96: not multiples of 16) stays float.
// FP8-LABEL: module
// FP8-DAG: kiln.parameter @h.fc.qweight : tensor<96x64xf8E4M3FN> init normal std = 2.000000e-02 {kiln.quantized_from = {bits = 8 : i64, format = "e4m3", group = 0 : i64, part = "codes", rounding = "rtn", source = "h.fc.weight", source_shape = array<i64: 64, 96>, symmetric = true, transposed = true}}
// FP8-DAG: kiln.parameter @h.fc.scales : tensor<1xf32> init normal std = 2.000000e-02 {kiln.quantized_from = {bits = 8 : i64, format = "e4m3", group = 0 : i64, part = "scales", rounding = "rtn", source = "h.fc.weight", source_shape = array<i64: 64, 96>, symmetric = true, transposed = true}}
// FP8-NOT: kiln.parameter @h.fc.weight
// FP8: %[[X:.+]] = kiln.gather
// FP8: %[[Q:.+]] = kiln.read_param @h.fc.qweight : tensor<96x64xf8E4M3FN>
// FP8: %[[S:.+]] = kiln.read_param @h.fc.scales : tensor<1xf32>
// FP8: %[[B:.+]] = kiln.read_param @h.fc.bias
// FP8: %[[A:.+]] = kiln.abs %[[X]]
// FP8: %[[M:.+]] = kiln.reduce max %[[A]] axes = [0, 1] keepdim : (tensor<?x64xf32>) -> tensor<1x1xf32>
// FP8: %[[TINY:.+]] = kiln.constant dense<1.000000e-30>
// FP8: %[[M2:.+]] = kiln.max %[[M]], %[[TINY]]
// FP8: %[[FMAX:.+]] = kiln.constant dense<4.480000e+02>
// FP8: %[[SX:.+]] = kiln.div %[[M2]], %[[FMAX]] : (tensor<1x1xf32>, tensor<f32>) -> tensor<1x1xf32>
// FP8: %[[XQ:.+]] = kiln.quantize %[[X]], %[[SX]] e4m3 : (tensor<?x64xf32>, tensor<1x1xf32>) -> tensor<?x64xf8E4M3FN>
// FP8: %[[SX1:.+]] = kiln.reshape %[[SX]] : tensor<1x1xf32> -> tensor<1xf32>
// FP8: %[[Y:.+]] = kiln.scaled_fp8_matmul %[[XQ]], %[[Q]] scales %[[SX1]], %[[S]] transpose_rhs : (tensor<?x64xf8E4M3FN>, tensor<96x64xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x96xf32>
// FP8: kiln.add %[[Y]], %[[B]]
// FP8-NOT: kiln.dequantize
// FP8: kiln.linear %{{.*}}, %{{.*}} : (tensor<?x96xf32>, tensor<100x96xf32>) -> tensor<?x100xf32>

// What fp8 leaves in float says why, with a remark: a head whose sizes
// are not multiples of 16 (cuBLASLt's fp8 rule), a layer of bf16 input,
// a table tied to the head.
// FP8REMARK: remark: kiln-quantize: 'lm_head.weight' stays float with fp8: cuBLASLt's fp8 gemm needs its [out, in] = [100, 96] to be multiples of 16
// FP8REMARK: remark: kiln-quantize: 'proj.weight' stays float with fp8: a layer reading it has an input that is not f32 of rank >= 2
// FP8REMARK: remark: kiln-quantize: 'wte.weight' stays float with fp8: it is also read as a table (a tied embedding)

// FP8GPTQ: error: kiln-quantize: fp8 rounds to nearest (rtn) only, not gptq
// FP8ASYM: error: unknown quantization scheme 'fp8': fp8 has symmetric (e4m3) weights

// A Conv1D-layout ([in, out]) weight becomes [out, in] codes and one scale
// per output channel; the linear reads the dequantized weight, no longer
// transposed. The bias, the tied embedding (also gathered) and the LM head
// stay float.
// W8-LABEL: module
// W8-DAG: kiln.parameter @h.fc.qweight : tensor<96x64xi8> init normal std = 2.000000e-02 {kiln.quantized_from = {bits = 8 : i64, group = 0 : i64, part = "codes", rounding = "rtn", source = "h.fc.weight", source_shape = array<i64: 64, 96>, symmetric = true, transposed = true}}
// W8-DAG: kiln.parameter @h.fc.scales : tensor<96x1xf32> init normal std = 2.000000e-02 {kiln.quantized_from = {bits = 8 : i64, group = 0 : i64, part = "scales", rounding = "rtn", source = "h.fc.weight", source_shape = array<i64: 64, 96>, symmetric = true, transposed = true}}
// W8-DAG: kiln.parameter @h.fc.bias : tensor<96xf32> init zeros trainable
// W8-DAG: kiln.parameter @wte.weight : tensor<100x64xf32>
// W8-DAG: kiln.parameter @lm_head.weight : tensor<100x96xf32>
// W8-NOT: kiln.parameter @h.fc.weight
// W8: %[[Q:.+]] = kiln.read_param @h.fc.qweight : tensor<96x64xi8>
// W8: %[[S:.+]] = kiln.read_param @h.fc.scales : tensor<96x1xf32>
// W8: %[[W:.+]] = kiln.dequantize %[[Q]], %[[S]] : (tensor<96x64xi8>, tensor<96x1xf32>) -> tensor<96x64xf32>
// W8: kiln.linear %{{.*}}, %[[W]] bias %{{.*}} : (tensor<?x64xf32>, tensor<96x64xf32>, tensor<96xf32>) -> tensor<?x96xf32>
// W8: kiln.read_param @lm_head.weight

// rounding=gptq is recorded for the compiler, which rounds with GPTQ.
// GPTQ: kiln.parameter @h.fc.qweight : tensor<96x32xi8> {{.*}}part = "codes", rounding = "gptq", source = "h.fc.weight"
// ROUNDING: kiln-quantize: unknown rounding 'best' (rtn, gptq or awq)

// Groups of 32 with zero points.
// W4-DAG: kiln.parameter @h.fc.qweight : tensor<96x32xi8>
// W4-DAG: kiln.parameter @h.fc.scales : tensor<96x2xf32>
// W4-DAG: kiln.parameter @h.fc.qzeros : tensor<96x2xi8>
// W4: %[[W:.+]] = kiln.dequantize %{{.*}}, %{{.*}} zero_point %{{.*}} bits = 4 unsigned : (tensor<96x32xi8>, tensor<96x2xf32>, tensor<96x2xi8>) -> tensor<96x64xf32>
// W4: kiln.linear %{{.*}}, %[[W]] bias

// The cost report counts the 64 x 96 quantized weights once (at their 3,072
// bytes of 4-bit codes; the 96 x 2 scales are bytes only): 6,400 + 96 +
// 9,600 float elements and 6,144 quantized; 25,600 + 384 + 38,400 bytes of
// floats, 3,072 of codes and 768 of scales.
// COST: parameters  22,240 in 5 tensors (16,096 trainable, 6,144 quantized), 68.22 KB

// int8-dynamic: the w8 parameters, and the linear becomes W8A8: its input
// quantized per token (max |x| / 127 over the last dim, never 0), an
// integer matmul against the [out, in] codes, the i32 sums scaled back by
// the token's and the channel's scales, the bias added. No dequantize; the
// LM head stays a float linear.
// DYN-DAG: kiln.parameter @h.fc.qweight : tensor<96x64xi8>
// DYN-DAG: kiln.parameter @h.fc.scales : tensor<96x1xf32>
// DYN: %[[X:.+]] = kiln.gather
// DYN: %[[Q:.+]] = kiln.read_param @h.fc.qweight : tensor<96x64xi8>
// DYN: %[[S:.+]] = kiln.read_param @h.fc.scales : tensor<96x1xf32>
// DYN: %[[A:.+]] = kiln.abs %[[X]]
// DYN: %[[M:.+]] = kiln.reduce max %[[A]] axes = [1] keepdim : (tensor<?x64xf32>) -> tensor<?x1xf32>
// DYN: %[[M2:.+]] = kiln.max %[[M]], %{{.*}} : (tensor<?x1xf32>, tensor<f32>) -> tensor<?x1xf32>
// DYN: %[[SX:.+]] = kiln.div %[[M2]], %{{.*}} : (tensor<?x1xf32>, tensor<f32>) -> tensor<?x1xf32>
// DYN: %[[XQ:.+]] = kiln.quantize %[[X]], %[[SX]] : (tensor<?x64xf32>, tensor<?x1xf32>) -> tensor<?x64xi8>
// DYN: %[[ACC:.+]] = kiln.integer_matmul %[[XQ]], %[[Q]] transpose_rhs : (tensor<?x64xi8>, tensor<96x64xi8>) -> tensor<?x96xi32>
// DYN: %[[F:.+]] = kiln.cast %[[ACC]] : tensor<?x96xi32> -> tensor<?x96xf32>
// DYN: %[[T:.+]] = kiln.mul %[[F]], %[[SX]]
// DYN: %[[SW:.+]] = kiln.reshape %[[S]] : tensor<96x1xf32> -> tensor<96xf32>
// DYN: %[[C:.+]] = kiln.mul %[[T]], %[[SW]]
// DYN: %[[H:.+]] = kiln.add %[[C]], %{{.*}} : (tensor<?x96xf32>, tensor<96xf32>) -> tensor<?x96xf32>
// DYN-NOT: kiln.dequantize
// DYN: kiln.linear %[[H]], %{{.*}} : (tensor<?x96xf32>, tensor<100x96xf32>) -> tensor<?x100xf32>
// DYNASYM: unknown quantization scheme 'int8-dynamic': int8-dynamic has symmetric weights

// `skip` keeps h.fc float; `lm-head` quantizes the LM head.
// SKIP-DAG: kiln.parameter @h.fc.weight : tensor<64x96xf32>
// SKIP-DAG: kiln.parameter @lm_head.qweight : tensor<100x96xi8>
kiln.parameter @"wte.weight" : tensor<100x64xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"h.fc.weight" : tensor<64x96xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"h.fc.bias" : tensor<96xf32> init zeros trainable
kiln.parameter @"lm_head.weight" : tensor<100x96xf32> init normal std = 2.000000e-02 trainable
func.func @forward(%ids: tensor<?xi64>) -> tensor<?x100xf32> {
  %wte = kiln.read_param @"wte.weight" : tensor<100x64xf32>
  %x = kiln.gather %wte[%ids] axis = 0 : (tensor<100x64xf32>, tensor<?xi64>) -> tensor<?x64xf32>
  %w = kiln.read_param @"h.fc.weight" : tensor<64x96xf32>
  %b = kiln.read_param @"h.fc.bias" : tensor<96xf32>
  %h = kiln.linear %x, %w bias %b weight_in_out : (tensor<?x64xf32>, tensor<64x96xf32>, tensor<96xf32>) -> tensor<?x96xf32>
  %head = kiln.read_param @"lm_head.weight" : tensor<100x96xf32>
  %logits = kiln.linear %h, %head : (tensor<?x96xf32>, tensor<100x96xf32>) -> tensor<?x100xf32>
  return %logits : tensor<?x100xf32>
}

// -----

// GROUP: error: cannot quantize 'h.fc.weight' with w4g48: its input dim 64 is not a multiple of the group size 48
// SCHEME: unknown quantization scheme 'w3': codes are 8 or 4 bits

// A bf16 compute type: the dequantized f32 weight is cast where the float
// weight was.
// W8-LABEL: module
// W8: %[[W:.+]] = kiln.dequantize %{{.*}}, %{{.*}} : (tensor<8x64xi8>, tensor<8x1xf32>) -> tensor<8x64xf32>
// W8: %[[C:.+]] = kiln.cast %[[W]] : tensor<8x64xf32> -> tensor<8x64xbf16>
// W8: kiln.linear %{{.*}}, %[[C]] : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> tensor<?x8xbf16>
kiln.parameter @"proj.weight" : tensor<8x64xf32> init normal std = 2.000000e-02 trainable
func.func @forward(%x: tensor<?x64xbf16>) -> tensor<?x8xbf16> {
  %w = kiln.read_param @"proj.weight" : tensor<8x64xf32>
  %c = kiln.cast %w : tensor<8x64xf32> -> tensor<8x64xbf16>
  %y = kiln.linear %x, %c : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}

// -----

// A head tied to the embedding (GPT-2's h · wteᵀ, a matmul of the table):
// without lm-head it stays float (W8 run: the table is gathered too); with
// lm-head the product becomes a linear of codes quantized from the table,
// which stays float for the lookup.
// W8-LABEL: module
// W8: kiln.matmul %{{.*}}, %{{.*}} transpose_rhs
// TIED: kiln.parameter @wte.qweight : tensor<100x64xi8> {{.*}}source = "wte.weight", source_shape = array<i64: 100, 64>, symmetric = true, transposed = false}}
// TIED: kiln.parameter @wte.scales : tensor<100x1xf32>
// TIED: kiln.parameter @wte.weight : tensor<100x64xf32> init normal std = 2.000000e-02 trainable
// TIED: %[[W:.+]] = kiln.dequantize
// TIED: %[[T:.+]] = kiln.read_param @wte.weight
// TIED: kiln.gather %[[T]]
// TIED: kiln.linear %{{.*}}, %[[W]] : (tensor<?x3x64xf32>, tensor<100x64xf32>) -> tensor<?x3x100xf32>
// TIED-NOT: kiln.matmul
// TIEDDYN: kiln.integer_matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<?x3x64xi8>, tensor<100x64xi8>) -> tensor<?x3x100xi32>
kiln.parameter @"wte.weight" : tensor<100x64xf32> init normal std = 2.000000e-02 trainable
func.func @forward(%ids: tensor<?x3xi64>) -> tensor<?x3x100xf32> {
  %wte = kiln.read_param @"wte.weight" : tensor<100x64xf32>
  %x = kiln.gather %wte[%ids] axis = 0 : (tensor<100x64xf32>, tensor<?x3xi64>) -> tensor<?x3x64xf32>
  %logits = kiln.matmul %x, %wte transpose_rhs : (tensor<?x3x64xf32>, tensor<100x64xf32>) -> tensor<?x3x100xf32>
  return %logits : tensor<?x3x100xf32>
}

