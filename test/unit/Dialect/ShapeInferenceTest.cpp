//===- ShapeInferenceTest.cpp - broadcastShapes and inferReturnTypes ------===//
//
// Builds kiln ops with OpBuilder (so the result types come from
// inferReturnTypes) and calls the shape helpers directly.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include "gtest/gtest.h"

#include <string>

using namespace mlir;
using namespace mlir::kiln;

namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;

class ShapeInferenceTest : public ::testing::Test {
protected:
  ShapeInferenceTest() : builder(&context) {
    context.loadDialect<KilnDialect, func::FuncDialect, tensor::TensorDialect,
                        arith::ArithDialect>();
    loc = builder.getUnknownLoc();
    module = ModuleOp::create(loc);
    builder.setInsertionPointToEnd(module->getBody());
  }

  RankedTensorType f32(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, builder.getF32Type());
  }
  RankedTensorType i64(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, builder.getI64Type());
  }

  /// Values of the given types: the arguments of a fresh function, with the
  /// builder inside its body.
  SmallVector<Value> values(ArrayRef<Type> types) {
    auto func = func::FuncOp::create(
        builder, loc, "f" + std::to_string(counter++),
        builder.getFunctionType(types, {}));
    Block *body = func.addEntryBlock();
    builder.setInsertionPointToEnd(body);
    return SmallVector<Value>(body->getArguments());
  }

  /// Runs `fn` and returns the text of the first error it emits ("" if none).
  template <typename Fn> std::string firstError(Fn &&fn) {
    std::string message;
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      if (diag.getSeverity() == DiagnosticSeverity::Error && message.empty())
        message = diag.str();
      return success();
    });
    fn();
    return message;
  }

  MLIRContext context;
  OpBuilder builder;
  Location loc = UnknownLoc::get(&context);
  OwningOpRef<ModuleOp> module;
  int counter = 0;
};

//===----------------------------------------------------------------------===//
// broadcastShapes
//===----------------------------------------------------------------------===//

TEST_F(ShapeInferenceTest, BroadcastShapes) {
  struct Case {
    SmallVector<int64_t> lhs, rhs, expected;
  };
  Case cases[] = {
      {{2, 3}, {2, 3}, {2, 3}},
      {{2, 3}, {3}, {2, 3}},
      {{3}, {2, 3}, {2, 3}},
      {{4, 1}, {1, 5}, {4, 5}},
      {{}, {2, 3}, {2, 3}},
      {{2, 1, 8}, {7, 1}, {2, 7, 8}},
      // `?` against a size keeps the size; `?` against 1 stays `?`.
      {{kDyn, 3}, {4, 3}, {4, 3}},
      {{4, 3}, {kDyn, 3}, {4, 3}},
      {{kDyn, 3}, {1, 3}, {kDyn, 3}},
      {{kDyn}, {kDyn}, {kDyn}},
      {{1}, {kDyn}, {kDyn}},
  };
  for (const Case &c : cases) {
    SmallVector<int64_t> result;
    ASSERT_TRUE(succeeded(broadcastShapes(std::nullopt, c.lhs, c.rhs, result)))
        << formatShape(c.lhs) << " vs " << formatShape(c.rhs);
    EXPECT_EQ(result, c.expected)
        << formatShape(c.lhs) << " vs " << formatShape(c.rhs) << " gave "
        << formatShape(result);
  }
}

TEST_F(ShapeInferenceTest, BroadcastShapesMismatch) {
  SmallVector<int64_t> result;
  // Without a location the failure is silent.
  std::string silent = firstError([&] {
    EXPECT_TRUE(failed(broadcastShapes(std::nullopt, {2, 3}, {4, 3}, result)));
  });
  EXPECT_EQ(silent, "");
  std::string message = firstError([&] {
    EXPECT_TRUE(failed(broadcastShapes(loc, {5, 2, 3}, {4, 3}, result)));
  });
  EXPECT_EQ(message,
            "shapes 5x2x3 and 4x3 do not broadcast: dimension 1 is 2 vs 4");
}

