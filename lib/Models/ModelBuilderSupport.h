//===- ModelBuilderSupport.h - Shared pieces of the model builders -*- C++
//-*-===//
//
// What every model family needs: reading typed config keys with errors that
// name the key, declaring state-dict-named parameters, and the few tensor
// idioms (linear layers, splitting heads) that every Transformer repeats.
// Private to lib/Models.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_MODELS_MODELBUILDERSUPPORT_H
#define KILN_LIB_MODELS_MODELBUILDERSUPPORT_H

#include "kiln/Models/ModelBuilder.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringSet.h"

#include <array>
#include <optional>
#include <string>

namespace mlir::kiln::models {

//===----------------------------------------------------------------------===//
// Config reading
//===----------------------------------------------------------------------===//

/// The largest size (width, vocabulary, positions, heads) a config may give:
/// products of two or three of them stay far inside int64, and every real
/// model is far inside it (GPT-3's width is 12288, Llama 3's vocabulary
/// 128256).
constexpr int64_t kMaxConfigSize = int64_t(1) << 24;
/// The most layers a config may give (the largest published models have
/// under 200).
constexpr int64_t kMaxConfigLayers = 4096;

/// An activation of Hugging Face's ACT2FN that Kiln builds.
enum class Activation {
  GeluErf,   ///< gelu, gelu_python
  GeluTanh,  ///< gelu_new, gelu_pytorch_tanh, gelu_fast, gelu_accurate
  QuickGelu, ///< quick_gelu: x·sigmoid(1.702·x)
  Relu,      ///< relu
  Relu2,     ///< relu2: relu(x)²
  Silu,      ///< silu, swish
  Sigmoid,   ///< sigmoid
  Tanh,      ///< tanh
  Linear,    ///< linear: the identity
};

/// The ACT2FN names `parseActivation` accepts, for messages and docs.
llvm::StringRef getActivationNames();
/// The activation an ACT2FN name gives, or std::nullopt.
std::optional<Activation> parseActivation(llvm::StringRef name);

/// The entry named `name` in `keys`, or null.
const ConfigKeyInfo *findConfigKey(llvm::ArrayRef<ConfigKeyInfo> keys,
                                   llvm::StringRef name);

/// `config` with another name of a key (a transformers `attribute_map`
/// entry, e.g. gpt2's `hidden_size` for `n_embd`) renamed to the key; an
/// error when both are given with different values.
llvm::Expected<llvm::json::Object>
resolveConfigAliases(const llvm::json::Object &config,
                     llvm::StringRef modelType);

/// Checks `config` against the family's key table before it is built: a
/// DefaultOnly key with another value, or (with `options.training`) a nonzero
/// dropout rate, is an error naming the key; a key no table lists is a
/// warning.
llvm::Error checkConfigKeys(const llvm::json::Object &config,
                            llvm::StringRef modelType,
                            const BuildOptions &options);

/// Reads keys of one family's config. The first problem is recorded and
/// reported by `takeError`; later reads return defaults so a builder can read
/// every key and check once. `takeError` also checks the reader against the
/// family's key table: a key the config sets and the table calls honoured
/// must have been read.
class ConfigReader {
public:
  ConfigReader(const llvm::json::Object &config, llvm::StringRef family)
      : config(config), family(family.str()) {}

  /// Whether the key is present and not null (and marks it read).
  bool isSet(llvm::StringRef key);
  /// The raw value of an optional key, or null when absent or null (and
  /// marks it read).
  const llvm::json::Value *getValue(llvm::StringRef key);

