"""`kiln grpo` and `kiln ppo`: policy optimization against a judge.

The loss and its gradient are checked against torch in test_objectives;
here the driver around them, on a toy task whose judge wants "7" for every
prompt, starting from a kiln sft run on demonstrations that answer "7" or
"8" at random (so about half the samples are right):

- rollouts.jsonl holds every sample: its reward is the judge's verdict,
  its advantage the group-normalized reward (unbiased standard deviation,
  zero for a group whose rewards are equal), rows of a group share a
  prompt, and each step's mean reward in metrics.jsonl is its rows' mean;
- the KL to the reference is 0 at step 1 (the policy starts as the
  reference);
- 40 steps raise the sampled success rate (8 samples per prompt at
  temperature 1, measured by kiln judge) from about half to 85% or more;
- a run stopped part way and resumed repeats the uninterrupted one, samples
  included (the sampling seed depends on the step alone);
- kiln ppo (value head, GAE, KL-shaped rewards, 2 passes of 2 minibatches per batch) learns
  the same toy task to 85% or more, with rewards recomputed from its
  rollouts and a zero KL at step 1 (GAE itself is checked by hand in
  test/unit/Train/PolicyTest.cpp, the loss against torch in
  test_objectives);
- bad input: answers that cannot fit the sequence, a group that does not
  divide the batch, an artifact of another objective or without a KV
  cache, are one error each.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import KILN, MODELS, compile_artifact  # noqa: E402
from test_sft import read_jsonl  # noqa: E402

GROUP = 4


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def success(output):
    summary = json.loads(output.stdout.splitlines()[-1])
    return summary["correct"] / summary["samples"]


class Grpo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        config = os.path.join(MODELS, "gpt2-tiny.json")
        shape = ["--batch", "8", "--seq", "12"]
        cls.lm = os.path.join(root, "lm.kiln")
        compile_artifact(config, cls.lm, extra=["--mode", "train"] + shape)
        cls.artifact = os.path.join(root, "grpo.kiln")
        compile_artifact(config, cls.artifact,
                         extra=["--mode", "train", "--objective", "grpo", "--kv-cache", "16"] + shape)
        rng = random.Random(0)
        letters = "abcdefghij"
        demos = os.path.join(root, "demos.jsonl")
        with open(demos, "w") as f:
            for _ in range(400):
                f.write(json.dumps({"prompt": rng.choice(letters) + "=",
                                    "response": "7" if rng.random() < 0.5 else "8"}) + "\n")
        cls.prompts = os.path.join(root, "prompts.jsonl")
        with open(cls.prompts, "w") as f:
            for c in letters:
                f.write(json.dumps({"prompt": c + "=", "answer": "7"}) + "\n")
        cls.sft = os.path.join(root, "sft")
        done = kiln("sft", cls.lm, "--data", demos, "--out", cls.sft, "--steps", "150", "--lr", "3e-3",
                    "--vocab-size", "280", "--eval-every", "0")
        assert done.returncode == 0, done.stderr

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def grpo(self, out, *extra):
        return kiln("grpo", self.artifact, "--data", self.prompts, "--val-data", self.prompts, "--out", out,
                    "--init", self.sft, "--group", str(GROUP), "--max-tokens", "4", *extra)

    def sampled_success(self, run):
        done = kiln("judge", self.artifact, "--data", self.prompts, "--run", run, "--samples", "8",
                    "--temperature", "1", "--top-k", "0", "--top-p", "1", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        return success(done)

    def test_learns_and_keeps_its_books(self):
        run = os.path.join(self.tmp.name, "learn")
        done = self.grpo(run, "--steps", "40", "--lr", "1e-3", "--eval-every", "10")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("2 prompts x 4 samples per step", done.stderr)
        before, after = self.sampled_success(self.sft), self.sampled_success(run)
        print(f"grpo: sampled success {before:.3f} -> {after:.3f}")
        self.assertLess(before, 0.7)
        self.assertGreaterEqual(after, 0.85)

        metrics = read_jsonl(os.path.join(run, "metrics.jsonl"))
        rollouts = read_jsonl(os.path.join(run, "rollouts.jsonl"))
        self.assertEqual(len(rollouts), 40 * 8)
        self.assertEqual(metrics[1]["kl"], 0.0)
        self.assertIn("eval_success", metrics[0])
        for step in range(1, 41):
            rows = [r for r in rollouts if r["step"] == step]
            self.assertEqual([r["row"] for r in rows], list(range(8)))
            rewards = np.array([r["reward"] for r in rows])
            for r in rows:
                self.assertEqual(r["reward"], 1.0 if r["response"].strip() == "7" else 0.0, r)
            self.assertAlmostEqual(metrics[step]["reward"], rewards.mean(), places=12)
            for g in range(0, 8, GROUP):
                group = rows[g:g + GROUP]
                self.assertEqual(len({r["prompt"] for r in group}), 1)
                reward = rewards[g:g + GROUP]
                want = np.zeros(GROUP) if reward.std() == 0 else \
                    (reward - reward.mean()) / (reward.std(ddof=1) + 1e-4)
                np.testing.assert_allclose([r["advantage"] for r in group], want, rtol=1e-12, atol=1e-12)

    def test_resume_bitwise(self):
        args = ["--lr", "1e-3", "--schedule", "constant", "--eval-every", "5", "--checkpoint-every", "3"]
        whole = os.path.join(self.tmp.name, "whole")
        self.assertEqual(self.grpo(whole, "--steps", "10", *args).returncode, 0)
        part = os.path.join(self.tmp.name, "part")
        self.assertEqual(self.grpo(part, "--steps", "7", *args).returncode, 0)
        done = kiln("grpo", "--resume", "--out", part, "--steps", "10")
        self.assertEqual(done.returncode, 0, done.stderr)
        pick = lambda rows: [(r["step"], r.get("loss"), r.get("grad_norm"), r.get("reward"), r.get("kl"),
                              r.get("eval_success") if r["step"] % 5 == 0 else None) for r in rows]
        self.assertEqual(pick(read_jsonl(os.path.join(whole, "metrics.jsonl"))),
                         pick(read_jsonl(os.path.join(part, "metrics.jsonl"))))
        self.assertEqual(read_jsonl(os.path.join(whole, "rollouts.jsonl")),
                         read_jsonl(os.path.join(part, "rollouts.jsonl")))

    def test_label(self):
        out = os.path.join(self.tmp.name, "judged.jsonl")
        done = kiln("label", self.artifact, "--prompts", self.prompts, "--out", out, "--run", self.sft,
                    "--judge", "--samples", "6", "--max-tokens", "4")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("label: 60 answers to 10 prompts", done.stdout)
        pairs = read_jsonl(out)
        self.assertGreater(len(pairs), 0)
        for pair in pairs:
            self.assertEqual(pair["chosen"], "7")
            self.assertNotEqual(pair["rejected"], "7")
            self.assertTrue(pair["rejected"])
        self.assertIn(f"; {len(pairs)} pairs", done.stdout)
        # A person: the first prompt's answers are shown, "1" keeps the
        # first as chosen, "q" ends; the pair is appended at once.
        human = os.path.join(self.tmp.name, "human.jsonl")
        done = subprocess.run([KILN, "label", self.artifact, "--prompts", self.prompts, "--out", human,
                               "--run", self.sft, "--max-tokens", "4", "--seed", "3", "--skip", "2"],
                              input="1\nq\n", capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("[3/10] c=", done.stdout)
        shown = [line.strip()[3:] for line in done.stdout.splitlines() if line.strip().startswith(("1: ", "2: "))]
        self.assertEqual(read_jsonl(human), [{"prompt": "c=", "chosen": shown[0], "rejected": shown[1]}])
        self.assertIn("label: 1 pairs appended", done.stdout)

    def test_ppo_learns(self):
        ppo = os.path.join(self.tmp.name, "ppo.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), ppo,
                         extra=["--mode", "train", "--objective", "ppo", "--kv-cache", "16", "--batch", "8",
                                "--seq", "12"])
        run = os.path.join(self.tmp.name, "ppo-run")
        done = kiln("ppo", ppo, "--data", self.prompts, "--val-data", self.prompts, "--out", run,
                    "--init", self.sft, "--max-tokens", "4", "--steps", "40", "--lr", "1e-3", "--eval-every", "20",
                    "--ppo-epochs", "2", "--ppo-minibatches", "2")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("PPO on", done.stderr)
        metrics = read_jsonl(os.path.join(run, "metrics.jsonl"))
        rollouts = read_jsonl(os.path.join(run, "rollouts.jsonl"))
        self.assertEqual(metrics[1]["kl"], 0.0)           # the policy starts as the reference
        self.assertEqual(metrics[1]["kl_penalty"], 0.0)
        for step in (1, 20, 40):
            rows = [r for r in rollouts if r["step"] == step]
            self.assertEqual(len(rows), 8)
            for r in rows:
                self.assertEqual(r["reward"], 1.0 if r["response"].strip() == "7" else 0.0, r)
            self.assertAlmostEqual(metrics[step]["reward"], np.mean([r["reward"] for r in rows]), places=12)
        # The judged checkpoint (its value head skipped by the GRPO artifact),
        # and kiln generate on it.
        after = self.sampled_success(run)
        out = kiln("generate", self.artifact, "--run", run, "--prompt", "a=", "--temperature", "0",
                   "--max-tokens", "4")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.startswith("a="), out.stdout)
        print(f"ppo: sampled success {self.sampled_success(self.sft):.3f} -> {after:.3f}")
        self.assertGreaterEqual(after, 0.85)
        # More minibatches than rows.
        with tempfile.TemporaryDirectory() as tmp:
            done = kiln("ppo", ppo, "--data", self.prompts, "--out", os.path.join(tmp, "r"),
                        "--init", self.sft, "--max-tokens", "4", "--ppo-minibatches", "9")
            self.assertEqual(done.returncode, 1)
            self.assertIn("--ppo-minibatches 9 must be between 1 and the batch's 8 rows", done.stderr)
        # A GRPO artifact has no value head.
        with tempfile.TemporaryDirectory() as tmp:
            done = kiln("ppo", self.artifact, "--data", self.prompts, "--out", os.path.join(tmp, "r"),
                        "--init", self.sft, "--max-tokens", "4")
            self.assertEqual(done.returncode, 1)
            self.assertIn("has no PPO train_step", done.stderr)

    def test_reward_model_rewards(self):
        # A reward model that prefers "7" to "8" (kiln reward on the toy
        # pairs) rewards the rollouts instead of the judge.
        pairs = os.path.join(self.tmp.name, "toy-pairs.jsonl")
        with open(pairs, "w") as f:
            for c in "abcdefghij":
                for _ in range(5):
                    f.write(json.dumps({"prompt": c + "=", "chosen": "7", "rejected": "8"}) + "\n")
        rm = os.path.join(self.tmp.name, "rm.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), rm,
                         extra=["--mode", "train", "--objective", "reward", "--batch", "8", "--seq", "12"])
        rm_run = os.path.join(self.tmp.name, "rm-run")
        done = kiln("reward", rm, "--data", pairs, "--out", rm_run, "--init", self.sft, "--steps", "40",
                    "--lr", "1e-3", "--eval-every", "0")
        self.assertEqual(done.returncode, 0, done.stderr)
        run = os.path.join(self.tmp.name, "rm-grpo")
        done = self.grpo(run, "--steps", "3", "--lr", "1e-4", "--eval-every", "0", "--reward-model", rm,
                         "--reward-checkpoint", rm_run)
        self.assertEqual(done.returncode, 0, done.stderr)
        metrics = read_jsonl(os.path.join(run, "metrics.jsonl"))
        rollouts = read_jsonl(os.path.join(run, "rollouts.jsonl"))
        for step in (1, 2, 3):
            rows = [r for r in rollouts if r["step"] == step]
            verdicts = [1.0 if r["response"].strip() == "7" else 0.0 for r in rows]
            self.assertAlmostEqual(metrics[step]["success"], np.mean(verdicts), places=12)
            self.assertAlmostEqual(metrics[step]["reward"], np.mean([r["reward"] for r in rows]), places=6)
            for g in range(0, 8, GROUP):
                group = rows[g:g + GROUP]
                by_text = {}
                for r in group:
                    by_text.setdefault(r["response"], set()).add(r["reward"])
                for text, values in by_text.items():
                    self.assertEqual(len(values), 1, (text, values))   # same row, same score
                sevens = [r["reward"] for r in group if r["response"] == "7"]
                eights = [r["reward"] for r in group if r["response"] == "8"]
                if sevens and eights:
                    self.assertGreater(min(sevens), max(eights))
        self.assertTrue(any(r["reward"] not in (0.0, 1.0) for r in rollouts))
        # A reward model reading other tokens is refused.
        done = self.grpo(os.path.join(self.tmp.name, "bad-rm"), "--steps", "1", "--reward-model", self.lm)
        self.assertEqual(done.returncode, 1)
        self.assertIn("has no score entry point", done.stderr)

    def test_bad_input(self):
        def fails(*args, artifact=None):
            with tempfile.TemporaryDirectory() as tmp:
                done = kiln("grpo", artifact or self.artifact, "--data", self.prompts, "--out",
                            os.path.join(tmp, "run"), "--init", self.sft, "--steps", "1", *args)
                self.assertEqual(done.returncode, 1, done.stderr)
                self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
                return done.stderr

        self.assertIn("with --max-tokens 16 it does not fit the artifact's 12-token sequence", fails())
        self.assertIn("--group 3 must be at least 2 and divide the artifact's batch of 8",
                      fails("--group", "3", "--max-tokens", "4"))
        self.assertIn("compile it with kiln-compile --mode train --objective grpo",
                      fails("--max-tokens", "4", artifact=self.lm))
        no_cache = os.path.join(self.tmp.name, "nocache.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), no_cache,
                         extra=["--mode", "train", "--objective", "grpo", "--batch", "8", "--seq", "12"])
        self.assertIn("has no KV cache to sample rollouts with", fails("--max-tokens", "4", artifact=no_cache))


if __name__ == "__main__":
    unittest.main()
