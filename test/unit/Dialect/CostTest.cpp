//===- CostTest.cpp - CostOpInterface against closed forms ----------------===//
//
// Parses kiln IR and checks each op's FLOPs and bytes against the formulas
// stated in KilnCosts.cpp: a multiply-add is 2 FLOPs, every elementwise
// function 1 per element, bytes are each operand read once and each result
// written once.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Parser/Parser.h"

#include "llvm/ADT/StringRef.h"

#include "gtest/gtest.h"

#include <string>

using namespace mlir;
using namespace mlir::kiln;

namespace {

class CostTest : public ::testing::Test {
protected:
  CostTest() {
    context.loadDialect<KilnDialect, func::FuncDialect, tensor::TensorDialect,
                        arith::ArithDialect>();
  }

  /// Parses `ir` as a module; fails the test when it does not parse or verify.
  OwningOpRef<ModuleOp> parse(llvm::StringRef ir) {
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(ir, &context);
    EXPECT_TRUE(module) << "failed to parse:\n" << ir.str();
    return module;
  }

  /// The cost of the only op named `name` in `module`.
  OpCost costOf(ModuleOp module, llvm::StringRef name,
                const CostOptions &options = {}) {
    OpCost cost;
    int found = 0;
    module.walk([&](CostOpInterface op) {
      if (op->getName().getStringRef() != name)
        return;
      cost = op.getCost(options);
      ++found;
    });
    EXPECT_EQ(found, 1) << "expected exactly one " << name.str();
    return cost;
  }

  /// The summed cost of every op in `module`.
  OpCost totalCost(ModuleOp module, const CostOptions &options = {}) {
    OpCost total;
    module.walk([&](CostOpInterface op) { total += op.getCost(options); });
    return total;
  }

  /// Parses a one-op function and returns that op's cost.
  OpCost costOfOnly(llvm::StringRef ir, llvm::StringRef name,
                    const CostOptions &options = {}) {
    OwningOpRef<ModuleOp> module = parse(ir);
    if (!module)
      return {};
    return costOf(*module, name, options);
  }

  MLIRContext context;
};

constexpr double kF32 = 4, kBF16 = 2;

//===----------------------------------------------------------------------===//
// Matmul: 2·M·N·K per batch element.
//===----------------------------------------------------------------------===//

TEST_F(CostTest, MatmulPlain) {
  OpCost cost = costOfOnly(R"mlir(
    func.func @f(%a: tensor<128x768xf32>, %b: tensor<768x2304xf32>) -> tensor<128x2304xf32> {
      %0 = kiln.matmul %a, %b : (tensor<128x768xf32>, tensor<768x2304xf32>) -> tensor<128x2304xf32>
      return %0 : tensor<128x2304xf32>
    })mlir",
                           "kiln.matmul");
  double m = 128, k = 768, n = 2304;
  EXPECT_EQ(cost.flops, 2 * m * n * k);
  EXPECT_EQ(cost.bytesRead, (m * k + k * n) * kF32);
  EXPECT_EQ(cost.bytesWritten, m * n * kF32);
}

TEST_F(CostTest, MatmulTransposes) {
  // lhs [K, M] and rhs [N, K]: M = 3, K = 4, N = 5.
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    func.func @lhs(%a: tensor<4x3xf32>, %b: tensor<4x5xf32>) -> tensor<3x5xf32> {
      %0 = kiln.matmul %a, %b transpose_lhs : (tensor<4x3xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
      return %0 : tensor<3x5xf32>
    }
    func.func @rhs(%a: tensor<3x4xf32>, %b: tensor<5x4xf32>) -> tensor<3x5xf32> {
      %0 = kiln.matmul %a, %b transpose_rhs : (tensor<3x4xf32>, tensor<5x4xf32>) -> tensor<3x5xf32>
      return %0 : tensor<3x5xf32>
    }
    func.func @both(%a: tensor<4x3xbf16>, %b: tensor<5x4xbf16>) -> tensor<3x5xbf16> {
      %0 = kiln.matmul %a, %b transpose_lhs transpose_rhs : (tensor<4x3xbf16>, tensor<5x4xbf16>) -> tensor<3x5xbf16>
      return %0 : tensor<3x5xbf16>
    })mlir");
  ASSERT_TRUE(module);
  int seen = 0;
  module->walk([&](MatmulOp op) {
    OpCost cost = op.getCost({});
    EXPECT_EQ(cost.flops, 2.0 * 3 * 5 * 4) << "in " << seen;
    double bytes = op.getTransposeLhs() && op.getTransposeRhs() ? kBF16 : kF32;
    EXPECT_EQ(cost.bytesRead, (12 + 20) * bytes);
    EXPECT_EQ(cost.bytesWritten, 15 * bytes);
    ++seen;
  });
  EXPECT_EQ(seen, 3);
}

