"""`kiln distill`: a compiled teacher into a compiled student.

- Three steps against torch: a student (gpt2, 32 wide, 1 layer) compiled
  with --objective distill, the MSE hidden-state term through a learned
  projection to the teacher's width, SGD without momentum at a constant
  learning rate, distilled from a teacher (gpt2, 64 wide, 4 layers) on a
  token file of exactly one batch of windows (so every step's batch is the
  same set of windows, whatever the shuffle). The reference applies three
  SGD steps of the float64 loss (F.kl_div with log_target, mixed with the
  reverse KL, F.cross_entropy, F.mse_loss) with the teacher's outputs from
  the teacher artifact; every student parameter after the run agrees within
  1e-5 absolute + 1e-4 relative (float32 arithmetic in the compiled
  forward, backward and update against float64).
- A run with --cache-teacher gives exactly the losses of a run that calls
  the teacher on every batch; a run killed after its first checkpoint and
  resumed gives exactly the losses of an uninterrupted one.
- --alpha 0 trains the student alone (the teacher's outputs are not read).
- A llama student learns from the gpt2 teacher (families may differ).
- --init-from-teacher: a 2-layer student takes the 4-layer teacher's layers
  0 and 2 and its embeddings and final norm, exactly.
- Bad input is one clear error: vocabularies that differ, another
  tokenizer, a teacher without forward or without hidden_states for a
  hidden-state term, a checkpoint for an inference teacher, a student
  without a distillation train_step, an inference student, shapes that do
  not allow --init-from-teacher, out-of-range settings.
"""

import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import (FORTUNES, KILN, MODELS, compile_artifact, fortunes_corpus,  # noqa: E402
                            load_safetensors, run_artifact, save_safetensors)
from test_training import gpt2_forward  # noqa: E402

BATCH, SEQ = 4, 16


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_tokens(path, ids, vocab):
    """A token file (docs/training-data.md): KILNTOK1, version, width, count,
    vocabulary, then little-endian ids."""
    width = 2 if vocab <= 65536 else 4
    with open(path, "wb") as f:
        f.write(b"KILNTOK1" + struct.pack("<IIQQ", 1, width, len(ids), vocab))
        f.write(np.asarray(ids, dtype="<u2" if width == 2 else "<u4").tobytes())


