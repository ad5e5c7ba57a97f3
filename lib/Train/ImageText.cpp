//===- ImageText.cpp - Image-caption data and retrieval -------------------===//
//
// The shapes set: each image shows one to three shapes of one kind, colour
// and size, side by side in one half of the picture, on a dark noisy
// background; the caption says how many, how large, which colour, which
// shape and where ("two large red circles on the left"). Every image draws
// its attributes and jitter from its own generator (seed, split, index), so
// an image does not depend on the others and the same options give the same
// files.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/ImageText.h"

#include "JsonLines.h"
#include "Random.h"

#include "kiln/Plot/Image.h"
#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/File.h"
#include "kiln/Train/Tokenizer.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <optional>

using namespace kiln::train;
using kiln::plot::Rgb;
using kiln::plot::RgbImage;
using json = nlohmann::json;
namespace runtime = kiln::runtime;

namespace {

enum class Split { Train, Val, Novel };

const char *splitName(Split split) {
  switch (split) {
  case Split::Train:
    return "train";
  case Split::Val:
    return "val";
  case Split::Novel:
    return "novel";
  }
  return "train";
}

const Rgb kColours[] = {{220, 50, 50},  {50, 190, 70},  {60, 90, 235},
                        {235, 215, 50}, {160, 70, 210}, {235, 235, 235}};

/// The held-out colour-shape pairs, as (colour, shape) indices: each colour
/// and shape still appears in training with other partners.
const std::pair<int, int> kHeldOut[] = {{0, 2}, {1, 0}, {2, 1}};

bool isHeldOut(int colour, int shape) {
  return std::any_of(std::begin(kHeldOut), std::end(kHeldOut),
                     [&](const std::pair<int, int> &pair) {
                       return pair.first == colour && pair.second == shape;
                     });
}

/// splitmix64 of (seed, split, index): unrelated generators for
/// neighbouring images.
uint64_t imageSeed(uint64_t seed, int split, int64_t index) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(split) *
                                                  0xd1b54a32d192ed03ull +
               static_cast<uint64_t>(index);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double uniform(std::mt19937_64 &rng, double low, double high) {
  return low + (high - low) * detail::uniformUnit(rng);
}

int pick(std::mt19937_64 &rng, size_t count) {
  return static_cast<int>(detail::uniformBelow(rng, count));
}

bool inside(int shape, double dx, double dy, double r) {
  switch (shape) {
  case 0: // circle
    return dx * dx + dy * dy <= r * r;
  case 1: // square, of about the circle's area
    return std::abs(dx) <= 0.85 * r && std::abs(dy) <= 0.85 * r;
  default: // triangle, pointing up
    return dy >= -r && dy <= 0.8 * r && std::abs(dx) <= (dy + r) * 0.6;
  }
}

uint8_t clampByte(double value) {
  return static_cast<uint8_t>(std::clamp(std::lround(value), 0l, 255l));
}

} // namespace

const std::vector<std::string> &ShapesVocabulary::counts() {
  static const std::vector<std::string> v = {"one", "two", "three"};
  return v;
}
const std::vector<std::string> &ShapesVocabulary::sizes() {
  static const std::vector<std::string> v = {"small", "large"};
  return v;
}
const std::vector<std::string> &ShapesVocabulary::colours() {
  static const std::vector<std::string> v = {"red",    "green",  "blue",
                                             "yellow", "purple", "white"};
  return v;
}
const std::vector<std::string> &ShapesVocabulary::shapes() {
  static const std::vector<std::string> v = {"circle", "square", "triangle"};
  return v;
}
const std::vector<std::string> &ShapesVocabulary::positions() {
  static const std::vector<std::string> v = {"on the left", "on the right",
                                             "at the top", "at the bottom"};
  return v;
}
const std::vector<std::string> &ShapesVocabulary::heldOutPairs() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> pairs;
    for (auto [colour, shape] : kHeldOut)
      pairs.push_back(colours()[static_cast<size_t>(colour)] + " " +
                      shapes()[static_cast<size_t>(shape)]);
    return pairs;
  }();
  return v;
}