TEST_F(CostTest, MatmulBatchBroadcast) {
  // lhs batch [1, 3] broadcasts against rhs batch [2, 1]: 6 products of
  // 8x16 · 16x4.
  OpCost cost = costOfOnly(R"mlir(
    func.func @f(%a: tensor<1x3x8x16xf32>, %b: tensor<2x1x16x4xf32>) -> tensor<2x3x8x4xf32> {
      %0 = kiln.matmul %a, %b : (tensor<1x3x8x16xf32>, tensor<2x1x16x4xf32>) -> tensor<2x3x8x4xf32>
      return %0 : tensor<2x3x8x4xf32>
    })mlir",
                           "kiln.matmul");
  EXPECT_EQ(cost.flops, 2.0 * 6 * 8 * 4 * 16);
  EXPECT_EQ(cost.bytesRead, (3 * 8 * 16 + 2 * 16 * 4) * kF32);
  EXPECT_EQ(cost.bytesWritten, 6 * 8 * 4 * kF32);

  // A 2-D weight shared by every batch element.
  cost = costOfOnly(R"mlir(
    func.func @f(%a: tensor<5x7x16xf32>, %b: tensor<16x32xf32>) -> tensor<5x7x32xf32> {
      %0 = kiln.matmul %a, %b : (tensor<5x7x16xf32>, tensor<16x32xf32>) -> tensor<5x7x32xf32>
      return %0 : tensor<5x7x32xf32>
    })mlir",
                    "kiln.matmul");
  EXPECT_EQ(cost.flops, 2.0 * 5 * 7 * 32 * 16);
}

TEST_F(CostTest, MatmulDynamicDims) {
  const char *ir = R"mlir(
    func.func @f(%a: tensor<?x128x768xf32>, %b: tensor<768x?xf32>) -> tensor<?x128x?xf32> {
      %0 = kiln.matmul %a, %b : (tensor<?x128x768xf32>, tensor<768x?xf32>) -> tensor<?x128x?xf32>
      return %0 : tensor<?x128x?xf32>
    })mlir";
  // Default: every `?` counts as 1.
  OpCost one = costOfOnly(ir, "kiln.matmul");
  EXPECT_EQ(one.flops, 2.0 * 1 * 128 * 1 * 768);
  EXPECT_EQ(one.bytesRead, (128 * 768 + 768) * kF32);

  CostOptions options;
  options.dynamicDimSize = 8;
  OpCost eight = costOfOnly(ir, "kiln.matmul", options);
  EXPECT_EQ(eight.flops, 2.0 * 8 * 128 * 8 * 768);
  EXPECT_EQ(eight.bytesRead, (8 * 128 * 768 + 768 * 8) * kF32);
  EXPECT_EQ(eight.bytesWritten, 8 * 128 * 8 * kF32);

  // A dynamic contraction dimension counts too.
  OpCost k = costOfOnly(R"mlir(
    func.func @f(%a: tensor<4x?xf32>, %b: tensor<?x6xf32>) -> tensor<4x6xf32> {
      %0 = kiln.matmul %a, %b : (tensor<4x?xf32>, tensor<?x6xf32>) -> tensor<4x6xf32>
      return %0 : tensor<4x6xf32>
    })mlir",
                        "kiln.matmul", options);
  EXPECT_EQ(k.flops, 2.0 * 4 * 6 * 8);
}

