//===- ConfigKeys.cpp - What each family does with each config key --------===//
//
// Every key a family's config may hold, with what Kiln does with it: computes
// as it says, ignores it because it cannot change the result, or computes only
// its default value and refuses any other. `checkConfigKeys` enforces the
// table before a family builds, and ConfigReader checks that every key the
// table calls honoured was read; `kiln-compile --config-keys` prints the table
// (docs/reference/ModelConfigKeys.md), and the e2e suite checks it covers
// every attribute of the pinned transformers' config classes.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"

#include <charconv>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
using Use = ConfigKeyUse;

/// PretrainedConfig's attributes, shared by every Hugging Face family. A
/// family's own table overrides an entry of the same name.
const ConfigKeyInfo kHuggingFaceKeys[] = {
    {"model_type", Use::Honoured, "", "selects the family"},
    // Bookkeeping.
    {"_name_or_path", Use::Inert, "", "bookkeeping"},
    {"_commit_hash", Use::Inert, "", "bookkeeping"},
    {"architectures", Use::Inert, "",
     "bookkeeping (the checkpoint's class; its tensor names are mapped)"},
    {"transformers_version", Use::Inert, "", "bookkeeping"},
    {"torch_dtype", Use::Inert, "",
     "the checkpoint's dtype: its tensors are cast to the parameters' f32 "
     "when compiled"},
    {"use_bfloat16", Use::Inert, "", "TensorFlow only"},
    {"_attn_implementation", Use::Inert, "",
     "eager, sdpa and flash attention compute the same function"},
    {"tf_legacy_loss", Use::Inert, "", "TensorFlow only"},
    {"torchscript", Use::Inert, "",
     "tracing only (clones instead of ties the embeddings)"},
    // Outputs and heads Kiln's entry points do not have.
    {"return_dict", Use::Inert, "", "output container"},
    {"output_hidden_states", Use::Inert, "", "extra outputs"},
    {"output_attentions", Use::Inert, "", "extra outputs"},
    {"use_cache", Use::Inert, "", "key/value cache for generation"},
    {"chunk_size_feed_forward", Use::Inert, "",
     "chunks the feed-forward over the sequence: the same function"},
    {"id2label", Use::Inert, "", "classification heads only"},
    {"label2id", Use::Inert, "", "classification heads only"},
    {"num_labels", Use::Inert, "", "classification heads only"},
    {"finetuning_task", Use::Inert, "", "classification heads only"},
    {"problem_type", Use::Inert, "", "classification heads only"},
    {"task_specific_params", Use::Inert, "", "pipelines only"},
    {"prefix", Use::Inert, "", "pipelines only"},
    // Tokens.
    {"tokenizer_class", Use::Inert, "", "tokenizer"},
    {"bos_token_id", Use::Inert, "", "tokenizer and generation"},
    {"eos_token_id", Use::Inert, "", "tokenizer and generation"},
    {"pad_token_id", Use::Inert, "",
     "tokenizer and generation (an embedding's padding row is an ordinary "
     "row of the checkpoint)"},
    {"sep_token_id", Use::Inert, "", "tokenizer"},
    {"decoder_start_token_id", Use::Inert, "", "generation"},
    // Generation defaults (`generate`, not the forward pass).
    {"max_length", Use::Inert, "", "generation"},
    {"min_length", Use::Inert, "", "generation"},
    {"do_sample", Use::Inert, "", "generation"},
    {"early_stopping", Use::Inert, "", "generation"},
    {"num_beams", Use::Inert, "", "generation"},
    {"num_beam_groups", Use::Inert, "", "generation"},
    {"diversity_penalty", Use::Inert, "", "generation"},
    {"temperature", Use::Inert, "", "generation"},
    {"top_k", Use::Inert, "", "generation"},
    {"top_p", Use::Inert, "", "generation"},
    {"typical_p", Use::Inert, "", "generation"},
    {"repetition_penalty", Use::Inert, "", "generation"},
    {"length_penalty", Use::Inert, "", "generation"},
    {"no_repeat_ngram_size", Use::Inert, "", "generation"},
    {"encoder_no_repeat_ngram_size", Use::Inert, "", "generation"},
    {"bad_words_ids", Use::Inert, "", "generation"},
    {"num_return_sequences", Use::Inert, "", "generation"},
    {"output_scores", Use::Inert, "", "generation"},
    {"return_dict_in_generate", Use::Inert, "", "generation"},
    {"forced_bos_token_id", Use::Inert, "", "generation"},
    {"forced_eos_token_id", Use::Inert, "", "generation"},
    {"remove_invalid_values", Use::Inert, "", "generation"},
    {"exponential_decay_length_penalty", Use::Inert, "", "generation"},
    {"suppress_tokens", Use::Inert, "", "generation"},
    {"begin_suppress_tokens", Use::Inert, "", "generation"},
    // Structure Kiln's families do not build.
    {"is_encoder_decoder", Use::DefaultOnly, "false",
     "encoder-decoder wrappers are not built"},
    {"is_decoder", Use::DefaultOnly, "false", "decoder use is not built"},
    {"add_cross_attention", Use::DefaultOnly, "false",
     "cross-attention layers are not built"},
    {"cross_attention_hidden_size", Use::DefaultOnly, "null",
     "cross-attention layers are not built"},
    {"tie_encoder_decoder", Use::DefaultOnly, "false",
     "encoder-decoder wrappers are not built"},
    {"pruned_heads", Use::DefaultOnly, "{}", "pruned heads are not built"},
    {"tie_word_embeddings", Use::DefaultOnly, "true",
     "the family has no separate output head"},
};

