// RUN: not kiln-opt %s --kiln-decompose='keep=kiln.no_such_op' 2>&1 | FileCheck %s --check-prefix=KEEP
// RUN: not kiln-opt %s --kiln-decompose 2>&1 | FileCheck %s --check-prefix=HEADS

// An op name in keep= that is not registered is an error.
// KEEP: error: kiln-decompose: unknown op 'kiln.no_such_op' in keep= (expected names like kiln.attention)

// Grouped-query attention cannot be decomposed when the head counts are
// dynamic: which kv head a query head uses is not known.
// HEADS: error: 'kiln.attention' op cannot decompose with a dynamic number of query or key/value heads (query 'tensor<1x?x4x8xf32>', key 'tensor<1x2x4x8xf32>'): grouped-query attention needs static head counts
func.func @gqa_dynamic_heads(%q: tensor<1x?x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) -> tensor<1x?x4x8xf32> {
  %0 = kiln.attention %q, %k, %v : (tensor<1x?x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x?x4x8xf32>
  return %0 : tensor<1x?x4x8xf32>
}
