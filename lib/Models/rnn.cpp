//===- rnn.cpp - GRU and LSTM text encoders (torch.nn.GRU, torch.nn.LSTM) -===//
//
// A recurrent text encoder as the seed article describes it: an embedding
// table and a torch.nn.GRU or torch.nn.LSTM (batch_first, one or more
// layers, one or two directions), with torch's parameter names, run on
// right-padded batches as pack_padded_sequence runs them: each row's
// forward direction stops at its last token, its reverse direction starts
// there, padded positions output zeros, and the final states are those at
// the row's ends.
//
// The sequence is unrolled at compile time (one cell per position and
// direction), so its length must be static (--seq). A row's real tokens are
// where `attention_mask` is nonzero; a step where it is 0 keeps the state.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
struct RNNConfig {
  bool lstm;
  int64_t vocab, embedding, hidden, layers;
  bool bidirectional, bias;
};

llvm::Expected<RNNConfig> readConfig(const llvm::json::Object &json) {
  ConfigReader reader(json, "rnn");
  RNNConfig c;
  std::string cell = reader.getString("cell", "gru");
  if (cell != "gru" && cell != "lstm")
    reader.fail("key 'cell' must be 'gru' or 'lstm', found '" + cell + "'");
  c.lstm = cell == "lstm";
  c.vocab = reader.getInt("vocab_size");
  c.hidden = reader.getInt("hidden_size");
  c.embedding = reader.getInt("embedding_dim", c.hidden, 1);
  c.layers = reader.getInt("num_layers", 1, 1);
  if (c.layers > kMaxConfigLayers)
    reader.fail("key 'num_layers' is more than " +
                std::to_string(kMaxConfigLayers));
  c.bidirectional = reader.getBool("bidirectional", false);
  c.bias = reader.getBool("bias", true);
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}
} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildRNN(MLIRContext &context,
                             const llvm::json::Object &json,
                             const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "rnn"))
    return std::move(error);
  auto config = readConfig(json);
  if (!config)
    return config.takeError();
  const RNNConfig &c = *config;
  if (ShapedType::isDynamic(dynamicIfUnset(options.seq)))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "rnn: the recurrence is unrolled over the sequence, so its length "
        "must be static: give --seq N");
  int64_t B = dynamicIfUnset(options.batch), S = options.seq;
  int64_t dirs = c.bidirectional ? 2 : 1, gates = c.lstm ? 4 : 3;
  int64_t H = c.hidden;

  GraphBuilder g(context, "rnn", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  Type f32 = b.getF32Type();
  auto idsType = RankedTensorType::get({B, S}, b.getI64Type());
  SmallVector<Type> results = {
      RankedTensorType::get({B, S, dirs * H}, f32),
      RankedTensorType::get({c.layers * dirs, B, H}, f32)};
  SmallVector<StringRef> resultNames = {"output", "h_n"};
  if (c.lstm) {
    results.push_back(RankedTensorType::get({c.layers * dirs, B, H}, f32));
    resultNames.push_back("c_n");
  }
  results.push_back(RankedTensorType::get({B, dirs * H}, f32));
  resultNames.push_back("text_embeds");
  func::FuncOp forward =
      g.beginFunction("forward", {idsType, idsType}, results);
  g.nameEntryPoint(forward, {"input_ids", "attention_mask"}, resultNames);
  Value ids = forward.getArgument(0);

  // torch.nn.Embedding: N(0, 1); the recurrent weights U(-1/√H, 1/√H).
  Value table = g.normalParam("embedding.weight", {c.vocab, c.embedding}, 1.0);
  Value x = EmbeddingOp::create(b, loc, table, ids); // [B, S, E]
  double bound = 1.0 / std::sqrt(static_cast<double>(H));
  Type ct = g.getComputeType();

  // Per position, whether the row has a token there: [B, 1] booleans.
  Value maskArg = forward.getArgument(1);
  Value present = CompareOp::create(b, loc, ComparePredicate::ne, maskArg,
                                    g.intScalar(0)); // [B, S]
  auto step = [&](Value v, int64_t t) {
    Value slice = SliceOp::create(b, loc, v, /*axis=*/1, t, t + 1);
    ArrayRef<int64_t> shape = GraphBuilder::shapeOf(slice);
    SmallVector<int64_t> squeezed = {shape[0]};
    for (size_t d = 2; d < shape.size(); ++d)
      squeezed.push_back(shape[d]);
    if (shape.size() == 2)
      squeezed.push_back(1); // The mask stays [B, 1].
    return g.reshape(slice, squeezed);
  };
  // A [B, H] zero state: zeros broadcast over the (maybe dynamic) batch.
  auto zeroState = [&]() {
    auto type = RankedTensorType::get({B, H}, ct);
    SmallVector<Value> sizes;
    if (ShapedType::isDynamic(B))
      sizes.push_back(tensor::DimOp::create(b, loc, ids, 0));
    return Value(BroadcastToOp::create(b, loc, type, g.scalar(0.0, ct), sizes));
  };
  auto zeroBias = [&]() {
    auto type = RankedTensorType::get({gates * H}, ct);
    return Value(BroadcastToOp::create(b, loc, type, g.scalar(0.0, ct),
                                       ValueRange{}));
  };

  SmallVector<Value> finalH, finalC;
  Value input = x;
  int64_t inputSize = c.embedding;
  for (int64_t layer = 0; layer < c.layers; ++layer) {
    SmallVector<Value> directionOutputs;
    for (int64_t dir = 0; dir < dirs; ++dir) {
      std::string suffix = llvm::formatv("_l{0}{1}", layer,
                                         dir == 1 ? "_reverse" : "")
                               .str();
      Value wih = g.uniformParam("rnn.weight_ih" + suffix,
                                 {gates * H, inputSize}, bound);
      Value whh = g.uniformParam("rnn.weight_hh" + suffix, {gates * H, H},
                                 bound);
      Value bih = c.bias ? g.uniformParam("rnn.bias_ih" + suffix,
                                          {gates * H}, bound)
                         : zeroBias();
      Value bhh = c.bias ? g.uniformParam("rnn.bias_hh" + suffix,
                                          {gates * H}, bound)
                         : zeroBias();
      Value h = zeroState(), cell = c.lstm ? zeroState() : Value();
      SmallVector<Value> outputs(static_cast<size_t>(S));
      Value zero = g.scalar(0.0, ct);
      for (int64_t i = 0; i < S; ++i) {
        int64_t t = dir == 0 ? i : S - 1 - i;
        Value xt = step(input, t);
        Value here = step(present, t);
        Value newH, newC;
        if (c.lstm) {
          auto lstm = LSTMCellOp::create(b, loc, xt, h, cell, wih, whh, bih,
                                         bhh);
          newH = lstm.getNewHidden();
          newC = lstm.getNewCell();
          cell = SelectOp::create(b, loc, here, newC, cell);
        } else {
          newH = GRUCellOp::create(b, loc, xt, h, wih, whh, bih, bhh);
        }
        h = SelectOp::create(b, loc, here, newH, h);
        Value out = SelectOp::create(b, loc, here, h, zero);
        outputs[static_cast<size_t>(t)] = g.reshape(out, {B, 1, H});
      }
      directionOutputs.push_back(
          ConcatOp::create(b, loc, ValueRange(outputs), /*axis=*/1));
      finalH.push_back(g.reshape(h, {1, B, H}));
      if (c.lstm)
        finalC.push_back(g.reshape(cell, {1, B, H}));
    }
    input = dirs == 1 ? directionOutputs[0]
                      : Value(ConcatOp::create(b, loc, ValueRange(directionOutputs),
                                               /*axis=*/2));
    inputSize = dirs * H;
  }
  SmallVector<Value> outs = {
      input, ConcatOp::create(b, loc, ValueRange(finalH), /*axis=*/0)};
  if (c.lstm)
    outs.push_back(ConcatOp::create(b, loc, ValueRange(finalC), /*axis=*/0));
  // The text embedding: the last layer's final states of both directions.
  SmallVector<Value> last;
  for (int64_t dir = 0; dir < dirs; ++dir)
    last.push_back(g.reshape(finalH[finalH.size() - dirs + dir], {B, H}));
  outs.push_back(dirs == 1 ? last[0]
                           : Value(ConcatOp::create(b, loc, ValueRange(last),
                                                    /*axis=*/1)));
  g.endFunction(outs);
  return g.takeModule();
}