const ConfigKeyInfo kGPT2Keys[] = {
    {"pruned_heads", Use::Honoured, "{}",
     "layer → heads removed (transformers' prune_heads; kiln-compile --prune heads): the layer is built with the others"},
    {"pruned_ffn_channels", Use::Honoured, "{}",
     "Kiln: layer → MLP channels removed (kiln-compile --prune ffn)"},
    {"vocab_size", Use::Honoured, "", ""},
    {"n_positions", Use::Honoured, "", ""},
    {"n_embd", Use::Honoured, "", ""},
    {"n_layer", Use::Honoured, "", ""},
    {"n_head", Use::Honoured, "", ""},
    {"n_inner", Use::Honoured, "", "null: 4·n_embd"},
    {"activation_function", Use::Honoured, "", "an activation (see above)"},
    {"layer_norm_epsilon", Use::Honoured, "", ""},
    {"initializer_range", Use::Honoured, "", "initialization without --weights"},
    {"tie_word_embeddings", Use::Honoured, "",
     "false: `lm_head.weight` is a parameter of its own"},
    {"is_decoder", Use::Inert, "", "GPT-2 is always a causal decoder"},
    {"resid_pdrop", Use::Dropout, "", ""},
    {"embd_pdrop", Use::Dropout, "", ""},
    {"attn_pdrop", Use::Dropout, "", ""},
    {"scale_attn_weights", Use::Honoured, "",
     "false: attention scores are not divided by √head_dim"},
    {"scale_attn_by_inverse_layer_idx", Use::Honoured, "",
     "true: layer i's scores are also divided by i + 1"},
    {"reorder_and_upcast_attn", Use::Honoured, "",
     "true: f32 attention scores, so refused with --dtype bf16/f16"},
    {"summary_type", Use::Inert, "", "GPT2DoubleHeadsModel's head only"},
    {"summary_use_proj", Use::Inert, "", "GPT2DoubleHeadsModel's head only"},
    {"summary_activation", Use::Inert, "", "GPT2DoubleHeadsModel's head only"},
    {"summary_proj_to_labels", Use::Inert, "",
     "GPT2DoubleHeadsModel's head only"},
    {"summary_first_dropout", Use::Inert, "",
     "GPT2DoubleHeadsModel's head only"},
};