RgbImage kiln::train::renderShapes(int imageSize, uint64_t seed, bool novel,
                                   std::string *caption) {
  std::mt19937_64 rng(seed);
  int count = pick(rng, 3) + 1;
  int size = pick(rng, 2);
  int colour, shape;
  if (novel) {
    auto pair = kHeldOut[pick(rng, std::size(kHeldOut))];
    colour = pair.first;
    shape = pair.second;
  } else {
    do {
      colour = pick(rng, std::size(kColours));
      shape = pick(rng, 3);
    } while (isHeldOut(colour, shape));
  }
  int position = pick(rng, 4);

  const double s = imageSize;
  double r = s * (size == 0 ? 3.0 : 5.0) / 32.0;
  // The half of the image the shapes share, and its long axis: vertical on
  // the left and right, horizontal at the top and bottom.
  bool vertical = position < 2;
  double x0 = position == 1 ? s / 2 : 0, y0 = position == 3 ? s / 2 : 0;
  double longLength = s, shortLength = s / 2;
  double cell = longLength / count;
  double longJitter = std::max(0.0, cell / 2 - r - 0.5);
  double shortJitter = std::max(0.0, shortLength / 2 - r - 0.5);
  std::vector<std::pair<double, double>> centres;
  for (int i = 0; i < count; ++i) {
    double along = cell * (i + 0.5) + uniform(rng, -longJitter, longJitter);
    double across = shortLength / 2 + uniform(rng, -shortJitter, shortJitter);
    centres.push_back(vertical ? std::pair{x0 + across, y0 + along}
                               : std::pair{x0 + along, y0 + across});
  }
  Rgb base = kColours[colour];
  double tint[3] = {uniform(rng, -12, 12), uniform(rng, -12, 12),
                    uniform(rng, -12, 12)};
  Rgb fill = {clampByte(base.r + tint[0]), clampByte(base.g + tint[1]),
              clampByte(base.b + tint[2])};
  double background = uniform(rng, 0, 40);

  RgbImage image(imageSize, imageSize);
  for (int y = 0; y < imageSize; ++y)
    for (int x = 0; x < imageSize; ++x) {
      bool covered = false;
      for (auto [cx, cy] : centres)
        covered |= inside(shape, x + 0.5 - cx, y + 0.5 - cy, r);
      double noise[3] = {uniform(rng, -8, 8), uniform(rng, -8, 8),
                         uniform(rng, -8, 8)};
      Rgb c = covered ? fill
                      : Rgb{clampByte(background), clampByte(background),
                            clampByte(background)};
      image.set(x, y,
                Rgb{clampByte(c.r + noise[0]), clampByte(c.g + noise[1]),
                    clampByte(c.b + noise[2])});
    }
  if (caption)
    *caption = ShapesVocabulary::counts()[static_cast<size_t>(count - 1)] +
               " " + ShapesVocabulary::sizes()[static_cast<size_t>(size)] +
               " " + ShapesVocabulary::colours()[static_cast<size_t>(colour)] +
               " " + ShapesVocabulary::shapes()[static_cast<size_t>(shape)] +
               (count > 1 ? "s " : " ") +
               ShapesVocabulary::positions()[static_cast<size_t>(position)];
  return image;
}

Status kiln::train::generateShapes(const std::string &dir,
                                   const ShapesOptions &options) {
  if (options.imageSize < 16 || options.imageSize > 1024)
    return Status::error("--image-size must be in [16, 1024], not " +
                         std::to_string(options.imageSize));
  if (options.train < 1 || options.val < 1 || options.novel < 1)
    return Status::error("each split needs at least one image");
  if (Status s = runtime::makeDirectories(dir + "/images"); !s)
    return s;
  for (Split split : {Split::Train, Split::Val, Split::Novel}) {
    int64_t count = split == Split::Train ? options.train
                    : split == Split::Val ? options.val
                                          : options.novel;
    std::string lines;
    for (int64_t i = 0; i < count; ++i) {
      std::string caption;
      RgbImage image = renderShapes(
          options.imageSize, imageSeed(options.seed, static_cast<int>(split), i),
          split == Split::Novel, &caption);
      char name[64];
      std::snprintf(name, sizeof name, "images/%s-%06lld.png",
                    splitName(split), static_cast<long long>(i));
      if (Status s = plot::writePng(dir + "/" + name, image); !s)
        return s;
      lines += json{{"image", name}, {"caption", caption}}.dump() + "\n";
    }
    std::string path = dir + "/" + splitName(split) + ".jsonl";
    if (Status s = runtime::writeFileAtomically(path, [&](int fd) {
          return runtime::writeAll(fd, lines.data(), lines.size(), path);
        });
        !s)
      return s;
  }
  std::string pairs;
  for (const std::string &pair : ShapesVocabulary::heldOutPairs())
    pairs += (pairs.empty() ? "" : ", ") + pair + "s";
  std::string readme =
      "# Shapes: a generated image-caption set\n\n"
      "Made by `kiln shapes` (seed " + std::to_string(options.seed) +
      ", " + std::to_string(options.imageSize) + "x" +
      std::to_string(options.imageSize) +
      " images). Each image shows one to three shapes of one kind, colour "
      "and size in one half of the picture; its caption says how many, "
      "how large, which colour, which shape and where.\n\n"
      "- `train.jsonl`: " + std::to_string(options.train) +
      " images;\n- `val.jsonl`: " + std::to_string(options.val) +
      " unseen images of the combinations training shows;\n"
      "- `novel.jsonl`: " + std::to_string(options.novel) +
      " images of colour-shape pairs training never shows (" + pairs +
      ").\n";
  std::string path = dir + "/README.md";
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, readme.data(), readme.size(), path);
  });
}

