// RUN: kiln-opt %s --kiln-decompose | FileCheck %s
// RUN: kiln-opt %s --kiln-decompose | kiln-opt --verify-each | FileCheck %s
// RUN: kiln-opt %s --kiln-decompose | FileCheck %s --check-prefix=NOCOMP
// RUN: kiln-opt %s --kiln-decompose='keep=kiln.attention' | FileCheck %s --check-prefix=KEEP

// Every kiln composite decomposed into primitives, with static and dynamic
// shapes and f32/bf16/f16 element types. The second RUN re-parses and
// re-verifies the decomposed IR; the third checks that no composite is left
// anywhere; the fourth keeps kiln.attention whole.
//
// The pass is a FunctionOpInterface pass, so it is nested under func.func
// (a bare `--kiln-decompose` would try to schedule it on builtin.module).

// NOCOMP-NOT: kiln.{{(softmax|log_softmax|layer_norm|rms_norm|gelu|silu|linear|embedding|attention|rope|conv2d|max_pool2d|avg_pool2d|gru_cell|lstm_cell|dropout|cross_entropy|mse|kl_div) }}

// KEEP-LABEL: func.func @softmax_static
// KEEP-NOT: kiln.softmax
// KEEP: kiln.exp
// KEEP-LABEL: func.func @attention_mha_mask
// KEEP: kiln.attention
// KEEP-NOT: kiln.softmax
// KEEP-LABEL: func.func @attention_gqa_causal
// KEEP: kiln.attention {{.*}} causal
// KEEP-NOT: kiln.causal_mask
// A dynamic head dim has no fused lowering: decomposed even when kept.
// KEEP-LABEL: func.func @attention_dynamic_dim
// KEEP-NOT: kiln.attention
// KEEP: kiln.matmul
// KEEP-LABEL: func.func @rope_default
// KEEP-NOT: kiln.rope
// KEEP: kiln.cos

// softmax(x) = exp(x - max) / sum(exp(x - max)); a negative axis is
// normalized.
// CHECK-LABEL: func.func @softmax_static
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<2x8xf32>)
// CHECK: %[[MAX:.*]] = kiln.reduce max %[[X]] axes = [1] keepdim : (tensor<2x8xf32>) -> tensor<2x1xf32>
// CHECK: %[[SUB:.*]] = kiln.sub %[[X]], %[[MAX]]
// CHECK: %[[EXP:.*]] = kiln.exp %[[SUB]] : tensor<2x8xf32>
// CHECK: %[[SUM:.*]] = kiln.reduce sum %[[EXP]] axes = [1] keepdim
// CHECK: %[[DIV:.*]] = kiln.div %[[EXP]], %[[SUM]] : (tensor<2x8xf32>, tensor<2x1xf32>) -> tensor<2x8xf32>
// CHECK-NOT: kiln.softmax
// CHECK: return %[[DIV]] : tensor<2x8xf32>
func.func @softmax_static(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %0 = kiln.softmax %x axis = -1 : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return %0 : tensor<2x8xf32>
}

// bf16 and f16 softmaxes are computed in f32 and rounded once.
// CHECK-LABEL: func.func @softmax_dynamic
// CHECK: kiln.cast %{{.*}} : tensor<?x?x16xbf16> -> tensor<?x?x16xf32>
// CHECK: kiln.reduce max %{{.*}} axes = [1] keepdim : (tensor<?x?x16xf32>) -> tensor<?x1x16xf32>
// CHECK: kiln.exp %{{.*}} : tensor<?x?x16xf32>
// CHECK: kiln.reduce sum %{{.*}} axes = [1] keepdim : (tensor<?x?x16xf32>) -> tensor<?x1x16xf32>
// CHECK: %[[DIV:.*]] = kiln.div {{.*}} -> tensor<?x?x16xf32>
// CHECK: kiln.cast %[[DIV]] : tensor<?x?x16xf32> -> tensor<?x?x16xbf16>
// CHECK-NOT: kiln.softmax
// CHECK: return
func.func @softmax_dynamic(%x: tensor<?x?x16xbf16>) -> tensor<?x?x16xbf16> {
  %0 = kiln.softmax %x axis = 1 : (tensor<?x?x16xbf16>) -> tensor<?x?x16xbf16>
  return %0 : tensor<?x?x16xbf16>
}

// log_softmax(x) = (x - max) - log(sum(exp(x - max))).
// CHECK-LABEL: func.func @log_softmax_static
// CHECK: %[[MAX:.*]] = kiln.reduce max %{{.*}} axes = [1] keepdim
// CHECK: %[[SH:.*]] = kiln.sub %{{.*}}, %[[MAX]]
// CHECK: %[[EXP:.*]] = kiln.exp %[[SH]]
// CHECK: %[[SUM:.*]] = kiln.reduce sum %[[EXP]] axes = [1] keepdim
// CHECK: %[[LOG:.*]] = kiln.log %[[SUM]] : tensor<4x1xf32>
// CHECK: %[[R:.*]] = kiln.sub %[[SH]], %[[LOG]] : (tensor<4x10xf32>, tensor<4x1xf32>) -> tensor<4x10xf32>
// CHECK-NOT: kiln.log_softmax
// CHECK: return %[[R]]
func.func @log_softmax_static(%x: tensor<4x10xf32>) -> tensor<4x10xf32> {
  %0 = kiln.log_softmax %x axis = -1 : (tensor<4x10xf32>) -> tensor<4x10xf32>
  return %0 : tensor<4x10xf32>
}

// CHECK-LABEL: func.func @log_softmax_dynamic
// CHECK: kiln.cast %{{.*}} : tensor<?x?xf16> -> tensor<?x?xf32>
// CHECK: kiln.reduce max %{{.*}} axes = [0] keepdim : (tensor<?x?xf32>) -> tensor<1x?xf32>
// CHECK: kiln.log %{{.*}} : tensor<1x?xf32>
// CHECK: %[[SUB:.*]] = kiln.sub {{.*}} -> tensor<?x?xf32>
// CHECK: kiln.cast %[[SUB]] : tensor<?x?xf32> -> tensor<?x?xf16>
// CHECK-NOT: kiln.log_softmax
// CHECK: return
func.func @log_softmax_dynamic(%x: tensor<?x?xf16>) -> tensor<?x?xf16> {
  %0 = kiln.log_softmax %x axis = 0 : (tensor<?x?xf16>) -> tensor<?x?xf16>
  return %0 : tensor<?x?xf16>
}