const ConfigKeyInfo kLlamaKeys[] = {
    {"pruned_heads", Use::Honoured, "{}",
     "layer → heads removed (transformers' prune_heads; kiln-compile --prune heads): the layer is built with the others; whole key/value groups"},
    {"pruned_ffn_channels", Use::Honoured, "{}",
     "Kiln: layer → MLP channels removed (kiln-compile --prune ffn)"},
    {"vocab_size", Use::Honoured, "", ""},
    {"hidden_size", Use::Honoured, "", ""},
    {"intermediate_size", Use::Honoured, "", ""},
    {"num_hidden_layers", Use::Honoured, "", ""},
    {"num_attention_heads", Use::Honoured, "", ""},
    {"num_key_value_heads", Use::Honoured, "",
     "null: num_attention_heads; fewer: grouped-query attention"},
    {"head_dim", Use::Honoured, "", "null: hidden_size / num_attention_heads"},
    {"hidden_act", Use::Honoured, "",
     "an activation (see above), of the gate: down(act(gate)·up)"},
    {"max_position_embeddings", Use::Honoured, "", "the longest sequence"},
    {"rms_norm_eps", Use::Honoured, "", ""},
    {"rope_theta", Use::Honoured, "", ""},
    {"rope_scaling", Use::Honoured, "",
     "rope_type default, linear, dynamic (no change up to "
     "max_position_embeddings, the longest sequence Kiln takes) or llama3; "
     "yarn and longrope are refused"},
    {"attention_bias", Use::Honoured, "", ""},
    {"mlp_bias", Use::Honoured, "", ""},
    {"initializer_range", Use::Honoured, "", "initialization without --weights"},
    {"tie_word_embeddings", Use::Honoured, "",
     "true: no `lm_head.weight`, logits from the embeddings"},
    {"is_decoder", Use::Inert, "", "LLaMA is always a causal decoder"},
    {"pretraining_tp", Use::Honoured, "",
     "splits the projections into slices: the same function, so only checked "
     "to divide the sizes (HF drops the remainder otherwise)"},
    {"attention_dropout", Use::Dropout, "", ""},
};

const ConfigKeyInfo kBertKeys[] = {
    {"pruned_heads", Use::Honoured, "{}",
     "layer → heads removed (transformers' prune_heads; kiln-compile --prune heads): the layer is built with the others"},
    {"pruned_ffn_channels", Use::Honoured, "{}",
     "Kiln: layer → MLP channels removed (kiln-compile --prune ffn)"},
    {"vocab_size", Use::Honoured, "", ""},
    {"hidden_size", Use::Honoured, "", ""},
    {"num_hidden_layers", Use::Honoured, "", ""},
    {"num_attention_heads", Use::Honoured, "", ""},
    {"intermediate_size", Use::Honoured, "", ""},
    {"hidden_act", Use::Honoured, "", "an activation (see above)"},
    {"max_position_embeddings", Use::Honoured, "", ""},
    {"type_vocab_size", Use::Honoured, "", ""},
    {"layer_norm_eps", Use::Honoured, "", ""},
    {"initializer_range", Use::Honoured, "", "initialization without --weights"},
    {"position_embedding_type", Use::DefaultOnly, "\"absolute\"",
     "relative position embeddings are not built"},
    {"tie_word_embeddings", Use::Inert, "", "BertModel has no output head"},
    {"classifier_dropout", Use::Inert, "", "classification heads only"},
    {"hidden_dropout_prob", Use::Dropout, "", ""},
    {"attention_probs_dropout_prob", Use::Dropout, "", ""},
};