  /// A required integer key, at least `min` and at most kMaxConfigSize.
  int64_t getInt(llvm::StringRef key, int64_t min = 1);
  /// An optional integer key, at least `min` when present.
  int64_t getInt(llvm::StringRef key, int64_t defaultValue, int64_t min);
  /// A layer count: like getInt with a minimum of 0 and kMaxConfigLayers at
  /// most (a count in the billions would build for ever).
  int64_t getLayerCount(llvm::StringRef key);
  int64_t getLayerCount(llvm::StringRef key, int64_t defaultValue);
  /// A required number key (integers are accepted), greater than 0.
  double getPositiveNumber(llvm::StringRef key);
  /// An optional number key, greater than 0 when present.
  double getPositiveNumber(llvm::StringRef key, double defaultValue);
  /// An optional boolean key.
  bool getBool(llvm::StringRef key, bool defaultValue);
  /// An optional string key.
  std::string getString(llvm::StringRef key, llvm::StringRef defaultValue);
  /// An optional size given as one integer or as a pair `[height, width]`
  /// (transformers' `image_size`, `patch_size`): {height, width}.
  std::array<int64_t, 2> getSizePair(llvm::StringRef key,
                                     int64_t defaultValue);
  /// An optional activation key (an ACT2FN name).
  Activation getActivation(llvm::StringRef key, llvm::StringRef defaultValue);
  /// An optional map from layer to the units it removes, as Hugging Face's
  /// `pruned_heads` (`{"0": [1, 3]}`): per layer (of `layers`), the sorted
  /// indices in [0, units) removed. Each must be distinct, and a layer
  /// keeps at least one unit (`what` names them in errors: "heads").
  std::vector<std::vector<int64_t>> getPrunedUnits(llvm::StringRef key,
                                                   int64_t layers,
                                                   int64_t units,
                                                   llvm::StringRef what);

  /// Records an error (unless one is recorded already).
  void fail(const llvm::Twine &message);
  /// Records an error unless the patch (`patch_size`) fits in the image
  /// (`image_size`), each {height, width}.
  void requirePatchFits(std::array<int64_t, 2> patch,
                        std::array<int64_t, 2> image);
  /// Records an error unless `dividend % divisor == 0`.
  void requireDivisible(llvm::StringRef dividendKey, int64_t dividend,
                        llvm::StringRef divisorKey, int64_t divisor);
  bool failed() const { return error.has_value(); }
  llvm::Error takeError();

  const std::string &getFamily() const { return family; }

private:
  /// `config.get(key)`, marking the key read.
  const llvm::json::Value *find(llvm::StringRef key);
  const llvm::json::Value *lookup(llvm::StringRef key, bool required);
  int64_t getBoundedInt(llvm::StringRef key, int64_t min, int64_t max);
  void failType(llvm::StringRef key, llvm::StringRef expected,
                const llvm::json::Value &found);

  const llvm::json::Object &config;
  std::string family;
  std::optional<std::string> error;
  llvm::StringSet<> readKeys;
};

class GraphBuilder;

/// The state-dict names of one pre-norm Transformer encoder layer (ViT,
/// CLIP): `x + attn(norm1(x))`, then `x + fc2(act(fc1(norm2(x))))`. Each is
/// a prefix (`<name>.weight`, `<name>.bias`).
struct EncoderLayerNames {
  std::string norm1, query, key, value, output, norm2, fc1, fc2;
};

/// The sizes, activation and initialization of such a layer.
struct EncoderLayerSpec {
  int64_t hidden, heads, intermediate;
  double eps;
  Activation activation;
  /// Whether the query, key and value projections have biases.
  bool qkvBias = true;
  /// Initial standard deviations of the q/k/v, output, fc1 and fc2
  /// weights (biases start at 0, norms at 1 and 0).
  double qkvStd, outputStd, fc1Std, fc2Std;
};

/// The entry point a causal LM's body is being built into, and how its
/// attention layers see keys and values there:
///  - `forward(input_ids[, attention_mask][, position_ids]) -> logits`:
///    causal attention within the sequence;
///  - `prefill(input_ids, lengths, cache...) -> logits`: the same, and every
///    layer's keys and values are written into the cache from slot 0;
///  - `decode_step(input_ids, positions, cache...) -> logits`: one token per
///    row at its own position, written into the cache there, attending to
///    the row's slots `0..position`.
/// The cache inputs (`cache.<layer>.key`, `cache.<layer>.value`, each
/// `[B, kv heads, slots, head dim]` in the compute type) are updated in
/// place (`kiln.in_place`).
class CausalLMStep {
public:
  enum class Kind { Forward, Prefill, DecodeStep };

