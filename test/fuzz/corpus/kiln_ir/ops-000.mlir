kiln.parameter @"transformer.wte.weight" : tensor<50257x768xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"ln.bias" : tensor<768xf32> init zeros trainable
kiln.parameter @"ln.weight" : tensor<768xbf16> init ones
kiln.parameter @"proj.weight" : tensor<16x8xf16> init uniform range(-1.000000e-01, 1.000000e-01)
kiln.parameter @"q.weight" : tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>> init zeros
kiln.parameter @"idx" : tensor<4xi64> init zeros
func.func @params() -> (tensor<50257x768xf32>, tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>) {
  %0 = kiln.read_param @"transformer.wte.weight" : tensor<50257x768xf32>
  %1 = kiln.read_param @"q.weight" : tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>
  %2 = kiln.read_param @idx : tensor<4xi64>
  %3 = kiln.read_param @"ln.weight" : tensor<768xbf16>
  %4 = kiln.read_param @"proj.weight" : tensor<16x8xf16>
  %5 = kiln.read_param @"ln.bias" : tensor<768xf32>
  return %0, %1 : tensor<50257x768xf32>, tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>
}

kiln.parameter @"w" : tensor<768x2304xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"b" : tensor<2304xf32> init zeros trainable
func.func @forward(%x: tensor<?x128x768xf32>) -> tensor<?x128x2304xf32> {
  %w = kiln.read_param @w : tensor<768x2304xf32>
  %b = kiln.read_param @b : tensor<2304xf32>
  %0 = kiln.matmul %x, %w : (tensor<?x128x768xf32>, tensor<768x2304xf32>) -> tensor<?x128x2304xf32>
  %1 = kiln.add %0, %b : (tensor<?x128x2304xf32>, tensor<2304xf32>) -> tensor<?x128x2304xf32>
  %2 = kiln.gelu %1 approximate = tanh : tensor<?x128x2304xf32>
  %3 = kiln.exp %2 : tensor<?x128x2304xf32>
  %4 = kiln.reduce sum %3 axes = [2] keepdim : (tensor<?x128x2304xf32>) -> tensor<?x128x1xf32>
  return %1 : tensor<?x128x2304xf32>
}

func.func @binary(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %d: tensor<?x3xf32>, %i: tensor<2x3xi32>, %j: tensor<i32>) {
  %0 = kiln.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = kiln.sub %d, %b : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  %2 = kiln.mul %i, %j : (tensor<2x3xi32>, tensor<i32>) -> tensor<2x3xi32>
  %3 = kiln.div %a, %d : (tensor<2x3xf32>, tensor<?x3xf32>) -> tensor<2x3xf32>
  %4 = kiln.pow %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %5 = kiln.max %d, %d : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
  %6 = kiln.min %i, %i : (tensor<2x3xi32>, tensor<2x3xi32>) -> tensor<2x3xi32>
  return
}

func.func @unary(%x: tensor<4x?xf32>, %h: tensor<8xbf16>, %i: tensor<4xi64>) {
  %0 = kiln.neg %x : tensor<4x?xf32>
  %1 = kiln.neg %i : tensor<4xi64>
  %2 = kiln.abs %i : tensor<4xi64>
  %3 = kiln.exp %x : tensor<4x?xf32>
  %4 = kiln.log %h : tensor<8xbf16>
  %5 = kiln.tanh %x : tensor<4x?xf32>
  %6 = kiln.erf %x : tensor<4x?xf32>
  %7 = kiln.sin %x : tensor<4x?xf32>
  %8 = kiln.cos %x : tensor<4x?xf32>
  %9 = kiln.sqrt %x : tensor<4x?xf32>
  %10 = kiln.rsqrt %x : tensor<4x?xf32>
  %11 = kiln.sigmoid %h : tensor<8xbf16>
  %12 = kiln.relu %x : tensor<4x?xf32>
  return
}

