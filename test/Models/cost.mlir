// --emit=cost prints the kiln-cost-report of the built graph, with batch 1
// and seq 128 unless given; parameter counts are those of the reference
// implementations.
// RUN: kiln-compile %models/gpt2-small.json --emit=cost | FileCheck %s --check-prefix=GPT2
// RUN: kiln-compile %models/gpt2-small.json --emit=summary | FileCheck %s --check-prefix=SUMMARY
// RUN: kiln-compile %models/bert-base.json --emit=cost --seq 512 | FileCheck %s --check-prefix=BERT
// RUN: kiln-compile %models/gpt2-tiny.json --emit=cost --json | FileCheck %s --check-prefix=JSON
// RUN: kiln-compile %models/mlp.mlir --emit=cost --dynamic-dim-size 32 --peak-gflops 1000 -o %t.txt
// RUN: FileCheck %s --check-prefix=MLP < %t.txt

// GPT2: Kiln cost report - {{.*}}gpt2-small.json: batch 1, seq 128
// GPT2: parameters  124,439,808 in 148 tensors
// GPT2: function @forward

// SUMMARY: parameters   124,439,808 in 148 tensors (124,439,808 trainable); f32 124,439,808
// SUMMARY: entry        @forward(tensor<?x?xi64>) -> (tensor<?x?x50257xf32>)
// SUMMARY: ops {{.*}} kiln.attention 12

// BERT: bert-base.json: batch 1, seq 512
// BERT: parameters  109,482,240 in 199 tensors

// JSON: "parameters": {
// JSON: "count": 172288

// MLP: parameters  203,530 in 4 tensors
// MLP: 1000.00 GFLOP/s peak, {{.*}}dynamic dims taken as 32