const ConfigKeyInfo kMarianKeys[] = {
    {"vocab_size", Use::Honoured, "", ""},
    {"decoder_vocab_size", Use::Honoured, "",
     "null or vocab_size (one shared vocabulary)"},
    {"d_model", Use::Honoured, "", ""},
    {"encoder_layers", Use::Honoured, "", ""},
    {"decoder_layers", Use::Honoured, "", ""},
    {"encoder_attention_heads", Use::Honoured, "", ""},
    {"decoder_attention_heads", Use::Honoured, "", ""},
    {"encoder_ffn_dim", Use::Honoured, "", ""},
    {"decoder_ffn_dim", Use::Honoured, "", ""},
    {"max_position_embeddings", Use::Honoured, "", "the longest sequence"},
    {"activation_function", Use::Honoured, "", "an activation (see above)"},
    {"scale_embedding", Use::Honoured, "", "true: embeddings · √d_model"},
    {"init_std", Use::Honoured, "", "initialization without --weights"},
    {"tie_word_embeddings", Use::Honoured, "",
     "false: `lm_head.weight` is a parameter of its own"},
    {"share_encoder_decoder_embeddings", Use::DefaultOnly, "true",
     "separate encoder and decoder embeddings are not built"},
    {"is_encoder_decoder", Use::Inert, "", "Marian is an encoder-decoder"},
    {"num_hidden_layers", Use::Inert, "",
     "set by transformers to encoder_layers; not read by its model"},
    {"dropout", Use::Dropout, "", ""},
    {"attention_dropout", Use::Dropout, "", ""},
    {"activation_dropout", Use::Dropout, "", ""},
    {"encoder_layerdrop", Use::Dropout, "", "a layer dropout rate"},
    {"decoder_layerdrop", Use::Dropout, "", "a layer dropout rate"},
};

const ConfigKeyInfo kViTKeys[] = {
    {"hidden_size", Use::Honoured, "", ""},
    {"num_hidden_layers", Use::Honoured, "", ""},
    {"num_attention_heads", Use::Honoured, "", ""},
    {"intermediate_size", Use::Honoured, "", ""},
    {"hidden_act", Use::Honoured, "", "an activation (see above)"},
    {"layer_norm_eps", Use::Honoured, "", ""},
    {"image_size", Use::Honoured, "",
     "one size or [height, width]; the input's spatial size"},
    {"patch_size", Use::Honoured, "", "one size or [height, width]"},
    {"num_channels", Use::Honoured, "", ""},
    {"qkv_bias", Use::Honoured, "", ""},
    {"initializer_range", Use::Honoured, "", "initialization without --weights"},
    {"encoder_stride", Use::Inert, "",
     "the masked-image-modeling decoder only"},
    {"tie_word_embeddings", Use::Inert, "", "ViTModel has no output head"},
    {"hidden_dropout_prob", Use::Dropout, "", ""},
    {"attention_probs_dropout_prob", Use::Dropout, "", ""},
};

/// What CLIP's two towers share.
#define KILN_CLIP_TOWER_KEYS                                                   \
  {"hidden_size", Use::Honoured, "", ""},                                      \
      {"num_hidden_layers", Use::Honoured, "", ""},                            \
      {"num_attention_heads", Use::Honoured, "", ""},                          \
      {"intermediate_size", Use::Honoured, "", ""},                            \
      {"hidden_act", Use::Honoured, "", "an activation (see above)"},          \
      {"layer_norm_eps", Use::Honoured, "", ""},                               \
      {"initializer_range", Use::Honoured, "",                                 \
       "initialization without --weights"},                                    \
      {"initializer_factor", Use::Honoured, "",                                \
       "initialization without --weights (in a CLIPModel, the model's "        \
       "factor is used)"},                                                     \
      {"projection_dim", Use::Inert, "",                                       \
       "the *WithProjection classes only; CLIPModel uses its own"},            \
      {"tie_word_embeddings", Use::Inert, "", "CLIP has no output head"},      \
      {"attention_dropout", Use::Dropout, "", ""}

