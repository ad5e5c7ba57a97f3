module {
  kiln.parameter @"fc1.weight" : tensor<256x784xf32> init uniform range(-3.571428e-02, 3.571428e-02) trainable
  kiln.parameter @"fc1.bias" : tensor<256xf32> init zeros trainable
  kiln.parameter @"fc2.weight" : tensor<10x256xf32> init uniform range(-6.250000e-02, 6.250000e-02) trainable
  kiln.parameter @"fc2.bias" : tensor<10xf32> init zeros trainable

  func.func @forward(%x: tensor<?x784xf32>) -> tensor<?x10xf32> {
    %w1 = kiln.read_param @"fc1.weight" : tensor<256x784xf32>
    %b1 = kiln.read_param @"fc1.bias" : tensor<256xf32>
    %w2 = kiln.read_param @"fc2.weight" : tensor<10x256xf32>
    %b2 = kiln.read_param @"fc2.bias" : tensor<10xf32>
    %h = kiln.linear %x, %w1 bias %b1 : (tensor<?x784xf32>, tensor<256x784xf32>, tensor<256xf32>) -> tensor<?x256xf32>
    %a = kiln.relu %h : tensor<?x256xf32>
    %logits = kiln.linear %a, %w2 bias %b2 : (tensor<?x256xf32>, tensor<10x256xf32>, tensor<10xf32>) -> tensor<?x10xf32>
    return %logits : tensor<?x10xf32>
  }

  func.func @loss(%x: tensor<?x784xf32>, %labels: tensor<?xi64>) -> tensor<f32> {
    %logits = call @forward(%x) : (tensor<?x784xf32>) -> tensor<?x10xf32>
    %loss = kiln.cross_entropy %logits, %labels reduction = mean : (tensor<?x10xf32>, tensor<?xi64>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
