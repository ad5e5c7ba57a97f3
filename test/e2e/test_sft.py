"""`kiln sft`: supervised fine-tuning on prompt/response JSON lines.

- The loss is over the response tokens only: with a batch that holds every
  training example once, step 1's loss (computed before the update) equals
  the torch reference's cross-entropy over the response tokens of those
  rows (prompt and padding targets -100), and the step-0 held-out loss the
  same over the held-out rows, weighted by their response tokens across
  batches. Rows are rebuilt here from the tokenized examples the run
  writes (train.examples.jsonl) and the layout the docs give. Tolerance:
  float32 against the float64 reference forward, 1e-5 relative, which a
  shifted mask (one prompt token learned, or the end-of-text token missed)
  exceeds by far.
- --init takes a run's model parameters and tokenizer and skips its
  optimizer state; a run stopped part way and resumed gives the losses of
  an uninterrupted run bit for bit, across epoch boundaries.
- A short run on a made-up addition task learns: the held-out response
  loss falls well below its start, and kiln generate --run samples from
  the fine-tuned model.
- Bad input is one clear error: a line that is not JSON, a missing or empty
  response, an example longer than the sequence, a pretraining resume of an
  SFT run, a missing --init.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import KILN, MODELS, compile_artifact, save_safetensors  # noqa: E402
from test_models import gpt2_reference, random_weights  # noqa: E402

SEQ = 12
TRAIN = 6


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def write_lines(path, pairs):
    with open(path, "w") as f:
        for prompt, response in pairs:
            f.write(json.dumps({"prompt": prompt, "response": response}) + "\n")


def additions(count, seed):
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        a, b = rng.randint(0, 49), rng.randint(0, 49)
        pairs.append((f"{a}+{b}=", str(a + b)))
    return pairs


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def rows(examples, pad):
    """input_ids and targets of each example, as the docs lay them out."""
    ids = np.full((len(examples), SEQ), pad, dtype=np.int64)
    targets = np.full((len(examples), SEQ), -100, dtype=np.int64)
    for r, e in enumerate(examples):
        tokens, p = e["tokens"], e["prompt_tokens"]
        ids[r, :len(tokens)] = tokens[:SEQ]
        for t in range(SEQ):
            if t + 1 < len(tokens) and t + 1 >= p:
                targets[r, t] = tokens[t + 1]
    return ids, targets


def response_loss(weights, cfg, examples, pad):
    ids, targets = rows(examples, pad)
    logits = torch.from_numpy(gpt2_reference(weights, ids, cfg))
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1),
        ignore_index=-100).item()


class Sft(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.config = os.path.join(MODELS, "gpt2-tiny.json")
        with open(cls.config) as f:
            cls.cfg = json.load(f)
        cls.train = os.path.join(root, "train.kiln")
        # A training artifact with a KV cache: kiln generate samples from
        # the parameters train_step updates.
        cls.manifest = compile_artifact(cls.config, cls.train,
                                        extra=["--mode", "train", "--batch", str(TRAIN), "--seq", str(SEQ),
                                               "--kv-cache", "16"])
        cls.weights = {name: w for name, w in random_weights(cls.manifest, seed=5).items()
                       if not any(p["name"] == name and p.get("state") for p in cls.manifest["parameters"])}
        cls.init = os.path.join(root, "init.safetensors")
        save_safetensors(cls.weights, cls.init)
        cls.data = os.path.join(root, "add.jsonl")
        write_lines(cls.data, additions(600, seed=1))
        cls.small = os.path.join(root, "small.jsonl")
        write_lines(cls.small, additions(TRAIN, seed=2))
        cls.four = os.path.join(root, "four.jsonl")
        write_lines(cls.four, additions(4, seed=6))
        cls.held = os.path.join(root, "held.jsonl")
        write_lines(cls.held, additions(5, seed=3))
        # One tokenizer for every run: a short run trains it on the task.
        cls.tokenizer_run = os.path.join(root, "tokenizer-run")
        done = kiln("sft", cls.train, "--data", cls.data, "--out", cls.tokenizer_run, "--steps", "1",
                    "--vocab-size", "300", "--eval-every", "0")
        assert done.returncode == 0, done.stderr
        cls.tokenizer = os.path.join(cls.tokenizer_run, "tokenizer.model")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def sft(self, out, *extra):
        return kiln("sft", self.train, "--out", out, "--tokenizer", self.tokenizer, *extra)

    def test_loss_is_over_the_response_tokens(self):
        run = os.path.join(self.tmp.name, "oracle")
        done = self.sft(run, "--data", self.small, "--val-data", self.held, "--init", self.init,
                        "--steps", "1", "--eval-every", "0", "--eval-batches", "2")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("loss over the response tokens only", done.stderr)
        metrics = read_jsonl(os.path.join(run, "metrics.jsonl"))
        train = read_jsonl(os.path.join(run, "train.examples.jsonl"))
        val = read_jsonl(os.path.join(run, "val.examples.jsonl"))
        self.assertEqual(len(train), TRAIN)
        self.assertEqual(len(val), 5)
        for e in train + val:
            # Prompt, at least one response token, then end-of-text (id 2).
            self.assertGreater(len(e["tokens"]), e["prompt_tokens"] + 1)
            self.assertEqual(e["tokens"][-1], 2)
        # The held-out set spans two batches (6 + 6 with 7 padding rows):
        # the token-weighted mean is the mean over all response tokens.
        expected_eval = response_loss(self.weights, self.cfg, val, pad=2)
        expected_train = response_loss(self.weights, self.cfg, train, pad=2)
        self.assertEqual(metrics[0]["step"], 0)
        self.assertAlmostEqual(metrics[0]["eval_loss"] / expected_eval, 1.0, delta=1e-5)
        self.assertEqual(metrics[1]["step"], 1)
        self.assertAlmostEqual(metrics[1]["loss"] / expected_train, 1.0, delta=1e-5)
        self.assertEqual(metrics[1]["epoch"], 1.0)
        # A loss over every position (prompt tokens included) differs: the
        # check above can tell.
        ids, _ = rows(train, pad=2)
        logits = torch.from_numpy(gpt2_reference(self.weights, ids, self.cfg))
        full = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                 torch.from_numpy(ids[:, 1:]).reshape(-1)).item()
        self.assertGreater(abs(full / expected_train - 1.0), 1e-3)

    def test_init_from_a_run_and_resume_bitwise(self):
        # Start from the tokenizer run's checkpoint, which holds AdamW state.
        # (A constant learning rate: the part run's --steps 7 leaves the
        # schedule as it is.)
        args = ["--data", self.four, "--val-data", self.held, "--init", self.tokenizer_run,
                "--lr", "1e-3", "--schedule", "constant", "--eval-every", "5", "--checkpoint-every", "3"]
        whole = os.path.join(self.tmp.name, "whole")
        done = kiln("sft", self.train, "--out", whole, "--steps", "10", *args)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("starting from the parameters of", done.stderr)
        # --init's tokenizer was copied into the run.
        with open(self.tokenizer, "rb") as a, open(os.path.join(whole, "tokenizer.model"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        part = os.path.join(self.tmp.name, "part")
        done = kiln("sft", self.train, "--out", part, "--steps", "7", *args)
        self.assertEqual(done.returncode, 0, done.stderr)
        done = kiln("sft", "--resume", "--out", part, "--steps", "10")
        self.assertEqual(done.returncode, 0, done.stderr)
        a = read_jsonl(os.path.join(whole, "metrics.jsonl"))
        b = read_jsonl(os.path.join(part, "metrics.jsonl"))
        # (The part run also evaluated at its last step, 7.)
        pick = lambda rows: [(r["step"], r.get("loss"), r.get("grad_norm"), r.get("epoch"),
                              r.get("eval_loss") if r["step"] % 5 == 0 else None) for r in rows]
        self.assertEqual(pick(a), pick(b))
        self.assertIsNotNone(a[-1]["eval_loss"])
        self.assertEqual(a[-1]["epoch"], 15.0)  # 10 batches of 6 over 4 examples

    def test_learns_and_generates(self):
        run = os.path.join(self.tmp.name, "learn")
        done = kiln("sft", self.train, "--out", run, "--data", self.data, "--tokenizer", self.tokenizer,
                    "--steps", "200", "--lr", "3e-3", "--eval-every", "100", "--seed", "4")
        self.assertEqual(done.returncode, 0, done.stderr)
        metrics = read_jsonl(os.path.join(run, "metrics.jsonl"))
        first, last = metrics[0]["eval_loss"], metrics[-1]["eval_loss"]
        self.assertLess(last, 0.5 * first, (first, last))
        self.assertEqual([e["name"] for e in self.manifest["entry_points"]],
                         ["forward", "prefill", "decode_step", "train_step", "eval_step"])
        # The cache entries read the fine-tuned parameters: greedy text with
        # the cache equals forward's over the whole context.
        for prompt in ("12+30=", "7+7="):
            args = ["generate", self.train, "--run", run, "--prompt", prompt, "--temperature", "0",
                    "--max-tokens", "4"]
            cached, uncached = kiln(*args), kiln(*args, "--no-cache")
            self.assertEqual(cached.returncode, 0, cached.stderr)
            self.assertEqual(uncached.returncode, 0, uncached.stderr)
            self.assertTrue(cached.stdout.startswith(prompt), cached.stdout)
            self.assertEqual(cached.stdout, uncached.stdout)
        # kiln judge: its greedy answers are kiln generate's, and its rate
        # counts the right ones.
        problems = additions(8, seed=7)
        answers = os.path.join(self.tmp.name, "answers.jsonl")
        with open(answers, "w") as f:
            for prompt, answer in problems:
                f.write(json.dumps({"prompt": prompt, "answer": answer}) + "\n")
        judged = kiln("judge", self.train, "--data", answers, "--run", run, "--show", "8", "--max-tokens", "4",
                      "--json")
        self.assertEqual(judged.returncode, 0, judged.stderr)
        *shown, summary = judged.stdout.splitlines()
        right = 0
        for (prompt, answer), line in zip(problems, shown):
            out = kiln("generate", self.train, "--run", run, "--prompt", prompt, "--temperature", "0",
                       "--max-tokens", "4")
            text = out.stdout.strip()[len(prompt):]
            verdict = text.strip() == answer
            right += verdict
            self.assertEqual(line, f"{'right' if verdict else 'wrong'} {prompt}{text} (answer {answer})")
        self.assertEqual(json.loads(summary)["correct"], right)
        self.assertEqual(json.loads(summary)["samples"], 8)
        # More samples than the static batch of 6: two groups of rows, each
        # sample still the one its seed gives alone.
        args = ["generate", self.train, "--run", run, "--prompt", "3+4=", "--max-tokens", "4", "--json",
                "--temperature", "1.5", "--top-k", "0"]
        many = kiln(*args, "--samples", "8", "--seed", "10")
        self.assertEqual(many.returncode, 0, many.stderr)
        lines = [json.loads(line) for line in many.stdout.splitlines()]
        self.assertEqual([line["seed"] for line in lines], list(range(10, 18)))
        for i in (0, 6, 7):
            alone = kiln(*args, "--seed", str(10 + i))
            self.assertEqual(alone.returncode, 0, alone.stderr)
            self.assertEqual(json.loads(alone.stdout)["tokens"], lines[i]["tokens"])
            self.assertEqual(json.loads(alone.stdout)["logprobs"], lines[i]["logprobs"])

    def test_bad_input(self):
        def fails(lines, *extra, data_text=None):
            with tempfile.TemporaryDirectory() as tmp:
                data = os.path.join(tmp, "bad.jsonl")
                with open(data, "w") as f:
                    f.write(data_text if data_text is not None else "".join(line + "\n" for line in lines))
                done = self.sft(os.path.join(tmp, "run"), "--data", data, "--steps", "1", *extra)
                self.assertEqual(done.returncode, 1, done.stderr)
                self.assertTrue(done.stderr.startswith("kiln: error: "), done.stderr)
                self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
                return done.stderr

        good = json.dumps({"prompt": "1+1=", "response": "2"})
        self.assertIn("line 2 is not JSON", fails([good, "{oops", good]))
        self.assertIn("line 1 is not a JSON object", fails(["[1, 2]"]))
        self.assertIn('line 2: "response" is missing', fails([good, json.dumps({"prompt": "x"})]))
        self.assertIn("line 1: the response is empty", fails([json.dumps({"prompt": "x", "response": ""}), good]))
        self.assertIn("has no examples", fails([], data_text="\n\n"))
        long = json.dumps({"prompt": "1+1=" * 10, "response": "2"})
        self.assertIn("--seq", fails([good, good, long, good]))
        self.assertIn("--init: no checkpoint", fails([good] * 4, "--init", "/nonexistent/run"))
        # A fine-tuning run resumes with kiln sft.
        run = os.path.join(self.tmp.name, "bad-resume")
        self.assertEqual(self.sft(run, "--data", self.small, "--steps", "1", "--eval-every", "0").returncode, 0)
        done = kiln("pretrain", "--resume", "--out", run)
        self.assertEqual(done.returncode, 1)
        self.assertIn("holds a fine-tuning run; continue it with 'kiln sft --resume", done.stderr)


if __name__ == "__main__":
    unittest.main()