const ConfigKeyInfo kCLIPTextKeys[] = {
    KILN_CLIP_TOWER_KEYS,
    {"vocab_size", Use::Honoured, "", ""},
    {"max_position_embeddings", Use::Honoured, "", "the longest text"},
    {"eos_token_id", Use::Honoured, "",
     "the pooled token: the first occurrence of this id (2, as older "
     "configs have: the largest id of the row)"},
};

const ConfigKeyInfo kCLIPVisionKeys[] = {
    KILN_CLIP_TOWER_KEYS,
    {"image_size", Use::Honoured, "",
     "one size or [height, width]; the input's spatial size"},
    {"patch_size", Use::Honoured, "", "one size or [height, width]"},
    {"num_channels", Use::Honoured, "", ""},
};
#undef KILN_CLIP_TOWER_KEYS

const ConfigKeyInfo kCLIPKeys[] = {
    {"text_config", Use::Honoured, "",
     "the text tower's config (keys in the clip_text_model table)"},
    {"vision_config", Use::Honoured, "",
     "the image tower's config (keys in the clip_vision_model table)"},
    {"text_config_dict", Use::Honoured, "",
     "older checkpoints: laid over text_config, as transformers does"},
    {"vision_config_dict", Use::Honoured, "",
     "older checkpoints: laid over vision_config, as transformers does"},
    {"projection_dim", Use::Honoured, "", "the shared embedding width"},
    {"logit_scale_init_value", Use::Honoured, "",
     "initialization of logit_scale without --weights"},
    {"initializer_factor", Use::Honoured, "",
     "initialization without --weights"},
    {"tie_word_embeddings", Use::Inert, "", "CLIP has no output head"},
};

/// Kiln's own encoder-decoder config (torch.nn.Transformer's arguments).
const ConfigKeyInfo kTransformerKeys[] = {
    {"model_type", Use::Honoured, "", "selects the family"},
    {"src_vocab_size", Use::Honoured, "", ""},
    {"tgt_vocab_size", Use::Honoured, "", ""},
    {"d_model", Use::Honoured, "", ""},
    {"nhead", Use::Honoured, "", ""},
    {"num_encoder_layers", Use::Honoured, "", ""},
    {"num_decoder_layers", Use::Honoured, "", ""},
    {"dim_feedforward", Use::Honoured, "", ""},
    {"max_len", Use::Honoured, "", "the longest sequence"},
    {"layer_norm_eps", Use::Honoured, "", ""},
    {"activation", Use::Honoured, "", "relu, gelu"},
    {"norm_first", Use::Honoured, "", ""},
    {"dropout", Use::Dropout, "", ""},
};

/// Kiln's recurrent text encoder (torch.nn.GRU / torch.nn.LSTM arguments).
const ConfigKeyInfo kRNNKeys[] = {
    {"model_type", Use::Honoured, "", "selects the family"},
    {"cell", Use::Honoured, "", "gru or lstm"},
    {"vocab_size", Use::Honoured, "", ""},
    {"embedding_dim", Use::Honoured, "", "default: hidden_size"},
    {"hidden_size", Use::Honoured, "", ""},
    {"num_layers", Use::Honoured, "", ""},
    {"bidirectional", Use::Honoured, "", ""},
    {"bias", Use::Honoured, "", ""},
    {"dropout", Use::Dropout, "", "between layers, as torch's"},
};

