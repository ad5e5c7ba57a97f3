"""`kiln pretrain`, `kiln plot` and `kiln generate` on a compiled gpt2-tiny.

- A short run learns: the final eval loss is below the unigram baseline the
  run reports, metrics.jsonl has a row per step, loss.png is a PNG.
- Resume: a run killed (SIGKILL) at an arbitrary moment after its first
  checkpoint and resumed with --resume gives exactly (bit for bit) the
  losses and gradient norms of an uninterrupted run.
- generate samples text that starts with the prompt, deterministically per
  seed, from the run's tokenizer and checkpoint.
- Bad input is one clear error line: a missing corpus, an empty one, a
  batch larger than the data, an inference artifact, a run directory that
  already holds a run.

The corpus is a slice of Debian's fortunes (scripts/lib/common.sh installs
them); nothing here depends on timing except where the kill lands, and the
resume check holds wherever that is.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from kiln_artifacts import KILN, MODELS, compile_artifact

FORTUNES = "/usr/share/games/fortunes"
STEPS = 200


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


@unittest.skipUnless(os.path.isdir(FORTUNES), "Debian's fortunes are not installed")
class Pretrain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        config = os.path.join(MODELS, "gpt2-tiny.json")
        cls.train = os.path.join(root, "train.kiln")
        compile_artifact(config, cls.train, extra=["--mode", "train", "--batch", "4", "--seq", "32"])
        cls.infer = os.path.join(root, "infer.kiln")
        compile_artifact(config, cls.infer, extra=["--batch", "4", "--seq", "32"])
        # ~300 KB of English: the first fortune files, concatenated.
        cls.corpus = os.path.join(root, "corpus.txt")
        with open(cls.corpus, "w") as out:
            size = 0
            for name in sorted(os.listdir(FORTUNES)):
                path = os.path.join(FORTUNES, name)
                if name.endswith((".dat", ".u8")) or not os.path.isfile(path) or size > 300_000:
                    continue
                with open(path, errors="replace") as f:
                    text = f.read()
                out.write(text)
                size += len(text)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def pretrain_args(self, run_dir):
        return ["pretrain", self.train, "--out", run_dir, "--data", self.corpus,
                "--steps", str(STEPS), "--lr", "5e-3", "--warmup", "10", "--eval-every", "50",
                "--eval-batches", "4", "--checkpoint-every", "10", "--seed", "11"]

    def uninterrupted(self):
        if not hasattr(type(self), "_reference"):
            run_dir = os.path.join(self.tmp.name, "reference")
            done = kiln(*self.pretrain_args(run_dir))
            self.assertEqual(done.returncode, 0, done.stderr)
            type(self)._reference = (run_dir, done.stderr)
        return type(self)._reference

    def test_run_learns_and_writes_metrics_and_plot(self):
        run_dir, log = self.uninterrupted()
        rows = read_metrics(run_dir)
        steps = [r["step"] for r in rows if "loss" in r]
        self.assertEqual(steps, list(range(1, STEPS + 1)))
        start = rows[0]
        self.assertEqual(start["step"], 0)
        final = rows[-1]
        print(f"eval loss {start['eval_loss']:.3f} -> {final['eval_loss']:.3f}; "
              f"unigram baseline {start['unigram_loss']:.3f}")
        self.assertLess(final["eval_loss"], start["unigram_loss"])
        self.assertLess(final["eval_loss"], start["eval_loss"])
        for key in ("lr", "grad_norm", "tokens_per_s", "mfu", "energy_j"):
            self.assertIn(key, final)
        self.assertIn("unigram baseline", log)
        with open(os.path.join(run_dir, "loss.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        plotted = kiln("plot", run_dir)
        self.assertEqual(plotted.returncode, 0, plotted.stderr)
        self.assertEqual(plotted.stdout.strip(), os.path.join(run_dir, "loss.png"))
        for name in ("run.json", "tokenizer.model", "train.tokens", "val.tokens",
                     "checkpoint.safetensors"):
            self.assertTrue(os.path.exists(os.path.join(run_dir, name)), name)

    def test_killed_run_resumes_bitwise(self):
        reference, _ = self.uninterrupted()
        run_dir = os.path.join(self.tmp.name, "killed")
        process = subprocess.Popen([KILN, *self.pretrain_args(run_dir)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        checkpoint = os.path.join(run_dir, "checkpoint.safetensors")
        while process.poll() is None and not os.path.exists(checkpoint):
            time.sleep(0.01)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        self.assertEqual(process.returncode, -signal.SIGKILL, "the run ended before the kill")
        resumed = kiln("pretrain", "--resume", "--out", run_dir)
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertIn("resuming", resumed.stderr)
        print(resumed.stderr.splitlines()[0])
        got = {r["step"]: r for r in read_metrics(run_dir)}
        want = {r["step"]: r for r in read_metrics(reference)}
        self.assertEqual(sorted(got), sorted(want))
        for step in want:
            for key in ("loss", "grad_norm", "lr", "eval_loss"):
                self.assertEqual(got[step].get(key), want[step].get(key), f"step {step} {key}")

    def test_generate(self):
        run_dir, _ = self.uninterrupted()
        args = ["generate", self.train, "--run", run_dir, "--prompt", "The cat",
                "--max-tokens", "20", "--seed", "3"]
        first, second = kiln(*args), kiln(*args)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertTrue(first.stdout.startswith("The cat"), first.stdout)
        self.assertGreater(len(first.stdout.strip()), len("The cat"))
        self.assertEqual(first.stdout, second.stdout)
        greedy = kiln(*args[:-2], "--temperature", "0")
        self.assertEqual(greedy.returncode, 0, greedy.stderr)

    def assert_error(self, done, needle):
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("kiln: error: "), done.stderr)
        self.assertIn(needle, done.stderr)

    def test_bad_input(self):
        root = self.tmp.name
        base = ["--steps", "2", "--eval-batches", "1"]
        self.assert_error(kiln("pretrain", self.train, "--out", os.path.join(root, "b1"),
                               "--data", os.path.join(root, "missing"), *base),
                          "no training data at")
        empty = os.path.join(root, "empty")
        os.makedirs(empty, exist_ok=True)
        self.assert_error(kiln("pretrain", self.train, "--out", os.path.join(root, "b2"),
                               "--data", empty, *base),
                          "contains no text")
        small = os.path.join(root, "small.txt")
        with open(small, "w") as f:
            f.write("A fortune too short to fill a batch of four times thirty-two tokens.\n" * 2)
        self.assert_error(kiln("pretrain", self.train, "--out", os.path.join(root, "b3"),
                               "--data", small, "--vocab-size", "300", *base),
                          "tokens")
        self.assert_error(kiln("pretrain", self.infer, "--out", os.path.join(root, "b4"),
                               "--data", self.corpus, *base),
                          "compile it with kiln-compile --mode train")
        run_dir, _ = self.uninterrupted()
        self.assert_error(kiln(*self.pretrain_args(run_dir)), "already holds a run")
        self.assert_error(kiln("pretrain", "--resume", "--out", os.path.join(root, "nothing")),
                          "has no run.json")
        self.assert_error(kiln("pretrain", "--resume", "--out", run_dir, "--lr", "1"),
                          "cannot change when resuming")


if __name__ == "__main__":
    unittest.main()