Expected<std::vector<ImageCaption>>
kiln::train::readImageCaptions(const std::string &path) {
  std::string base = path.find('/') == std::string::npos
                         ? std::string(".")
                         : path.substr(0, path.rfind('/'));
  std::vector<ImageCaption> examples;
  Status status = forEachJsonObject(
      path, "image-caption file",
      [&](const json &value, const std::string &where) {
        ImageCaption example;
        if (Status s = readStringFields(
                value, where,
                {{"image", &example.image}, {"caption", &example.caption}},
                "{\"image\": FILE, \"caption\": TEXT}");
            !s)
          return s;
        if (example.caption.empty())
          return Status::error(where + ": the caption is empty");
        if (example.image.empty() || example.image.front() == '/' ||
            example.image.find("..") != std::string::npos)
          return Status::error(where + ": the image path '" + example.image +
                               "' must be relative to the file's directory, "
                               "without '..'");
        example.image = base + "/" + example.image;
        examples.push_back(std::move(example));
        return Status::ok();
      });
  if (!status)
    return status;
  if (examples.empty())
    return Status::error("'" + path + "' has no examples (JSON lines of "
                         "{\"image\": FILE, \"caption\": TEXT})");
  return examples;
}

Status kiln::train::imagePixels(const RgbImage &image, const std::string &name,
                                int64_t width, int64_t height, float *out) {
  if (image.width() != width || image.height() != height)
    return Status::error("image '" + name + "' is " +
                         std::to_string(image.width()) + "x" +
                         std::to_string(image.height()) +
                         " pixels; the model takes " + std::to_string(width) +
                         "x" + std::to_string(height));
  // CLIP's normalization (transformers' CLIPImageProcessor defaults).
  constexpr float kMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  constexpr float kStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  const std::vector<uint8_t> &pixels = image.pixels();
  int64_t plane = width * height;
  for (int64_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c)
      out[c * plane + i] =
          (static_cast<float>(pixels[static_cast<size_t>(i * 3 + c)]) / 255.0f -
           kMean[c]) /
          kStd[c];
  return Status::ok();
}

Expected<std::vector<float>>
kiln::train::loadImagePixels(const std::vector<ImageCaption> &examples,
                             int64_t height, int64_t width) {
  const int64_t imageFloats = 3 * height * width;
  std::vector<float> pixels(examples.size() * static_cast<size_t>(imageFloats));
  for (size_t i = 0; i < examples.size(); ++i) {
    const ImageCaption &example = examples[i];
    Expected<plot::RgbImage> image = plot::readImage(example.image);
    if (!image)
      return image.status();
    if (Status s = imagePixels(*image, example.image, width, height,
                               &pixels[i * static_cast<size_t>(imageFloats)]);
        !s)
      return s;
  }
  return pixels;
}

