//===- ImageText.h - Image-caption data and retrieval -----------*- C++ -*-===//
//
// The data side of CLIP-style training (`kiln pretrain --task clip`):
//  - image-caption sets as JSON lines, `{"image": "images/0001.png",
//    "caption": "two small red circles on the left"}`, image paths relative
//    to the file (PNG or PPM, read by kiln::plot::readImage);
//  - the set Kiln generates (`kiln shapes`): rendered shapes of several
//    colours, sizes, positions and counts, each captioned, with a held-out
//    split of unseen images and one of colour-shape combinations that the
//    training split never shows;
//  - images as a model's `pixel_values`, and zero-shot retrieval scores
//    from the embeddings of images and captions.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_IMAGETEXT_H
#define KILN_TRAIN_IMAGETEXT_H

#include "kiln/Plot/Png.h"
#include "kiln/Runtime/Status.h"

namespace kiln::runtime {
class Artifact;
} // namespace kiln::runtime

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::train {

using runtime::Expected;
using runtime::Status;

struct ImageCaption {
  /// The image file, resolved against the set file's directory.
  std::string image;
  std::string caption;
};

/// Reads a JSON-lines image-caption file. Errors name the file and line: a
/// line that is not an object with string "image" and non-empty "caption",
/// an absolute or escaping image path, an empty file.
Expected<std::vector<ImageCaption>> readImageCaptions(const std::string &path);

/// What `generateShapes` makes.
struct ShapesOptions {
  /// Images in the training split, the held-out split of seen combinations
  /// (`val`) and the split of unseen colour-shape combinations (`novel`).
  int64_t train = 6000, val = 500, novel = 500;
  /// Width and height in pixels (at least 16).
  int imageSize = 32;
  uint64_t seed = 0;
};

/// The attribute values the shapes set draws from, for docs and messages.
struct ShapesVocabulary {
  static const std::vector<std::string> &counts();
  static const std::vector<std::string> &sizes();
  static const std::vector<std::string> &colours();
  static const std::vector<std::string> &shapes();
  static const std::vector<std::string> &positions();
  /// The colour-shape pairs only the `novel` split shows ("red triangle").
  static const std::vector<std::string> &heldOutPairs();
};

/// Writes the shapes set into `dir` (created when missing): images under
/// `dir/images/`, `train.jsonl`, `val.jsonl`, `novel.jsonl` and
/// `README.md` (how it was made). Every file is written atomically. The
/// same options give the same bytes.
Status generateShapes(const std::string &dir, const ShapesOptions &options);

/// One image drawn as `generateShapes` draws it, with its caption: `seed`
/// picks the attributes and jitter, `novel` whether the colour-shape pair
/// is a held-out one.
plot::RgbImage renderShapes(int imageSize, uint64_t seed, bool novel,
                            std::string *caption);

/// An image as a model input: `[3, H, W]` floats, each channel scaled to
/// [0, 1] and normalized with CLIP's mean and standard deviation (the
/// processor of the Hugging Face CLIP checkpoints), written to `out`.
/// The image must be `width` x `height`; otherwise an error names both
/// sizes.
Status imagePixels(const plot::RgbImage &image, const std::string &name,
                   int64_t width, int64_t height, float *out);

/// Every image of `examples` as `pixel_values` ([count, 3, height, width],
/// imagePixels); an image of another size or a bad image file is an error
/// naming it.
Expected<std::vector<float>>
loadImagePixels(const std::vector<ImageCaption> &examples, int64_t height,
                int64_t width);

/// A split loaded for a model: every image as `pixel_values` and every
/// caption as token ids ending in the model's end-of-text id.
struct ImageTextSplit {
  int64_t count = 0, channels = 3, height = 0, width = 0;
  /// [count, channels, height, width].
  std::vector<float> pixels;
  /// Per example, the caption's tokens and the end-of-text id.
  std::vector<std::vector<int64_t>> tokens;
  /// Per example, the index of its caption among the split's distinct
  /// captions, in order of first appearance.
  std::vector<int64_t> captionOf;
  std::vector<std::vector<int64_t>> distinctTokens;
  std::vector<std::string> distinctCaptions;
};

/// Reads the images of `examples` (each `width` x `height`) and tokenizes
/// the captions with `tokenizer` followed by `endToken`. A caption longer
/// than `maxTokens` with its end token, an image of another size or a bad
/// image file is an error naming it.
Expected<ImageTextSplit> loadImageTextSplit(
    const std::vector<ImageCaption> &examples, const class Tokenizer &tokenizer,
    int64_t endToken, int64_t height, int64_t width, int64_t maxTokens);

/// `count` rows of token lists as `input_ids` and `attention_mask`
/// [rows, seq], padded with 0 (hidden by the mask) from the given rows.
void packTokens(const std::vector<std::vector<int64_t>> &tokens,
                const std::vector<int64_t> &rows, int64_t seq,
                std::vector<int64_t> &ids, std::vector<int64_t> &mask);

/// Rows `rows` of `data` (rows of `rowSize` values each), in that order:
/// a batch's images out of a split's pixels.
std::vector<float> gatherRows(const std::vector<float> &data,
                              const std::vector<int64_t> &rows,
                              int64_t rowSize);

/// What a CLIP artifact says about its inputs (kiln-compile records it as
/// compile_options.model): the id the text tower pools at, its vocabulary
/// and longest text, and the image size.
struct ClipModelInfo {
  int64_t endToken = 0, textVocab = 0, maxTextLength = 0;
  int64_t imageHeight = 0, imageWidth = 0, channels = 3;
};

/// Reads the artifact's description; an error when it has none or is not a
/// CLIP model with encode_image and encode_text, or when its end-of-text id
/// is one Kiln's tokenizer cannot keep apart from its pieces (2, or below
/// the reserved ids: the config's eos_token_id should be vocab_size - 1).
Expected<ClipModelInfo> readClipModelInfo(const runtime::Artifact &artifact);

/// encode_image over `count` images (`pixels` [count, 3, H, W]) in batches
/// of the entry point's static batch (the last one padded by repeating its
/// last image) or, when its batch is dynamic, of `batch`: the embeddings
/// [count, P].
Expected<std::vector<float>> embedImages(const runtime::Artifact &artifact,
                                         const std::vector<float> &pixels,
                                         int64_t count, int64_t height,
                                         int64_t width, int64_t batch);

/// encode_text over token lists (each ending in the end-of-text id),
/// padded to `seq`, batched as embedImages: the embeddings [count, P].
Expected<std::vector<float>>
embedTexts(const runtime::Artifact &artifact,
           const std::vector<std::vector<int64_t>> &tokens, int64_t seq,
           int64_t batch);

/// A captioner's rows (`kiln pretrain --task caption`) from captions that
/// end in `eos` (loadImageTextSplit's, at most `seq` tokens): `input_ids`
/// [rows, seq] are `bos` and then each caption's tokens but its last,
/// padded with `eos`; `targets` [rows, seq] are the caption's tokens, `eos`
/// included, padded with -100 (which the loss skips): the logits at each
/// position predict the next caption token.
void packCaptions(const std::vector<std::vector<int64_t>> &tokens,
                  const std::vector<int64_t> &rows, int64_t seq, int64_t bos,
                  int64_t eos, std::vector<int64_t> &ids,
                  std::vector<int64_t> &targets);

/// Greedy captions of `count` images (`pixels` [count, 3, H, W]) from a
/// captioner's forward(input_ids, pixel_values) -> logits [B, seq, vocab]
/// (a llava or vision-encoder-decoder artifact), batched as embedImages:
/// each row starts with `bos` and takes the most likely token at each
/// position until `eos` or `seq` tokens (0: the artifact's static seq, or
/// its longest when dynamic). One forward call per position and batch (the
/// model has no KV cache; the image is encoded each time). The tokens of
/// each caption, without bos and eos. `bos` and `eos` must be ids of the
/// model's vocabulary.
Expected<std::vector<std::vector<int64_t>>>
greedyCaptions(const runtime::Artifact &artifact,
               const std::vector<float> &pixels, int64_t count, int64_t height,
               int64_t width, int64_t batch, int64_t bos, int64_t eos,
               int64_t seq = 0);

/// Greedy captions against their images' reference captions (one each, in
/// order): `exact` is the share equal to the reference; `words` the share
/// of word positions that agree, over the longer of the two captions' word
/// counts (a missing or extra word counts as wrong).
struct CaptionScores {
  double exact = 0, words = 0;
  int64_t images = 0;
};
CaptionScores captionScores(const std::vector<std::string> &captions,
                            const std::vector<std::string> &references);

/// Zero-shot retrieval between N images and their N captions, from unit
/// embeddings (`imageEmbeds` [N, P], `textEmbeds` [M, P] of the M distinct
/// captions, `captionOf[i]` the caption index of image i). Several images
/// may share a caption:
///  - image to text: an image's hit at k is its caption among the k
///    captions scored highest;
///  - text to image: a caption's hit at k is an image with that caption
///    among the k images scored highest.
/// Chance: what random scores give in expectation.
struct RetrievalScores {
  double imageToTextTop1 = 0, imageToTextTop5 = 0;
  double textToImageTop1 = 0, textToImageTop5 = 0;
  double imageToTextChance1 = 0, textToImageChance1 = 0;
  int64_t images = 0, captions = 0;
};
RetrievalScores retrievalScores(const std::vector<float> &imageEmbeds,
                                const std::vector<float> &textEmbeds,
                                int64_t width,
                                const std::vector<int64_t> &captionOf);

} // namespace kiln::train

#endif // KILN_TRAIN_IMAGETEXT_H
