// The hand-written graphs in models/ parse, verify, round-trip, and
// decompose into primitives.
// RUN: kiln-opt %models/mlp.mlir | kiln-opt | FileCheck %s --check-prefix=MLP
// RUN: kiln-opt %models/attention-block.mlir | kiln-opt | FileCheck %s --check-prefix=BLOCK
// RUN: kiln-opt %models/llama-block.mlir | kiln-opt | FileCheck %s --check-prefix=LLAMA
// RUN: kiln-compile %models/attention-block.mlir --emit=decomposed | FileCheck %s --check-prefix=DECOMPOSED

// MLP-LABEL: func.func @forward(%{{.*}}: tensor<?x784xf32>) -> tensor<?x10xf32>
// MLP-LABEL: func.func @loss(
// MLP:         kiln.cross_entropy

// BLOCK-LABEL: func.func @block(%{{.*}}: tensor<2x64x256xf32>) -> tensor<2x64x256xf32>
// BLOCK:         kiln.attention {{.*}} causal

// LLAMA-LABEL: func.func @block(%{{.*}}: tensor<?x?x512xf32>) -> tensor<?x?x512xf32>
// LLAMA:         kiln.attention {{.*}} causal : (tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>)

// DECOMPOSED-LABEL: func.func @block
// DECOMPOSED-NOT:     kiln.attention
// DECOMPOSED-NOT:     kiln.layer_norm
// DECOMPOSED-NOT:     kiln.linear
// DECOMPOSED-NOT:     kiln.gelu
// DECOMPOSED:         kiln.matmul
// DECOMPOSED:         return
