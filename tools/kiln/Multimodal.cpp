//===- Multimodal.cpp - kiln shapes, kiln embed, kiln caption -------------===//
//
// `kiln shapes` writes the generated image-caption set; `kiln embed` embeds
// images and captions with a CLIP artifact and prints the captions nearest
// each image (or the images nearest each caption); `kiln caption` writes
// greedy captions of images with a captioner.
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include "kiln/Plot/Image.h"
#include "kiln/Runtime/File.h"
#include "kiln/Runtime/Strings.h"
#include "kiln/Train/ImageText.h"
#include "kiln/Train/Tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <set>

using namespace kiln::driver;

namespace {

const char kShapesUsage[] =
    R"(USAGE: kiln shapes --out DIR [options]

Writes an image-caption set of rendered shapes for CLIP-style training
(kiln pretrain --task clip). Each image shows one to three shapes of one
kind, colour and size in one half of the picture; its caption says so:
"two large red circles on the left".

  DIR/train.jsonl   {"image": "images/train-000000.png", "caption": ...}
  DIR/val.jsonl     held-out images of the combinations training shows
  DIR/novel.jsonl   held-out colour-shape pairs training never shows
                    (red triangles, green circles, blue squares)
  DIR/images/       the PNG files; DIR/README.md says how they were made

OPTIONS:
  --out DIR          where to write (required)
  --train N          training images (default 6000)
  --val N            held-out images of seen combinations (default 500)
  --novel N          held-out images of unseen combinations (default 500)
  --image-size N     width and height in pixels (default 32)
  --seed N           the same seed gives the same files (default 0)
)";

const char kEmbedUsage[] =
    R"(USAGE: kiln embed NAME.kiln (--run RUN_DIR | --tokenizer MODEL [--checkpoint FILE])
                  (--image FILE | --text TEXT) --against FILE [--top K] [--out FILE.npy]

Embeds one image or one caption with a CLIP artifact (a clip config, e.g.
trained with kiln pretrain --task clip) and prints the nearest of --against,
best first, with their cosine similarity:

  --image FILE   a PNG or binary PPM of the model's image size; --against
                 gives captions: the distinct captions of an image-caption
                 .jsonl, or a text file of one caption per line
  --text TEXT    a caption; --against is an image-caption .jsonl whose
                 images are ranked

OPTIONS:
  --run RUN_DIR        the run's tokenizer and checkpoint
  --tokenizer MODEL    a SentencePiece model (instead of --run)
  --checkpoint FILE    parameters to load (a training artifact's checkpoint)
  --top K              how many to print (default 5)
  --out FILE.npy       also write the query's embedding [1, P]
)";

const char kCaptionUsage[] =
    R"(USAGE: kiln caption NAME.kiln (--run RUN_DIR | --tokenizer MODEL [--checkpoint FILE])
                    (--image FILE | --images FILE.jsonl)

Captions images with a captioner (a llava or vision-encoder-decoder config,
e.g. trained with kiln pretrain --task caption): greedy decoding, the most
likely token at each position from <s> until </s> or the model's caption
length. Prints the file and its caption, tab-separated. With --images,
every image of an image-caption .jsonl is captioned, each line followed by
its reference caption and whether the two agree, and a last line gives
the share of exact captions.

OPTIONS:
  --run RUN_DIR        the run's tokenizer and checkpoint
  --tokenizer MODEL    a SentencePiece model (instead of --run)
  --checkpoint FILE    parameters to load (a training artifact's checkpoint)
  --image FILE         a PNG or binary PPM of the model's image size
  --images FILE.jsonl  the images of an image-caption file
  --batch B            images per forward call when the batch is dynamic
                       (default 16)
)";

std::vector<std::string> readCaptionLines(const std::string &path) {
  std::vector<std::string> captions;
  if (path.size() > 6 && kiln::runtime::endsWith(path, ".jsonl")) {
    Expected<std::vector<kiln::train::ImageCaption>> lines =
        kiln::train::readImageCaptions(path);
    if (!lines)
      fail(lines.message());
    std::set<std::string> seen;
    for (const kiln::train::ImageCaption &line : *lines)
      if (seen.insert(line.caption).second)
        captions.push_back(line.caption);
    return captions;
  }
  Expected<std::string> text = kiln::runtime::readFile(path, "caption file");
  if (!text)
    fail(text.message());
  size_t start = 0;
  while (start < text->size()) {
    size_t end = std::min(text->find('\n', start), text->size());
    std::string line = text->substr(start, end - start);
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos)
      captions.push_back(line);
    start = end + 1;
  }
  if (captions.empty())
    fail("'" + path + "' has no captions (one per line)");
  return captions;
}

std::vector<int64_t> captionTokens(const kiln::train::Tokenizer &tokenizer,
                                   const std::string &caption,
                                   int64_t endToken, int64_t seq) {
  std::vector<int32_t> pieces = tokenizer.encode(caption);
  std::vector<int64_t> ids(pieces.begin(), pieces.end());
  ids.push_back(endToken);
  if (static_cast<int64_t>(ids.size()) > seq)
    fail("the caption '" + caption + "' is " + std::to_string(ids.size()) +
         " tokens with its end token; the model takes " + std::to_string(seq));
  return ids;
}