/// transformers' LlavaForConditionalGeneration (a gpt2 text model).
const ConfigKeyInfo kLlavaKeys[] = {
    {"text_config", Use::Honoured, "",
     "the language model's config: a gpt2 config (keys in the gpt2 table)"},
    {"vision_config", Use::Honoured, "",
     "the image tower's config (keys in the clip_vision_model table)"},
    {"projector_hidden_act", Use::Honoured, "\"gelu\"",
     "the projector's activation, between linear_1 and linear_2"},
    {"vision_feature_select_strategy", Use::Honoured, "\"default\"",
     "\"default\" drops the class token from the image tokens, \"full\" "
     "keeps it"},
    {"vision_feature_layer", Use::Honoured, "-2",
     "the tower's hidden state used (an index into hidden_states: the "
     "embeddings, then each layer; negative from the end)"},
    {"image_token_index", Use::Inert, "32000",
     "marks the image in transformers' input_ids; Kiln's forward takes the "
     "image as the prefix of every row, before input_ids"},
    {"ignore_index", Use::DefaultOnly, "-100",
     "targets the language-model loss skips"},
    {"tie_word_embeddings", Use::Inert, "",
     "the text_config's own key ties the language model's head"},
};

const ConfigKeyInfo kVisionEncoderDecoderKeys[] = {
    {"encoder", Use::Honoured, "",
     "the image encoder's config: a vit or clip_vision_model config (keys in "
     "its table)"},
    {"decoder", Use::Honoured, "",
     "the text decoder's config: a gpt2 config with add_cross_attention "
     "true (keys in the gpt2 table)"},
    {"cross_attention_gate", Use::Honoured, "false",
     "a Kiln extension: each decoder block's cross-attention output scaled "
     "by tanh of a learned scalar starting at 0 "
     "(decoder.transformer.h.<i>.crossattention.gate), as Flamingo's gated "
     "cross-attention; transformers does not know it"},
    {"is_encoder_decoder", Use::Inert, "true",
     "the family is an encoder-decoder"},
    {"tie_word_embeddings", Use::Inert, "",
     "the decoder's own key ties its head"},
    {"decoder_start_token_id", Use::Inert, "", "generation"},
    {"add_cross_attention", Use::DefaultOnly, "false",
     "the decoder's own key builds its cross-attention"},
};

/// Kiln's convolutional image encoder.
const ConfigKeyInfo kCNNKeys[] = {
    {"model_type", Use::Honoured, "", "selects the family"},
    {"num_channels", Use::Honoured, "", ""},
    {"image_size", Use::Honoured, "", "one size or [height, width]"},
    {"stage_channels", Use::Honoured, "",
     "output channels of each conv/pool stage"},
    {"kernel_size", Use::Honoured, "", "odd; same padding"},
    {"pool", Use::Honoured, "", "max or avg (2x2, stride 2)"},
    {"activation", Use::Honoured, "", "an activation (see above)"},
    {"embedding_dim", Use::Honoured, "", "the projection's width"},
};

/// Other names of a key (a transformers config class's `attribute_map`).
struct KeyAlias {
  StringRef alias, key;
};

const KeyAlias kGPT2Aliases[] = {
    {"hidden_size", "n_embd"},
    {"max_position_embeddings", "n_positions"},
    {"num_attention_heads", "n_head"},
    {"num_hidden_layers", "n_layer"},
};

const KeyAlias kMarianAliases[] = {
    {"hidden_size", "d_model"},
    {"num_attention_heads", "encoder_attention_heads"},
};

struct FamilyKeys {
  StringRef modelType;
  ArrayRef<ConfigKeyInfo> own;
  bool huggingFace;
  ArrayRef<KeyAlias> aliases;
};

const FamilyKeys kFamilyKeys[] = {
    {"gpt2", kGPT2Keys, true, kGPT2Aliases},
    {"llama", kLlamaKeys, true, {}},
    {"bert", kBertKeys, true, {}},
    {"transformer", kTransformerKeys, false, {}},
    {"marian", kMarianKeys, true, kMarianAliases},
    {"vit", kViTKeys, true, {}},
    {"clip", kCLIPKeys, true, {}},
    {"clip_text_model", kCLIPTextKeys, true, {}},
    {"clip_vision_model", kCLIPVisionKeys, true, {}},
    {"rnn", kRNNKeys, false, {}},
    {"cnn", kCNNKeys, false, {}},
    {"llava", kLlavaKeys, true, {}},
    {"vision-encoder-decoder", kVisionEncoderDecoderKeys, true, {}},
};