TEST_F(ShapeInferenceTest, FormatShapeAndNormalizeAxis) {
  EXPECT_EQ(formatShape({}), "scalar");
  EXPECT_EQ(formatShape({2, kDyn, 768}), "2x?x768");
  EXPECT_EQ(*normalizeAxis(std::nullopt, -1, 3), 2);
  EXPECT_EQ(*normalizeAxis(std::nullopt, 0, 3), 0);
  EXPECT_TRUE(failed(normalizeAxis(std::nullopt, 3, 3)));
  std::string message = firstError(
      [&] { EXPECT_TRUE(failed(normalizeAxis(loc, -4, 3))); });
  EXPECT_EQ(message, "axis -4 is out of range for rank 3 (expected -3 <= "
                     "axis < 3)");
}

TEST_F(ShapeInferenceTest, CompatibleReturnTypes) {
  // A declared `?` may become a size; never the other way, nor another rank
  // or element type.
  EXPECT_TRUE(areCompatibleReturnTypes(TypeRange{f32({kDyn, 3})},
                                       TypeRange{f32({2, 3})}));
  EXPECT_TRUE(areCompatibleReturnTypes(TypeRange{f32({2, 3})},
                                       TypeRange{f32({2, 3})}));
  EXPECT_FALSE(areCompatibleReturnTypes(TypeRange{f32({2, 3})},
                                        TypeRange{f32({kDyn, 3})}));
  EXPECT_FALSE(areCompatibleReturnTypes(TypeRange{f32({2, 3})},
                                        TypeRange{f32({6})}));
  EXPECT_FALSE(areCompatibleReturnTypes(TypeRange{f32({2, 3})},
                                        TypeRange{i64({2, 3})}));
}

//===----------------------------------------------------------------------===//
// inferReturnTypes through the builders
//===----------------------------------------------------------------------===//

TEST_F(ShapeInferenceTest, Elementwise) {
  auto v = values({f32({kDyn, 1, 768}), f32({4, 768}), i64({8}), i64({})});
  auto add = AddOp::create(builder, loc, v[0], v[1]);
  EXPECT_EQ(add.getType(), f32({kDyn, 4, 768}));
  auto cmp = CompareOp::create(builder, loc, ComparePredicate::lt, v[2], v[3]);
  EXPECT_EQ(cmp.getType(), RankedTensorType::get({8}, builder.getI1Type()));
  auto exp = ExpOp::create(builder, loc, v[1]);
  EXPECT_EQ(exp.getType(), f32({4, 768}));
  auto sel = SelectOp::create(builder, loc, cmp, v[2], v[3]);
  EXPECT_EQ(sel.getType(), i64({8}));
}

TEST_F(ShapeInferenceTest, Matmul) {
  auto v = values({f32({kDyn, 128, 768}), f32({768, 2304}), f32({1, 12, 128, 64}),
                   f32({64, 32}), f32({3, 16, 64})});
  EXPECT_EQ(MatmulOp::create(builder, loc, v[0], v[1]).getType(),
            f32({kDyn, 128, 2304}));
  EXPECT_EQ(MatmulOp::create(builder, loc, v[2], v[2], /*transpose_lhs=*/false,
                             /*transpose_rhs=*/true)
                .getType(),
            f32({1, 12, 128, 128}));
  EXPECT_EQ(MatmulOp::create(builder, loc, v[2], v[2], /*transpose_lhs=*/true,
                             /*transpose_rhs=*/false)
                .getType(),
            f32({1, 12, 64, 64}));
  // [K, M]ᵀ · [B, N, K]ᵀ broadcasts the batch of the rhs.
  EXPECT_EQ(MatmulOp::create(builder, loc, v[3], v[4], true, true).getType(),
            f32({3, 32, 16}));
}

