func.func @gru_b_hh(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<24x4xf32>, %wh: tensor<24x8xf32>, %b: tensor<24xf32>, %bad: tensor<32xf32>) {
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %bad) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<24x4xf32>, tensor<24x8xf32>, tensor<24xf32>, tensor<32xf32>) -> tensor<2x8xf32>
  return
}
