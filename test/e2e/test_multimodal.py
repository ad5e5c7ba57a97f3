"""kiln shapes, kiln pretrain --task clip and kiln pretrain --task caption.

A small shapes set (16x16 images) and a small CLIP (one layer per tower)
compiled for --objective contrastive; 60 steps of training. Checked:

- the set: the same seed gives the same bytes, captions follow the
  grammar, the unseen colour-shape pairs appear only in novel.jsonl;
- learning: the held-out contrastive loss falls and retrieval beats
  chance on both held-out splits;
- the retrieval numbers in metrics.jsonl against an independent
  computation: the PNGs decoded here (zlib), normalized with CLIP's mean
  and std, the captions tokenized with Python's SentencePiece and the run's
  tokenizer.model, embedded with `kiln run --entry encode_image/encode_text
  --load-parameters` from the final checkpoint, and ranked in numpy;
- --resume continues with exactly the losses of an uninterrupted run;
- bad input: an image of the wrong size, a corrupt PNG, a language-model
  artifact with --task clip and a CLIP artifact without it each give one
  error line naming the problem.

Captioning (the Captioning class): a small llava captioner (CLIP image
tower, GPT-2 decoder, one layer each) trained 60 steps on the same set.
Checked: the held-out caption loss falls and greedy captions get words
right; the loss and the greedy captions in metrics.jsonl against an
independent computation (the caption rows built here from Python's
SentencePiece, the cross-entropy of `kiln run` forward logits in numpy,
greedy decoding in Python over `kiln run` forward calls, and the scores
computed here); --resume; bad input (a CLIP or language-model artifact with
--task caption, a captioner without it).
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import KILN, KILN_COMPILE, MODELS, compile_artifact, load_safetensors  # noqa: E402

try:
    import sentencepiece
except ImportError as e:  # pragma: no cover - reported as a failure
    raise SystemExit(f"test_multimodal.py needs python3-sentencepiece (scripts/test installs it): {e}")

BATCH, SEQ, STEPS = 16, 12, 60
CONFIG = {
    "model_type": "clip",
    "projection_dim": 24,
    "text_config": {"vocab_size": 384, "eos_token_id": 383, "hidden_size": 32,
                    "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                    "max_position_embeddings": SEQ},
    "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 2, "image_size": 16, "patch_size": 4},
}
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
CAPTION = re.compile(r"^(one|two|three) (small|large) (red|green|blue|yellow|purple|white) "
                     r"(circle|square|triangle)s? (on the left|on the right|at the top|at the bottom)$")
HELD_OUT = {("red", "triangle"), ("green", "circle"), ("blue", "square")}


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def read_png(path):
    """Pixels [H, W, 3] of an 8-bit RGB PNG with filter 0 rows (what Kiln's
    writer makes), decoded with zlib: independent of libpng."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, width, height = 8, b"", 0, 0
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * 3)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


def read_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def metrics(run_dir):
    return read_lines(os.path.join(run_dir, "metrics.jsonl"))


def make_shapes(path):
    """The small shapes set both classes train on (16x16 images); `path`."""
    done = kiln("shapes", "--out", path, "--train", "400", "--val", "64", "--novel", "48",
                "--image-size", "16", "--seed", "3")
    assert done.returncode == 0, done.stderr
    return path