// layer_norm = (x - mean) * rsqrt(var + eps) * w + b over the last dim.
// CHECK-LABEL: func.func @layer_norm_affine
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x?x768xf32>, %[[G:[a-z0-9_]+]]: tensor<768xf32>, %[[B:[a-z0-9_]+]]: tensor<768xf32>)
// CHECK: %[[MEAN:.*]] = kiln.reduce mean %[[X]] axes = [2] keepdim : (tensor<?x?x768xf32>) -> tensor<?x?x1xf32>
// CHECK: %[[C:.*]] = kiln.sub %[[X]], %[[MEAN]]
// CHECK: %[[SQ:.*]] = kiln.mul %[[C]], %[[C]]
// CHECK: %[[VAR:.*]] = kiln.reduce mean %[[SQ]] axes = [2] keepdim
// CHECK: %[[EPS:.*]] = kiln.constant dense<9.99999974E-6> : tensor<f32>
// CHECK: %[[VE:.*]] = kiln.add %[[VAR]], %[[EPS]]
// CHECK: %[[INV:.*]] = kiln.rsqrt %[[VE]]
// CHECK: %[[N:.*]] = kiln.mul %[[C]], %[[INV]]
// CHECK: %[[W:.*]] = kiln.mul %[[N]], %[[G]]
// CHECK: %[[R:.*]] = kiln.add %[[W]], %[[B]] : (tensor<?x?x768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
// CHECK-NOT: kiln.layer_norm
// CHECK: return %[[R]]
func.func @layer_norm_affine(%x: tensor<?x?x768xf32>, %g: tensor<768xf32>, %b: tensor<768xf32>) -> tensor<?x?x768xf32> {
  %0 = kiln.layer_norm %x weight %g bias %b eps = 1.000000e-05 : (tensor<?x?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
  return %0 : tensor<?x?x768xf32>
}

// A bf16 layer_norm normalizes in f32 and rounds once.
// CHECK-LABEL: func.func @layer_norm_plain
// CHECK: kiln.cast %{{.*}} : tensor<4x8xbf16> -> tensor<4x8xf32>
// CHECK: kiln.reduce mean {{.*}} : (tensor<4x8xf32>) -> tensor<4x1xf32>
// CHECK: kiln.constant dense<{{.*}}> : tensor<f32>
// CHECK: %[[INV:.*]] = kiln.rsqrt %{{.*}} : tensor<4x1xf32>
// CHECK: %[[N:.*]] = kiln.mul %{{.*}}, %[[INV]] : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
// CHECK: %[[R:.*]] = kiln.cast %[[N]] : tensor<4x8xf32> -> tensor<4x8xbf16>
// CHECK-NOT: kiln.layer_norm
// CHECK: return %[[R]]
func.func @layer_norm_plain(%x: tensor<4x8xbf16>) -> tensor<4x8xbf16> {
  %0 = kiln.layer_norm %x eps = 1.000000e-06 : (tensor<4x8xbf16>) -> tensor<4x8xbf16>
  return %0 : tensor<4x8xbf16>
}

// rms_norm = x * rsqrt(mean(x^2) + eps) * w.
// CHECK-LABEL: func.func @rms_norm_static
// (f16: normalized in f32, rounded, then scaled, as Hugging Face's LlamaRMSNorm)
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<2x3x64xf16>, %[[G:[a-z0-9_]+]]: tensor<64xf16>)
// CHECK: %[[XW:.*]] = kiln.cast %[[X]] : tensor<2x3x64xf16> -> tensor<2x3x64xf32>
// CHECK: %[[SQ:.*]] = kiln.mul %[[XW]], %[[XW]]
// CHECK: %[[MS:.*]] = kiln.reduce mean %[[SQ]] axes = [2] keepdim : (tensor<2x3x64xf32>) -> tensor<2x3x1xf32>
// CHECK: %[[EPS:.*]] = kiln.constant dense<{{.*}}> : tensor<f32>
// CHECK: %[[A:.*]] = kiln.add %[[MS]], %[[EPS]]
// CHECK: %[[INV:.*]] = kiln.rsqrt %[[A]]
// CHECK: %[[NW:.*]] = kiln.mul %[[XW]], %[[INV]]
// CHECK: %[[N:.*]] = kiln.cast %[[NW]] : tensor<2x3x64xf32> -> tensor<2x3x64xf16>
// CHECK: %[[R:.*]] = kiln.mul %[[N]], %[[G]]
// CHECK-NOT: kiln.rms_norm
// CHECK: return %[[R]]
func.func @rms_norm_static(%x: tensor<2x3x64xf16>, %g: tensor<64xf16>) -> tensor<2x3x64xf16> {
  %0 = kiln.rms_norm %x, %g eps = 1.000000e-06 : (tensor<2x3x64xf16>, tensor<64xf16>) -> tensor<2x3x64xf16>
  return %0 : tensor<2x3x64xf16>
}

// CHECK-LABEL: func.func @rms_norm_dynamic
// CHECK: kiln.reduce mean %{{.*}} axes = [2] keepdim : (tensor<?x?x64xf32>) -> tensor<?x?x1xf32>
// CHECK: kiln.rsqrt
// CHECK: kiln.mul {{.*}} : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
// CHECK-NOT: kiln.rms_norm
// CHECK: return
func.func @rms_norm_dynamic(%x: tensor<?x?x64xf32>, %g: tensor<64xf32>) -> tensor<?x?x64xf32> {
  %0 = kiln.rms_norm %x, %g eps = 1.000000e-05 : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
  return %0 : tensor<?x?x64xf32>
}

// gelu (erf) = 0.5·x·(1 + erf(x/√2)).
// CHECK-LABEL: func.func @gelu_erf
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<4x8xf32>)
// CHECK: %[[S2:.*]] = kiln.constant dense<0.707106769> : tensor<f32>
// CHECK: %[[XS:.*]] = kiln.mul %[[X]], %[[S2]]
// CHECK: %[[E:.*]] = kiln.erf %[[XS]]
// CHECK: %[[ONE:.*]] = kiln.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[P:.*]] = kiln.add %[[E]], %[[ONE]]
// CHECK: %[[HALF:.*]] = kiln.constant dense<5.000000e-01> : tensor<f32>
// CHECK: %[[HX:.*]] = kiln.mul %[[X]], %[[HALF]]
// CHECK: %[[R:.*]] = kiln.mul %[[HX]], %[[P]]
// CHECK-NOT: kiln.gelu
// CHECK: return %[[R]]
func.func @gelu_erf(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = kiln.gelu %x approximate = erf : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// gelu (tanh) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); bf16 in f32,
// rounded once.
// CHECK-LABEL: func.func @gelu_tanh
// CHECK-SAME: (%[[XN:[a-z0-9_]+]]: tensor<?x?x3072xbf16>)
// CHECK: %[[X:.*]] = kiln.cast %[[XN]] : tensor<?x?x3072xbf16> -> tensor<?x?x3072xf32>
// CHECK: %[[X2:.*]] = kiln.mul %[[X]], %[[X]]
// CHECK: %[[X3:.*]] = kiln.mul %[[X2]], %[[X]]
// CHECK: kiln.constant dense<4.471500e-02> : tensor<f32>
// CHECK: kiln.constant dense<0.797884583> : tensor<f32>
// CHECK: kiln.tanh %{{.*}} : tensor<?x?x3072xf32>
// CHECK: kiln.constant dense<5.000000e-01> : tensor<f32>
// CHECK: kiln.cast %{{.*}} : tensor<?x?x3072xf32> -> tensor<?x?x3072xbf16>
// CHECK-NOT: kiln.erf
// CHECK-NOT: kiln.gelu
// CHECK: return
func.func @gelu_tanh(%x: tensor<?x?x3072xbf16>) -> tensor<?x?x3072xbf16> {
  %0 = kiln.gelu %x approximate = tanh : tensor<?x?x3072xbf16>
  return %0 : tensor<?x?x3072xbf16>
}

// silu = x · sigmoid(x).
// CHECK-LABEL: func.func @silu
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x172xf32>)
// CHECK: %[[S:.*]] = kiln.sigmoid %[[X]] : tensor<?x172xf32>
// CHECK: %[[R:.*]] = kiln.mul %[[X]], %[[S]]
// CHECK-NOT: kiln.silu
// CHECK: return %[[R]]
func.func @silu(%x: tensor<?x172xf32>) -> tensor<?x172xf32> {
  %0 = kiln.silu %x : tensor<?x172xf32>
  return %0 : tensor<?x172xf32>
}

// linear = x·Wᵀ + b.
// CHECK-LABEL: func.func @linear_bias
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x?x512xf32>, %[[W:[a-z0-9_]+]]: tensor<2048x512xf32>, %[[B:[a-z0-9_]+]]: tensor<2048xf32>)
// CHECK: %[[MM:.*]] = kiln.matmul %[[X]], %[[W]] transpose_rhs : (tensor<?x?x512xf32>, tensor<2048x512xf32>) -> tensor<?x?x2048xf32>
// CHECK: %[[R:.*]] = kiln.add %[[MM]], %[[B]]
// CHECK-NOT: kiln.linear
// CHECK: return %[[R]]
func.func @linear_bias(%x: tensor<?x?x512xf32>, %w: tensor<2048x512xf32>, %b: tensor<2048xf32>) -> tensor<?x?x2048xf32> {
  %0 = kiln.linear %x, %w bias %b : (tensor<?x?x512xf32>, tensor<2048x512xf32>, tensor<2048xf32>) -> tensor<?x?x2048xf32>
  return %0 : tensor<?x?x2048xf32>
}

// CHECK-LABEL: func.func @linear_in_out
// CHECK: %[[MM:.*]] = kiln.matmul %{{.*}}, %{{.*}} : (tensor<2x4x768xbf16>, tensor<768x2304xbf16>) -> tensor<2x4x2304xbf16>
// CHECK-NOT: transpose_rhs
// CHECK-NOT: kiln.linear
// CHECK: return %[[MM]]
func.func @linear_in_out(%x: tensor<2x4x768xbf16>, %w: tensor<768x2304xbf16>) -> tensor<2x4x2304xbf16> {
  %0 = kiln.linear %x, %w weight_in_out : (tensor<2x4x768xbf16>, tensor<768x2304xbf16>) -> tensor<2x4x2304xbf16>
  return %0 : tensor<2x4x2304xbf16>
}