func.func @compare_select_cast(%pos: tensor<8xi64>, %len: tensor<i64>, %m: tensor<8x8xi1>, %x: tensor<2x8x8xf32>, %ninf: tensor<f32>, %q: tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) {
  %0 = kiln.compare lt, %pos, %len : (tensor<8xi64>, tensor<i64>) -> tensor<8xi1>
  %1 = kiln.compare eq, %x, %ninf : (tensor<2x8x8xf32>, tensor<f32>) -> tensor<2x8x8xi1>
  %2 = kiln.compare ge, %pos, %pos : (tensor<8xi64>, tensor<8xi64>) -> tensor<8xi1>
  %3 = kiln.select %m, %x, %ninf : (tensor<8x8xi1>, tensor<2x8x8xf32>, tensor<f32>) -> tensor<2x8x8xf32>
  %4 = kiln.cast %pos : tensor<8xi64> -> tensor<8xf32>
  %5 = kiln.cast %m : tensor<8x8xi1> -> tensor<8x8xbf16>
  %6 = kiln.cast %q : tensor<4x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<4xf32>
  return
}

func.func @matmul(%x: tensor<?x128x768xf32>, %w: tensor<768x2304xf32>, %q: tensor<1x12x128x64xf32>, %a: tensor<64x32xf16>, %b: tensor<3x16x64xf16>) {
  %0 = kiln.matmul %x, %w : (tensor<?x128x768xf32>, tensor<768x2304xf32>) -> tensor<?x128x2304xf32>
  %1 = kiln.matmul %q, %q transpose_rhs : (tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x128xf32>
  %2 = kiln.matmul %q, %q transpose_lhs : (tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x64x64xf32>
  %3 = kiln.matmul %a, %b transpose_lhs transpose_rhs : (tensor<64x32xf16>, tensor<3x16x64xf16>) -> tensor<3x32x16xf16>
  return
}

func.func @reduce(%x: tensor<4x?x768xf32>, %i: tensor<4x8xi32>) {
  %0 = kiln.reduce mean %x axes = [2] keepdim : (tensor<4x?x768xf32>) -> tensor<4x?x1xf32>
  %1 = kiln.reduce sum %x axes = [0, 2] : (tensor<4x?x768xf32>) -> tensor<?xf32>
  %2 = kiln.reduce max %i axes = [1] : (tensor<4x8xi32>) -> tensor<4xi32>
  %3 = kiln.reduce min %i axes = [0, 1] keepdim : (tensor<4x8xi32>) -> tensor<1x1xi32>
  return
}

func.func @generators(%n: index, %s: index, %seed: tensor<i64>) {
  %0 = kiln.constant dense<1.000000e+00> : tensor<f32>
  %1 = kiln.constant dense<[1, 2, 3]> : tensor<3xi64>
  %2 = kiln.constant dense<true> : tensor<2x2xi1>
  %3 = kiln.iota () dim = 1 : tensor<4x8xi64>
  %4 = kiln.iota (%n) dim = 0 : tensor<?xi32>
  %5 = kiln.iota (%n, %s) dim = 1 : tensor<?x?xf32>
  %6 = kiln.causal_mask () : tensor<128x128xi1>
  %7 = kiln.causal_mask (%s, %s) : tensor<?x?xi1>
  %8 = kiln.causal_mask (%n) : tensor<4x?xi1>
  %9 = kiln.random_uniform %seed () : (tensor<i64>) -> tensor<2x768xf32>
  %10 = kiln.random_uniform %seed (%n, %s) : (tensor<i64>) -> tensor<?x?x768xbf16>
  return
}

func.func @padding_mask(%m: tensor<?x?xi64>, %b: tensor<2x16xi1>, %c: tensor<2x16xi32>) {
  %0 = kiln.padding_mask %m : tensor<?x?xi64> -> tensor<?x1x1x?xf32>
  %1 = kiln.padding_mask %b : tensor<2x16xi1> -> tensor<2x1x1x16xf16>
  %2 = kiln.padding_mask %c : tensor<2x16xi32> -> tensor<2x1x1x16xbf16>
  return
}

func.func @shapes(%x: tensor<?x128x768xf32>, %y: tensor<2x3x4xf32>, %q: tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>>) {
  %0 = kiln.reshape %x : tensor<?x128x768xf32> -> tensor<?x128x12x64xf32>
  %1 = kiln.reshape %y : tensor<2x3x4xf32> -> tensor<24xf32>
  %2 = kiln.reshape %q : tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<24x!quant.uniform<i8:f32, 1.000000e-01>>
  %3 = kiln.transpose %y permutation = [2, 0, 1] : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %4 = kiln.transpose %x permutation = [1, 0, 2] : (tensor<?x128x768xf32>) -> tensor<128x?x768xf32>
  %5 = kiln.transpose %q permutation = [1, 0] : (tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x6x!quant.uniform<i8:f32, 1.000000e-01>>
  %6 = kiln.slice %x axis = 2 [0 : 768 : 1] : (tensor<?x128x768xf32>) -> tensor<?x128x768xf32>
  %7 = kiln.slice %x axis = 1 [1 : 128 : 2] : (tensor<?x128x768xf32>) -> tensor<?x64x768xf32>
  %8 = kiln.slice %x axis = 0 [0 : 4 : 1] : (tensor<?x128x768xf32>) -> tensor<4x128x768xf32>
  return
}

func.func @concat_pad(%a: tensor<2x3xf32>, %b: tensor<2x5xf32>, %d: tensor<?x3xf32>, %img: tensor<1x3x8x8xf32>, %i: tensor<4xi32>) {
  %0 = kiln.concat %a, %b axis = 1 : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x8xf32>
  %1 = kiln.concat %a, %d, %a axis = 0 : (tensor<2x3xf32>, tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<?x3xf32>
  %2 = kiln.concat %a axis = 0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = kiln.pad %img low = [0, 0, 1, 1] high = [0, 0, 1, 1] value = 0.000000e+00 : (tensor<1x3x8x8xf32>) -> tensor<1x3x10x10xf32>
  %4 = kiln.pad %d low = [1, 0] high = [0, 2] value = -1.000000e+00 : (tensor<?x3xf32>) -> tensor<?x5xf32>
  %5 = kiln.pad %i low = [2] high = [0] value = 7.000000e+00 : (tensor<4xi32>) -> tensor<6xi32>
  return
}

func.func @broadcast_gather(%bias: tensor<768xf32>, %x: tensor<1x768xf32>, %n: index, %table: tensor<50257x768xf32>, %ids: tensor<?x?xi64>, %ids32: tensor<4xi32>) {
  %0 = kiln.broadcast_to %bias () : tensor<768xf32> -> tensor<4x768xf32>
  %1 = kiln.broadcast_to %x (%n) : tensor<1x768xf32> -> tensor<?x768xf32>
  %2 = kiln.broadcast_to %x () : tensor<1x768xf32> -> tensor<2x3x768xf32>
  %3 = kiln.gather %table[%ids] axis = 0 : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
  %4 = kiln.gather %table[%ids32] axis = 1 : (tensor<50257x768xf32>, tensor<4xi32>) -> tensor<50257x4xf32>
  return
}

func.func @softmax_norms(%s: tensor<1x12x128x128xf32>, %l: tensor<4x10xf32>, %x: tensor<?x?x768xf32>, %g: tensor<768xf32>, %b: tensor<768xf32>, %r: tensor<?x?x64xbf16>, %rg: tensor<64xbf16>) {
  %0 = kiln.softmax %s axis = -1 : (tensor<1x12x128x128xf32>) -> tensor<1x12x128x128xf32>
  %1 = kiln.softmax %l axis = 0 : (tensor<4x10xf32>) -> tensor<4x10xf32>
  %2 = kiln.log_softmax %l axis = -1 : (tensor<4x10xf32>) -> tensor<4x10xf32>
  %3 = kiln.layer_norm %x weight %g bias %b eps = 1.000000e-05 : (tensor<?x?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
  %4 = kiln.layer_norm %x weight %g eps = 1.000000e-05 : (tensor<?x?x768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
  %5 = kiln.layer_norm %x bias %b eps = 1.000000e-12 : (tensor<?x?x768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
  %6 = kiln.layer_norm %x eps = 1.000000e-05 : (tensor<?x?x768xf32>) -> tensor<?x?x768xf32>
  %7 = kiln.rms_norm %r, %rg eps = 1.000000e-06 : (tensor<?x?x64xbf16>, tensor<64xbf16>) -> tensor<?x?x64xbf16>
  return
}

func.func @activations(%x: tensor<?x?x3072xf32>, %h: tensor<2x172xf16>) {
  %0 = kiln.gelu %x approximate = tanh : tensor<?x?x3072xf32>
  %1 = kiln.gelu %x approximate = erf : tensor<?x?x3072xf32>
  %2 = kiln.silu %h : tensor<2x172xf16>
  return
}

func.func @linear_embedding(%x: tensor<?x?x512xf32>, %w: tensor<2048x512xf32>, %b: tensor<2048xf32>, %x2: tensor<?x?x768xf32>, %w2: tensor<768x2304xf32>, %b2: tensor<2304xf32>, %wte: tensor<50257x768xf32>, %ids: tensor<?x?xi64>, %ids2: tensor<7xi32>) {
  %0 = kiln.linear %x, %w bias %b : (tensor<?x?x512xf32>, tensor<2048x512xf32>, tensor<2048xf32>) -> tensor<?x?x2048xf32>
  %1 = kiln.linear %x, %w : (tensor<?x?x512xf32>, tensor<2048x512xf32>) -> tensor<?x?x2048xf32>
  %2 = kiln.linear %x2, %w2 weight_in_out : (tensor<?x?x768xf32>, tensor<768x2304xf32>) -> tensor<?x?x2304xf32>
  %3 = kiln.linear %x2, %w2 bias %b2 weight_in_out : (tensor<?x?x768xf32>, tensor<768x2304xf32>, tensor<2304xf32>) -> tensor<?x?x2304xf32>
  %4 = kiln.embedding %wte, %ids : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
  %5 = kiln.embedding %wte, %ids2 : (tensor<50257x768xf32>, tensor<7xi32>) -> tensor<7x768xf32>
  return
}

func.func @attention(%q: tensor<?x12x?x64xf32>, %k: tensor<?x12x?x64xf32>, %v: tensor<?x12x?x64xf32>, %gq: tensor<2x8x16x64xf16>, %gk: tensor<2x2x32x64xf16>, %gv: tensor<2x2x32x32xf16>, %mask: tensor<2x1x1x32xf16>) {
  %0 = kiln.attention %q, %k, %v causal : (tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32>
  %1 = kiln.attention %q, %k, %v : (tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32>
  %2 = kiln.attention %gq, %gk, %gv mask %mask : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>, tensor<2x1x1x32xf16>) -> tensor<2x8x16x32xf16>
  %3 = kiln.attention %gq, %gk, %gv mask %mask causal scale = 1.250000e-01 : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>, tensor<2x1x1x32xf16>) -> tensor<2x8x16x32xf16>
  %4 = kiln.attention %gq, %gk, %gv scale = 5.000000e-01 : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>) -> tensor<2x8x16x32xf16>
  return
}

func.func @rope(%q: tensor<?x8x?x64xf32>, %x: tensor<2x4x16x32xbf16>, %p1: tensor<16xi64>, %p2: tensor<2x16xi32>) {
  %0 = kiln.rope %q theta = 1.000000e+04 : (tensor<?x8x?x64xf32>) -> tensor<?x8x?x64xf32>
  %1 = kiln.rope %x positions %p1 theta = 5.000000e+05 : (tensor<2x4x16x32xbf16>, tensor<16xi64>) -> tensor<2x4x16x32xbf16>
  %2 = kiln.rope %x positions %p2 theta = 1.000000e+04 : (tensor<2x4x16x32xbf16>, tensor<2x16xi32>) -> tensor<2x4x16x32xbf16>
  %3 = kiln.rope %x theta = 1.000000e+04 inv_freq = [1.0, 0.25, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01] : (tensor<2x4x16x32xbf16>) -> tensor<2x4x16x32xbf16>
  return
}

func.func @conv_pool(%x: tensor<?x3x32x32xf32>, %w: tensor<16x3x3x3xf32>, %b: tensor<16xf32>, %g: tensor<1x4x8x8xf32>, %gw: tensor<8x2x3x3xf32>, %p: tensor<1x16x32x32xf32>) {
  %0 = kiln.conv2d %x, %w bias %b stride = [2, 2] padding = [1, 1] dilation = [1, 1] groups = 1 : (tensor<?x3x32x32xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<?x16x16x16xf32>
  %1 = kiln.conv2d %x, %w stride = [1, 1] padding = [0, 0] dilation = [1, 1] groups = 1 : (tensor<?x3x32x32xf32>, tensor<16x3x3x3xf32>) -> tensor<?x16x30x30xf32>
  %2 = kiln.conv2d %g, %gw stride = [1, 1] padding = [2, 2] dilation = [2, 2] groups = 2 : (tensor<1x4x8x8xf32>, tensor<8x2x3x3xf32>) -> tensor<1x8x8x8xf32>
  %3 = kiln.max_pool2d %p kernel = [2, 2] stride = [2, 2] padding = [0, 0] : (tensor<1x16x32x32xf32>) -> tensor<1x16x16x16xf32>
  %4 = kiln.avg_pool2d %p kernel = [3, 3] stride = [1, 1] padding = [1, 1] : (tensor<1x16x32x32xf32>) -> tensor<1x16x32x32xf32>
  %5 = kiln.max_pool2d %x kernel = [3, 2] stride = [1, 2] padding = [1, 0] : (tensor<?x3x32x32xf32>) -> tensor<?x3x32x16xf32>
  return
}

func.func @cells(%x: tensor<?x32xf32>, %h: tensor<?x64xf32>, %c: tensor<?x64xf32>, %gwih: tensor<192x32xf32>, %gwhh: tensor<192x64xf32>, %gb: tensor<192xf32>, %lwih: tensor<256x32xf32>, %lwhh: tensor<256x64xf32>, %lb: tensor<256xf32>) {
  %0 = kiln.gru_cell %x, %h, %gwih, %gwhh, %gb, %gb : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<192x32xf32>, tensor<192x64xf32>, tensor<192xf32>, tensor<192xf32>) -> tensor<?x64xf32>
  %1:2 = kiln.lstm_cell %x, %h, %c, %lwih, %lwhh, %lb, %lb : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<256x32xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<256xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

func.func @training(%x: tensor<?x?x768xf32>, %seed: tensor<i64>, %logits: tensor<?x?x50257xf32>, %labels: tensor<?x?xi64>, %l2: tensor<4x10xbf16>, %t2: tensor<4xi32>, %pred: tensor<8x1xf32>, %y: tensor<8x1xf32>) {
  %0 = kiln.dropout %x, %seed p = 1.000000e-01 : (tensor<?x?x768xf32>, tensor<i64>) -> tensor<?x?x768xf32>
  %1 = kiln.dropout %x, %seed p = 0.000000e+00 : (tensor<?x?x768xf32>, tensor<i64>) -> tensor<?x?x768xf32>
  %2 = kiln.cross_entropy %logits, %labels reduction = mean : (tensor<?x?x50257xf32>, tensor<?x?xi64>) -> tensor<f32>
  %3 = kiln.cross_entropy %l2, %t2 ignore_index = 0 reduction = none : (tensor<4x10xbf16>, tensor<4xi32>) -> tensor<4xbf16>
  %4 = kiln.cross_entropy %l2, %t2 reduction = sum : (tensor<4x10xbf16>, tensor<4xi32>) -> tensor<bf16>
  %5 = kiln.mse %pred, %y reduction = mean : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
  %6 = kiln.mse %pred, %y reduction = none : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<8x1xf32>
  %7 = kiln.kl_div %pred, %y reduction = batchmean : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
  %8 = kiln.kl_div %pred, %y reduction = sum log_target : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
  %9 = kiln.kl_div %pred, %y reduction = none : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<8x1xf32>
  return
}


kiln.parameter @"opt.w" : tensor<4xf32> init zeros trainable
func.func @training_ops(%v: tensor<4xf32>, %table: tensor<10x4xf32>, %ids: tensor<?x3xi64>, %g: tensor<?x3x4xf32>) {
  kiln.write_param @"opt.w", %v : tensor<4xf32>
  %0 = kiln.scatter_add %table[%ids], %g axis = 0 : (tensor<10x4xf32>, tensor<?x3xi64>, tensor<?x3x4xf32>) -> tensor<10x4xf32>
  return
}