Expected<ImageTextSplit> kiln::train::loadImageTextSplit(
    const std::vector<ImageCaption> &examples, const Tokenizer &tokenizer,
    int64_t endToken, int64_t height, int64_t width, int64_t maxTokens) {
  ImageTextSplit split;
  split.count = static_cast<int64_t>(examples.size());
  split.height = height;
  split.width = width;
  Expected<std::vector<float>> pixels = loadImagePixels(examples, height, width);
  if (!pixels)
    return pixels.status();
  split.pixels = pixels.take();
  std::map<std::string, int64_t> captionIndex;
  for (int64_t i = 0; i < split.count; ++i) {
    const ImageCaption &example = examples[static_cast<size_t>(i)];
    std::vector<int32_t> pieces = tokenizer.encode(example.caption);
    std::vector<int64_t> ids(pieces.begin(), pieces.end());
    ids.push_back(endToken);
    if (static_cast<int64_t>(ids.size()) > maxTokens)
      return Status::error("the caption of '" + example.image + "' is " +
                           std::to_string(ids.size()) +
                           " tokens with its end token; the model takes " +
                           std::to_string(maxTokens) +
                           " (compile it with a longer --seq)");
    auto [it, added] = captionIndex.emplace(
        example.caption, static_cast<int64_t>(split.distinctCaptions.size()));
    if (added) {
      split.distinctCaptions.push_back(example.caption);
      split.distinctTokens.push_back(ids);
    }
    split.captionOf.push_back(it->second);
    split.tokens.push_back(std::move(ids));
  }
  return split;
}

void kiln::train::packTokens(const std::vector<std::vector<int64_t>> &tokens,
                             const std::vector<int64_t> &rows, int64_t seq,
                             std::vector<int64_t> &ids,
                             std::vector<int64_t> &mask) {
  ids.assign(rows.size() * static_cast<size_t>(seq), 0);
  mask.assign(ids.size(), 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::vector<int64_t> &row = tokens[static_cast<size_t>(rows[r])];
    for (size_t t = 0; t < row.size() && t < static_cast<size_t>(seq); ++t) {
      ids[r * static_cast<size_t>(seq) + t] = row[t];
      mask[r * static_cast<size_t>(seq) + t] = 1;
    }
  }
}

Expected<ClipModelInfo>
kiln::train::readClipModelInfo(const runtime::Artifact &artifact) {
  const runtime::EntryPointSpec *image = artifact.findEntryPoint("encode_image");
  const runtime::EntryPointSpec *text = artifact.findEntryPoint("encode_text");
  const runtime::TensorSpec *pixels =
      image ? image->findInput("pixel_values") : nullptr;
  const runtime::TensorSpec *ids = text ? text->findInput("input_ids") : nullptr;
  if (!pixels || pixels->rank() != 4 || !ids || ids->rank() != 2 ||
      !text->findInput("attention_mask"))
    return Status::error("'" + artifact.dir() +
                         "' is not a CLIP model: it has no encode_image("
                         "pixel_values) and encode_text(input_ids, "
                         "attention_mask) (it has: " +
                         artifact.manifest().entryPointNames() +
                         "); compile a clip config");
  const runtime::OptionMap &options = artifact.manifest().compileOptions;
  auto model = options.find("model");
  json info = model == options.end()
                  ? json()
                  : json::parse(model->second.text, nullptr,
                                /*allow_exceptions=*/false);
  auto integer = [&](const char *key) -> std::optional<int64_t> {
    if (!info.is_object() || !info.contains(key) ||
        !info[key].is_number_integer())
      return std::nullopt;
    return info[key].get<int64_t>();
  };
  std::optional<int64_t> eos = integer("text_eos_token_id");
  std::optional<int64_t> vocab = integer("text_vocab_size");
  std::optional<int64_t> length = integer("text_max_length");
  if (!eos || !vocab || !length)
    return Status::error("'" + artifact.dir() +
                         "' does not say which token ends a caption (its "
                         "manifest has no compile_options.model); compile it "
                         "again with this kiln-compile");
  if (*eos == 2 || *eos < kReservedTokenIds || *eos >= *vocab)
    return Status::error(
        "'" + artifact.dir() + "': the text tower pools at eos_token_id " +
        std::to_string(*eos) +
        ", which Kiln's tokenizer cannot keep apart from its pieces; give "
        "the clip config's text_config an eos_token_id of vocab_size - 1 (" +
        std::to_string(*vocab - 1) + "), above the tokenizer's pieces");
  ClipModelInfo out;
  out.endToken = *eos;
  out.textVocab = *vocab;
  out.maxTextLength = *length;
  out.channels = pixels->shape[1];
  out.imageHeight = pixels->shape[2];
  out.imageWidth = pixels->shape[3];
  return out;
}