// A 1-D input goes through a [1, in] row.
// CHECK-LABEL: func.func @linear_vector
// CHECK: kiln.reshape %{{.*}} : tensor<16xf32> -> tensor<1x16xf32>
// CHECK: kiln.matmul {{.*}} transpose_rhs : (tensor<1x16xf32>, tensor<8x16xf32>) -> tensor<1x8xf32>
// CHECK: %[[R:.*]] = kiln.reshape %{{.*}} : tensor<1x8xf32> -> tensor<8xf32>
// CHECK: return %[[R]]
func.func @linear_vector(%x: tensor<16xf32>, %w: tensor<8x16xf32>) -> tensor<8xf32> {
  %0 = kiln.linear %x, %w : (tensor<16xf32>, tensor<8x16xf32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// embedding = gather(table, ids, axis = 0).
// CHECK-LABEL: func.func @embedding_static
// CHECK-SAME: (%[[T:[a-z0-9_]+]]: tensor<100x16xf32>, %[[I:[a-z0-9_]+]]: tensor<2x5xi32>)
// CHECK: %[[R:.*]] = kiln.gather %[[T]][%[[I]]] axis = 0 : (tensor<100x16xf32>, tensor<2x5xi32>) -> tensor<2x5x16xf32>
// CHECK-NOT: kiln.embedding
// CHECK: return %[[R]]
func.func @embedding_static(%t: tensor<100x16xf32>, %ids: tensor<2x5xi32>) -> tensor<2x5x16xf32> {
  %0 = kiln.embedding %t, %ids : (tensor<100x16xf32>, tensor<2x5xi32>) -> tensor<2x5x16xf32>
  return %0 : tensor<2x5x16xf32>
}

// CHECK-LABEL: func.func @embedding_dynamic
// CHECK: kiln.gather %{{.*}}[%{{.*}}] axis = 0 : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
// CHECK-NOT: kiln.embedding
func.func @embedding_dynamic(%t: tensor<50257x768xf32>, %ids: tensor<?x?xi64>) -> tensor<?x?x768xf32> {
  %0 = kiln.embedding %t, %ids : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
  return %0 : tensor<?x?x768xf32>
}

// attention = softmax(q·kᵀ·scale + mask) · v; the softmax is emitted as
// primitives.
// CHECK-LABEL: func.func @attention_mha_mask
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<1x4x8x16xf32>, %[[K:[a-z0-9_]+]]: tensor<1x4x8x16xf32>, %[[V:[a-z0-9_]+]]: tensor<1x4x8x32xf32>, %[[M:[a-z0-9_]+]]: tensor<1x1x1x8xf32>)
// CHECK: %[[S:.*]] = kiln.matmul %[[Q]], %[[K]] transpose_rhs : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x8xf32>
// CHECK: %[[SC:.*]] = kiln.constant dense<5.000000e-01> : tensor<f32>
// CHECK: %[[SS:.*]] = kiln.mul %[[S]], %[[SC]]
// CHECK: %[[SM:.*]] = kiln.add %[[SS]], %[[M]] : (tensor<1x4x8x8xf32>, tensor<1x1x1x8xf32>) -> tensor<1x4x8x8xf32>
// CHECK: kiln.reduce max %[[SM]] axes = [3] keepdim
// CHECK: kiln.exp
// CHECK: kiln.reduce sum {{.*}} axes = [3] keepdim
// CHECK: %[[P:.*]] = kiln.div
// CHECK: %[[R:.*]] = kiln.matmul %[[P]], %[[V]] : (tensor<1x4x8x8xf32>, tensor<1x4x8x32xf32>) -> tensor<1x4x8x32xf32>
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.attention
// CHECK: return %[[R]]
func.func @attention_mha_mask(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x32xf32>, %m: tensor<1x1x1x8xf32>) -> tensor<1x4x8x32xf32> {
  %0 = kiln.attention %q, %k, %v mask %m scale = 5.000000e-01 : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x32xf32>, tensor<1x1x1x8xf32>) -> tensor<1x4x8x32xf32>
  return %0 : tensor<1x4x8x32xf32>
}

// key_lengths become an additive mask: slots at or after max(len, 1) get
// the lowest float, like a padding mask.
// CHECK-LABEL: func.func @attention_key_lengths
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x4x1x16xf32>, %[[K:[a-z0-9_]+]]: tensor<?x4x32x16xf32>, %[[V:[a-z0-9_]+]]: tensor<?x4x32x16xf32>, %[[L:[a-z0-9_]+]]: tensor<?xi64>)
// CHECK: %[[SS:.*]] = kiln.mul
// CHECK: %[[SLOTS:.*]] = kiln.iota() dim = 0 : tensor<32xi64>
// CHECK: %[[ONE:.*]] = kiln.constant dense<1> : tensor<i64>
// CHECK: %[[LEN:.*]] = kiln.max %[[L]], %[[ONE]]
// CHECK: %[[COL:.*]] = kiln.reshape %[[LEN]] : tensor<?xi64> -> tensor<?x1xi64>
// CHECK: %[[VISIBLE:.*]] = kiln.compare lt, %[[SLOTS]], %[[COL]] : (tensor<32xi64>, tensor<?x1xi64>) -> tensor<?x32xi1>
// CHECK: %[[MASK:.*]] = kiln.padding_mask %[[VISIBLE]] : tensor<?x32xi1> -> tensor<?x1x1x32xf32>
// CHECK: kiln.add %[[SS]], %[[MASK]]
// CHECK-NOT: kiln.attention
func.func @attention_key_lengths(%q: tensor<?x4x1x16xf32>, %k: tensor<?x4x32x16xf32>, %v: tensor<?x4x32x16xf32>, %len: tensor<?xi64>) -> tensor<?x4x1x16xf32> {
  %0 = kiln.attention %q, %k, %v key_lengths %len : (tensor<?x4x1x16xf32>, tensor<?x4x32x16xf32>, tensor<?x4x32x16xf32>, tensor<?xi64>) -> tensor<?x4x1x16xf32>
  return %0 : tensor<?x4x1x16xf32>
}

// Grouped-query (8 query heads, 2 kv heads): kv heads are repeated 4 times
// through [B, Hkv, 1, S, D] -> broadcast [B, Hkv, 4, S, D] -> [B, H, S, D];
// causal masking selects the lowest finite bf16; scale = 1/√64.
// CHECK-LABEL: func.func @attention_gqa_causal
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x8x?x64xbf16>, %[[K:[a-z0-9_]+]]: tensor<?x2x?x64xbf16>, %[[V:[a-z0-9_]+]]: tensor<?x2x?x64xbf16>)
// CHECK: %[[K5:.*]] = kiln.reshape %[[K]] : tensor<?x2x?x64xbf16> -> tensor<?x2x1x?x64xbf16>
// CHECK: %[[KB:.*]] = tensor.dim %[[K]], %{{.*}} : tensor<?x2x?x64xbf16>
// CHECK: %[[KS:.*]] = tensor.dim %[[K]], %{{.*}} : tensor<?x2x?x64xbf16>
// CHECK: %[[KBC:.*]] = kiln.broadcast_to %[[K5]](%[[KB]], %[[KS]]) : tensor<?x2x1x?x64xbf16> -> tensor<?x2x4x?x64xbf16>
// CHECK: %[[KR:.*]] = kiln.reshape %[[KBC]] : tensor<?x2x4x?x64xbf16> -> tensor<?x8x?x64xbf16>
// CHECK: kiln.reshape %[[V]] : tensor<?x2x?x64xbf16> -> tensor<?x2x1x?x64xbf16>
// CHECK: kiln.broadcast_to
// CHECK: %[[VR:.*]] = kiln.reshape %{{.*}} : tensor<?x2x4x?x64xbf16> -> tensor<?x8x?x64xbf16>
// CHECK: %[[S:.*]] = kiln.matmul %[[Q]], %[[KR]] transpose_rhs : (tensor<?x8x?x64xbf16>, tensor<?x8x?x64xbf16>) -> tensor<?x8x?x?xbf16>
// CHECK: %[[SC:.*]] = kiln.constant dense<1.250000e-01> : tensor<bf16>
// CHECK: %[[SS:.*]] = kiln.mul %[[S]], %[[SC]]
// CHECK: %[[SQ:.*]] = tensor.dim %[[Q]], %{{.*}}
// CHECK: %[[SK:.*]] = tensor.dim %[[K]], %{{.*}}
// CHECK: %[[CM:.*]] = kiln.causal_mask(%[[SQ]], %[[SK]]) : tensor<?x?xi1>
// CHECK: %[[LOW:.*]] = kiln.constant dense<-3.389530e+38> : tensor<bf16>
// CHECK: %[[SEL:.*]] = kiln.select %[[CM]], %[[SS]], %[[LOW]] : (tensor<?x?xi1>, tensor<?x8x?x?xbf16>, tensor<bf16>) -> tensor<?x8x?x?xbf16>
// CHECK: %[[SELW:.*]] = kiln.cast %[[SEL]] : tensor<?x8x?x?xbf16> -> tensor<?x8x?x?xf32>
// CHECK: kiln.reduce max %[[SELW]] axes = [3] keepdim
// CHECK: %[[PW:.*]] = kiln.div
// CHECK: %[[P:.*]] = kiln.cast %[[PW]] : tensor<?x8x?x?xf32> -> tensor<?x8x?x?xbf16>
// CHECK: %[[R:.*]] = kiln.matmul %[[P]], %[[VR]] : (tensor<?x8x?x?xbf16>, tensor<?x8x?x64xbf16>) -> tensor<?x8x?x64xbf16>
// CHECK-NOT: kiln.attention
// CHECK: return %[[R]]
func.func @attention_gqa_causal(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %0 = kiln.attention %q, %k, %v causal : (tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) -> tensor<?x8x?x64xbf16>
  return %0 : tensor<?x8x?x64xbf16>
}