/// Prints the `top` best of `scores` with their labels.
void printNearest(const std::vector<double> &scores,
                  const std::vector<std::string> &labels, int64_t top) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  for (size_t i = 0; i < order.size() && static_cast<int64_t>(i) < top; ++i)
    std::printf("%7.4f  %s\n", scores[order[i]], labels[order[i]].c_str());
}

std::vector<double> cosine(const std::vector<float> &query,
                           const std::vector<float> &candidates) {
  size_t width = query.size();
  std::vector<double> scores;
  for (size_t start = 0; start + width <= candidates.size(); start += width) {
    double dot = 0;
    for (size_t d = 0; d < width; ++d)
      dot += static_cast<double>(query[d]) * candidates[start + d];
    scores.push_back(dot);
  }
  return scores;
}

} // namespace

int kiln::driver::embedCommand(int argc, char **argv) {
  Options o = parseOptions("embed", argc, argv, 2,
                           {"--run", "--tokenizer", "--checkpoint", "--image",
                            "--text", "--against", "--top", "--out"},
                           kEmbedUsage);
  if (o.values.count("--image") == o.values.count("--text"))
    fail("'kiln embed' needs one of --image FILE and --text TEXT");
  if (!o.values.count("--against"))
    fail("'kiln embed' needs --against FILE (captions for an image, an "
         "image-caption .jsonl for a caption)");
  int64_t top = o.values.count("--top")
                    ? parseCount("--top", o.values["--top"], 1)
                    : 5;
  std::unique_ptr<Artifact> artifact = openArtifact(o.artifact);
  Expected<kiln::train::ClipModelInfo> info =
      kiln::train::readClipModelInfo(*artifact);
  if (!info)
    fail(info.message());
  kiln::train::Tokenizer tokenizer =
      loadModel(o, *artifact, "embed", /*requireAll=*/true);
  if (tokenizer.vocabSize() > info->endToken)
    fail("the tokenizer has " + std::to_string(tokenizer.vocabSize()) +
         " pieces; the model's end-of-text id " +
         std::to_string(info->endToken) + " must be above them");
  const EntryPointSpec *text = artifact->findEntryPoint("encode_text");
  int64_t seq = text->inputs[0].shape[1] == kDynamicDim
                    ? info->maxTextLength
                    : text->inputs[0].shape[1];
  int64_t height = info->imageHeight, width = info->imageWidth;
  if (info->channels != 3)
    fail("'" + o.artifact + "' takes images of " +
         std::to_string(info->channels) +
         " channels; kiln embed reads images as RGB (3)");

  std::vector<float> query;
  if (o.values.count("--image")) {
    std::string path = o.values["--image"];
    Expected<kiln::plot::RgbImage> image = kiln::plot::readImage(path);
    if (!image)
      fail(image.message());
    std::vector<float> pixels(static_cast<size_t>(3 * height * width));
    if (Status s = kiln::train::imagePixels(*image, path, width, height,
                                            pixels.data());
        !s)
      fail(s.message());
    auto embedded =
        kiln::train::embedImages(*artifact, pixels, 1, height, width, 1);
    if (!embedded)
      fail(embedded.message());
    query = embedded.take();
    std::vector<std::string> captions = readCaptionLines(o.values["--against"]);
    std::vector<std::vector<int64_t>> tokens;
    for (const std::string &caption : captions)
      tokens.push_back(
          captionTokens(tokenizer, caption, info->endToken, seq));
    auto candidates = kiln::train::embedTexts(*artifact, tokens, seq, 64);
    if (!candidates)
      fail(candidates.message());
    printNearest(cosine(query, *candidates), captions, top);
  } else {
    std::vector<std::vector<int64_t>> tokens = {
        captionTokens(tokenizer, o.values["--text"], info->endToken, seq)};
    auto embedded = kiln::train::embedTexts(*artifact, tokens, seq, 1);
    if (!embedded)
      fail(embedded.message());
    query = embedded.take();
    std::string against = o.values["--against"];
    Expected<std::vector<kiln::train::ImageCaption>> lines =
        kiln::train::readImageCaptions(against);
    if (!lines)
      fail(lines.message());
    // Only the images are ranked: their captions are labels, not read by
    // the model.
    Expected<std::vector<float>> pixels =
        kiln::train::loadImagePixels(*lines, height, width);
    if (!pixels)
      fail(pixels.message());
    auto candidates = kiln::train::embedImages(
        *artifact, *pixels, static_cast<int64_t>(lines->size()), height, width,
        64);
    if (!candidates)
      fail(candidates.message());
    std::vector<std::string> labels;
    for (const kiln::train::ImageCaption &line : *lines)
      labels.push_back(line.image + "  (" + line.caption + ")");
    printNearest(cosine(query, *candidates), labels, top);
  }
  if (o.values.count("--out")) {
    std::vector<int64_t> shape = {1, static_cast<int64_t>(query.size())};
    if (Status s = writeNpy(o.values["--out"],
                            TensorView{DType::F32, shape, query.data()});
        !s)
      fail(s.message());
  }
  return 0;
}