namespace {
/// Runs `call(rows, real)` once per call of an entry point whose first
/// input is `input`, over `count` items: `rows` are the item indices of the
/// call's rows (the entry point's static batch, the last call padded by
/// repeating its last item; or, for a dynamic batch, up to `batch` rows),
/// the first `real` of them new.
template <typename Call>
Status forEachCall(const runtime::TensorSpec &input, int64_t count,
                   int64_t batch, Call &&call) {
  bool dynamic = input.shape[0] == runtime::kDynamicDim;
  int64_t chunk = dynamic ? std::max<int64_t>(1, batch) : input.shape[0];
  for (int64_t start = 0; start < count; start += chunk) {
    int64_t real = std::min(chunk, count - start);
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < (dynamic ? real : chunk); ++r)
      rows.push_back(start + std::min(r, real - 1));
    if (Status s = call(rows, real); !s)
      return s;
  }
  return Status::ok();
}

/// Appends the first `real` rows of an entry point's only output to `out`.
void appendRows(const runtime::OwnedTensor &output, int64_t real,
                std::vector<float> &out) {
  const float *v = output.as<float>();
  out.insert(out.end(), v, v + real * output.shape().back());
}
} // namespace

std::vector<float> kiln::train::gatherRows(const std::vector<float> &data,
                                           const std::vector<int64_t> &rows,
                                           int64_t rowSize) {
  std::vector<float> out;
  out.reserve(rows.size() * static_cast<size_t>(rowSize));
  for (int64_t row : rows)
    out.insert(out.end(), data.begin() + static_cast<ptrdiff_t>(row * rowSize),
               data.begin() + static_cast<ptrdiff_t>((row + 1) * rowSize));
  return out;
}

Expected<std::vector<float>>
kiln::train::embedImages(const runtime::Artifact &artifact,
                         const std::vector<float> &pixels, int64_t count,
                         int64_t height, int64_t width, int64_t batch) {
  const runtime::EntryPointSpec *entry = artifact.findEntryPoint("encode_image");
  if (!entry)
    return Status::error("'" + artifact.dir() + "' has no encode_image");
  std::vector<float> out;
  Status status = forEachCall(
      entry->inputs[0], count, batch,
      [&](const std::vector<int64_t> &rows, int64_t real) -> Status {
        std::vector<float> slice = gatherRows(pixels, rows, 3 * height * width);
        auto result = artifact.run(
            "encode_image",
            {{"pixel_values",
              runtime::TensorView{runtime::DType::F32,
                                  {static_cast<int64_t>(rows.size()), 3,
                                   height, width},
                                  slice.data()}}});
        if (!result)
          return result.status();
        appendRows((*result)[0], real, out);
        return Status::ok();
      });
  if (!status)
    return status;
  return out;
}

Expected<std::vector<float>>
kiln::train::embedTexts(const runtime::Artifact &artifact,
                        const std::vector<std::vector<int64_t>> &tokens,
                        int64_t seq, int64_t batch) {
  const runtime::EntryPointSpec *entry = artifact.findEntryPoint("encode_text");
  if (!entry)
    return Status::error("'" + artifact.dir() + "' has no encode_text");
  std::vector<float> out;
  Status status = forEachCall(
      entry->inputs[0], static_cast<int64_t>(tokens.size()), batch,
      [&](const std::vector<int64_t> &rows, int64_t real) -> Status {
        std::vector<int64_t> ids, mask;
        packTokens(tokens, rows, seq, ids, mask);
        std::vector<int64_t> shape = {static_cast<int64_t>(rows.size()), seq};
        auto result = artifact.run(
            "encode_text",
            {{"input_ids",
              runtime::TensorView{runtime::DType::I64, shape, ids.data()}},
             {"attention_mask",
              runtime::TensorView{runtime::DType::I64, shape, mask.data()}}});
        if (!result)
          return result.status();
        appendRows((*result)[0], real, out);
        return Status::ok();
      });
  if (!status)
    return status;
  return out;
}