// One kv head broadcasts through the matmul batch dims; the static causal
// mask is [Sq, Sk] with Sq < Sk.
// CHECK-LABEL: func.func @attention_mqa
// CHECK-NOT: kiln.broadcast_to
// CHECK: kiln.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<2x4x3x8xf32>, tensor<2x1x5x8xf32>) -> tensor<2x4x3x5xf32>
// CHECK: kiln.constant dense<0.353553385> : tensor<f32>
// CHECK: kiln.causal_mask() : tensor<3x5xi1>
// CHECK: kiln.constant dense<-3.40282347E+38> : tensor<f32>
// CHECK: kiln.select
// CHECK: kiln.matmul %{{.*}}, %{{.*}} : (tensor<2x4x3x5xf32>, tensor<2x1x5x8xf32>) -> tensor<2x4x3x8xf32>
// CHECK-NOT: kiln.attention
// CHECK: return
func.func @attention_mqa(%q: tensor<2x4x3x8xf32>, %k: tensor<2x1x5x8xf32>, %v: tensor<2x1x5x8xf32>) -> tensor<2x4x3x8xf32> {
  %0 = kiln.attention %q, %k, %v causal : (tensor<2x4x3x8xf32>, tensor<2x1x5x8xf32>, tensor<2x1x5x8xf32>) -> tensor<2x4x3x8xf32>
  return %0 : tensor<2x4x3x8xf32>
}

// A dynamic head dim: the default scale is rsqrt(D) with D counted at run
// time.
// CHECK-LABEL: func.func @attention_dynamic_dim
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<1x2x4x?xf32>
// CHECK: kiln.matmul
// CHECK: %[[ONE:.*]] = kiln.constant dense<1.000000e+00> : tensor<1xf32>
// CHECK: %[[D:.*]] = tensor.dim %[[Q]], %{{.*}} : tensor<1x2x4x?xf32>
// CHECK: %[[ONES:.*]] = kiln.broadcast_to %[[ONE]](%[[D]]) : tensor<1xf32> -> tensor<?xf32>
// CHECK: %[[N:.*]] = kiln.reduce sum %[[ONES]] axes = [0] : (tensor<?xf32>) -> tensor<f32>
// CHECK: %[[SC:.*]] = kiln.rsqrt %[[N]] : tensor<f32>
// CHECK: kiln.mul %{{.*}}, %[[SC]]
// CHECK: kiln.matmul {{.*}} -> tensor<1x2x4x?xf32>
// CHECK-NOT: kiln.attention
// CHECK: return
func.func @attention_dynamic_dim(%q: tensor<1x2x4x?xf32>, %k: tensor<1x2x4x?xf32>, %v: tensor<1x2x4x?xf32>) -> tensor<1x2x4x?xf32> {
  %0 = kiln.attention %q, %k, %v : (tensor<1x2x4x?xf32>, tensor<1x2x4x?xf32>, tensor<1x2x4x?xf32>) -> tensor<1x2x4x?xf32>
  return %0 : tensor<1x2x4x?xf32>
}

// rope = x·cos + rotate_half(x)·sin, positions iota(S), angles in f32.
// CHECK-LABEL: func.func @rope_default
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x8x?x64xf32>)
// CHECK: %[[INV:.*]] = kiln.constant dense<[1.000000e+00, 0.749894201, {{.*}}]> : tensor<32xf32>
// CHECK: %[[S:.*]] = tensor.dim %[[X]], %{{.*}} : tensor<?x8x?x64xf32>
// CHECK: %[[POS:.*]] = kiln.iota(%[[S]]) dim = 0 : tensor<?xf32>
// CHECK: %[[COL:.*]] = kiln.reshape %[[POS]] : tensor<?xf32> -> tensor<?x1xf32>
// CHECK: %[[F:.*]] = kiln.mul %[[COL]], %[[INV]] : (tensor<?x1xf32>, tensor<32xf32>) -> tensor<?x32xf32>
// CHECK: %[[EMB:.*]] = kiln.concat %[[F]], %[[F]] axis = 1 : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
// CHECK: %[[COS:.*]] = kiln.cos %[[EMB]] : tensor<?x64xf32>
// CHECK: %[[SIN:.*]] = kiln.sin %[[EMB]] : tensor<?x64xf32>
// CHECK: %[[X1:.*]] = kiln.slice %[[X]] axis = 3[0 : 32 : 1]
// CHECK: %[[X2:.*]] = kiln.slice %[[X]] axis = 3[32 : 64 : 1]
// CHECK: %[[NX2:.*]] = kiln.neg %[[X2]]
// CHECK: %[[ROT:.*]] = kiln.concat %[[NX2]], %[[X1]] axis = 3
// CHECK: %[[XC:.*]] = kiln.mul %[[X]], %[[COS]] : (tensor<?x8x?x64xf32>, tensor<?x64xf32>) -> tensor<?x8x?x64xf32>
// CHECK: %[[RS:.*]] = kiln.mul %[[ROT]], %[[SIN]]
// CHECK: %[[R:.*]] = kiln.add %[[XC]], %[[RS]]
// CHECK-NOT: kiln.rope
// CHECK: return %[[R]]
func.func @rope_default(%x: tensor<?x8x?x64xf32>) -> tensor<?x8x?x64xf32> {
  %0 = kiln.rope %x theta = 1.000000e+04 : (tensor<?x8x?x64xf32>) -> tensor<?x8x?x64xf32>
  return %0 : tensor<?x8x?x64xf32>
}

// [B, S] positions: cast to f32, cos/sin cast back to bf16 and reshaped to
// [B, 1, S, D] to broadcast over heads.
// CHECK-LABEL: func.func @rope_positions
// CHECK: kiln.constant dense<[1.000000e+00, {{.*}}]> : tensor<4xf32>
// CHECK: kiln.cast %{{.*}} : tensor<2x6xi64> -> tensor<2x6xf32>
// CHECK: kiln.reshape %{{.*}} : tensor<2x6xf32> -> tensor<2x6x1xf32>
// CHECK: kiln.concat {{.*}} axis = 2 : (tensor<2x6x4xf32>, tensor<2x6x4xf32>) -> tensor<2x6x8xf32>
// CHECK: kiln.cos
// CHECK: kiln.cast %{{.*}} : tensor<2x6x8xf32> -> tensor<2x6x8xbf16>
// CHECK: kiln.sin
// CHECK: kiln.cast %{{.*}} : tensor<2x6x8xf32> -> tensor<2x6x8xbf16>
// CHECK: kiln.reshape %{{.*}} : tensor<2x6x8xbf16> -> tensor<2x1x6x8xbf16>
// CHECK: kiln.neg
// CHECK: kiln.add {{.*}} -> tensor<2x4x6x8xbf16>
// CHECK-NOT: kiln.rope
// CHECK: return
func.func @rope_positions(%x: tensor<2x4x6x8xbf16>, %p: tensor<2x6xi64>) -> tensor<2x4x6x8xbf16> {
  %0 = kiln.rope %x positions %p theta = 5.000000e+05 : (tensor<2x4x6x8xbf16>, tensor<2x6xi64>) -> tensor<2x4x6x8xbf16>
  return %0 : tensor<2x4x6x8xbf16>
}

