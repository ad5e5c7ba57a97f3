// The cnn family: conv (same padding), activation and 2x2 pooling per
// stage, the mean over the pixels, a projection; names as the torch
// module's state_dict.
// RUN: echo '{"model_type": "cnn", "image_size": 16, "stage_channels": [8, 16], "embedding_dim": 12, "kernel_size": 5, "pool": "avg"}' > %t.json
// RUN: kiln-compile %t.json --emit=kiln | FileCheck %s
// RUN: echo '{"model_type": "cnn", "image_size": 4, "stage_channels": [8, 16, 32], "embedding_dim": 12}' > %t-small.json
// RUN: not kiln-compile %t-small.json --emit=summary 2>&1 | FileCheck %s --check-prefix=SMALL
// RUN: echo '{"model_type": "cnn", "stage_channels": [], "embedding_dim": 12}' > %t-empty.json
// RUN: not kiln-compile %t-empty.json --emit=summary 2>&1 | FileCheck %s --check-prefix=EMPTY

// CHECK:       kiln.parameter @stages.0.0.weight : tensor<8x3x5x5xf32> init uniform
// CHECK-NEXT:  kiln.parameter @stages.0.0.bias : tensor<8xf32>
// CHECK-NEXT:  kiln.parameter @stages.1.0.weight : tensor<16x8x5x5xf32>
// CHECK:       kiln.parameter @projection.weight : tensor<12x16xf32>
// CHECK-LABEL: func.func @forward(%{{.*}}: tensor<?x3x16x16xf32> {kiln.name = "pixel_values"}) -> (tensor<?x16x4x4xf32> {kiln.name = "features"}, tensor<?x12xf32> {kiln.name = "image_embeds"})
// CHECK:         kiln.conv2d %{{.*}} stride = [1, 1] padding = [2, 2] dilation = [1, 1] groups = 1
// CHECK:         kiln.relu
// CHECK:         kiln.avg_pool2d %{{.*}} kernel = [2, 2] stride = [2, 2] padding = [0, 0]
// CHECK:         kiln.reduce mean %{{.*}} axes = [2, 3]
// CHECK-LABEL: func.func @encode_image(

// SMALL: cnn config: 3 stages halve a 4x4 image to nothing
// EMPTY: cnn config: key 'stage_channels' must be a non-empty array