const FamilyKeys *findFamily(StringRef modelType) {
  const FamilyKeys *family = llvm::find_if(
      kFamilyKeys, [&](const FamilyKeys &f) { return f.modelType == modelType; });
  return family == std::end(kFamilyKeys) ? nullptr : family;
}

StringRef useName(ConfigKeyUse use) {
  switch (use) {
  case ConfigKeyUse::Honoured:
    return "honoured";
  case ConfigKeyUse::Inert:
    return "no effect";
  case ConfigKeyUse::DefaultOnly:
    return "default only";
  case ConfigKeyUse::Dropout:
    return "dropout";
  }
  llvm_unreachable("unknown ConfigKeyUse");
}

/// `a` and `b` as config values: numbers compare by value (1 and 1.0 are
/// equal), everything else structurally.
bool sameValue(const llvm::json::Value &a, const llvm::json::Value &b) {
  std::optional<double> x = a.getAsNumber(), y = b.getAsNumber();
  if (x && y)
    return *x == *y;
  return a == b;
}

std::string printValue(const llvm::json::Value &value) {
  // Numbers as written (0.1, not 0.10000000000000001).
  if (value.kind() == llvm::json::Value::Number && !value.getAsInteger()) {
    char buffer[32];
    auto result = std::to_chars(buffer, buffer + sizeof(buffer),
                                *value.getAsNumber());
    return std::string(buffer, result.ptr);
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << value;
  if (text.size() > 60)
    text = text.substr(0, 57) + "...";
  return text;
}
} // namespace

std::vector<ConfigKeyInfo>
mlir::kiln::getConfigKeys(StringRef modelType) {
  const FamilyKeys *family = findFamily(modelType);
  if (!family)
    return {};
  llvm::StringMap<ConfigKeyInfo> keys;
  if (family->huggingFace)
    for (const ConfigKeyInfo &key : kHuggingFaceKeys)
      keys.insert_or_assign(key.name, key);
  for (const ConfigKeyInfo &key : family->own)
    keys.insert_or_assign(key.name, key);
  std::vector<ConfigKeyInfo> sorted;
  for (const auto &entry : keys)
    sorted.push_back(entry.second);
  llvm::sort(sorted, [](const ConfigKeyInfo &a, const ConfigKeyInfo &b) {
    return a.name < b.name;
  });
  return sorted;
}

const ConfigKeyInfo *mlir::kiln::models::findConfigKey(
    ArrayRef<ConfigKeyInfo> keys, StringRef name) {
  const ConfigKeyInfo *key = llvm::find_if(
      keys, [&](const ConfigKeyInfo &k) { return k.name == name; });
  return key == keys.end() ? nullptr : key;
}

llvm::Expected<llvm::json::Object>
mlir::kiln::models::resolveConfigAliases(const llvm::json::Object &config,
                                         StringRef modelType) {
  llvm::json::Object resolved = config;
  const FamilyKeys *family = findFamily(modelType);
  if (!family)
    return resolved;
  for (const KeyAlias &alias : family->aliases) {
    const llvm::json::Value *value = config.get(alias.alias);
    if (!value)
      continue;
    const llvm::json::Value *canonical = config.get(alias.key);
    if (canonical && !sameValue(*canonical, *value))
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          modelType + " config: key '" + alias.alias + "' (another name of '" +
              alias.key + "') is " + printValue(*value) + " but '" +
              alias.key + "' is " + printValue(*canonical));
    resolved[alias.key] = *value;
    resolved.erase(alias.alias);
  }
  return resolved;
}