// conv2d as im2col: one strided slice per kernel tap, concat, matmul.
// CHECK-LABEL: func.func @conv2d_simple
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<1x3x5x5xf32>, %[[W:[a-z0-9_]+]]: tensor<4x3x2x2xf32>)
// CHECK-NOT: kiln.pad
// CHECK: %[[R0:.*]] = kiln.slice %[[X]] axis = 2[0 : 4 : 1]
// CHECK: kiln.slice %[[R0]] axis = 3[0 : 4 : 1] : (tensor<1x3x4x5xf32>) -> tensor<1x3x4x4xf32>
// CHECK: kiln.reshape %{{.*}} : tensor<1x3x4x4xf32> -> tensor<1x3x1x4x4xf32>
// CHECK: kiln.slice %[[R0]] axis = 3[1 : 5 : 1]
// CHECK: %[[R1:.*]] = kiln.slice %[[X]] axis = 2[1 : 5 : 1]
// CHECK: kiln.slice %[[R1]] axis = 3[0 : 4 : 1]
// CHECK: kiln.slice %[[R1]] axis = 3[1 : 5 : 1]
// CHECK: %[[COLS:.*]] = kiln.concat {{.*}} axis = 2 : {{.*}} -> tensor<1x3x4x4x4xf32>
// CHECK: %[[P:.*]] = kiln.reshape %[[COLS]] : tensor<1x3x4x4x4xf32> -> tensor<1x12x16xf32>
// CHECK: %[[WM:.*]] = kiln.reshape %[[W]] : tensor<4x3x2x2xf32> -> tensor<4x12xf32>
// CHECK: %[[MM:.*]] = kiln.matmul %[[WM]], %[[P]] : (tensor<4x12xf32>, tensor<1x12x16xf32>) -> tensor<1x4x16xf32>
// CHECK: %[[R:.*]] = kiln.reshape %[[MM]] : tensor<1x4x16xf32> -> tensor<1x4x4x4xf32>
// CHECK-NOT: kiln.conv2d
// CHECK: return %[[R]]
func.func @conv2d_simple(%x: tensor<1x3x5x5xf32>, %w: tensor<4x3x2x2xf32>) -> tensor<1x4x4x4xf32> {
  %0 = kiln.conv2d %x, %w stride = [1, 1] padding = [0, 0] dilation = [1, 1] groups = 1 : (tensor<1x3x5x5xf32>, tensor<4x3x2x2xf32>) -> tensor<1x4x4x4xf32>
  return %0 : tensor<1x4x4x4xf32>
}

// Windows that tile the input (a patch embedding): im2col is a reshape and a
// transpose; the row past the last window is sliced off.
// CHECK-LABEL: func.func @conv2d_patches
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x3x9x8xf32>, %[[W:[a-z0-9_]+]]: tensor<5x3x4x4xf32>)
// CHECK: %[[ROWS:.*]] = kiln.slice %[[X]] axis = 2[0 : 8 : 1] : (tensor<?x3x9x8xf32>) -> tensor<?x3x8x8xf32>
// CHECK-NOT: kiln.slice
// CHECK: %[[T:.*]] = kiln.reshape %[[ROWS]] : tensor<?x3x8x8xf32> -> tensor<?x3x2x4x2x4xf32>
// CHECK: %[[C:.*]] = kiln.transpose %[[T]] permutation = [0, 1, 3, 5, 2, 4]
// CHECK: %[[P:.*]] = kiln.reshape %[[C]] : tensor<?x3x4x4x2x2xf32> -> tensor<?x48x4xf32>
// CHECK: kiln.matmul %{{.*}}, %[[P]] : (tensor<5x48xf32>, tensor<?x48x4xf32>) -> tensor<?x5x4xf32>
// CHECK-NOT: kiln.concat
// CHECK-NOT: kiln.conv2d
func.func @conv2d_patches(%x: tensor<?x3x9x8xf32>, %w: tensor<5x3x4x4xf32>) -> tensor<?x5x2x2xf32> {
  %0 = kiln.conv2d %x, %w stride = [4, 4] padding = [0, 0] dilation = [1, 1] groups = 1 : (tensor<?x3x9x8xf32>, tensor<5x3x4x4xf32>) -> tensor<?x5x2x2xf32>
  return %0 : tensor<?x5x2x2xf32>
}