//===----------------------------------------------------------------------===//
// Composites
//===----------------------------------------------------------------------===//

TEST_F(CostTest, Linear) {
  // [B, S, in] · [out, in]ᵀ + b: 2·B·S·out·in + B·S·out.
  double b = 2, s = 16, in = 64, out = 192;
  OpCost cost = costOfOnly(R"mlir(
    func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<192x64xf32>, %b: tensor<192xf32>) -> tensor<2x16x192xf32> {
      %0 = kiln.linear %x, %w bias %b : (tensor<2x16x64xf32>, tensor<192x64xf32>, tensor<192xf32>) -> tensor<2x16x192xf32>
      return %0 : tensor<2x16x192xf32>
    })mlir",
                           "kiln.linear");
  EXPECT_EQ(cost.flops, 2 * b * s * out * in + b * s * out);
  EXPECT_EQ(cost.bytesRead, (b * s * in + out * in + out) * kF32);
  EXPECT_EQ(cost.bytesWritten, b * s * out * kF32);

  // GPT-2's [in, out] layout, no bias.
  cost = costOfOnly(R"mlir(
    func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x192xf32>) -> tensor<2x16x192xf32> {
      %0 = kiln.linear %x, %w weight_in_out : (tensor<2x16x64xf32>, tensor<64x192xf32>) -> tensor<2x16x192xf32>
      return %0 : tensor<2x16x192xf32>
    })mlir",
                    "kiln.linear");
  EXPECT_EQ(cost.flops, 2 * b * s * out * in);
}

TEST_F(CostTest, Attention) {
  // q·kᵀ (2·D), scale (1), softmax (5), ·v (2·Dv) per score; a mask or
  // causal masking adds 1 per score.
  double b = 2, h = 4, sq = 8, sk = 12, d = 16, dv = 32;
  double scores = b * h * sq * sk;
  const char *ir = R"mlir(
    func.func @plain(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x12x16xf32>, %v: tensor<2x4x12x32xf32>) -> tensor<2x4x8x32xf32> {
      %0 = kiln.attention %q, %k, %v : (tensor<2x4x8x16xf32>, tensor<2x4x12x16xf32>, tensor<2x4x12x32xf32>) -> tensor<2x4x8x32xf32>
      return %0 : tensor<2x4x8x32xf32>
    })mlir";
  OpCost cost = costOfOnly(ir, "kiln.attention");
  EXPECT_EQ(cost.flops, 2 * scores * d + scores + 5 * scores + 2 * scores * dv);
  EXPECT_EQ(cost.bytesRead,
            (b * h * sq * d + b * h * sk * d + b * h * sk * dv) * kF32);
  EXPECT_EQ(cost.bytesWritten, b * h * sq * dv * kF32);

  cost = costOfOnly(R"mlir(
    func.func @causal(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x12x16xf32>, %v: tensor<2x4x12x32xf32>) -> tensor<2x4x8x32xf32> {
      %0 = kiln.attention %q, %k, %v causal : (tensor<2x4x8x16xf32>, tensor<2x4x12x16xf32>, tensor<2x4x12x32xf32>) -> tensor<2x4x8x32xf32>
      return %0 : tensor<2x4x8x32xf32>
    })mlir",
                    "kiln.attention");
  EXPECT_EQ(cost.flops,
            2 * scores * d + scores + 5 * scores + 2 * scores * dv + scores);

  cost = costOfOnly(R"mlir(
    func.func @masked(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x12x16xf32>, %v: tensor<2x4x12x32xf32>, %m: tensor<2x1x1x12xf32>) -> tensor<2x4x8x32xf32> {
      %0 = kiln.attention %q, %k, %v mask %m : (tensor<2x4x8x16xf32>, tensor<2x4x12x16xf32>, tensor<2x4x12x32xf32>, tensor<2x1x1x12xf32>) -> tensor<2x4x8x32xf32>
      return %0 : tensor<2x4x8x32xf32>
    })mlir",
                    "kiln.attention");
  EXPECT_EQ(cost.flops,
            2 * scores * d + scores + 5 * scores + 2 * scores * dv + scores);
  EXPECT_EQ(cost.bytesRead, (b * h * sq * d + b * h * sk * d +
                             b * h * sk * dv + b * sk) *
                                kF32);
}

