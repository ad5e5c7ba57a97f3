// kiln-compile rejects bad inputs with one clear message and a non-zero
// exit.
// RUN: split-file %s %t
// RUN: not kiln-compile %t/malformed.json 2>&1 | FileCheck %s --check-prefix=MALFORMED
// RUN: not kiln-compile %t/unknown-type.json 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not kiln-compile %t/missing-key.json 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not kiln-compile %t/wrong-type.json 2>&1 | FileCheck %s --check-prefix=WRONGTYPE
// RUN: not kiln-compile %t/heads.json 2>&1 | FileCheck %s --check-prefix=HEADS
// RUN: not kiln-compile %models/gpt2-tiny.json --seq 4096 2>&1 | FileCheck %s --check-prefix=SEQ
// RUN: not kiln-compile %t/does-not-exist.json 2>&1 | FileCheck %s --check-prefix=NOFILE
// RUN: not kiln-compile %t/bad.mlir 2>&1 | FileCheck %s --check-prefix=BADIR
// RUN: not kiln-compile %t/layers.json 2>&1 | FileCheck %s --check-prefix=LAYERS
// RUN: not kiln-compile %t/overflow.json 2>&1 | FileCheck %s --check-prefix=OVERFLOW
// RUN: not kiln-compile %t/huge.json --target cpu -o %t/huge.kiln 2>&1 | FileCheck %s --check-prefix=HUGE
// RUN: mkdir -p %t/dir.json && not kiln-compile %t/dir.json 2>&1 | FileCheck %s --check-prefix=DIRECTORY

// MALFORMED: error: config '{{.*}}malformed.json' is not valid JSON
// UNKNOWN: error: {{.*}}unknown-type.json: config: unknown model_type 'gpt-7' (supported: gpt2, llama, bert, transformer, marian, vit, clip, clip_text_model, clip_vision_model, rnn, cnn, llava, vision-encoder-decoder)
// MISSING: error: {{.*}}missing-key.json: gpt2 config: missing required key 'n_head'
// WRONGTYPE: error: {{.*}}wrong-type.json: bert config: key 'hidden_size' must be an integer, found a string
// HEADS: error: {{.*}}heads.json: gpt2 config: key 'n_embd' (66) must be a multiple of 'n_head' (4)
// SEQ: error: {{.*}}gpt2-tiny.json: gpt2: sequence length 4096 exceeds 'n_positions' (128)
// NOFILE: error: no such file: '{{.*}}does-not-exist.json'
// BADIR: error: could not parse '{{.*}}bad.mlir'
// Sizes are bounded before anything is built (a billion layers built for
// ever; a width of 2^62 overflowed and aborted), and an artifact whose
// weights this machine cannot hold is refused with its size (1.1 PB here).
// LAYERS: error: {{.*}}layers.json: gpt2 config: key 'n_layer' is 2000000000, more than Kiln's limit of 4096
// OVERFLOW: error: {{.*}}overflow.json: gpt2 config: key 'n_embd' is 4611686018427387904, more than Kiln's limit of 16777216
// HUGE: error: the parameters need {{[0-9.]+}} PB (weights {{[0-9.]+}} PB, optimizer state 0 B), more than this machine's {{.*}} of memory
// DIRECTORY: error: '{{.*}}dir.json' is a directory without a config.json

//--- malformed.json
{"model_type": "gpt2", "n_embd": 64,
//--- unknown-type.json
{"model_type": "gpt-7"}
//--- missing-key.json
{"model_type": "gpt2", "vocab_size": 10, "n_positions": 8, "n_embd": 16, "n_layer": 1}
//--- wrong-type.json
{"model_type": "bert", "vocab_size": 10, "hidden_size": "768"}
//--- heads.json
{"model_type": "gpt2", "vocab_size": 10, "n_positions": 8, "n_embd": 66, "n_layer": 1, "n_head": 4}
//--- layers.json
{"model_type": "gpt2", "vocab_size": 10, "n_positions": 8, "n_embd": 16, "n_layer": 2000000000, "n_head": 2}
//--- overflow.json
{"model_type": "gpt2", "vocab_size": 10, "n_positions": 8, "n_embd": 4611686018427387904, "n_layer": 1, "n_head": 1}
//--- huge.json
{"model_type": "gpt2", "vocab_size": 16777216, "n_positions": 8, "n_embd": 16777216, "n_layer": 0, "n_head": 1}
//--- bad.mlir
func.func @f() {
  %0 = kiln.not_an_op
}