void kiln::train::packCaptions(const std::vector<std::vector<int64_t>> &tokens,
                               const std::vector<int64_t> &rows, int64_t seq,
                               int64_t bos, int64_t eos,
                               std::vector<int64_t> &ids,
                               std::vector<int64_t> &targets) {
  ids.assign(rows.size() * static_cast<size_t>(seq), 0);
  targets.assign(ids.size(), -100);
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::vector<int64_t> &caption = tokens[static_cast<size_t>(rows[r])];
    int64_t *rowIds = ids.data() + r * static_cast<size_t>(seq);
    int64_t *rowTargets = targets.data() + r * static_cast<size_t>(seq);
    // loadImageTextSplit keeps every caption, end id included, within seq.
    int64_t n = std::min<int64_t>(static_cast<int64_t>(caption.size()), seq);
    std::fill(rowIds, rowIds + seq, eos);
    rowIds[0] = bos;
    for (int64_t i = 0; i < n; ++i) {
      rowTargets[i] = caption[i];
      if (i + 1 < seq && i + 1 < n)
        rowIds[i + 1] = caption[i];
    }
  }
}

Expected<std::vector<std::vector<int64_t>>>
kiln::train::greedyCaptions(const runtime::Artifact &artifact,
                            const std::vector<float> &pixels, int64_t count,
                            int64_t height, int64_t width, int64_t batch,
                            int64_t bos, int64_t eos, int64_t seq) {
  const runtime::EntryPointSpec *entry = artifact.findEntryPoint("forward");
  const runtime::TensorSpec *ids =
      entry ? entry->findInput("input_ids") : nullptr;
  if (!ids || !entry->findInput("pixel_values") || ids->rank() != 2 ||
      entry->outputs.size() != 1 || entry->outputs[0].rank() != 3)
    return Status::error("'" + artifact.dir() +
                         "' is not a captioner: it has no forward(input_ids "
                         "[batch, seq], pixel_values) -> logits [batch, seq, "
                         "vocab]; compile a llava or vision-encoder-decoder "
                         "config");
  int64_t vocab = entry->outputs[0].shape.back();
  for (int64_t id : {bos, eos})
    if (id < 0 || (vocab != runtime::kDynamicDim && id >= vocab))
      return Status::error("the tokenizer's <s> or </s> id " +
                           std::to_string(id) + " is not a token of '" +
                           artifact.dir() + "' (vocabulary of " +
                           std::to_string(vocab) + ")");
  if (ids->shape[1] != runtime::kDynamicDim)
    seq = ids->shape[1];
  else if (seq <= 0 && ids->maxShape.size() == 2 && ids->maxShape[1] > 0)
    seq = ids->maxShape[1];
  if (seq <= 0)
    return Status::error("'" + artifact.dir() +
                         "' takes captions of any length and names no "
                         "longest; compile it with --seq");
  std::vector<std::vector<int64_t>> captions(static_cast<size_t>(count));
  Status status = forEachCall(
      *ids, count, batch,
      [&](const std::vector<int64_t> &rows, int64_t real) -> Status {
        int64_t n = static_cast<int64_t>(rows.size());
        std::vector<float> slice = gatherRows(pixels, rows, 3 * height * width);
        std::vector<int64_t> tokens(static_cast<size_t>(n * seq), eos);
        for (int64_t r = 0; r < n; ++r)
          tokens[static_cast<size_t>(r * seq)] = bos;
        std::vector<bool> done(static_cast<size_t>(n), false);
        for (int64_t r = real; r < n; ++r)
          done[static_cast<size_t>(r)] = true; // Padding rows.
        for (int64_t t = 0; t < seq; ++t) {
          if (std::all_of(done.begin(), done.end(), [](bool d) { return d; }))
            break;
          auto result = artifact.run(
              "forward",
              {{"input_ids", runtime::TensorView{runtime::DType::I64,
                                                 {n, seq},
                                                 tokens.data()}},
               {"pixel_values", runtime::TensorView{runtime::DType::F32,
                                                    {n, 3, height, width},
                                                    slice.data()}}});
          if (!result)
            return result.status();
          const runtime::OwnedTensor &logits = (*result)[0];
          int64_t vocab = logits.shape().back();
          for (int64_t r = 0; r < n; ++r) {
            if (done[static_cast<size_t>(r)])
              continue;
            const float *row = logits.as<float>() + (r * seq + t) * vocab;
            int64_t next = std::max_element(row, row + vocab) - row;
            if (next == eos) {
              done[static_cast<size_t>(r)] = true;
              continue;
            }
            captions[static_cast<size_t>(rows[static_cast<size_t>(r)])]
                .push_back(next);
            if (t + 1 < seq)
              tokens[static_cast<size_t>(r * seq + t + 1)] = next;
          }
        }
        return Status::ok();
      });
  if (!status)
    return status;
  return captions;
}