TEST_F(CostTest, AttentionSelfDynamic) {
  // Self-attention with D = Dv and S = Sq = Sk is 4·B·H·S²·D + 7·B·H·S²
  // (causal); B and S dynamic, counted as dynamicDimSize.
  CostOptions options;
  options.dynamicDimSize = 128;
  OpCost cost = costOfOnly(R"mlir(
    func.func @f(%q: tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32> {
      %0 = kiln.attention %q, %q, %q causal : (tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32>
      return %0 : tensor<?x12x?x64xf32>
    })mlir",
                           "kiln.attention", options);
  double b = 128, h = 12, s = 128, d = 64;
  EXPECT_EQ(cost.flops, 4 * b * h * s * s * d + 7 * b * h * s * s);
}

TEST_F(CostTest, LayerNorm) {
  // 5 per element, plus 1 each for the weight and the bias.
  double n = 3 * 5 * 64;
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    func.func @f(%x: tensor<3x5x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>) {
      %0 = kiln.layer_norm %x weight %g bias %b eps = 1.000000e-05 {tag = 2} : (tensor<3x5x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<3x5x64xf32>
      %1 = kiln.layer_norm %x weight %g eps = 1.000000e-05 {tag = 1} : (tensor<3x5x64xf32>, tensor<64xf32>) -> tensor<3x5x64xf32>
      %2 = kiln.layer_norm %x eps = 1.000000e-05 {tag = 0} : (tensor<3x5x64xf32>) -> tensor<3x5x64xf32>
      return
    })mlir");
  ASSERT_TRUE(module);
  int seen = 0;
  module->walk([&](LayerNormOp op) {
    auto tag = op->getAttrOfType<IntegerAttr>("tag").getInt();
    OpCost cost = op.getCost({});
    EXPECT_EQ(cost.flops, 5 * n + tag * n) << "with " << tag << " affine";
    EXPECT_EQ(cost.bytesRead, (n + tag * 64) * kF32);
    EXPECT_EQ(cost.bytesWritten, n * kF32);
    ++seen;
  });
  EXPECT_EQ(seen, 3);
}

TEST_F(CostTest, SoftmaxAndRMSNorm) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    func.func @f(%x: tensor<4x12x32x32xbf16>, %y: tensor<?x64xf32>, %g: tensor<64xf32>) {
      %0 = kiln.softmax %x axis = -1 : (tensor<4x12x32x32xbf16>) -> tensor<4x12x32x32xbf16>
      %1 = kiln.log_softmax %x axis = 1 : (tensor<4x12x32x32xbf16>) -> tensor<4x12x32x32xbf16>
      %2 = kiln.rms_norm %y, %g eps = 1.000000e-06 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
      return
    })mlir");
  ASSERT_TRUE(module);
  double n = 4 * 12 * 32 * 32;
  OpCost softmax = costOf(*module, "kiln.softmax");
  EXPECT_EQ(softmax.flops, 5 * n);
  EXPECT_EQ(softmax.bytesRead, n * kBF16);
  EXPECT_EQ(softmax.bytesWritten, n * kBF16);
  EXPECT_EQ(costOf(*module, "kiln.log_softmax").flops, 5 * n);
  CostOptions options;
  options.dynamicDimSize = 10;
  EXPECT_EQ(costOf(*module, "kiln.rms_norm", options).flops, 4 * 10 * 64);
}