def config(root, name, **changes):
    with open(os.path.join(MODELS, "gpt2-tiny.json")) as f:
        cfg = json.load(f)
    cfg.update(changes)
    path = os.path.join(root, name + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path, cfg


@unittest.skipUnless(os.path.isdir(FORTUNES), "Debian's fortunes are not installed")
class Distill(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.corpus = os.path.join(root, "corpus.txt")
        fortunes_corpus(cls.corpus, 60_000)
        shape = ["--batch", str(BATCH), "--seq", str(SEQ)]
        cls.teacher_config, cls.teacher_cfg = config(root, "teacher", n_layer=4)
        cls.teacher = os.path.join(root, "teacher.kiln")
        compile_artifact(cls.teacher_config, cls.teacher, extra=["--mode", "train", "--hidden-states"] + shape)
        # The teacher: a short pretraining run, whose tokenizer the students share.
        cls.teacher_run = os.path.join(root, "teacher-run")
        done = kiln("pretrain", cls.teacher, "--out", cls.teacher_run, "--data", cls.corpus, "--steps", "40",
                    "--lr", "3e-3", "--vocab-size", "400", "--eval-every", "0", "--log-every", "40")
        assert done.returncode == 0, done.stderr
        cls.student_config, cls.student_cfg = config(root, "student", n_embd=32, n_layer=1, n_head=2)
        cls.student = os.path.join(root, "student.kiln")
        compile_artifact(cls.student_config, cls.student,
                         extra=["--mode", "train", "--objective", "distill"] + shape)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def distill_args(self, run_dir, *extra, student=None, steps=30):
        return ["distill", student or self.student, "--teacher", self.teacher,
                "--teacher-checkpoint", self.teacher_run, "--out", run_dir, "--data", self.corpus,
                "--steps", str(steps), "--lr", "3e-3", "--eval-every", "10", "--eval-batches", "2",
                "--log-every", "10", *extra]

    def run_ok(self, args):
        done = kiln(*args)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done

    def fails(self, args, message):
        done = kiln(*args)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn(message, done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        self.assertLessEqual(len(done.stderr.strip().splitlines()), 3, done.stderr)

    # --- numerics -----------------------------------------------------------

    def test_three_steps_match_torch(self):
        root = self.tmp.name
        alpha, temperature, reverse, coef, lr = 0.7, 2.0, 0.25, 0.5, 0.05
        student = os.path.join(root, "sgd-student.kiln")
        manifest = compile_artifact(
            self.student_config, student,
            extra=["--mode", "train", "--objective", "distill", "--distill-hidden", "mse",
                   "--hidden-projection", str(self.teacher_cfg["n_embd"]), "--batch", str(BATCH),
                   "--seq", str(SEQ), "--optimizer", "sgd", "--momentum", "0", "--weight-decay", "0",
                   "--max-grad-norm", "0"])
        # Exactly BATCH windows of SEQ + 1 tokens in the training file: every
        # step trains on all of them.
        vocab = 400
        rng = np.random.default_rng(7)
        run_dir = os.path.join(root, "three")
        os.makedirs(run_dir)
        train = rng.integers(0, vocab, BATCH * SEQ + 1)
        write_tokens(os.path.join(run_dir, "train.tokens"), train, vocab)
        write_tokens(os.path.join(run_dir, "val.tokens"), rng.integers(0, vocab, 3 * BATCH * SEQ), vocab)
        self.run_ok(["distill", student, "--teacher", self.teacher, "--teacher-checkpoint", self.teacher_run,
                     "--out", run_dir, "--steps", "3", "--lr", str(lr), "--schedule", "constant",
                     "--alpha", str(alpha), "--temperature", str(temperature), "--reverse", str(reverse),
                     "--hidden-coef", str(coef), "--eval-every", "0", "--eval-batches", "1"])
        after = load_safetensors(os.path.join(run_dir, "checkpoint.safetensors"))

        windows = np.stack([train[i * SEQ:i * SEQ + SEQ + 1] for i in range(BATCH)]).astype(np.int64)
        ids, targets = windows[:, :-1], windows[:, 1:]
        teacher_weights = {k: v for k, v in load_safetensors(os.path.join(self.teacher_run, "checkpoint.safetensors")).items()
                           if "/" not in k}
        # The teacher's outputs as its artifact computes them (the run's
        # checkpoint loaded into a copy compiled with those weights).
        frozen = os.path.join(root, "teacher-frozen.kiln")
        if not os.path.exists(frozen):
            path = os.path.join(root, "teacher-weights.safetensors")
            save_safetensors(teacher_weights, path)
            compile_artifact(self.teacher_config, frozen, weights=path,
                             extra=["--hidden-states", "--batch", str(BATCH), "--seq", str(SEQ)])
        teacher_logits = torch.from_numpy(run_artifact(frozen, {"input_ids": ids}, root)["logits"]).double()
        teacher_hidden = torch.from_numpy(
            run_artifact(frozen, {"input_ids": ids}, root, entry="hidden_states")["hidden"]).double()

        initial = {p["name"]: None for p in manifest["parameters"] if not p.get("state")}
        start = load_safetensors(os.path.join(student, "weights.safetensors"))
        params = {n: torch.tensor(start[n], dtype=torch.float64, requires_grad=True) for n in initial}
        ids_t, targets_t = torch.from_numpy(ids), torch.from_numpy(targets)
        for _ in range(3):
            hidden = gpt2_forward(params, ids_t, self.student_cfg, hidden=True)
            logits = hidden @ params["transformer.wte.weight"].T
            ls = F.log_softmax(logits / temperature, -1)
            lt = F.log_softmax(teacher_logits / temperature, -1)
            kl = ((1 - reverse) * F.kl_div(ls, lt, log_target=True, reduction="none").sum(-1)
                  + reverse * F.kl_div(lt, ls, log_target=True, reduction="none").sum(-1)).mean()
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets_t.reshape(-1))
            projected = hidden @ params["distill_projection.weight"].T
            mse = F.mse_loss(projected, teacher_hidden)
            loss = alpha * temperature ** 2 * kl + (1 - alpha) * ce + coef * mse
            grads = torch.autograd.grad(loss, list(params.values()))
            with torch.no_grad():
                for p, g in zip(params.values(), grads):
                    p -= lr * g
        worst = 0.0
        for name, p in params.items():
            want = p.detach().numpy()
            moved = np.abs(want - start[name]).max()
            self.assertGreater(moved, 0, name)  # every parameter learns something
            np.testing.assert_allclose(after[name], want, rtol=1e-4, atol=1e-5, err_msg=name)
            worst = max(worst, np.abs(after[name] - want).max())
        print(f"distill: 3 SGD steps, worst parameter difference {worst:.2e}")

    # --- the run -----------------------------------------------------------

    def test_cache_and_resume_are_exact(self):
        root = self.tmp.name
        live = os.path.join(root, "live")
        done = self.run_ok(self.distill_args(live, "--reverse", "0.5"))
        self.assertIn("teacher's held-out loss", done.stderr)
        cached = os.path.join(root, "cached")
        done = self.run_ok(self.distill_args(cached, "--reverse", "0.5", "--cache-teacher"))
        self.assertIn("teacher cache:", done.stderr)
        self.assertIn("MiB on disk", done.stderr)
        want = read_metrics(live)
        got = read_metrics(cached)
        self.assertEqual([r.get("loss") for r in got], [r.get("loss") for r in want])
        self.assertEqual([r.get("eval_loss") for r in got], [r.get("eval_loss") for r in want])
        first = want[0]
        self.assertIn("teacher_eval_loss", first)
        self.assertIn("eval_kl", want[-1])
        self.assertLess(want[-1]["eval_loss"], first["eval_loss"])   # the student learns
        self.assertLess(want[-1]["eval_kl"], first["eval_kl"])       # towards the teacher

        # Killed after the first checkpoint, resumed with the same command.
        killed = os.path.join(root, "killed")
        args = self.distill_args(killed, "--reverse", "0.5", "--cache-teacher", "--checkpoint-every", "10")
        process = subprocess.Popen([KILN, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        checkpoint = os.path.join(killed, "checkpoint.safetensors")
        while process.poll() is None and not os.path.exists(checkpoint):
            time.sleep(0.01)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        self.assertEqual(process.returncode, -signal.SIGKILL, "the run ended before the kill")
        done = self.run_ok(args + ["--resume"])
        self.assertIn("resuming", done.stderr)
        got = {r["step"]: r for r in read_metrics(killed)}
        self.assertEqual(sorted(got), [r["step"] for r in want])
        for r in want:
            self.assertEqual(got[r["step"]].get("loss"), r.get("loss"), r["step"])
        # A changed setting is refused on resume.
        self.fails(self.distill_args(killed, "--reverse", "0.4", "--cache-teacher", "--resume"),
                   "cannot resume")

    def test_alpha_zero_is_the_student_alone(self):
        run_dir = os.path.join(self.tmp.name, "alone")
        self.run_ok(self.distill_args(run_dir, "--alpha", "0", steps=10))
        rows = read_metrics(run_dir)
        # The loss is the cross-entropy: at step 0 the held-out loss of the
        # initial student is near log(vocab) whatever the teacher.
        self.assertLess(abs(rows[0]["eval_loss"] - np.log(self.student_cfg["vocab_size"])), 0.5)

    def test_init_from_teacher(self):
        root = self.tmp.name
        path, _ = config(root, "half", n_layer=2)
        student = os.path.join(root, "half.kiln")
        compile_artifact(path, student, extra=["--mode", "train", "--objective", "distill",
                                               "--batch", str(BATCH), "--seq", str(SEQ)])
        run_dir = os.path.join(root, "half-run")
        done = self.run_ok(self.distill_args(run_dir, "--init-from-teacher", student=student, steps=1))
        self.assertIn("0 <- 0, 1 <- 2", done.stderr)
        init = load_safetensors(os.path.join(run_dir, "init-from-teacher.safetensors"))
        teacher = load_safetensors(os.path.join(self.teacher_run, "checkpoint.safetensors"))
        for name, value in init.items():
            source = name.replace("transformer.h.1.", "transformer.h.2.")
            np.testing.assert_array_equal(value, teacher[source], err_msg=name)
        self.assertIn("transformer.h.1.attn.c_attn.weight", init)
        # An inference teacher compiled from that checkpoint (its linear
        # weights packed into the matmul's panels when it is loaded, the
        # default) gives the same weights, from its weights file.
        inference = os.path.join(root, "teacher-inference.kiln")
        manifest = compile_artifact(self.teacher_config, inference,
                                    weights=os.path.join(self.teacher_run, "checkpoint.safetensors"))
        self.assertTrue(any(p.get("packed", {}).get("at_load") for p in manifest["parameters"]))
        args = self.distill_args(os.path.join(root, "half-inference"), "--init-from-teacher",
                                 "--tokenizer", os.path.join(self.teacher_run, "tokenizer.model"),
                                 student=student, steps=1)
        at = args.index("--teacher-checkpoint")
        del args[at:at + 2]
        args[args.index(self.teacher)] = inference
        self.run_ok(args)
        again = load_safetensors(os.path.join(root, "half-inference", "init-from-teacher.safetensors"))
        for name, value in init.items():
            np.testing.assert_array_equal(again[name], value, err_msg=name)
        # Widths that differ cannot be copied.
        self.fails(self.distill_args(os.path.join(root, "narrow"), "--init-from-teacher"),
                   "initializing from the teacher needs the same widths")

    def test_another_family(self):
        # A llama student from the gpt2 teacher: only the vocabulary (and
        # the tokenizer) must agree.
        student = os.path.join(self.tmp.name, "llama-student.kiln")
        compile_artifact(os.path.join(MODELS, "llama-tiny.json"), student,
                         extra=["--mode", "train", "--objective", "distill",
                                "--batch", str(BATCH), "--seq", str(SEQ)])
        run_dir = os.path.join(self.tmp.name, "llama-run")
        self.run_ok(self.distill_args(run_dir, student=student, steps=20))
        rows = read_metrics(run_dir)
        self.assertLess(rows[-1]["eval_kl"], rows[0]["eval_kl"])

    # --- bad input ----------------------------------------------------------

    def test_bad_input(self):
        root = self.tmp.name
        out = lambda name: os.path.join(root, "bad-" + name)  # noqa: E731
        shape = ["--batch", str(BATCH), "--seq", str(SEQ)]
        path, _ = config(root, "other-vocab", vocab_size=500, n_embd=32, n_layer=1, n_head=2)
        other = os.path.join(root, "other-vocab.kiln")
        compile_artifact(path, other, extra=["--mode", "train", "--objective", "distill"] + shape)
        self.fails(self.distill_args(out("vocab"), student=other),
                   "differs from the student's (500): teacher and student must share the tokenizer")

        lm = os.path.join(root, "lm-student.kiln")
        compile_artifact(self.student_config, lm, extra=["--mode", "train"] + shape)
        self.fails(self.distill_args(out("lm"), student=lm), "compile it with kiln-compile --mode train --objective distill")
        inference = os.path.join(root, "inference-student.kiln")
        compile_artifact(self.student_config, inference, extra=shape)
        self.fails(self.distill_args(out("inference"), student=inference), "is not a training artifact")

        hidden = os.path.join(root, "hidden-student.kiln")
        compile_artifact(self.student_config, hidden,
                         extra=["--mode", "train", "--objective", "distill", "--distill-hidden", "cosine",
                                "--hidden-projection", "64"] + shape)
        plain_teacher = os.path.join(root, "plain-teacher.kiln")
        compile_artifact(self.teacher_config, plain_teacher, extra=["--mode", "train"] + shape)
        args = self.distill_args(out("hidden"), student=hidden)
        args[args.index(self.teacher)] = plain_teacher
        self.fails(args, "has no hidden_states entry point")

        # A teacher without forward: a hand-written module with another entry.
        mlir = os.path.join(root, "encoder.mlir")
        with open(mlir, "w") as f:
            f.write("func.func @encode(%x: tensor<4x16xi64>) -> tensor<4x16xi64> {\n"
                    "  return %x : tensor<4x16xi64>\n}\n")
        encoder = os.path.join(root, "encoder.kiln")
        compile_artifact(mlir, encoder)
        args = self.distill_args(out("noforward"))
        args[args.index(self.teacher)] = encoder
        self.fails(args, "is an inference artifact; it keeps the weights it was compiled with")
        at = args.index("--teacher-checkpoint")
        args[at:at + 2] = ["--tokenizer", os.path.join(self.teacher_run, "tokenizer.model")]
        self.fails(args, "has no forward entry point")

        # Another tokenizer than the teacher's.
        other_run = os.path.join(root, "other-tokenizer")
        self.run_ok(["pretrain", self.student.replace("student.kiln", "teacher.kiln"), "--out", other_run,
                     "--data", self.corpus, "--steps", "1", "--vocab-size", "380", "--eval-every", "0"])
        self.fails(self.distill_args(out("tokenizer"), "--tokenizer", os.path.join(other_run, "tokenizer.model")),
                   "is not the teacher's tokenizer")
        self.fails(self.distill_args(out("alpha"), "--alpha", "1.5"), "--alpha and --reverse must be in [0, 1]")
        self.fails(self.distill_args(out("both"), "--init", self.teacher_run, "--init-from-teacher"),
                   "--init and --init-from-teacher")


if __name__ == "__main__":
    unittest.main()
