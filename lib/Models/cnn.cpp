//===- cnn.cpp - A small convolutional image encoder ----------------------===//
//
// Conv/pool stacks as the seed article's image encoder: per stage a
// same-padded convolution, an activation and a 2x2 pooling (max or
// average), then the mean over the remaining pixels and a linear
// projection to the embedding. Names are those of the torch module
//
//   stages[i] = Sequential(Conv2d(c_in, c_out, k, padding=k // 2), act,
//                          MaxPool2d(2))            # "stages.{i}.0.*"
//   projection = Linear(c_last, embedding_dim)      # "projection.*"
//
// so its state_dict loads as saved.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
struct CNNConfig {
  int64_t channels, embedding, kernel;
  std::array<int64_t, 2> image;
  std::vector<int64_t> widths;
  bool maxPool;
  Activation activation;
};

llvm::Expected<CNNConfig> readConfig(const llvm::json::Object &json) {
  ConfigReader reader(json, "cnn");
  CNNConfig c;
  c.channels = reader.getInt("num_channels", 3, 1);
  c.image = reader.getSizePair("image_size", 32);
  c.kernel = reader.getInt("kernel_size", 3, 1);
  c.embedding = reader.getInt("embedding_dim");
  c.activation = reader.getActivation("activation", "relu");
  std::string pool = reader.getString("pool", "max");
  if (pool != "max" && pool != "avg")
    reader.fail("key 'pool' must be 'max' or 'avg', found '" + pool + "'");
  c.maxPool = pool == "max";
  if (c.kernel % 2 == 0)
    reader.fail("key 'kernel_size' must be odd (same padding), found " +
                std::to_string(c.kernel));
  const llvm::json::Value *widths = reader.getValue("stage_channels");
  const llvm::json::Array *array = widths ? widths->getAsArray() : nullptr;
  if (!array || array->empty())
    reader.fail("key 'stage_channels' must be a non-empty array of channel "
                "counts, one per stage");
  else
    for (const llvm::json::Value &value : *array) {
      std::optional<int64_t> width = value.getAsInteger();
      if (!width || *width < 1 || *width > kMaxConfigSize) {
        reader.fail("key 'stage_channels' must hold positive integers");
        break;
      }
      c.widths.push_back(*width);
    }
  // Each stage halves the image (floor, as MaxPool2d(2)).
  if (!reader.failed()) {
    int64_t h = c.image[0], w = c.image[1];
    for (size_t i = 0; i < c.widths.size(); ++i) {
      h /= 2;
      w /= 2;
    }
    if (h < 1 || w < 1)
      reader.fail(llvm::formatv("{0} stages halve a {1}x{2} image to nothing",
                                c.widths.size(), c.image[0], c.image[1])
                      .str());
  }
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}
} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildCNN(MLIRContext &context,
                             const llvm::json::Object &json,
                             const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "cnn"))
    return std::move(error);
  auto config = readConfig(json);
  if (!config)
    return config.takeError();
  const CNNConfig &c = *config;
  GraphBuilder g(context, "cnn", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  Type f32 = b.getF32Type();
  int64_t B = dynamicIfUnset(options.batch);
  int64_t h = c.image[0], w = c.image[1];
  for (size_t i = 0; i < c.widths.size(); ++i) {
    h /= 2;
    w /= 2;
  }
  auto pixelsType =
      RankedTensorType::get({B, c.channels, c.image[0], c.image[1]}, f32);
  auto featuresType = RankedTensorType::get({B, c.widths.back(), h, w}, f32);
  auto embedsType = RankedTensorType::get({B, c.embedding}, f32);

  auto encoder = [&](Value pixels) {
    Value x = g.toCompute(pixels);
    int64_t in = c.channels;
    int64_t pad = c.kernel / 2;
    for (auto [i, out] : llvm::enumerate(c.widths)) {
      std::string p = llvm::formatv("stages.{0}.0", i).str();
      // torch.nn.Conv2d's default init: U(±1/√fan_in) (kaiming_uniform
      // with a = √5 gives the same bound).
      double bound =
          1.0 / std::sqrt(static_cast<double>(in * c.kernel * c.kernel));
      Value weight =
          g.uniformParam(p + ".weight", {out, in, c.kernel, c.kernel}, bound);
      Value bias = g.uniformParam(p + ".bias", {out}, bound);
      x = Conv2dOp::create(b, loc, x, weight, bias,
                           ArrayRef<int64_t>{1, 1}, ArrayRef<int64_t>{pad, pad},
                           ArrayRef<int64_t>{1, 1}, /*groups=*/1);
      x = g.activation(x, c.activation);
      if (c.maxPool)
        x = MaxPool2dOp::create(b, loc, x, ArrayRef<int64_t>{2, 2},
                                ArrayRef<int64_t>{2, 2},
                                ArrayRef<int64_t>{0, 0});
      else
        x = AvgPool2dOp::create(b, loc, x, ArrayRef<int64_t>{2, 2},
                                ArrayRef<int64_t>{2, 2},
                                ArrayRef<int64_t>{0, 0});
      in = out;
    }
    Value pooled = ReduceOp::create(b, loc, ReduceKind::mean, x,
                                    ArrayRef<int64_t>{2, 3}, /*keepdim=*/false);
    double bound = 1.0 / std::sqrt(static_cast<double>(in));
    Value weight = g.uniformParam("projection.weight", {c.embedding, in}, bound);
    Value bias = g.uniformParam("projection.bias", {c.embedding}, bound);
    Value embeds =
        LinearOp::create(b, loc, pooled, weight, bias, /*weight_in_out=*/false);
    return std::pair{x, embeds};
  };

  func::FuncOp forward = g.beginFunction("forward", {pixelsType},
                                         {featuresType, embedsType});
  g.nameEntryPoint(forward, {"pixel_values"}, {"features", "image_embeds"});
  auto [features, embeds] = encoder(forward.getArgument(0));
  g.endFunction({features, embeds});

  func::FuncOp encodeImage =
      g.beginFunction("encode_image", {pixelsType}, {embedsType});
  g.nameEntryPoint(encodeImage, {"pixel_values"}, {"image_embeds"});
  g.endFunction({encoder(encodeImage.getArgument(0)).second});
  return g.takeModule();
}