TEST_F(CostTest, Elementwise) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    func.func @f(%x: tensor<8x32xf32>, %b: tensor<32xf32>, %m: tensor<8x32xi1>, %s: tensor<f32>) {
      %0 = kiln.add %x, %b : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
      %1 = kiln.exp %x : tensor<8x32xf32>
      %2 = kiln.gelu %x approximate = tanh : tensor<8x32xf32>
      %3 = kiln.gelu %x approximate = erf {tag} : tensor<8x32xf32>
      %4 = kiln.silu %x : tensor<8x32xf32>
      %5 = kiln.select %m, %x, %s : (tensor<8x32xi1>, tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
      %6 = kiln.cast %x : tensor<8x32xf32> -> tensor<8x32xbf16>
      %7 = kiln.reshape %x : tensor<8x32xf32> -> tensor<256xf32>
      %8 = kiln.transpose %x permutation = [1, 0] : (tensor<8x32xf32>) -> tensor<32x8xf32>
      return
    })mlir");
  ASSERT_TRUE(module);
  double n = 8 * 32;
  OpCost add = costOf(*module, "kiln.add");
  EXPECT_EQ(add.flops, n);
  EXPECT_EQ(add.bytesRead, (n + 32) * kF32);
  EXPECT_EQ(add.bytesWritten, n * kF32);
  OpCost exp = costOf(*module, "kiln.exp");
  EXPECT_EQ(exp.flops, n);
  EXPECT_EQ(exp.bytes(), 2 * n * kF32);
  module->walk([&](GeluOp op) {
    EXPECT_EQ(op.getCost({}).flops, (op->hasAttr("tag") ? 5 : 8) * n);
  });
  EXPECT_EQ(costOf(*module, "kiln.silu").flops, 2 * n);
  OpCost select = costOf(*module, "kiln.select");
  EXPECT_EQ(select.flops, n);
  EXPECT_EQ(select.bytesRead, n * 1 + n * kF32 + kF32);
  // Pure data movement: no FLOPs; a reshape is a view and moves nothing.
  OpCost cast = costOf(*module, "kiln.cast");
  EXPECT_EQ(cast.flops, 0);
  EXPECT_EQ(cast.bytesRead, n * kF32);
  EXPECT_EQ(cast.bytesWritten, n * kBF16);
  OpCost reshape = costOf(*module, "kiln.reshape");
  EXPECT_EQ(reshape.flops, 0);
  EXPECT_EQ(reshape.bytes(), 0);
  OpCost transpose = costOf(*module, "kiln.transpose");
  EXPECT_EQ(transpose.flops, 0);
  EXPECT_EQ(transpose.bytes(), 2 * n * kF32);
}

TEST_F(CostTest, ReduceAndGather) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    func.func @f(%x: tensor<4x768xf32>, %t: tensor<1000x64xf32>, %i: tensor<2x8xi64>) {
      %0 = kiln.reduce mean %x axes = [1] keepdim : (tensor<4x768xf32>) -> tensor<4x1xf32>
      %1 = kiln.reduce max %x axes = [0, 1] : (tensor<4x768xf32>) -> tensor<f32>
      %2 = kiln.gather %t[%i] axis = 0 : (tensor<1000x64xf32>, tensor<2x8xi64>) -> tensor<2x8x64xf32>
      return
    })mlir");
  ASSERT_TRUE(module);
  module->walk([&](ReduceOp op) {
    // One per input element; a mean divides once per output element.
    double expected = op.getKind() == ReduceKind::mean ? 4 * 768 + 4 : 4 * 768;
    EXPECT_EQ(op.getCost({}).flops, expected);
  });
  // A gather reads the rows it keeps and the indices, not the table.
  OpCost gather = costOf(*module, "kiln.gather");
  EXPECT_EQ(gather.flops, 0);
  EXPECT_EQ(gather.bytesRead, 2 * 8 * 64 * kF32 + 2 * 8 * 8);
  EXPECT_EQ(gather.bytesWritten, 2 * 8 * 64 * kF32);
}

TEST_F(CostTest, QuantizedBytes) {
  // A quantized element is its storage type: one byte for i8.
  OpCost cost = costOfOnly(R"mlir(
    func.func @f(%x: tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<16x8xf32> {
      %0 = kiln.cast %x : tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<16x8xf32>
      return %0 : tensor<16x8xf32>
    })mlir",
                           "kiln.cast");
  EXPECT_EQ(cost.bytesRead, 128);
  EXPECT_EQ(cost.bytesWritten, 128 * kF32);
}