llvm::Error mlir::kiln::models::checkConfigKeys(const llvm::json::Object &config,
                                                StringRef modelType,
                                                const BuildOptions &options) {
  std::vector<ConfigKeyInfo> keys = getConfigKeys(modelType);
  // Object iteration order is unspecified: sort for stable messages.
  std::vector<StringRef> names;
  for (const auto &entry : config)
    names.push_back(entry.first);
  llvm::sort(names);
  auto fail = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   modelType + " config: " + message);
  };
  for (StringRef name : names) {
    const llvm::json::Value &value = *config.get(name);
    const ConfigKeyInfo *key = findConfigKey(keys, name);
    if (!key) {
      options.warn((modelType + " config: key '" + name +
                    "' is not one Kiln knows for " + modelType +
                    "; it is ignored")
                       .str());
      continue;
    }
    switch (key->use) {
    case ConfigKeyUse::Honoured:
    case ConfigKeyUse::Inert:
      break;
    case ConfigKeyUse::DefaultOnly: {
      if (value.kind() == llvm::json::Value::Null)
        break;
      llvm::Expected<llvm::json::Value> defaultValue =
          llvm::json::parse(key->defaultValue);
      if (!defaultValue)
        llvm::report_fatal_error("bad default in the config key table");
      if (!sameValue(value, *defaultValue))
        return fail("key '" + name + "' is " + printValue(value) +
                    ", but Kiln supports only " + key->defaultValue + " (" +
                    key->note + ")");
      break;
    }
    case ConfigKeyUse::Dropout: {
      std::optional<double> rate = value.getAsNumber();
      if (value.kind() == llvm::json::Value::Null)
        break;
      if (!rate || *rate < 0 || *rate >= 1)
        return fail("key '" + name + "' must be a dropout rate in [0, 1), "
                    "found " + printValue(value));
      if (options.training && *rate != 0)
        return fail("key '" + name + "' is " + printValue(value) +
                    ", but Kiln trains without dropout; set it to 0 to train "
                    "this model without dropout");
      break;
    }
    }
  }
  return llvm::Error::success();
}

void mlir::kiln::printConfigKeyReference(llvm::raw_ostream &os) {
  os << "<!-- Generated by `kiln-compile --config-keys`; refresh with "
        "`ninja kiln-update-docs`. -->\n\n"
        "# Model config keys\n\n"
        "What each model family does with each key of its config "
        "([models](../models.md)):\n\n"
        "- **honoured**: the model is built as the key says;\n"
        "- **no effect**: the key cannot change the outputs or gradients "
        "of Kiln's entry points (generation settings, tokens, bookkeeping, "
        "heads Kiln does not build);\n"
        "- **default only**: Kiln builds only the default; any other value is "
        "an error naming the key;\n"
        "- **dropout**: a dropout rate. Kiln's graphs compute without dropout "
        "(as in evaluation): any rate is accepted for inference, and "
        "`--mode train` refuses a rate other than 0.\n\n"
        "Activations are named as in transformers' ACT2FN; Kiln builds "
     << models::getActivationNames()
     << ".\n\n"
        "A key in no table is reported as a warning and ignored. For the "
        "Hugging Face families the tables cover every attribute of the "
        "config classes of transformers 4.44.2 (checked by "
        "test/e2e/hf_models.py).\n";
  for (const FamilyKeys &family : kFamilyKeys) {
    os << "\n## " << family.modelType << "\n\n";
    if (!family.aliases.empty()) {
      os << "Other names (as transformers' `attribute_map`):";
      for (const KeyAlias &alias : family.aliases)
        os << (&alias == family.aliases.begin() ? " " : ", ") << "`"
           << alias.alias << "` for `" << alias.key << "`";
      os << ".\n\n";
    }
    os
       << "| key | use | default Kiln requires | note |\n"
       << "| --- | --- | --- | --- |\n";
    for (const ConfigKeyInfo &key : getConfigKeys(family.modelType))
      os << "| `" << key.name << "` | " << useName(key.use) << " | "
         << (key.defaultValue.empty() ? "" : "`" + key.defaultValue.str() + "`")
         << " | " << key.note << " |\n";
  }
}
