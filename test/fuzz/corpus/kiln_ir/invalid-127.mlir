func.func @lstm_cell_state(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %c: tensor<2x16xf32>, %wi: tensor<32x4xf32>, %wh: tensor<32x8xf32>, %b: tensor<32xf32>) {
  %0:2 = "kiln.lstm_cell"(%x, %h, %c, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<2x16xf32>, tensor<32x4xf32>, tensor<32x8xf32>, tensor<32xf32>, tensor<32xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
  return
}