TEST_F(CostTest, ReadParamAndConstantAreFree) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    kiln.parameter @w : tensor<64x64xf32> init zeros
    func.func @f() -> tensor<64x64xf32> {
      %w = kiln.read_param @w : tensor<64x64xf32>
      %c = kiln.constant dense<1.000000e+00> : tensor<64x64xf32>
      return %w : tensor<64x64xf32>
    })mlir");
  ASSERT_TRUE(module);
  OpCost total = totalCost(*module);
  EXPECT_EQ(total.flops, 0);
  EXPECT_EQ(total.bytes(), 0);
}

//===----------------------------------------------------------------------===//
// A GPT-2 block: the sum over its ops against a per-layer closed form.
//===----------------------------------------------------------------------===//

/// A pre-norm GPT-2 block (as Hugging Face's GPT2Block) over [B, S, D] with
/// H heads, written with the dims as `B` and `S` (substituted by the test).
std::string gpt2Block(llvm::StringRef b, llvm::StringRef s) {
  std::string ir = R"mlir(
    func.func @block(%x: tensor<BxSx64xf32>, %ln1_g: tensor<64xf32>, %ln1_b: tensor<64xf32>,
                     %attn_w: tensor<64x192xf32>, %attn_b: tensor<192xf32>,
                     %proj_w: tensor<64x64xf32>, %proj_b: tensor<64xf32>,
                     %ln2_g: tensor<64xf32>, %ln2_b: tensor<64xf32>,
                     %fc_w: tensor<64x256xf32>, %fc_b: tensor<256xf32>,
                     %out_w: tensor<256x64xf32>, %out_b: tensor<64xf32>) -> tensor<BxSx64xf32> {
      %h = kiln.layer_norm %x weight %ln1_g bias %ln1_b eps = 1.000000e-05 : (tensor<BxSx64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<BxSx64xf32>
      %qkv = kiln.linear %h, %attn_w bias %attn_b weight_in_out : (tensor<BxSx64xf32>, tensor<64x192xf32>, tensor<192xf32>) -> tensor<BxSx192xf32>
      %q = kiln.slice %qkv axis = 2 [0 : 64 : 1] : (tensor<BxSx192xf32>) -> tensor<BxSx64xf32>
      %k = kiln.slice %qkv axis = 2 [64 : 128 : 1] : (tensor<BxSx192xf32>) -> tensor<BxSx64xf32>
      %v = kiln.slice %qkv axis = 2 [128 : 192 : 1] : (tensor<BxSx192xf32>) -> tensor<BxSx64xf32>
      %q4 = kiln.reshape %q : tensor<BxSx64xf32> -> tensor<BxSx4x16xf32>
      %k4 = kiln.reshape %k : tensor<BxSx64xf32> -> tensor<BxSx4x16xf32>
      %v4 = kiln.reshape %v : tensor<BxSx64xf32> -> tensor<BxSx4x16xf32>
      %qh = kiln.transpose %q4 permutation = [0, 2, 1, 3] : (tensor<BxSx4x16xf32>) -> tensor<Bx4xSx16xf32>
      %kh = kiln.transpose %k4 permutation = [0, 2, 1, 3] : (tensor<BxSx4x16xf32>) -> tensor<Bx4xSx16xf32>
      %vh = kiln.transpose %v4 permutation = [0, 2, 1, 3] : (tensor<BxSx4x16xf32>) -> tensor<Bx4xSx16xf32>
      %a = kiln.attention %qh, %kh, %vh causal : (tensor<Bx4xSx16xf32>, tensor<Bx4xSx16xf32>, tensor<Bx4xSx16xf32>) -> tensor<Bx4xSx16xf32>
      %at = kiln.transpose %a permutation = [0, 2, 1, 3] : (tensor<Bx4xSx16xf32>) -> tensor<BxSx4x16xf32>
      %am = kiln.reshape %at : tensor<BxSx4x16xf32> -> tensor<BxSx64xf32>
      %o = kiln.linear %am, %proj_w bias %proj_b weight_in_out : (tensor<BxSx64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<BxSx64xf32>
      %r1 = kiln.add %x, %o : (tensor<BxSx64xf32>, tensor<BxSx64xf32>) -> tensor<BxSx64xf32>
      %h2 = kiln.layer_norm %r1 weight %ln2_g bias %ln2_b eps = 1.000000e-05 : (tensor<BxSx64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<BxSx64xf32>
      %f = kiln.linear %h2, %fc_w bias %fc_b weight_in_out : (tensor<BxSx64xf32>, tensor<64x256xf32>, tensor<256xf32>) -> tensor<BxSx256xf32>
      %g = kiln.gelu %f approximate = tanh : tensor<BxSx256xf32>
      %m = kiln.linear %g, %out_w bias %out_b weight_in_out : (tensor<BxSx256xf32>, tensor<256x64xf32>, tensor<64xf32>) -> tensor<BxSx64xf32>
      %r2 = kiln.add %r1, %m : (tensor<BxSx64xf32>, tensor<BxSx64xf32>) -> tensor<BxSx64xf32>
      return %r2 : tensor<BxSx64xf32>
    })mlir";
  std::string out;
  for (size_t i = 0; i < ir.size(); ++i) {
    // Substitute B and S where they stand for a dimension (after '<' or 'x'
    // and before 'x').
    char c = ir[i];
    bool dimContext = i > 0 && (ir[i - 1] == '<' || ir[i - 1] == 'x') &&
                      i + 1 < ir.size() && ir[i + 1] == 'x';
    if (dimContext && c == 'B')
      out += b.str();
    else if (dimContext && c == 'S')
      out += s.str();
    else
      out += c;
  }
  return out;
}

/// FLOPs of one GPT-2 block by the conventions of KilnCosts.cpp, op by op.
double gpt2BlockFlops(double b, double s, double d, double heads) {
  double n = b * s;                // tokens
  double dh = d / heads;           // head dim
  double scores = b * heads * s * s;
  double layerNorm = 5 * n * d + n * d + n * d; // normalize + weight + bias
  auto linearFlops = [&](double in, double out) {
    return 2 * n * in * out + n * out; // GEMM + bias
  };
  double attention = 2 * scores * dh   // q·kᵀ
                     + scores          // scale
                     + 5 * scores      // softmax
                     + 2 * scores * dh // ·v
                     + scores;         // causal mask
  double flops = 0;
  flops += layerNorm;                // ln_1
  flops += linearFlops(d, 3 * d);    // c_attn
  flops += attention;                // slices, reshapes, transposes: 0
  flops += linearFlops(d, d);        // attn.c_proj
  flops += n * d;                    // residual
  flops += layerNorm;                // ln_2
  flops += linearFlops(d, 4 * d);    // mlp.c_fc
  flops += 8 * n * 4 * d;            // gelu (tanh form)
  flops += linearFlops(4 * d, d);    // mlp.c_proj
  flops += n * d;                    // residual
  return flops;
}

TEST_F(CostTest, Gpt2BlockStatic) {
  OwningOpRef<ModuleOp> module = parse(gpt2Block("2", "16"));
  ASSERT_TRUE(module);
  double b = 2, s = 16, d = 64, h = 4;
  OpCost total = totalCost(*module);
  EXPECT_EQ(total.flops, gpt2BlockFlops(b, s, d, h));
  // The same total in the usual closed form: 24·N·D² for the four GEMMs,
  // 57·N·D for the elementwise work, B·H·S²·(4·Dh + 7) for attention.
  double n = b * s;
  EXPECT_EQ(total.flops,
            24 * n * d * d + 57 * n * d + b * h * s * s * (4 * (d / h) + 7));
}

TEST_F(CostTest, Gpt2BlockDynamic) {
  OwningOpRef<ModuleOp> module = parse(gpt2Block("?", "?"));
  ASSERT_TRUE(module);
  for (int64_t size : {1, 3, 32}) {
    CostOptions options;
    options.dynamicDimSize = size;
    EXPECT_EQ(totalCost(*module, options).flops,
              gpt2BlockFlops(size, size, 64, 4))
        << "dynamicDimSize = " << size;
  }
}

} // namespace
