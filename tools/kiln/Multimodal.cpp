//===- Multimodal.cpp - kiln shapes, kiln embed ---------------------------===//
//
// `kiln shapes` writes the generated image-caption set; `kiln embed` embeds
// images and captions with a CLIP artifact and prints the captions nearest
// each image (or the images nearest each caption).
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include "kiln/Train/ImageText.h"

#include <cstdio>

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

} // namespace

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