TEST_F(ShapeInferenceTest, MatmulMismatchMessage) {
  auto v = values({f32({2, 8}), f32({7, 4})});
  // The adaptor keeps a view of its operands: give it storage that outlives it.
  SmallVector<Value> operands = {v[0], v[1]};
  MatmulOp::Properties props;
  MatmulOp::Adaptor adaptor(ValueRange(operands), nullptr, props);
  SmallVector<Type> types;
  std::string message = firstError([&] {
    EXPECT_TRUE(failed(MatmulOp::inferReturnTypes(&context, loc, adaptor, types)));
  });
  EXPECT_EQ(message,
            "contraction dimensions differ: lhs 2x8 has K = 8, rhs 7x4 has K = 7");
}

TEST_F(ShapeInferenceTest, ReduceTransposeSliceConcat) {
  auto v = values({f32({4, kDyn, 768}), f32({2, 3}), f32({2, 5})});
  auto mean = ReduceOp::create(builder, loc, ReduceKind::mean, v[0],
                               ArrayRef<int64_t>{2}, /*keepdim=*/true);
  EXPECT_EQ(mean.getType(), f32({4, kDyn, 1}));
  auto sum = ReduceOp::create(builder, loc, ReduceKind::sum, v[0],
                              ArrayRef<int64_t>{0, 2}, /*keepdim=*/false);
  EXPECT_EQ(sum.getType(), f32({kDyn}));
  auto t = TransposeOp::create(builder, loc, v[0],
                               builder.getDenseI64ArrayAttr({2, 0, 1}));
  EXPECT_EQ(t.getType(), f32({768, 4, kDyn}));
  auto s = SliceOp::create(builder, loc, v[0], 2, 1, 768, 2);
  EXPECT_EQ(s.getType(), f32({4, kDyn, 384}));
  auto c = ConcatOp::create(builder, loc, ValueRange{v[1], v[2], v[1]}, 1);
  EXPECT_EQ(c.getType(), f32({2, 11}));
}

TEST_F(ShapeInferenceTest, Composites) {
  auto v = values({f32({kDyn, kDyn, 768}), f32({2304, 768}), f32({2304}),
                   f32({2, 8, 16, 64}), f32({2, 2, 32, 64}),
                   f32({2, 2, 32, 32}), f32({kDyn, 3, 32, 32}),
                   f32({16, 3, 3, 3}), i64({4, 10})});
  auto linear = LinearOp::create(builder, loc, v[0], v[1], v[2]);
  EXPECT_EQ(linear.getType(), f32({kDyn, kDyn, 2304}));
  auto ln = LayerNormOp::create(builder, loc, v[0], Value(), Value(),
                                builder.getF64FloatAttr(1e-5));
  EXPECT_EQ(ln.getType(), f32({kDyn, kDyn, 768}));
  // Grouped-query attention: 8 query heads over 2 key/value heads.
  auto attn = AttentionOp::create(builder, loc, v[3], v[4], v[5], Value(), Value(),
                                  builder.getUnitAttr(), FloatAttr());
  EXPECT_EQ(attn.getType(), f32({2, 8, 16, 32}));
  auto conv = Conv2dOp::create(
      builder, loc, v[6], v[7], Value(), builder.getDenseI64ArrayAttr({2, 2}),
      builder.getDenseI64ArrayAttr({1, 1}), builder.getDenseI64ArrayAttr({1, 1}),
      builder.getI64IntegerAttr(1));
  EXPECT_EQ(conv.getType(), f32({kDyn, 16, 16, 16}));
  auto emb = EmbeddingOp::create(builder, loc, v[1], v[8]);
  EXPECT_EQ(emb.getType(), f32({4, 10, 768}));
}

TEST_F(ShapeInferenceTest, LossReductions) {
  auto v = values({f32({4, 10}), i64({4})});
  auto mean = CrossEntropyOp::create(builder, loc, v[0], v[1], -100,
                                     LossReduction::mean);
  EXPECT_EQ(mean.getType(), f32({}));
  auto none = CrossEntropyOp::create(builder, loc, v[0], v[1], -100,
                                     LossReduction::none);
  EXPECT_EQ(none.getType(), f32({4}));
  auto mse = MSEOp::create(builder, loc, v[0], v[0], LossReduction::none);
  EXPECT_EQ(mse.getType(), f32({4, 10}));
}

} // namespace