namespace {
std::vector<std::string> words(const std::string &text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = text.find_first_not_of(' ', i);
    if (start == std::string::npos)
      break;
    size_t end = text.find(' ', start);
    if (end == std::string::npos)
      end = text.size();
    out.push_back(text.substr(start, end - start));
    i = end;
  }
  return out;
}
} // namespace

CaptionScores
kiln::train::captionScores(const std::vector<std::string> &captions,
                           const std::vector<std::string> &references) {
  assert(captions.size() == references.size() && "one reference per caption");
  CaptionScores out;
  out.images = static_cast<int64_t>(captions.size());
  if (captions.empty())
    return out;
  double exact = 0, matched = 0;
  for (size_t i = 0; i < captions.size(); ++i) {
    std::vector<std::string> got = words(captions[i]),
                             want = words(references[i]);
    exact += got == want ? 1 : 0;
    size_t longest = std::max(got.size(), want.size()), same = 0;
    for (size_t w = 0; w < std::min(got.size(), want.size()); ++w)
      same += got[w] == want[w] ? 1 : 0;
    matched += longest ? static_cast<double>(same) / longest : 1.0;
  }
  out.exact = exact / static_cast<double>(captions.size());
  out.words = matched / static_cast<double>(captions.size());
  return out;
}

RetrievalScores
kiln::train::retrievalScores(const std::vector<float> &imageEmbeds,
                             const std::vector<float> &textEmbeds,
                             int64_t width,
                             const std::vector<int64_t> &captionOf) {
  RetrievalScores out;
  int64_t n = static_cast<int64_t>(captionOf.size());
  int64_t m = static_cast<int64_t>(textEmbeds.size()) / width;
  out.images = n;
  out.captions = m;
  if (n == 0 || m == 0)
    return out;
  std::vector<double> scores(static_cast<size_t>(n * m));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double dot = 0;
      for (int64_t d = 0; d < width; ++d)
        dot += static_cast<double>(imageEmbeds[static_cast<size_t>(i * width + d)]) *
               textEmbeds[static_cast<size_t>(j * width + d)];
      scores[static_cast<size_t>(i * m + j)] = dot;
    }
  // Image to text: the captions scoring at least the right one (ties count
  // against the image), its rank.
  for (int64_t i = 0; i < n; ++i) {
    double right = scores[static_cast<size_t>(i * m + captionOf[static_cast<size_t>(i)])];
    int64_t above = 0;
    for (int64_t j = 0; j < m; ++j)
      if (j != captionOf[static_cast<size_t>(i)] &&
          scores[static_cast<size_t>(i * m + j)] >= right)
        ++above;
    out.imageToTextTop1 += above < 1;
    out.imageToTextTop5 += above < 5;
  }
  out.imageToTextTop1 /= static_cast<double>(n);
  out.imageToTextTop5 /= static_cast<double>(n);
  out.imageToTextChance1 = 1.0 / static_cast<double>(m);
  // Text to image: the k best images of each caption that has images.
  std::vector<int64_t> imagesOf(static_cast<size_t>(m), 0);
  for (int64_t c : captionOf)
    ++imagesOf[static_cast<size_t>(c)];
  int64_t queries = 0;
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t j = 0; j < m; ++j) {
    if (imagesOf[static_cast<size_t>(j)] == 0)
      continue;
    ++queries;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + std::min<int64_t>(5, n),
                      order.end(), [&](int64_t a, int64_t b) {
                        double sa = scores[static_cast<size_t>(a * m + j)];
                        double sb = scores[static_cast<size_t>(b * m + j)];
                        return sa != sb ? sa > sb : a < b;
                      });
    bool hit1 = captionOf[static_cast<size_t>(order[0])] == j;
    bool hit5 = false;
    for (int64_t k = 0; k < std::min<int64_t>(5, n); ++k)
      hit5 |= captionOf[static_cast<size_t>(order[static_cast<size_t>(k)])] == j;
    out.textToImageTop1 += hit1;
    out.textToImageTop5 += hit5;
    out.textToImageChance1 += static_cast<double>(imagesOf[static_cast<size_t>(j)]) /
                              static_cast<double>(n);
  }
  out.textToImageTop1 /= static_cast<double>(queries);
  out.textToImageTop5 /= static_cast<double>(queries);
  out.textToImageChance1 /= static_cast<double>(queries);
  return out;
}