// Groups, padding, stride and dilation, dynamic batch: the group is a matmul
// batch dim, the bias is added as [O, 1, 1].
// CHECK-LABEL: func.func @conv2d_groups
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x4x9x9xf32>, %[[W:[a-z0-9_]+]]: tensor<6x2x3x3xf32>, %[[B:[a-z0-9_]+]]: tensor<6xf32>)
// CHECK: %[[PAD:.*]] = kiln.pad %[[X]] low = [0, 0, 1, 1] high = [0, 0, 1, 1] value = 0.000000e+00 : (tensor<?x4x9x9xf32>) -> tensor<?x4x11x11xf32>
// CHECK: kiln.slice %[[PAD]] axis = 2[0 : 7 : 2] : (tensor<?x4x11x11xf32>) -> tensor<?x4x4x11xf32>
// CHECK: kiln.slice %{{.*}} axis = 3[0 : 7 : 2]
// CHECK: kiln.slice %{{.*}} axis = 3[2 : 9 : 2]
// CHECK: kiln.slice %{{.*}} axis = 3[4 : 11 : 2]
// CHECK: kiln.slice %[[PAD]] axis = 2[2 : 9 : 2]
// CHECK: kiln.slice %[[PAD]] axis = 2[4 : 11 : 2]
// CHECK: %[[COLS:.*]] = kiln.concat {{.*}} axis = 2 : {{.*}} -> tensor<?x4x9x4x4xf32>
// CHECK: %[[P:.*]] = kiln.reshape %[[COLS]] : tensor<?x4x9x4x4xf32> -> tensor<?x2x18x16xf32>
// CHECK: %[[WM:.*]] = kiln.reshape %[[W]] : tensor<6x2x3x3xf32> -> tensor<2x3x18xf32>
// CHECK: %[[MM:.*]] = kiln.matmul %[[WM]], %[[P]] : (tensor<2x3x18xf32>, tensor<?x2x18x16xf32>) -> tensor<?x2x3x16xf32>
// CHECK: %[[Y:.*]] = kiln.reshape %[[MM]] : tensor<?x2x3x16xf32> -> tensor<?x6x4x4xf32>
// CHECK: %[[BR:.*]] = kiln.reshape %[[B]] : tensor<6xf32> -> tensor<6x1x1xf32>
// CHECK: %[[R:.*]] = kiln.add %[[Y]], %[[BR]] : (tensor<?x6x4x4xf32>, tensor<6x1x1xf32>) -> tensor<?x6x4x4xf32>
// CHECK-NOT: kiln.conv2d
// CHECK: return %[[R]]
func.func @conv2d_groups(%x: tensor<?x4x9x9xf32>, %w: tensor<6x2x3x3xf32>, %b: tensor<6xf32>) -> tensor<?x6x4x4xf32> {
  %0 = kiln.conv2d %x, %w bias %b stride = [2, 2] padding = [1, 1] dilation = [2, 2] groups = 2 : (tensor<?x4x9x9xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<?x6x4x4xf32>
  return %0 : tensor<?x6x4x4xf32>
}

// max_pool2d = max over the strided slices of every window tap.
// CHECK-LABEL: func.func @max_pool2d_static
// CHECK-NOT: kiln.pad
// CHECK: %[[A:.*]] = kiln.slice %{{.*}} axis = 3[0 : 31 : 2] : (tensor<1x16x16x32xf32>) -> tensor<1x16x16x16xf32>
// CHECK: %[[B:.*]] = kiln.slice %{{.*}} axis = 3[1 : 32 : 2]
// CHECK: kiln.max %[[A]], %[[B]]
// CHECK: kiln.max
// CHECK: %[[R:.*]] = kiln.max {{.*}} -> tensor<1x16x16x16xf32>
// CHECK-NOT: kiln.max_pool2d
// CHECK: return %[[R]]
func.func @max_pool2d_static(%x: tensor<1x16x32x32xf32>) -> tensor<1x16x16x16xf32> {
  %0 = kiln.max_pool2d %x kernel = [2, 2] stride = [2, 2] padding = [0, 0] : (tensor<1x16x32x32xf32>) -> tensor<1x16x16x16xf32>
  return %0 : tensor<1x16x16x16xf32>
}

// Padding is the lowest finite bf16; batch and channels stay dynamic.
// CHECK-LABEL: func.func @max_pool2d_padded
// CHECK: kiln.pad %{{.*}} low = [0, 0, 1, 1] high = [0, 0, 1, 1] value = -3.{{[0-9]+}}E+38 : (tensor<?x?x8x8xbf16>) -> tensor<?x?x10x10xbf16>
// CHECK-COUNT-8: kiln.max
// CHECK-NOT: kiln.max
// CHECK: return %{{.*}} : tensor<?x?x4x4xbf16>
func.func @max_pool2d_padded(%x: tensor<?x?x8x8xbf16>) -> tensor<?x?x4x4xbf16> {
  %0 = kiln.max_pool2d %x kernel = [3, 3] stride = [2, 2] padding = [1, 1] : (tensor<?x?x8x8xbf16>) -> tensor<?x?x4x4xbf16>
  return %0 : tensor<?x?x4x4xbf16>
}

// avg_pool2d = sum of the window taps of pad(x, 0) / (KH·KW).
// CHECK-LABEL: func.func @avg_pool2d
// CHECK: kiln.pad %{{.*}} value = 0.000000e+00 : (tensor<?x16x8x8xf32>) -> tensor<?x16x10x10xf32>
// CHECK-COUNT-8: kiln.add
// CHECK: %[[N:.*]] = kiln.constant dense<9.000000e+00> : tensor<f32>
// CHECK: %[[R:.*]] = kiln.div %{{.*}}, %[[N]] : (tensor<?x16x8x8xf32>, tensor<f32>) -> tensor<?x16x8x8xf32>
// CHECK-NOT: kiln.avg_pool2d
// CHECK: return %[[R]]
func.func @avg_pool2d(%x: tensor<?x16x8x8xf32>) -> tensor<?x16x8x8xf32> {
  %0 = kiln.avg_pool2d %x kernel = [3, 3] stride = [1, 1] padding = [1, 1] : (tensor<?x16x8x8xf32>) -> tensor<?x16x8x8xf32>
  return %0 : tensor<?x16x8x8xf32>
}

// gru: gates r, z, n sliced from x·W_ihᵀ + b_ih and h·W_hhᵀ + b_hh;
// h' = n + z·(h - n).
// CHECK-LABEL: func.func @gru_cell
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x32xf32>, %[[H:[a-z0-9_]+]]: tensor<?x64xf32>, %[[WI:[a-z0-9_]+]]: tensor<192x32xf32>, %[[WH:[a-z0-9_]+]]: tensor<192x64xf32>, %[[BI:[a-z0-9_]+]]: tensor<192xf32>, %[[BH:[a-z0-9_]+]]: tensor<192xf32>)
// CHECK: %[[GI0:.*]] = kiln.matmul %[[X]], %[[WI]] transpose_rhs : (tensor<?x32xf32>, tensor<192x32xf32>) -> tensor<?x192xf32>
// CHECK: %[[GI:.*]] = kiln.add %[[GI0]], %[[BI]]
// CHECK: %[[GH0:.*]] = kiln.matmul %[[H]], %[[WH]] transpose_rhs
// CHECK: %[[GH:.*]] = kiln.add %[[GH0]], %[[BH]]
// CHECK: %[[IR:.*]] = kiln.slice %[[GI]] axis = 1[0 : 64 : 1]
// CHECK: %[[HR:.*]] = kiln.slice %[[GH]] axis = 1[0 : 64 : 1]
// CHECK: %[[RS:.*]] = kiln.add %[[IR]], %[[HR]]
// CHECK: %[[R:.*]] = kiln.sigmoid %[[RS]]
// CHECK: kiln.slice %[[GI]] axis = 1[64 : 128 : 1]
// CHECK: kiln.slice %[[GH]] axis = 1[64 : 128 : 1]
// CHECK: %[[Z:.*]] = kiln.sigmoid
// CHECK: %[[IN:.*]] = kiln.slice %[[GI]] axis = 1[128 : 192 : 1]
// CHECK: %[[HN:.*]] = kiln.slice %[[GH]] axis = 1[128 : 192 : 1]
// CHECK: %[[RHN:.*]] = kiln.mul %[[R]], %[[HN]]
// CHECK: %[[NS:.*]] = kiln.add %[[IN]], %[[RHN]]
// CHECK: %[[N:.*]] = kiln.tanh %[[NS]]
// CHECK: %[[D:.*]] = kiln.sub %[[H]], %[[N]]
// CHECK: %[[ZD:.*]] = kiln.mul %[[Z]], %[[D]]
// CHECK: %[[NEW:.*]] = kiln.add %[[N]], %[[ZD]] : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
// CHECK-NOT: kiln.gru_cell
// CHECK: return %[[NEW]]
func.func @gru_cell(%x: tensor<?x32xf32>, %h: tensor<?x64xf32>, %wih: tensor<192x32xf32>, %whh: tensor<192x64xf32>, %bih: tensor<192xf32>, %bhh: tensor<192xf32>) -> tensor<?x64xf32> {
  %0 = kiln.gru_cell %x, %h, %wih, %whh, %bih, %bhh : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<192x32xf32>, tensor<192x64xf32>, tensor<192xf32>, tensor<192xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// lstm: gates i, f, g, o; c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c').
// CHECK-LABEL: func.func @lstm_cell
// CHECK-SAME: (%{{.*}}: tensor<2x32xf32>, %{{.*}}: tensor<2x64xf32>, %[[C:[a-z0-9_]+]]: tensor<2x64xf32>,
// CHECK: kiln.matmul {{.*}} transpose_rhs : (tensor<2x32xf32>, tensor<256x32xf32>) -> tensor<2x256xf32>
// CHECK: kiln.matmul {{.*}} transpose_rhs : (tensor<2x64xf32>, tensor<256x64xf32>) -> tensor<2x256xf32>
// CHECK: %[[G:.*]] = kiln.add %{{.*}}, %{{.*}} : (tensor<2x256xf32>, tensor<2x256xf32>)
// CHECK: %[[GI:.*]] = kiln.slice %[[G]] axis = 1[0 : 64 : 1]
// CHECK: %[[I:.*]] = kiln.sigmoid %[[GI]]
// CHECK: %[[GF:.*]] = kiln.slice %[[G]] axis = 1[64 : 128 : 1]
// CHECK: %[[F:.*]] = kiln.sigmoid %[[GF]]
// CHECK: %[[GG:.*]] = kiln.slice %[[G]] axis = 1[128 : 192 : 1]
// CHECK: %[[GT:.*]] = kiln.tanh %[[GG]]
// CHECK: %[[GO:.*]] = kiln.slice %[[G]] axis = 1[192 : 256 : 1]
// CHECK: %[[O:.*]] = kiln.sigmoid %[[GO]]
// CHECK: %[[FC:.*]] = kiln.mul %[[F]], %[[C]]
// CHECK: %[[IG:.*]] = kiln.mul %[[I]], %[[GT]]
// CHECK: %[[C2:.*]] = kiln.add %[[FC]], %[[IG]]
// CHECK: %[[TC:.*]] = kiln.tanh %[[C2]]
// CHECK: %[[H2:.*]] = kiln.mul %[[O]], %[[TC]]
// CHECK-NOT: kiln.lstm_cell
// CHECK: return %[[H2]], %[[C2]]
func.func @lstm_cell(%x: tensor<2x32xf32>, %h: tensor<2x64xf32>, %c: tensor<2x64xf32>, %wih: tensor<256x32xf32>, %whh: tensor<256x64xf32>, %bih: tensor<256xf32>, %bhh: tensor<256xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>) {
  %h2, %c2 = kiln.lstm_cell %x, %h, %c, %wih, %whh, %bih, %bhh : (tensor<2x32xf32>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<256x32xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<256xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>)
  return %h2, %c2 : tensor<2x64xf32>, tensor<2x64xf32>
}

// dropout = select(random_uniform(seed) >= p, x / (1 - p), 0).
// CHECK-LABEL: func.func @dropout_dynamic
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x?x768xf32>, %[[SEED:[a-z0-9_]+]]: tensor<i64>)
// CHECK: %[[D0:.*]] = tensor.dim %[[X]], %{{.*}}
// CHECK: %[[D1:.*]] = tensor.dim %[[X]], %{{.*}}
// CHECK: %[[U:.*]] = kiln.random_uniform %[[SEED]](%[[D0]], %[[D1]]) : (tensor<i64>) -> tensor<?x?x768xf32>
// CHECK: %[[P:.*]] = kiln.constant dense<1.000000e-01> : tensor<f32>
// CHECK: %[[KMASK:.*]] = kiln.compare ge, %[[U]], %[[P]]
// CHECK: %[[Q:.*]] = kiln.constant dense<0.899999976> : tensor<f32>
// CHECK: %[[S:.*]] = kiln.div %[[X]], %[[Q]]
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<f32>
// CHECK: %[[R:.*]] = kiln.select %[[KMASK]], %[[S]], %[[Z]] : (tensor<?x?x768xi1>, tensor<?x?x768xf32>, tensor<f32>) -> tensor<?x?x768xf32>
// CHECK-NOT: kiln.dropout
// CHECK: return %[[R]]
func.func @dropout_dynamic(%x: tensor<?x?x768xf32>, %seed: tensor<i64>) -> tensor<?x?x768xf32> {
  %0 = kiln.dropout %x, %seed p = 1.000000e-01 : (tensor<?x?x768xf32>, tensor<i64>) -> tensor<?x?x768xf32>
  return %0 : tensor<?x?x768xf32>
}