  Kind getKind() const { return kind; }
  /// `[B, S]` token ids.
  Value getIds() const { return ids; }
  /// `[B, S]` positions of the tokens, or null for `0..S-1`.
  Value getPositions() const { return positions; }

  /// Attention of layer `layer` (query `[B, H, S, D]`, key and value
  /// `[B, Hkv, S, D]`) as this entry point computes it.
  Value attend(int64_t layer, Value query, Value key, Value value,
               FloatAttr scale);

private:
  friend class GraphBuilder;
  CausalLMStep(GraphBuilder &g, Kind kind) : g(g), kind(kind) {}

  GraphBuilder &g;
  Kind kind;
  Value ids, positions;
  /// forward: the additive padding mask, or null.
  Value mask;
  /// prefill and decode_step: the caches' current values, key and value
  /// per layer, and the arguments they end up stored into.
  SmallVector<Value> caches, cacheArgs;
  /// decode_step: `[B]` positions, and `positions + 1`.
  Value cachePositions, keyLengths;
};

/// What a causal LM's entry points are built from.
struct CausalLMSpec {
  int64_t batch, seq, vocab;
  /// The longest sequence the model takes (its position table).
  int64_t maxPositions;
  /// The cache's shape per layer.
  int64_t layers, kvHeads, headDim;
  /// Key/value heads of each layer where they differ (pruned heads);
  /// empty: `kvHeads` in every layer.
  std::vector<int64_t> layerKVHeads = {};
};

/// Builds the final hidden states `[B, S, E]` of a causal LM for one entry
/// point; `head` turns hidden states `[B, S', E]` into logits.
using CausalLMBody = llvm::function_ref<Value(CausalLMStep &)>;
using CausalLMHead = llvm::function_ref<Value(Value)>;

/// Refuses BuildOptions that only causal LMs take (for bert, transformer).
llvm::Error refuseCausalLMInputs(const BuildOptions &options,
                                 llvm::StringRef family);

/// Resolves the options' batch and sequence sizes (0 means dynamic) and
/// checks the sequence against the model's position limit.
struct InputShape {
  int64_t batch;
  int64_t seq;
};
llvm::Expected<InputShape> resolveInputShape(const BuildOptions &options,
                                             llvm::StringRef family,
                                             llvm::StringRef maxKey,
                                             int64_t maxPositions);

//===----------------------------------------------------------------------===//
// Graph building
//===----------------------------------------------------------------------===//

/// Builds one module: parameters at module level, ops in the current
/// function. Every op gets the same location, which names the model.
///
/// Mixed precision lives here, so the families need not repeat it:
/// parameters are always declared f32 (master weights), each read is cast to
/// the compute type, and `endFunction` casts float results back to f32.
class GraphBuilder {
public:
  GraphBuilder(MLIRContext &context, llvm::StringRef modelName,
               ComputeType compute = ComputeType::f32);

  ModuleOp getModule() { return *module; }
  OwningOpRef<ModuleOp> takeModule() { return std::move(module); }
  OpBuilder &getBuilder() { return builder; }
  Location getLoc() const { return loc; }

  /// Creates `func.func @name(inputs) -> results` and moves the insertion
  /// point into its body. Returns the entry block arguments.
  func::FuncOp beginFunction(llvm::StringRef name, TypeRange inputs,
                             TypeRange results);
  /// Records facts about the model a driver needs (attrs::kModel on the
  /// module, compile_options.model in the manifest).
  void setModelInfo(llvm::ArrayRef<NamedAttribute> info);
  /// Names the entry point's inputs and results (`kiln.name` argument and
  /// result attributes): the names `kiln run --input NAME=FILE` and the
  /// artifact manifest use.
  void nameEntryPoint(func::FuncOp func, llvm::ArrayRef<llvm::StringRef> inputs,
                      llvm::ArrayRef<llvm::StringRef> results);
  /// Builds a causal LM's `forward` and, with `options.kvCache`, its
  /// `prefill` and `decode_step` (CausalLMStep), each by running `body`
  /// and `head` in it.
  llvm::Error buildCausalLM(const BuildOptions &options,
                            const CausalLMSpec &spec, CausalLMBody body,
                            CausalLMHead head);
  /// Records the longest sequence the model takes (`kiln.max_shape` on each
  /// `[batch, seq]` input with a dynamic seq), so the runtime refuses longer
  /// inputs instead of reading past the position table.
  /// The hidden state `[B, 1, E]` of each row's last token (lengths[b] - 1,
  /// clamped into the sequence) of `all` `[B, S, E]`.
  Value lastToken(Value all, Value ids, Value lengths, int64_t batch);
  void limitSequence(func::FuncOp func, int64_t maxSeq);
  /// Adds the `func.return`; float results are cast to f32 first, so the
  /// entry point's outputs (and a loss built on them) are f32 whatever the
  /// compute type.
  void endFunction(ValueRange results);

