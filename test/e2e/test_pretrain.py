"""`kiln pretrain`, `kiln plot` and `kiln generate` on a compiled gpt2-tiny.

- A short run learns: the final eval loss is below the unigram baseline the
  run reports, metrics.jsonl has a row per step, loss.png is a PNG.
- Resume: a run killed (SIGKILL) at an arbitrary moment after its first
  checkpoint and resumed with --resume gives exactly (bit for bit) the
  losses and gradient norms of an uninterrupted run.
- generate samples text that starts with the prompt, deterministically per
  seed, from the run's tokenizer and checkpoint; with a KV cache (an
  inference artifact compiled from the checkpoint) greedy text equals the
  no-cache path's, batched samples equal the same seeds alone, --stop and
  --logprobs work.
- Bad input is one clear error line: a missing corpus, an empty one, a
  batch larger than the data, an inference artifact, a run directory that
  already holds a run.

The corpus is a slice of Debian's fortunes (scripts/lib/common.sh installs
them); nothing here depends on timing except where the kill lands, and the
resume check holds wherever that is.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import numpy as np

from kiln_artifacts import FORTUNES, KILN, MODELS, compile_artifact, fortunes_corpus, load_safetensors, save_safetensors


def safetensors_metadata(path):
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(length)).get("__metadata__", {})

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
        fortunes_corpus(cls.corpus, 300_000)

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
        # kiln eval of the training artifact with the run's checkpoint, on
        # the run's windows: the run's final eval loss (eval_step's fp32
        # cross-entropy against forward's logits averaged in double).
        checkpoint = os.path.join(run_dir, "checkpoint.safetensors")
        evaluated = kiln("eval", self.train, "--run", run_dir, "--checkpoint", checkpoint, "--json")
        self.assertEqual(evaluated.returncode, 0, evaluated.stderr)
        loss = json.loads(evaluated.stdout)["loss"]
        self.assertLess(abs(loss - final["eval_loss"]), 1e-5 * final["eval_loss"])
        # The same weights quantized to w4g32 by kiln-compile: a little worse.
        quantized = os.path.join(self.tmp.name, "w4.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), quantized, weights=checkpoint,
                         extra=["--batch", "4", "--seq", "32", "--quantize", "w4g32"])
        evaluated = kiln("eval", quantized, "--run", run_dir, "--json")
        self.assertEqual(evaluated.returncode, 0, evaluated.stderr)
        w4 = json.loads(evaluated.stdout)["loss"]
        print(f"kiln eval: f32 {loss:.5f}, w4g32 {w4:.5f}")
        self.assertNotEqual(w4, loss)
        self.assertLess(abs(w4 - loss), 0.05 * loss)

    def kill_once_written(self, args, path):
        """Starts `kiln ARGS` and SIGKILLs it as soon as `path` exists."""
        process = subprocess.Popen([KILN, *args], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        while process.poll() is None and not os.path.exists(path):
            time.sleep(0.01)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        self.assertEqual(process.returncode, -signal.SIGKILL, "the run ended before the kill")

    def assert_same_metrics(self, run_dir, reference, keys):
        """The same steps, and bit-equal `keys` at each, as the reference run."""
        got = {r["step"]: r for r in read_metrics(run_dir)}
        want = {r["step"]: r for r in read_metrics(reference)}
        self.assertEqual(sorted(got), sorted(want))
        for step in want:
            for key in keys:
                self.assertEqual(got[step].get(key), want[step].get(key), f"step {step} {key}")

    def test_killed_run_resumes_bitwise(self):
        reference, _ = self.uninterrupted()
        run_dir = os.path.join(self.tmp.name, "killed")
        self.kill_once_written(self.pretrain_args(run_dir),
                               os.path.join(run_dir, "checkpoint.safetensors"))
        # The natural way to resume: the original command plus --resume.
        resumed = kiln(*self.pretrain_args(run_dir), "--resume")
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertIn("resuming", resumed.stderr)
        print(resumed.stderr.splitlines()[0])
        self.assert_same_metrics(run_dir, reference, ("loss", "grad_norm", "lr", "eval_loss"))

    def test_run_killed_while_writing_a_checkpoint_resumes_bitwise(self):
        """SIGKILL while a checkpoint's temporary file is being written: the
        last complete checkpoint stays as it was, and the resumed run gives
        the uninterrupted run's metrics bit for bit."""
        reference, _ = self.uninterrupted()
        run_dir = os.path.join(self.tmp.name, "killed-writing")
        os.makedirs(run_dir)
        process = subprocess.Popen([KILN, *self.pretrain_args(run_dir)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        temporary = None
        # Polled without sleeping: a write takes a few milliseconds.
        while process.poll() is None and temporary is None:
            temporary = next((n for n in os.listdir(run_dir)
                              if n.startswith("checkpoint.safetensors.tmp.")), None)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        self.assertEqual(process.returncode, -signal.SIGKILL,
                         "the run ended before a checkpoint write was seen")
        # A checkpoint before the interrupted one loads; the next run removes
        # the temporary file (if the kill landed before the rename).
        if os.path.exists(os.path.join(run_dir, "checkpoint.safetensors")):
            load_safetensors(os.path.join(run_dir, "checkpoint.safetensors"))
        resumed = kiln(*self.pretrain_args(run_dir), "--resume")
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertFalse([n for n in os.listdir(run_dir) if ".tmp." in n])
        self.assert_same_metrics(run_dir, reference, ("loss", "grad_norm", "lr", "eval_loss"))

    def test_full_disk_stops_the_run_and_keeps_the_last_checkpoint(self):
        """Out of disk during a checkpoint write: the run exits 1 naming the
        file and the cause, the previous checkpoint is intact, no temporary
        file is left, and with space again the run resumes to the same
        metrics as a run that never ran out. The disk is a size-limited
        tmpfs in a private mount namespace (unshare)."""
        # How much one checkpoint and the rest of a run directory take.
        sized, done = self.short_run("sized", 1)
        self.assertEqual(done.returncode, 0, done.stderr)
        checkpoint = os.path.getsize(os.path.join(sized, "checkpoint.safetensors"))
        names = os.listdir(sized)
        total = sum(os.path.getsize(os.path.join(sized, n)) for n in names)
        # The files a run writes before its second checkpoint: all but the
        # loss plot, written at the end.
        before = total - os.path.getsize(os.path.join(sized, "loss.png"))
        # Room for those (tmpfs gives each file whole pages) and half a
        # checkpoint more: not for a second checkpoint beside the first (an
        # atomic write needs both at once).
        size_kb = (before + checkpoint // 2) // 1024 + 4 * len(names)
        reference, done = self.short_run("roomy", 4)
        self.assertEqual(done.returncode, 0, done.stderr)

        out = os.path.join(self.tmp.name, "full-disk")
        disk = os.path.join(out, "disk")
        os.makedirs(disk)
        run = os.path.join(disk, "run")
        args = ["pretrain", self.train, "--out", run, "--data", self.corpus,
                "--steps", "4", "--eval-batches", "1", "--eval-every", "0",
                "--checkpoint-every", "1"]
        quote = lambda words: " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        script = f"""
set -u
mount -t tmpfs -o size={size_kb}k kiln-full-disk {disk} || exit 77
{quote([KILN, *args])} 2> {out}/full.err
echo $? > {out}/full.rc
ls -a {run} > {out}/full.ls
cp {run}/checkpoint.safetensors {out}/kept.safetensors
mount -o remount,size={4 * (total + checkpoint) // 1024}k {disk}
{quote([KILN, *args, "--resume"])} 2> {out}/resumed.err
echo $? > {out}/resumed.rc
cp {run}/metrics.jsonl {out}/metrics.jsonl
"""
        unshare = ["unshare", "--mount"] if os.geteuid() == 0 else \
            ["unshare", "--user", "--map-root-user", "--mount"]
        if shutil.which("unshare") is None:
            self.skipTest("unshare (util-linux) is not installed")
        namespace = subprocess.run([*unshare, "sh", "-c", script],
                                   capture_output=True, text=True)
        if namespace.returncode == 77 or not os.path.exists(os.path.join(out, "full.rc")):
            self.skipTest("cannot mount a size-limited tmpfs here: "
                          + (namespace.stderr.strip() or "unshare failed"))
        self.assertEqual(namespace.returncode, 0, namespace.stderr)
        def read(name):
            with open(os.path.join(out, name)) as f:
                return f.read()

        self.assertEqual(read("full.rc").strip(), "1", read("full.err"))
        last = read("full.err").strip().splitlines()[-1]
        self.assertTrue(last.startswith("kiln: error: "), read("full.err"))
        self.assertIn("No space left on device", last)
        self.assertIn("checkpoint.safetensors", last)
        self.assertNotIn(".tmp.", read("full.ls"), "a temporary file was left")
        # The checkpoint kept is step 1's, whole (the resumed run below
        # reproduces steps 2-4 from it bit for bit).
        kept = os.path.join(out, "kept.safetensors")
        self.assertEqual(safetensors_metadata(kept).get("step"), "1")
        for name, array in load_safetensors(kept).items():
            self.assertTrue(np.isfinite(array).all(), name)

        self.assertEqual(read("resumed.rc").strip(), "0", read("resumed.err"))
        self.assert_same_metrics(out, reference, ("loss", "grad_norm", "lr"))

    def test_run_killed_before_its_first_checkpoint_resumes_from_step_0(self):
        """A run with no checkpoint yet resumes from step 0 (it used to be
        stuck: --resume wanted a checkpoint, a restart saw the metrics) and
        removes the temporary files interrupted writes left."""
        reference, _ = self.uninterrupted()
        run_dir = os.path.join(self.tmp.name, "early")
        args = self.pretrain_args(run_dir)
        args[args.index("--checkpoint-every") + 1] = "0"   # only at the end
        self.kill_once_written(args, os.path.join(run_dir, "metrics.jsonl"))
        self.assertFalse(os.path.exists(os.path.join(run_dir, "checkpoint.safetensors")))
        stale = os.path.join(run_dir, "checkpoint.safetensors.tmp.Ab12Cd")
        with open(stale, "wb") as f:
            f.write(b"\0" * 4096)
        resumed = kiln(*args, "--resume")
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertIn("no checkpoint yet: starting from step 0", resumed.stderr)
        self.assertFalse(os.path.exists(stale))
        self.assert_same_metrics(run_dir, reference, ("loss", "grad_norm", "eval_loss"))

    def short_run(self, name, steps, *extra):
        run_dir = os.path.join(self.tmp.name, name)
        done = kiln("pretrain", self.train, "--out", run_dir, "--data", self.corpus,
                    "--steps", str(steps), "--eval-batches", "1", "--eval-every", "0",
                    "--checkpoint-every", "1", *extra)
        return run_dir, done

    def test_non_finite_values_stop_the_run_before_a_checkpoint(self):
        """A NaN or inf never reaches a checkpoint, and the run exits 1
        naming the step and what went non-finite."""
        # An lr that is finite as a double but not as the f32 train_step takes.
        _, done = self.short_run("huge-lr", 2, "--lr", "1e39")
        self.assert_error(done, "not finite as float32")
        # An lr that makes the parameters explode: step 1's update is finite
        # (and checkpointed), step 2's forward overflows.
        run_dir, done = self.short_run("explodes", 4, "--lr", "1e30")
        self.assert_error(done, "at step 2; try a lower --lr")
        state = load_safetensors(os.path.join(run_dir, "checkpoint.safetensors"))
        for name, array in state.items():
            self.assertTrue(np.isfinite(array).all(), name)
        # NaN injected into the optimizer state: the next update makes a
        # parameter NaN, and its checkpoint is refused.
        run_dir, done = self.short_run("injected", 2)
        self.assertEqual(done.returncode, 0, done.stderr)
        path = os.path.join(run_dir, "checkpoint.safetensors")
        metadata = safetensors_metadata(path)
        state = load_safetensors(path)
        name = next(n for n in state if n.endswith("/adam_v") and state[n].ndim == 2)
        state[name][0, 0] = np.nan
        save_safetensors(state, path, metadata=metadata)
        before = open(path, "rb").read()
        resumed = kiln("pretrain", "--resume", "--out", run_dir, "--steps", "4")
        param = name[: -len("/adam_v")]
        # The parameter or its adam_v, whichever the checkpoint lists first.
        self.assert_error(resumed, f"step 3: 1 element(s) of '{param}")
        self.assertIn("the checkpoint was not written", resumed.stderr)
        self.assertEqual(open(path, "rb").read(), before, "the checkpoint changed")

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

    def test_generate_with_kv_cache(self):
        """An inference artifact compiled from the run's checkpoint with
        --kv-cache: greedy text equals the no-cache path's, samples drawn
        side by side equal the same seeds drawn alone, --stop cuts a sample
        where its text first shows the stop string, --json gives one
        log-probability per token and the finish reason."""
        run_dir, _ = self.uninterrupted()
        art = os.path.join(self.tmp.name, "gen.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), art,
                         weights=os.path.join(run_dir, "checkpoint.safetensors"),
                         extra=["--kv-cache", "32"])

        def samples(*extra):
            done = kiln("generate", art, "--run", run_dir, "--prompt", "The cat", "--json", *extra)
            self.assertEqual(done.returncode, 0, done.stderr)
            return [json.loads(line) for line in done.stdout.splitlines()]

        short = ["generate", art, "--run", run_dir, "--prompt", "The cat", "--max-tokens", "20"]
        greedy = kiln(*short, "--temperature", "0")
        self.assertEqual(greedy.returncode, 0, greedy.stderr)
        self.assertIn("is an inference artifact", greedy.stderr)
        self.assertTrue(greedy.stdout.startswith("The cat"), greedy.stdout)
        self.assertEqual(greedy.stdout, kiln(*short, "--temperature", "0", "--no-cache").stdout)

        # Past the 32 slots the rows are refilled: 40 tokens unless the end
        # token comes first.
        long = samples("--max-tokens", "40", "--seed", "2")[0]
        self.assertTrue(len(long["tokens"]) == 40 or long["finish"] == "eos", long)

        batch = samples("--max-tokens", "20", "--samples", "3", "--seed", "5")
        self.assertEqual([s["seed"] for s in batch], [5, 6, 7])
        for s in batch:
            alone = samples("--max-tokens", "20", "--seed", str(s["seed"]))[0]
            for key in ("text", "tokens", "finish"):
                self.assertEqual(s[key], alone[key], key)
            np.testing.assert_allclose(s["logprobs"], alone["logprobs"], atol=1e-4)
            self.assertEqual(len(s["logprobs"]), len(s["tokens"]))
            self.assertTrue(all(lp <= 0 for lp in s["logprobs"]))

        # A stop string taken from a sample's text cuts the same sample
        # right before the string's first appearance.
        full = samples("--max-tokens", "20", "--seed", "9")[0]
        text = full["text"]
        self.assertGreater(len(text), 6, full)
        stop = text[4:7]
        cut = samples("--max-tokens", "20", "--seed", "9", "--stop", stop)[0]
        self.assertEqual(cut["finish"], "stop")
        self.assertEqual(cut["text"], text[: text.index(stop)])
        self.assertEqual(cut["tokens"], full["tokens"][: len(cut["tokens"])])

        self.assert_error(kiln(*short, "--stop", "x", "--no-cache"), "need an artifact with a KV cache")

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
        # A changed setting names the old and the new value.
        self.assert_error(kiln("pretrain", "--resume", "--out", run_dir, "--lr", "1"),
                          "with --lr 1.0: the run was started with 0.005")
        self.assert_error(kiln(*self.pretrain_args(run_dir), "--resume", "--data", small),
                          f"with --data '{small}': the run was started with '{self.corpus}'")
        self.assert_error(kiln(*self.pretrain_args(run_dir), "--resume", "--eval-every", "7"),
                          "with --eval-every 7: the run was started with 50")

    def test_resume_accepts_the_same_settings(self):
        """A finished run resumed with its own settings (the artifact spelled
        another way) and with none but --out resumes at its last step."""
        reference, _ = self.uninterrupted()
        for i, extra in enumerate(([], None)):
            run_dir = os.path.join(self.tmp.name, f"again{i}")
            shutil.copytree(reference, run_dir)
            if extra is None:
                args = ["pretrain", "--resume", "--out", run_dir]
            else:
                args = self.pretrain_args(run_dir) + ["--resume"]
                args[1] = os.path.join(os.path.dirname(self.train), ".", os.path.basename(self.train))
            done = kiln(*args)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn(f"resuming '{run_dir}' at step {STEPS}", done.stderr)

    def test_progress_names_the_step_of_an_old_eval(self):
        """The progress column shows when the eval loss was measured unless
        it was measured at the line's own step (issue: step 0's value read as
        current)."""
        _, log = self.uninterrupted()
        lines = [l for l in log.splitlines() if l.startswith("step ")]
        self.assertTrue(lines, log)
        for line in lines:
            step = int(line.split()[1].split("/")[0])
            eval_part = [p for p in line.split(" | ") if p.startswith("eval ")]
            if not eval_part:
                continue
            if step % 50 == 0:
                self.assertNotIn("@", eval_part[0], line)
            else:
                self.assertIn(f"@{step // 50 * 50}", eval_part[0], line)


if __name__ == "__main__":
    unittest.main()