// p = 0 is the identity.
// CHECK-LABEL: func.func @dropout_zero
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<4x8xbf16>
// CHECK-NEXT: return %[[X]]
func.func @dropout_zero(%x: tensor<4x8xbf16>, %seed: tensor<i64>) -> tensor<4x8xbf16> {
  %0 = kiln.dropout %x, %seed p = 0.000000e+00 : (tensor<4x8xbf16>, tensor<i64>) -> tensor<4x8xbf16>
  return %0 : tensor<4x8xbf16>
}

// cross_entropy = -log_softmax(logits)[target] via a one-hot (iota == target),
// 0 where target == ignore_index, NaN where another target is outside
// [0, C); mean divides by the count of kept targets.
// CHECK-LABEL: func.func @cross_entropy_mean
// CHECK-SAME: (%[[L:[a-z0-9_]+]]: tensor<?x?x10xf32>, %[[T:[a-z0-9_]+]]: tensor<?x?xi64>)
// CHECK: kiln.reduce max %[[L]] axes = [2] keepdim
// CHECK: kiln.log %{{.*}} : tensor<?x?x1xf32>
// CHECK: %[[LSM:.*]] = kiln.sub {{.*}} -> tensor<?x?x10xf32>
// CHECK: %[[CLS:.*]] = kiln.iota() dim = 0 : tensor<10xi64>
// CHECK: %[[TE:.*]] = kiln.reshape %[[T]] : tensor<?x?xi64> -> tensor<?x?x1xi64>
// CHECK: %[[OH:.*]] = kiln.compare eq, %[[TE]], %[[CLS]] : (tensor<?x?x1xi64>, tensor<10xi64>) -> tensor<?x?x10xi1>
// CHECK: %[[ZERO:.*]] = kiln.constant dense<0.000000e+00> : tensor<f32>
// CHECK: %[[PICK:.*]] = kiln.select %[[OH]], %[[LSM]], %[[ZERO]]
// CHECK: %[[TL:.*]] = kiln.reduce sum %[[PICK]] axes = [2] : (tensor<?x?x10xf32>) -> tensor<?x?xf32>
// CHECK: %[[NLL:.*]] = kiln.neg %[[TL]]
// CHECK: %[[IGN:.*]] = kiln.constant dense<-100> : tensor<i64>
// CHECK: %[[KEPT:.*]] = kiln.compare ne, %[[T]], %[[IGN]]
// CHECK: %[[NAN:.*]] = kiln.constant dense<0x7FC00000> : tensor<f32>
// CHECK: %[[GE:.*]] = kiln.compare ge, %[[T]], %{{.*}}
// CHECK: %[[C10:.*]] = kiln.constant dense<10> : tensor<i64>
// CHECK: %[[LT:.*]] = kiln.compare lt, %[[T]], %[[C10]]
// CHECK: %[[IN:.*]] = kiln.select %[[GE]], %[[LT]], %[[GE]]
// CHECK: %[[CHECKED:.*]] = kiln.select %[[IN]], %[[NLL]], %[[NAN]]
// CHECK: %[[LOSS:.*]] = kiln.select %[[KEPT]], %[[CHECKED]], %[[ZERO]]
// CHECK: %[[TOT:.*]] = kiln.reduce sum %[[LOSS]] axes = [0, 1] : (tensor<?x?xf32>) -> tensor<f32>
// CHECK: %[[KF:.*]] = kiln.cast %[[KEPT]] : tensor<?x?xi1> -> tensor<?x?xf32>
// CHECK: %[[CNT:.*]] = kiln.reduce sum %[[KF]] axes = [0, 1]
// CHECK: %[[R:.*]] = kiln.div %[[TOT]], %[[CNT]] : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK-NOT: kiln.cross_entropy
// CHECK-NOT: kiln.log_softmax
// CHECK: return %[[R]]
func.func @cross_entropy_mean(%l: tensor<?x?x10xf32>, %t: tensor<?x?xi64>) -> tensor<f32> {
  %0 = kiln.cross_entropy %l, %t reduction = mean : (tensor<?x?x10xf32>, tensor<?x?xi64>) -> tensor<f32>
  return %0 : tensor<f32>
}