int kiln::driver::captionCommand(int argc, char **argv) {
  Options o = parseOptions("caption", argc, argv, 2,
                           {"--run", "--tokenizer", "--checkpoint", "--image",
                            "--images", "--batch"},
                           kCaptionUsage);
  std::vector<kiln::train::ImageCaption> images;
  if (o.values.count("--image"))
    images.push_back({o.values["--image"], ""});
  size_t given = images.size();
  if (o.values.count("--images")) {
    Expected<std::vector<kiln::train::ImageCaption>> lines =
        kiln::train::readImageCaptions(o.values["--images"]);
    if (!lines)
      fail(lines.message());
    images.insert(images.end(), lines->begin(), lines->end());
  }
  if (images.empty())
    fail("'kiln caption' needs --image FILE or --images FILE.jsonl");
  int64_t batch = o.values.count("--batch")
                      ? parseCount("--batch", o.values["--batch"], 1)
                      : 16;
  std::unique_ptr<Artifact> artifact = openArtifact(o.artifact);
  const EntryPointSpec *forward = artifact->findEntryPoint("forward");
  const TensorSpec *pixels =
      forward ? forward->findInput("pixel_values") : nullptr;
  if (!pixels || pixels->rank() != 4 || !forward->findInput("input_ids"))
    fail("'" + o.artifact +
         "' is not a captioner: it has no forward(input_ids, pixel_values); "
         "compile a llava or vision-encoder-decoder config");
  if (pixels->shape[1] != 3)
    fail("'" + o.artifact + "' takes images of " +
         std::to_string(pixels->shape[1]) +
         " channels; kiln caption reads images as RGB (3)");
  int64_t height = pixels->shape[2], width = pixels->shape[3];
  kiln::train::Tokenizer tokenizer =
      loadModel(o, *artifact, "caption", /*requireAll=*/true);
  Expected<std::vector<float>> values =
      kiln::train::loadImagePixels(images, height, width);
  if (!values)
    fail(values.message());
  auto captions = kiln::train::greedyCaptions(
      *artifact, *values, static_cast<int64_t>(images.size()), height, width,
      batch, tokenizer.bosId(), tokenizer.eosId());
  if (!captions)
    fail(captions.message());
  int64_t exact = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::vector<int64_t> &ids = (*captions)[i];
    std::string text =
        tokenizer.decode(std::vector<int32_t>(ids.begin(), ids.end()));
    if (i < given) {
      std::printf("%s\t%s\n", images[i].image.c_str(), text.c_str());
      continue;
    }
    bool same = kiln::train::captionScores({text}, {images[i].caption}).exact;
    exact += same;
    std::printf("%s\t%s\t(reference: %s%s)\n", images[i].image.c_str(),
                text.c_str(), images[i].caption.c_str(), same ? ", exact" : "");
  }
  if (images.size() > given)
    std::printf("exact: %lld of %zu (%.1f%%)\n", static_cast<long long>(exact),
                images.size() - given,
                100.0 * static_cast<double>(exact) /
                    static_cast<double>(images.size() - given));
  return 0;
}

int kiln::driver::shapesCommand(int argc, char **argv) {
  Options o = parseOptions("shapes", argc, argv, 2,
                           {"--out", "--train", "--val", "--novel",
                            "--image-size", "--seed"},
                           kShapesUsage, {}, /*artifactRequired=*/false);
  if (!o.artifact.empty())
    fail("'kiln shapes' takes no positional argument (found '" + o.artifact +
         "'); see 'kiln shapes --help'");
  if (!o.values.count("--out"))
    fail("'kiln shapes' needs --out DIR");
  kiln::train::ShapesOptions s;
  for (auto [name, out] : {std::pair{"--train", &s.train},
                           std::pair{"--val", &s.val},
                           std::pair{"--novel", &s.novel}})
    if (o.values.count(name))
      *out = parseCount(name, o.values[name], 1);
  if (o.values.count("--image-size"))
    s.imageSize = static_cast<int>(
        parseCount("--image-size", o.values["--image-size"], 16));
  if (o.values.count("--seed"))
    s.seed = static_cast<uint64_t>(parseCount("--seed", o.values["--seed"], 0));
  std::string dir = o.values["--out"];
  if (Status status = kiln::train::generateShapes(dir, s); !status)
    fail(status.message());
  std::printf("%s: %lld training, %lld held-out and %lld unseen-combination "
              "images of %dx%d pixels\n",
              dir.c_str(), static_cast<long long>(s.train),
              static_cast<long long>(s.val), static_cast<long long>(s.novel),
              s.imageSize, s.imageSize);
  return 0;
}
