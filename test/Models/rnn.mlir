// The rnn family: torch.nn.GRU / torch.nn.LSTM text encoders with torch's
// parameter names, unrolled over a static sequence; padded steps keep the
// state (select on attention_mask) and output zeros.
// RUN: echo '{"model_type": "rnn", "cell": "gru", "vocab_size": 50, "embedding_dim": 8, "hidden_size": 6, "num_layers": 2, "bidirectional": true}' > %t-gru.json
// RUN: kiln-compile %t-gru.json --seq 3 --emit=kiln | FileCheck %s --check-prefix=GRU
// RUN: echo '{"model_type": "rnn", "cell": "lstm", "vocab_size": 50, "hidden_size": 6, "bias": false}' > %t-lstm.json
// RUN: kiln-compile %t-lstm.json --seq 2 --batch 4 --emit=kiln | FileCheck %s --check-prefix=LSTM
// RUN: not kiln-compile %t-gru.json --emit=summary 2>&1 | FileCheck %s --check-prefix=DYNAMIC
// RUN: echo '{"model_type": "rnn", "cell": "rnn_tanh", "vocab_size": 50, "hidden_size": 6}' > %t-cell.json
// RUN: not kiln-compile %t-cell.json --seq 3 --emit=summary 2>&1 | FileCheck %s --check-prefix=CELL

// GRU:       kiln.parameter @embedding.weight : tensor<50x8xf32> init normal std = 1.000000e+00
// GRU-NEXT:  kiln.parameter @rnn.weight_ih_l0 : tensor<18x8xf32> init uniform
// GRU-NEXT:  kiln.parameter @rnn.weight_hh_l0 : tensor<18x6xf32>
// GRU-NEXT:  kiln.parameter @rnn.bias_ih_l0 : tensor<18xf32>
// GRU-NEXT:  kiln.parameter @rnn.bias_hh_l0 : tensor<18xf32>
// GRU-NEXT:  kiln.parameter @rnn.weight_ih_l0_reverse : tensor<18x8xf32>
// GRU:       kiln.parameter @rnn.weight_ih_l1 : tensor<18x12xf32>
// GRU:       kiln.parameter @rnn.bias_hh_l1_reverse : tensor<18xf32>
// GRU:       func.func @forward(%{{.*}}: tensor<?x3xi64> {kiln.name = "input_ids"}, %[[MASK:[^:]*]]: tensor<?x3xi64> {kiln.name = "attention_mask"}) -> (tensor<?x3x12xf32> {kiln.name = "output"}, tensor<4x?x6xf32> {kiln.name = "h_n"}, tensor<?x12xf32> {kiln.name = "text_embeds"})
// GRU:         %[[HERE:.*]] = kiln.compare ne, %[[MASK]]
// GRU:         %[[NEW:.*]] = kiln.gru_cell
// GRU:         kiln.select %{{.*}}, %[[NEW]], %{{.*}} : (tensor<?x1xi1>, tensor<?x6xf32>, tensor<?x6xf32>) -> tensor<?x6xf32>
// 2 layers x 2 directions x 3 steps.
// GRU-COUNT-11: kiln.gru_cell
// GRU-NOT:     kiln.gru_cell
// GRU:         return

// LSTM-NOT:    bias_ih
// LSTM-LABEL:  func.func @forward(%{{.*}}: tensor<4x2xi64> {kiln.name = "input_ids"}, %{{.*}}: tensor<4x2xi64> {kiln.name = "attention_mask"}) -> (tensor<4x2x6xf32> {kiln.name = "output"}, tensor<1x4x6xf32> {kiln.name = "h_n"}, tensor<1x4x6xf32> {kiln.name = "c_n"}, tensor<4x6xf32> {kiln.name = "text_embeds"})
// LSTM-COUNT-2: kiln.lstm_cell

// DYNAMIC: rnn: the recurrence is unrolled over the sequence, so its length must be static: give --seq N
// CELL: rnn config: key 'cell' must be 'gru' or 'lstm', found 'rnn_tanh'