// A dynamic class count sizes the iota from the logits, and the range check
// compares the targets with it in f32.
// CHECK-LABEL: func.func @cross_entropy_sum
// CHECK-SAME: (%[[L:[a-z0-9_]+]]: tensor<4x?xf32>, %[[T:[a-z0-9_]+]]: tensor<4xi32>)
// CHECK: %[[C:.*]] = tensor.dim %[[L]], %{{.*}} : tensor<4x?xf32>
// CHECK: kiln.iota(%[[C]]) dim = 0 : tensor<?xi32>
// CHECK: kiln.constant dense<0> : tensor<i32>
// CHECK: kiln.compare ne, %[[T]]
// CHECK: %[[TF:.*]] = kiln.cast %[[T]] : tensor<4xi32> -> tensor<4xf32>
// CHECK: kiln.compare lt, %[[TF]], %{{.*}} : (tensor<4xf32>, tensor<f32>) -> tensor<4xi1>
// CHECK: %[[R:.*]] = kiln.reduce sum %{{.*}} axes = [0] : (tensor<4xf32>) -> tensor<f32>
// CHECK-NOT: kiln.cross_entropy
// CHECK: return %[[R]]
func.func @cross_entropy_sum(%l: tensor<4x?xf32>, %t: tensor<4xi32>) -> tensor<f32> {
  %0 = kiln.cross_entropy %l, %t ignore_index = 0 reduction = sum : (tensor<4x?xf32>, tensor<4xi32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// CHECK-LABEL: func.func @cross_entropy_none
// CHECK: kiln.iota() dim = 0 : tensor<5xi64>
// CHECK: kiln.select %{{.*}}, %{{.*}}, %{{.*}} : (tensor<4xi1>, tensor<4xbf16>, tensor<bf16>) -> tensor<4xbf16>
// CHECK: %[[R:.*]] = kiln.select %{{.*}}, %{{.*}}, %{{.*}} : (tensor<4xi1>, tensor<4xbf16>, tensor<bf16>) -> tensor<4xbf16>
// CHECK-NOT: kiln.cross_entropy
// CHECK: return %[[R]] : tensor<4xbf16>
func.func @cross_entropy_none(%l: tensor<4x5xbf16>, %t: tensor<4xi64>) -> tensor<4xbf16> {
  %0 = kiln.cross_entropy %l, %t reduction = none : (tensor<4x5xbf16>, tensor<4xi64>) -> tensor<4xbf16>
  return %0 : tensor<4xbf16>
}

// A single sample: no reduction over batch axes, mean divides by 0 or 1.
// CHECK-LABEL: func.func @cross_entropy_scalar
// CHECK: kiln.reshape %{{.*}} : tensor<i64> -> tensor<1xi64>
// CHECK: %[[K:.*]] = kiln.compare ne, {{.*}} -> tensor<i1>
// CHECK: %[[L:.*]] = kiln.select %[[K]]
// CHECK: %[[KF:.*]] = kiln.cast %[[K]] : tensor<i1> -> tensor<f32>
// CHECK: %[[R:.*]] = kiln.div %[[L]], %[[KF]]
// CHECK: return %[[R]]
func.func @cross_entropy_scalar(%l: tensor<5xf32>, %t: tensor<i64>) -> tensor<f32> {
  %0 = kiln.cross_entropy %l, %t reduction = mean : (tensor<5xf32>, tensor<i64>) -> tensor<f32>
  return %0 : tensor<f32>
}

// mse = reduce((input - target)^2).
// CHECK-LABEL: func.func @mse_mean
// CHECK-SAME: (%[[A:[a-z0-9_]+]]: tensor<8x1xf32>, %[[B:[a-z0-9_]+]]: tensor<8x1xf32>)
// CHECK: %[[D:.*]] = kiln.sub %[[A]], %[[B]]
// CHECK: %[[SQ:.*]] = kiln.mul %[[D]], %[[D]]
// CHECK: %[[R:.*]] = kiln.reduce mean %[[SQ]] axes = [0, 1] : (tensor<8x1xf32>) -> tensor<f32>
// CHECK-NOT: kiln.mse
// CHECK: return %[[R]]
func.func @mse_mean(%a: tensor<8x1xf32>, %b: tensor<8x1xf32>) -> tensor<f32> {
  %0 = kiln.mse %a, %b reduction = mean : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// CHECK-LABEL: func.func @mse_sum
// CHECK: %[[R:.*]] = kiln.reduce sum %{{.*}} axes = [0, 1] : (tensor<?x?xbf16>) -> tensor<bf16>
// CHECK-NOT: kiln.mse
// CHECK: return %[[R]]
func.func @mse_sum(%a: tensor<?x?xbf16>, %b: tensor<?x?xbf16>) -> tensor<bf16> {
  %0 = kiln.mse %a, %b reduction = sum : (tensor<?x?xbf16>, tensor<?x?xbf16>) -> tensor<bf16>
  return %0 : tensor<bf16>
}

// The primitives infer a more static shape than the op declares: a
// tensor.cast restores the declared result type.
// CHECK-LABEL: func.func @mse_none_refined
// CHECK: %[[SQ:.*]] = kiln.mul {{.*}} -> tensor<4x8xf32>
// CHECK: %[[R:.*]] = tensor.cast %[[SQ]] : tensor<4x8xf32> to tensor<?x8xf32>
// CHECK-NOT: kiln.mse
// CHECK: return %[[R]] : tensor<?x8xf32>
func.func @mse_none_refined(%a: tensor<?x8xf32>, %b: tensor<4x8xf32>) -> tensor<?x8xf32> {
  %0 = kiln.mse %a, %b reduction = none : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// kl_div = select(target == 0, 0, target·(log(target) - input)); batchmean
// divides the sum by the batch size.
// CHECK-LABEL: func.func @kl_div_batchmean
// CHECK-SAME: (%[[I:[a-z0-9_]+]]: tensor<8x100xf32>, %[[T:[a-z0-9_]+]]: tensor<8x100xf32>)
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<f32>
// CHECK: %[[LT:.*]] = kiln.log %[[T]]
// CHECK: %[[D:.*]] = kiln.sub %[[LT]], %[[I]]
// CHECK: %[[TD:.*]] = kiln.mul %[[T]], %[[D]]
// CHECK: %[[ISZ:.*]] = kiln.compare eq, %[[T]], %[[Z]]
// CHECK: %[[PW:.*]] = kiln.select %[[ISZ]], %[[Z]], %[[TD]]
// CHECK: %[[S:.*]] = kiln.reduce sum %[[PW]] axes = [0, 1]
// CHECK: %[[N:.*]] = kiln.constant dense<8.000000e+00> : tensor<f32>
// CHECK: %[[R:.*]] = kiln.div %[[S]], %[[N]]
// CHECK-NOT: kiln.kl_div
// CHECK: return %[[R]]
func.func @kl_div_batchmean(%a: tensor<8x100xf32>, %b: tensor<8x100xf32>) -> tensor<f32> {
  %0 = kiln.kl_div %a, %b reduction = batchmean : (tensor<8x100xf32>, tensor<8x100xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// A dynamic batch is counted at run time.
// CHECK-LABEL: func.func @kl_div_batchmean_dynamic
// CHECK-SAME: (%[[I:[a-z0-9_]+]]: tensor<?x100xf32>
// CHECK: %[[S:.*]] = kiln.reduce sum %{{.*}} axes = [0, 1]
// CHECK: %[[B:.*]] = tensor.dim %[[I]], %{{.*}}
// CHECK: %[[ONES:.*]] = kiln.broadcast_to %{{.*}}(%[[B]]) : tensor<1xf32> -> tensor<?xf32>
// CHECK: %[[N:.*]] = kiln.reduce sum %[[ONES]] axes = [0]
// CHECK: %[[R:.*]] = kiln.div %[[S]], %[[N]]
// CHECK-NOT: kiln.kl_div
// CHECK: return %[[R]]
func.func @kl_div_batchmean_dynamic(%a: tensor<?x100xf32>, %b: tensor<?x100xf32>) -> tensor<f32> {
  %0 = kiln.kl_div %a, %b reduction = batchmean : (tensor<?x100xf32>, tensor<?x100xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// log_target: exp(target)·(target - input).
// CHECK-LABEL: func.func @kl_div_log_target
// CHECK-SAME: (%[[I:[a-z0-9_]+]]: tensor<?x10xf32>, %[[T:[a-z0-9_]+]]: tensor<?x10xf32>)
// CHECK: %[[P:.*]] = kiln.exp %[[T]]
// CHECK: %[[D:.*]] = kiln.sub %[[T]], %[[I]]
// CHECK: %[[PW:.*]] = kiln.mul %[[P]], %[[D]]
// CHECK: %[[R:.*]] = kiln.reduce sum %[[PW]] axes = [0, 1] : (tensor<?x10xf32>) -> tensor<f32>
// CHECK-NOT: kiln.log
// CHECK-NOT: kiln.kl_div
// CHECK: return %[[R]]
func.func @kl_div_log_target(%a: tensor<?x10xf32>, %b: tensor<?x10xf32>) -> tensor<f32> {
  %0 = kiln.kl_div %a, %b reduction = sum log_target : (tensor<?x10xf32>, tensor<?x10xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// CHECK-LABEL: func.func @kl_div_mean
// CHECK: kiln.select
// CHECK: %[[R:.*]] = kiln.reduce mean %{{.*}} axes = [0, 1] : (tensor<4x10xf16>) -> tensor<f16>
// CHECK-NOT: kiln.kl_div
// CHECK: return %[[R]]
func.func @kl_div_mean(%a: tensor<4x10xf16>, %b: tensor<4x10xf16>) -> tensor<f16> {
  %0 = kiln.kl_div %a, %b reduction = mean : (tensor<4x10xf16>, tensor<4x10xf16>) -> tensor<f16>
  return %0 : tensor<f16>
}

// CHECK-LABEL: func.func @kl_div_none
// CHECK: %[[R:.*]] = kiln.select {{.*}} -> tensor<4x10xf32>
// CHECK-NOT: kiln.reduce
// CHECK-NOT: kiln.kl_div
// CHECK: return %[[R]] : tensor<4x10xf32>
func.func @kl_div_none(%a: tensor<4x10xf32>, %b: tensor<4x10xf32>) -> tensor<4x10xf32> {
  %0 = kiln.kl_div %a, %b reduction = none : (tensor<4x10xf32>, tensor<4x10xf32>) -> tensor<4x10xf32>
  return %0 : tensor<4x10xf32>
}