  /// The element type activations have (f32, bf16 or f16).
  Type getComputeType() const { return computeType; }
  /// `x` with the compute type as element type (`kiln.cast` when it differs).
  Value toCompute(Value x);
  /// `x` with f32 elements (`kiln.cast` when it differs).
  Value toF32(Value x);

  /// Declares a trainable f32 parameter and returns its read inside the
  /// current function, cast to the compute type. Parameters keep declaration
  /// order, before the functions.
  Value normalParam(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                    double std);
  Value zerosParam(llvm::StringRef name, llvm::ArrayRef<int64_t> shape);
  Value onesParam(llvm::StringRef name, llvm::ArrayRef<int64_t> shape);
  /// Uniform in `[-bound, bound)`.
  Value uniformParam(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                     double bound);
  /// Every element `value` (CLIP's `logit_scale`).
  Value constantParam(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                      double value);

  /// `x·Wᵀ + b` with `W` `[out, in]` (torch.nn.Linear) named `prefix.weight`
  /// and, with `bias`, `prefix.bias`.
  Value linear(Value x, llvm::StringRef prefix, int64_t in, int64_t out,
               bool bias, double std);
  /// GPT-2's Conv1D: `W` is `[in, out]`, always with a bias.
  Value conv1d(Value x, llvm::StringRef prefix, int64_t in, int64_t out,
               double std);
  /// torch.nn.LayerNorm named `prefix.weight` / `prefix.bias`.
  Value layerNorm(Value x, llvm::StringRef prefix, int64_t dim, double eps);

  /// `act(x)`.
  Value activation(Value x, Activation act);
  /// Causal self-attention without a mask (`scale` null: 1/sqrt(D)), an
  /// AttendFn for a decoder over a whole sequence.
  Value causalAttention(Value query, Value key, Value value, FloatAttr scale);

  // Encoders (Encoders.cpp).

  /// torch.nn.Conv2d with kernel = stride = `patch` (named `prefix.weight`
  /// `[hidden, C, PH, PW]` and, with `bias`, `prefix.bias`) over `pixels`
  /// `[B, C, H, W]`, flattened to patch tokens `[B, (H/PH)·(W/PW), hidden]`
  /// in row-major patch order (transformers' `flatten(2).transpose(1, 2)`).
  Value patchEmbedding(Value pixels, llvm::StringRef prefix, int64_t hidden,
                       std::array<int64_t, 2> patch, bool bias, double std);
  /// `tokens` `[B, N, E]` with `token` (`[E]` or `[1, 1, E]`, a class
  /// token) in front of every row: `[B, N + 1, E]`.
  Value prependToken(Value tokens, Value token);
  /// One pre-norm encoder layer over `x` `[B, S, E]`; `mask` is an additive
  /// `[B, 1, 1, S]` mask or null, `causal` hides later keys.
  Value preNormEncoderLayer(Value x, const EncoderLayerNames &names,
                            const EncoderLayerSpec &spec, Value mask,
                            bool causal);
  /// `x / ‖x‖₂` along the last axis (no epsilon, as transformers' CLIP).
  Value l2Normalize(Value x);
  /// The hidden state `[B, E]` (`[B, 1, E]` with `keepdim`) of `all`
  /// `[B, S, E]` at position `index[b]` (i64 `[B]`, in range) of each row.
  Value tokenAt(Value all, Value index, int64_t batch, bool keepdim = false);