def check_resume(test, steps, holds):
    """test.pretrain for `steps` steps at once, and for half of them, then
    --resume to `steps`: the same losses. A constant schedule: the learning
    rate does not depend on --steps, so half and half again see the rates
    the whole run sees. A plain --resume (the text task) is refused with
    `holds` in its message."""
    whole_dir, run_dir = test.path("whole"), test.path("resumed")
    whole = test.pretrain(whole_dir, "--steps", str(steps), "--schedule", "constant")
    test.assertEqual(whole.returncode, 0, whole.stderr)
    half = str(steps // 2)
    first = test.pretrain(run_dir, "--steps", half, "--checkpoint-every", half,
                          "--schedule", "constant")
    test.assertEqual(first.returncode, 0, first.stderr)
    second = test.pretrain(run_dir, "--steps", str(steps), "--resume")
    test.assertEqual(second.returncode, 0, second.stderr)
    losses = lambda d: {r["step"]: r["loss"] for r in metrics(d) if "loss" in r}
    test.assertEqual(losses(whole_dir), losses(run_dir))
    test.assertEqual(len(losses(run_dir)), steps)
    plain = kiln("pretrain", "--resume", "--out", run_dir)
    test.assertNotEqual(plain.returncode, 0)
    test.assertIn(holds, plain.stderr)


class TrainedOnShapes(unittest.TestCase):
    """A class whose tests share one model (CONFIG, compiled for training
    with COMPILE_ARGS) trained STEPS steps on the small shapes set;
    `pretrain` runs `kiln pretrain --task TASK` with PRETRAIN_ARGS."""
    CONFIG, COMPILE_ARGS, TASK, PRETRAIN_ARGS = None, (), None, ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = make_shapes(cls.path("shapes"))
        config = cls.path("model.json")
        with open(config, "w") as f:
            json.dump(cls.CONFIG, f)
        cls.artifact = cls.path("model.kiln")
        compile_artifact(config, cls.artifact, extra=["--mode", "train", *cls.COMPILE_ARGS])
        cls.run_dir = cls.path("run")
        cls.train = cls.pretrain(cls.run_dir, "--steps", str(STEPS))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def path(cls, *parts):
        return os.path.join(cls.tmp.name, *parts)

    @classmethod
    def pretrain(cls, run_dir, *extra, artifact=None):
        return kiln("pretrain", "--task", cls.TASK, artifact or cls.artifact, "--data", cls.data,
                    "--out", run_dir, *cls.PRETRAIN_ARGS, *extra)


class Multimodal(TrainedOnShapes):
    CONFIG, TASK = CONFIG, "clip"
    COMPILE_ARGS = ("--objective", "contrastive", "--batch", str(BATCH), "--seq", str(SEQ))
    PRETRAIN_ARGS = ("--lr", "2e-3", "--warmup", "5", "--eval-every", "30", "--eval-batches", "4",
                     "--log-every", "30")

    def test_shapes_set(self):
        again = self.path("shapes-again")
        done = kiln("shapes", "--out", again, "--train", "400", "--val", "64", "--novel", "48",
                    "--image-size", "16", "--seed", "3")
        self.assertEqual(done.returncode, 0, done.stderr)
        for name in ("train.jsonl", "val.jsonl", "novel.jsonl", "images/train-000007.png",
                     "images/novel-000047.png"):
            with open(os.path.join(self.data, name), "rb") as a, open(os.path.join(again, name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)
        for split, count in (("train", 400), ("val", 64), ("novel", 48)):
            lines = read_lines(os.path.join(self.data, split + ".jsonl"))
            self.assertEqual(len(lines), count)
            for line in lines:
                match = CAPTION.match(line["caption"])
                self.assertTrue(match, line["caption"])
                plural = line["caption"].split()[3].endswith("s")
                self.assertEqual(plural, match.group(1) != "one", line["caption"])
                pair = (match.group(3), match.group(4))
                self.assertEqual(pair in HELD_OUT, split == "novel", line["caption"])
                image = read_png(os.path.join(self.data, line["image"]))
                self.assertEqual(image.shape, (16, 16, 3))
        # Every attribute value appears in training.
        train = " ".join(l["caption"] for l in read_lines(os.path.join(self.data, "train.jsonl")))
        for word in ("one", "three", "small", "large", "red", "green", "blue", "yellow", "purple",
                     "white", "circle", "square", "triangle", "left", "right", "top", "bottom"):
            self.assertIn(word, train)

    def test_learns(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        rows = metrics(self.run_dir)
        evals = [r for r in rows if "eval_loss" in r]
        self.assertEqual([r["step"] for r in evals], [0, 30, 60])
        first, last = evals[0], evals[-1]
        print(f"clip: eval loss {first['eval_loss']:.3f} -> {last['eval_loss']:.3f}; "
              + ", ".join(f"{k} {last[k]:.3f}" for k in sorted(last) if "top" in k or "chance" in k))
        self.assertLess(last["eval_loss"], first["eval_loss"] - 0.3)
        for split in ("val", "novel"):
            self.assertGreater(last[f"{split}_image_to_text_top5"],
                               2 * 5 * last[f"{split}_image_to_text_chance"], split)
            self.assertGreater(last[f"{split}_text_to_image_top5"],
                               2 * 5 * last[f"{split}_text_to_image_chance"], split)
        self.assertIn("images_per_s", rows[-1])
        self.assertIn(" img/s |", self.train.stderr)
        self.assertIn("novel retrieval, image to text top-1", self.train.stderr)

    def embed(self, entry, inputs, rows):
        """`kiln run --entry ENTRY` on static batches of BATCH rows (the last
        one padded by repeating its last row); the first `rows` outputs."""
        out = []
        for start in range(0, rows, BATCH):
            args = [KILN, "run", self.artifact, "--entry", entry, "--load-parameters",
                    os.path.join(self.run_dir, "checkpoint.safetensors"),
                    "--output-dir", self.path("embed")]
            for name, array in inputs.items():
                chunk = array[start:start + BATCH]
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], BATCH - len(chunk), 0)])
                np.save(self.path(name + ".npy"), chunk)
                args += ["--input", f"{name}={self.path(name + '.npy')}"]
            done = subprocess.run(args, capture_output=True, text=True)
            self.assertEqual(done.returncode, 0, done.stderr)
            (output,) = [f for f in os.listdir(self.path("embed")) if f.endswith(".npy")]
            out.append(np.load(self.path("embed", output)))
            shutil.rmtree(self.path("embed"))
        return np.concatenate(out)[:rows]

    def test_retrieval_matches_an_independent_computation(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        last = metrics(self.run_dir)[-1]
        sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(self.run_dir, "tokenizer.model"))
        for split in ("val", "novel"):
            lines = read_lines(os.path.join(self.data, split + ".jsonl"))
            pixels = np.stack([((read_png(os.path.join(self.data, l["image"])) / 255.0 - MEAN) / STD)
                               .transpose(2, 0, 1) for l in lines]).astype(np.float32)
            captions = list(dict.fromkeys(l["caption"] for l in lines))
            caption_of = np.array([captions.index(l["caption"]) for l in lines])
            ids = np.zeros((len(captions), SEQ), np.int64)
            mask = np.zeros_like(ids)
            for i, caption in enumerate(captions):
                tokens = sp.encode(caption) + [CONFIG["text_config"]["eos_token_id"]]
                ids[i, :len(tokens)] = tokens
                mask[i, :len(tokens)] = 1
            images = self.embed("encode_image", {"pixel_values": pixels}, len(lines)).astype(np.float64)
            texts = self.embed("encode_text", {"input_ids": ids, "attention_mask": mask},
                               len(captions)).astype(np.float64)
            np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
            scores = images @ texts.T
            right = scores[np.arange(len(lines)), caption_of]
            # Captions scoring at least the right one, itself excluded.
            above = (scores >= right[:, None]).sum(1) - 1
            expected = {
                "image_to_text_top1": np.mean(above < 1),
                "image_to_text_top5": np.mean(above < 5),
                "image_to_text_chance": 1 / len(captions),
            }
            hits1, hits5, chance = [], [], []
            for c in range(len(captions)):
                order = np.lexsort((np.arange(len(lines)), -scores[:, c]))
                hits1.append(caption_of[order[0]] == c)
                hits5.append((caption_of[order[:5]] == c).any())
                chance.append(np.mean(caption_of == c))
            expected.update({"text_to_image_top1": np.mean(hits1),
                             "text_to_image_top5": np.mean(hits5),
                             "text_to_image_chance": np.mean(chance)})
            for key, value in expected.items():
                self.assertAlmostEqual(last[f"{split}_{key}"], value, places=9, msg=f"{split} {key}")
            if split == "val":
                val_texts = texts
            else:
                # Against every held-out caption: val's come after novel's.
                wide = images @ np.concatenate([texts, val_texts]).T
                above = (wide >= wide[np.arange(len(lines)), caption_of][:, None]).sum(1) - 1
                for key, value in (("top1", np.mean(above < 1)), ("top5", np.mean(above < 5)),
                                   ("chance", 1 / (len(texts) + len(val_texts)))):
                    self.assertAlmostEqual(last[f"novel_image_to_text_{key}_vs_all"], value, places=9, msg=key)

    def test_embed(self):
        """kiln embed: an image's nearest captions, best first, its
        embedding as encode_image gives it; a caption's nearest images."""
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        lines = read_lines(os.path.join(self.data, "val.jsonl"))
        image = os.path.join(self.data, lines[3]["image"])
        out = self.path("query.npy")
        done = kiln("embed", self.artifact, "--run", self.run_dir, "--image", image, "--against",
                    os.path.join(self.data, "val.jsonl"), "--top", "4", "--out", out)
        self.assertEqual(done.returncode, 0, done.stderr)
        rows = [line.split(None, 1) for line in done.stdout.strip().splitlines()]
        self.assertEqual(len(rows), 4)
        scores = [float(r[0]) for r in rows]
        self.assertEqual(scores, sorted(scores, reverse=True))
        for score, caption in rows:
            self.assertTrue(CAPTION.match(caption), caption)
        pixels = ((read_png(image) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
        expected = self.embed("encode_image", {"pixel_values": pixels}, 1)
        np.testing.assert_allclose(np.load(out), expected, rtol=1e-6, atol=1e-7)
        done = kiln("embed", self.artifact, "--run", self.run_dir, "--text", lines[3]["caption"],
                    "--against", os.path.join(self.data, "val.jsonl"), "--top", "2")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(done.stdout.strip().splitlines()), 2)
        self.assertIn("images/val-", done.stdout)
        # Candidate images are ranked by their pixels alone: a caption too
        # long for the model's text tower is only a label.
        long_lines = [dict(lines[0], caption=" ".join(["red"] * 400))] + lines[1:4]
        against = os.path.join(self.data, "long-captions.jsonl")
        with open(against, "w") as f:
            for line in long_lines:
                f.write(json.dumps(line) + "\n")
        done = kiln("embed", self.artifact, "--run", self.run_dir, "--text", lines[3]["caption"],
                    "--against", against, "--top", "4")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(done.stdout.strip().splitlines()), 4)
        big = self.path("big-embed")
        kiln("shapes", "--out", big, "--train", "1", "--val", "1", "--novel", "1", "--image-size", "20")
        done = kiln("embed", self.artifact, "--run", self.run_dir, "--image",
                    os.path.join(big, "images", "val-000000.png"), "--against",
                    os.path.join(self.data, "val.jsonl"))
        self.one_error(done, "20x20", "16x16")

    def test_resume(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        check_resume(self, 40, "holds a CLIP run")

    def one_error(self, done, *fragments):
        self.assertNotEqual(done.returncode, 0)
        lines = done.stderr.strip().splitlines()
        self.assertTrue(lines[-1].startswith("kiln: error:"), done.stderr)
        for fragment in fragments:
            self.assertIn(fragment, lines[-1])

    def test_bad_input(self):
        bad = self.path("bad-data")
        shutil.copytree(self.data, bad)
        lines = read_lines(os.path.join(bad, "train.jsonl"))
        # An image of another size.
        big = self.path("big")
        self.assertEqual(kiln("shapes", "--out", big, "--train", "1", "--val", "1", "--novel", "1",
                              "--image-size", "24").returncode, 0)
        shutil.copy(os.path.join(big, "images", "train-000000.png"),
                    os.path.join(bad, lines[5]["image"]))
        run = kiln("pretrain", "--task", "clip", self.artifact, "--data", bad, "--out",
                   self.path("bad-run"), "--steps", "1")
        self.one_error(run, lines[5]["image"], "24x24", "16x16")
        # A corrupt PNG.
        with open(os.path.join(self.data, lines[5]["image"]), "rb") as f:
            png = bytearray(f.read())
        png[len(png) // 2] ^= 0x55
        with open(os.path.join(bad, lines[5]["image"]), "wb") as f:
            f.write(png)
        run = kiln("pretrain", "--task", "clip", self.artifact, "--data", bad, "--out",
                   self.path("bad-run2"), "--steps", "1")
        self.one_error(run, lines[5]["image"], "PNG")
        # A language model with --task clip, and the CLIP artifact without it.
        lm = self.path("lm.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), lm,
                         extra=["--mode", "train", "--batch", "2", "--seq", "8"])
        run = kiln("pretrain", "--task", "clip", lm, "--data", self.data, "--out", self.path("bad-run3"))
        self.one_error(run, "not a CLIP training artifact", "--objective contrastive")
        run = kiln("pretrain", self.artifact, "--out", self.path("bad-run4"), "--steps", "1")
        self.one_error(run, "takes images", "--task clip (a CLIP model)")
        run = kiln("pretrain", "--task", "caption", self.artifact, "--data", self.data, "--out",
                   self.path("bad-run6"), "--steps", "1")
        self.one_error(run, "not a captioning training artifact", "llava")
        run = kiln("pretrain", "--task", "images", self.artifact, "--out", self.path("bad-run5"))
        self.one_error(run, "--task 'images'")


CAPTION_SEQ = 12
CAPTIONER = {
    "model_type": "llava",
    "vision_feature_layer": -1,
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32,
                      "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "image_size": 16, "patch_size": 4},
    "text_config": {"model_type": "gpt2", "vocab_size": 384, "n_positions": 16 + CAPTION_SEQ,
                    "n_embd": 32, "n_layer": 1, "n_head": 2, "attn_pdrop": 0.0,
                    "embd_pdrop": 0.0, "resid_pdrop": 0.0},
}


class Captioning(TrainedOnShapes):
    CONFIG, TASK = CAPTIONER, "caption"
    COMPILE_ARGS = ("--batch", str(BATCH), "--seq", str(CAPTION_SEQ))
    PRETRAIN_ARGS = ("--lr", "3e-3", "--warmup", "5", "--eval-every", "30", "--eval-batches", "4",
                     "--log-every", "30")

    def test_learns(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        rows = metrics(self.run_dir)
        evals = [r for r in rows if "eval_loss" in r]
        self.assertEqual([r["step"] for r in evals], [0, 30, 60])
        first, last = evals[0], evals[-1]
        print(f"captioner: eval loss {first['eval_loss']:.3f} -> {last['eval_loss']:.3f}; "
              + ", ".join(f"{k} {last[k]:.3f}" for k in sorted(last) if "caption" in k))
        # From log(384) = 5.95 at random; the captions' words are a handful.
        self.assertLess(last["eval_loss"], first["eval_loss"] - 3.0)
        # 60 steps of a model this small learn the captions' grammar (a
        # random model gets no word right; one fixed well-formed caption
        # about 0.44), not yet the images: docs/multimodal.md's run does.
        for split in ("val", "novel"):
            self.assertLess(first[f"{split}_caption_words"], 0.1, split)
            self.assertGreater(last[f"{split}_caption_words"], 0.3, split)
        self.assertIn("images_per_s", rows[-1])
        self.assertIn("done: val greedy captions", self.train.stderr)
        self.assertIn('(reference "', self.train.stderr)

    def forward(self, ids, pixels):
        """Logits of `kiln run` forward with the run's final parameters, on
        static batches of BATCH rows."""
        out = []
        for start in range(0, len(ids), BATCH):
            chunk = {"input_ids": ids[start:start + BATCH], "pixel_values": pixels[start:start + BATCH]}
            args = [KILN, "run", self.artifact, "--load-parameters",
                    os.path.join(self.run_dir, "checkpoint.safetensors"),
                    "--output-dir", self.path("logits")]
            for name, array in chunk.items():
                array = np.concatenate([array, np.repeat(array[-1:], BATCH - len(array), 0)])
                np.save(self.path(name + ".npy"), array)
                args += ["--input", f"{name}={self.path(name + '.npy')}"]
            done = subprocess.run(args, capture_output=True, text=True)
            self.assertEqual(done.returncode, 0, done.stderr)
            out.append(np.load(self.path("logits", "logits.npy"))[:len(ids[start:start + BATCH])])
            shutil.rmtree(self.path("logits"))
        return np.concatenate(out)

    def test_matches_an_independent_computation(self):
        """The held-out caption loss and the greedy-caption scores of the
        last evaluation, recomputed from the final checkpoint."""
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        last = metrics(self.run_dir)[-1]
        sp = sentencepiece.SentencePieceProcessor(
            model_file=os.path.join(self.run_dir, "tokenizer.model"))
        bos, eos = sp.bos_id(), sp.eos_id()
        for split in ("val", "novel"):
            lines = read_lines(os.path.join(self.data, split + ".jsonl"))
            pixels = np.stack([((read_png(os.path.join(self.data, l["image"])) / 255.0 - MEAN) / STD)
                               .transpose(2, 0, 1) for l in lines]).astype(np.float32)
            if split == "val":
                # The loss over the 4 eval batches: each caption between
                # <s> and </s>, the loss on its tokens and </s>.
                rows = 4 * BATCH
                ids = np.full((rows, CAPTION_SEQ), eos, np.int64)
                targets = np.full((rows, CAPTION_SEQ), -100, np.int64)
                for i, line in enumerate(lines[:rows]):
                    tokens = sp.encode(line["caption"]) + [eos]
                    ids[i, 0] = bos
                    ids[i, 1:len(tokens)] = tokens[:-1]
                    targets[i, :len(tokens)] = tokens
                logits = self.forward(ids, pixels[:rows]).astype(np.float64)
                logits -= logits.max(-1, keepdims=True)
                logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
                kept = targets != -100
                nll = -np.take_along_axis(logp, np.where(kept, targets, 0)[..., None], -1)[..., 0]
                loss = nll[kept].mean()
                self.assertAlmostEqual(last["eval_loss"] / loss, 1.0, delta=1e-4)
            # Greedy captions, one forward per position.
            ids = np.full((len(lines), CAPTION_SEQ), eos, np.int64)
            ids[:, 0] = bos
            captions, done = [[] for _ in lines], np.zeros(len(lines), bool)
            for t in range(CAPTION_SEQ):
                if done.all():
                    break
                step = self.forward(ids, pixels)[:, t].argmax(-1)
                for i, token in enumerate(step):
                    if done[i]:
                        continue
                    if token == eos:
                        done[i] = True
                        continue
                    captions[i].append(int(token))
                    if t + 1 < CAPTION_SEQ:
                        ids[i, t + 1] = token
            texts = [sp.decode(c).split() for c in captions]
            refs = [l["caption"].split() for l in lines]
            exact = np.mean([a == b for a, b in zip(texts, refs)])
            words = np.mean([sum(x == y for x, y in zip(a, b)) / max(len(a), len(b))
                             for a, b in zip(texts, refs)])
            self.assertAlmostEqual(last[f"{split}_caption_exact"], exact, places=6)
            self.assertAlmostEqual(last[f"{split}_caption_words"], words, places=6)

    def test_resume(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        check_resume(self, 20, "holds a captioning run")

    def test_caption_command(self):
        """kiln caption: every val image's greedy caption, the exact share
        the run's last evaluation reported, and one image alone captioned
        as in the batch."""
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        done = kiln("caption", self.artifact, "--run", self.run_dir, "--images",
                    os.path.join(self.data, "val.jsonl"))
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.strip().splitlines()
        self.assertEqual(len(lines), 64 + 1)
        exact = sum(line.endswith(", exact)") for line in lines[:-1]) / 64
        self.assertAlmostEqual(exact, metrics(self.run_dir)[-1]["val_caption_exact"], places=6)
        self.assertTrue(lines[-1].startswith("exact: "), lines[-1])
        image, caption = lines[5].split("\t")[:2]
        one = kiln("caption", self.artifact, "--run", self.run_dir, "--image",
                   os.path.join(self.data, image))
        self.assertEqual(one.returncode, 0, one.stderr)
        self.assertEqual(one.stdout.strip().split("\t")[1], caption)
        none = kiln("caption", self.artifact, "--run", self.run_dir)
        self.assertNotEqual(none.returncode, 0)
        self.assertIn("needs --image FILE or --images FILE.jsonl", none.stderr)

    def test_gated_cross_attention_captioner(self):
        """A vision-encoder-decoder captioner (the decoder cross-attends to
        the image through tanh gates that start at 0) trains with the same
        task: the loss falls and every gate moves off 0."""
        config = {"model_type": "vision-encoder-decoder", "cross_attention_gate": True,
                  "encoder": CAPTIONER["vision_config"],
                  "decoder": dict(CAPTIONER["text_config"], n_positions=CAPTION_SEQ,
                                  add_cross_attention=True, is_decoder=True)}
        path = self.path("xattn.json")
        with open(path, "w") as f:
            json.dump(config, f)
        artifact = self.path("xattn.kiln")
        compile_artifact(path, artifact, extra=["--mode", "train", "--batch", str(BATCH),
                                                "--seq", str(CAPTION_SEQ)])
        run_dir = self.path("xattn-run")
        done = kiln("pretrain", "--task", "caption", artifact, "--data", self.data, "--out", run_dir,
                    "--lr", "3e-3", "--warmup", "5", "--steps", "30", "--eval-every", "30",
                    "--eval-batches", "4")
        self.assertEqual(done.returncode, 0, done.stderr)
        evals = [r for r in metrics(run_dir) if "eval_loss" in r]
        self.assertLess(evals[-1]["eval_loss"], evals[0]["eval_loss"] - 2.0)
        state = load_safetensors(os.path.join(run_dir, "checkpoint.safetensors"))
        gates = [v for k, v in state.items() if k.endswith("crossattention.gate")]
        self.assertEqual(len(gates), 1)
        for gate in gates:
            self.assertGreater(abs(float(gate)), 1e-3)
        # kiln caption with an inference artifact of the trained weights and
        # any caption length (its longest is the decoder's n_positions).
        inference = self.path("xattn-inference.kiln")
        compiled = subprocess.run([KILN_COMPILE, path, "--target", "cpu", "-o", inference,
                                   "--weights", os.path.join(run_dir, "checkpoint.safetensors"),
                                   "-v"],
                                  capture_output=True, text=True)
        self.assertEqual(compiled.returncode, 0, compiled.stderr)
        # The checkpoint's AdamW state is ignored without a warning (-v says so).
        self.assertNotIn("warning", compiled.stderr)
        self.assertIn("optimizer-state tensor(s) of a training checkpoint", compiled.stderr)
        done = kiln("caption", inference, "--run", run_dir, "--image",
                    os.path.join(self.data, "images", "val-000000.png"))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(done.stdout.strip().split("\t")), 2, done.stdout)

    def test_bad_input(self):
        run = kiln("pretrain", self.artifact, "--out", self.path("bad-run"), "--steps", "1")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("takes images", run.stderr)
        self.assertIn("--task caption (a captioner)", run.stderr)
        lm = self.path("lm.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), lm,
                         extra=["--mode", "train", "--batch", "2", "--seq", "8"])
        run = kiln("pretrain", "--task", "caption", lm, "--data", self.data, "--out",
                   self.path("bad-run2"))
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("not a captioning training artifact", run.stderr)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)


if __name__ == "__main__":
    unittest.main()