  /// `[B, S, heads·headDim]` -> `[B, heads, S, headDim]`.
  Value splitHeads(Value x, int64_t heads, int64_t headDim);
  /// `[B, heads, S, headDim]` -> `[B, S, heads·headDim]`.
  Value mergeHeads(Value x);

  Value reshape(Value x, llvm::ArrayRef<int64_t> shape);
  Value transpose(Value x, llvm::ArrayRef<int64_t> permutation);
  /// `0, 1, ..., n-1` as `tensor<n x i64>`, where `n` is dimension `dim` of
  /// `like` (dynamic when that dimension is).
  Value positions(Value like, int64_t dim);
  /// A rank-0 constant, f32 unless `elementType` is given.
  Value scalar(double value, Type elementType = {});
  /// A rank-0 i64 constant.
  Value intScalar(int64_t value);

  static llvm::ArrayRef<int64_t> shapeOf(Value v) {
    return llvm::cast<RankedTensorType>(v.getType()).getShape();
  }

private:
  /// `range` is uniform's `[low, high]`.
  Value declare(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                InitKind init, std::optional<double> std = std::nullopt,
                std::optional<std::pair<double, double>> range = std::nullopt);

  MLIRContext &context;
  OwningOpRef<ModuleOp> module;
  OpBuilder builder;
  Location loc;
  Block::iterator paramInsertPoint;
  Type f32;
  Type computeType;
};

/// Turns `ShapedType::kDynamic` or 0 into `ShapedType::kDynamic`.
inline int64_t dynamicIfUnset(int64_t size) {
  return size <= 0 ? ShapedType::kDynamic : size;
}

//===----------------------------------------------------------------------===//
// Towers that composite families (llava) build from
//===----------------------------------------------------------------------===//

/// A nested config (`text_config`) of `reader`'s family: the object, or {}
/// when absent or null, with `<key>_dict` (older checkpoints) laid over it
/// as transformers does. Its `model_type`, when given, must be
/// `expectedType`; when absent, `defaultType` (transformers' default) is
/// what it is, and must be `expectedType` as well (empty: transformers
/// needs one).
llvm::Expected<llvm::json::Object> nestedConfig(ConfigReader &reader,
                                                llvm::StringRef key,
                                                llvm::StringRef expectedType,
                                                llvm::StringRef defaultType);

/// What both of CLIP's towers' configs hold.
struct CLIPTowerConfig {
  int64_t hidden, layers, heads, intermediate;
  double eps, initStd, initFactor;
  Activation activation;
};

/// A `clip_vision_model` config.
struct CLIPVisionConfig : CLIPTowerConfig {
  int64_t channels;
  std::array<int64_t, 2> image, patch;
  /// Patch tokens per image (without the class token).
  int64_t patches() const {
    return (image[0] / patch[0]) * (image[1] / patch[1]);
  }
};

llvm::Expected<CLIPVisionConfig>
readCLIPVisionConfig(const llvm::json::Object &json);

/// CLIPVisionTransformer under `prefix` (`vision_model.`) up to its encoder:
/// the hidden states `[B, 1 + patches, E]` after `layers` encoder layers
/// (transformers' `hidden_states[layers]`; 0 is the embeddings after
/// `pre_layrnorm`). `factor` scales the initialization.
Value clipVisionHiddenStates(GraphBuilder &g, const CLIPVisionConfig &c,
                             double factor, Value pixels,
                             llvm::StringRef prefix, int64_t layers);

/// A `vit` config.
struct ViTConfig {
  int64_t hidden, layers, heads, intermediate, channels;
  std::array<int64_t, 2> image, patch;
  double eps, initStd;
  Activation activation;
  bool qkvBias;
  int64_t patches() const {
    return (image[0] / patch[0]) * (image[1] / patch[1]);
  }
};

llvm::Expected<ViTConfig> readViTConfig(const llvm::json::Object &json);

/// ViTModel under `prefix` without its pooler: the final LayerNorm's output
/// `[B, 1 + patches, E]` (transformers' `last_hidden_state`).
Value vitLastHiddenState(GraphBuilder &g, const ViTConfig &c, Value pixels,
                         llvm::StringRef prefix);

/// A `gpt2` config.
struct GPT2Config {
  int64_t vocab, positions, embd, layers, heads, inner;
  double eps, initStd;
  Activation activation;
  bool tied, scaleAttention, scaleByInverseLayer;
  /// Per layer, the heads and MLP channels removed (`pruned_heads`,
  /// `pruned_ffn_channels`): the layer is built with the others.
  std::vector<std::vector<int64_t>> prunedHeads, prunedChannels;
};

llvm::Expected<GPT2Config> readGPT2Config(const llvm::json::Object &json,
                                          const BuildOptions &options);

/// Whether the config removes heads or MLP channels from any layer.
bool hasPrunedUnits(const GPT2Config &c);

/// GPT-2's token and position tables under `prefix` (`transformer.`).
struct GPT2Tables {
  Value wte, wpe;
};
GPT2Tables gpt2Tables(GraphBuilder &g, const GPT2Config &c,
                      llvm::StringRef prefix);

/// GPT-2's logits from final hidden states `h`: tied to `wte`, or with
/// `tie_word_embeddings: false`, the linear layer named `lmHead`.
Value gpt2Head(GraphBuilder &g, const GPT2Config &c, Value h, Value wte,
               llvm::StringRef lmHead);

/// How one of a decoder's layers attends (query `[B, H, S, D]`, key and
/// value `[B, Hkv, S, D]`; `scale` null for 1/sqrt(D)).
using AttendFn = llvm::function_ref<Value(int64_t layer, Value query, Value key,
                                          Value value, FloatAttr scale)>;

/// The encoder's states a GPT-2 decoder cross-attends to
/// (`add_cross_attention`): `[B, T, E]` in the decoder's width. With
/// `gated`, each layer's cross-attention output is scaled by `tanh` of a
/// learned scalar that starts at 0 (`h.<i>.crossattention.gate`, a Kiln
/// extension, as Flamingo's gates), so training starts from the decoder
/// alone.
struct GPT2CrossAttention {
  Value states;
  bool gated = false;
};

/// GPT2Model's blocks and final LayerNorm over the input embeddings `h`
/// `[B, S, E]` (tokens plus positions), parameters under `prefix`
/// (`transformer.`); with `cross`, each block cross-attends to its states
/// after its self-attention (`ln_cross_attn`, `crossattention`).
Value gpt2Trunk(GraphBuilder &g, const GPT2Config &c, llvm::StringRef prefix,
                Value h, AttendFn attend,
                const GPT2CrossAttention *cross = nullptr);

//===----------------------------------------------------------------------===//
// Families
//===----------------------------------------------------------------------===//

llvm::Expected<OwningOpRef<ModuleOp>>
buildGPT2(MLIRContext &context, const llvm::json::Object &config,
          const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildLlama(MLIRContext &context, const llvm::json::Object &config,
           const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildBert(MLIRContext &context, const llvm::json::Object &config,
          const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildTransformer(MLIRContext &context, const llvm::json::Object &config,
                 const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildViT(MLIRContext &context, const llvm::json::Object &config,
         const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildCLIP(MLIRContext &context, const llvm::json::Object &config,
          const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildCLIPTextModel(MLIRContext &context, const llvm::json::Object &config,
                   const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildCLIPVisionModel(MLIRContext &context, const llvm::json::Object &config,
                     const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildCNN(MLIRContext &context, const llvm::json::Object &config,
         const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildLlava(MLIRContext &context, const llvm::json::Object &config,
           const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildVisionEncoderDecoder(MLIRContext &context,
                          const llvm::json::Object &config,
                          const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>> buildRNN(MLIRContext &context,
                                               const llvm::json::Object &config,
                                               const BuildOptions &options);
llvm::Expected<OwningOpRef<ModuleOp>>
buildMarian(MLIRContext &context, const llvm::json::Object &config,
            const BuildOptions &options);

} // namespace mlir::kiln::models

#endif // KILN_LIB_MODELS_MODELBUILDERSUPPORT_H
