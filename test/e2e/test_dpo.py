"""`kiln dpo`: direct preference optimization on chosen/rejected pairs.

The loss and its gradient are checked against torch in test_objectives;
here the driver around them:

- the reference log-probabilities kept with the pairs equal the summed
  response log-probabilities of the float64 torch reference forward with
  the starting weights (rows laid out as kiln sft's);
- the step-0 held-out loss is log 2 (the policy is the reference);
- the held-out metrics the run reports after training (loss, accuracy,
  margin, implicit rewards) equal those recomputed in torch from the final
  checkpoint and the kept references, 1e-4 absolute;
- training on a few pairs evaluated on the same pairs raises the
  preference accuracy to 1: the chosen response is the one preferred;
- a run stopped part way and resumed repeats the uninterrupted one;
- bad input: identical responses, a missing field, an artifact compiled
  for another objective, are one error each.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import KILN, MODELS, compile_artifact, load_safetensors, save_safetensors  # noqa: E402
from test_models import gpt2_reference  # noqa: E402
from test_sft import additions, read_jsonl, rows, write_lines  # noqa: E402
from test_training import gpt2_forward, model_weights  # noqa: E402

SEQ = 12
PAIRS = 3
BETA = 0.5


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def write_pairs(path, count, seed):
    with open(path, "w") as f:
        for prompt, answer in additions(count, seed):
            wrong = str(int(answer) + 1)
            f.write(json.dumps({"prompt": prompt, "chosen": answer, "rejected": wrong}) + "\n")


def summed_logprobs(weights, cfg, examples):
    ids, targets = rows(examples, pad=2)
    logits = torch.from_numpy(gpt2_reference(weights, ids, cfg)).double()
    t = torch.from_numpy(targets)
    lp = logits.log_softmax(-1).gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (lp * (t != -100)).sum(1).numpy()


class Dpo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.config = os.path.join(MODELS, "gpt2-tiny.json")
        with open(cls.config) as f:
            cls.cfg = json.load(f)
        cls.artifact = os.path.join(root, "dpo.kiln")
        manifest = compile_artifact(cls.config, cls.artifact,
                                    extra=["--mode", "train", "--objective", "dpo",
                                           "--batch", str(2 * PAIRS), "--seq", str(SEQ)])
        cls.weights = model_weights(manifest, seed=9)
        cls.init = os.path.join(root, "init.safetensors")
        save_safetensors(cls.weights, cls.init)
        # A tokenizer trained on the task by a one-step kiln sft run.
        data = os.path.join(root, "add.jsonl")
        write_lines(data, additions(400, seed=1))
        lm = os.path.join(root, "lm.kiln")
        compile_artifact(cls.config, lm, extra=["--mode", "train", "--batch", "4", "--seq", str(SEQ)])
        done = kiln("sft", lm, "--data", data, "--out", os.path.join(root, "tok"), "--steps", "1",
                    "--vocab-size", "300", "--eval-every", "0")
        assert done.returncode == 0, done.stderr
        cls.lm = lm
        cls.tokenizer = os.path.join(root, "tok", "tokenizer.model")
        cls.pairs = os.path.join(root, "pairs.jsonl")
        write_pairs(cls.pairs, PAIRS, seed=4)
        cls.held = os.path.join(root, "held.jsonl")
        write_pairs(cls.held, 5, seed=5)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def dpo(self, out, *extra):
        return kiln("dpo", self.artifact, "--out", out, "--tokenizer", self.tokenizer, "--init", self.init,
                    "--beta", str(BETA), *extra)

    def test_references_metrics_and_learning(self):
        run = os.path.join(self.tmp.name, "learn")
        # Evaluated on the training pairs themselves: accuracy must reach 1.
        done = self.dpo(run, "--data", self.pairs, "--val-data", self.pairs, "--steps", "30",
                        "--lr", "3e-3", "--eval-every", "10", "--schedule", "constant")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("scoring 6 pairs with the reference", done.stderr)
        pairs = read_jsonl(os.path.join(run, "train.pairs.jsonl"))
        self.assertEqual(len(pairs), PAIRS)
        chosen = [p["chosen"] for p in pairs]
        rejected = [p["rejected"] for p in pairs]
        reference = np.array([p["reference"] for p in pairs])
        np.testing.assert_allclose(reference[:, 0], summed_logprobs(self.weights, self.cfg, chosen), atol=1e-4)
        np.testing.assert_allclose(reference[:, 1], summed_logprobs(self.weights, self.cfg, rejected), atol=1e-4)

        metrics = read_jsonl(os.path.join(run, "metrics.jsonl"))
        self.assertAlmostEqual(metrics[0]["eval_loss"], math.log(2), places=6)
        self.assertEqual(metrics[0]["eval_accuracy"], 0.0)
        last = metrics[-1]
        self.assertEqual(last["eval_accuracy"], 1.0, last)
        self.assertLess(last["eval_loss"], 0.5 * math.log(2))

        # The held-out metrics again, in torch from the final checkpoint.
        trained = load_safetensors(os.path.join(run, "checkpoint.safetensors"))
        s_c = summed_logprobs(trained, self.cfg, chosen) - reference[:, 0]
        s_r = summed_logprobs(trained, self.cfg, rejected) - reference[:, 1]
        margin = BETA * (s_c - s_r)
        expected = {"eval_loss": np.mean(np.log1p(np.exp(-margin))),
                    "eval_accuracy": np.mean(margin > 0),
                    "eval_margin": np.mean(margin),
                    "eval_chosen_reward": np.mean(BETA * s_c),
                    "eval_rejected_reward": np.mean(BETA * s_r)}
        for key, value in expected.items():
            self.assertAlmostEqual(last[key], value, delta=1e-4, msg=key)

    def test_resume_bitwise(self):
        args = ["--data", self.pairs, "--val-data", self.held, "--lr", "1e-3", "--schedule", "constant",
                "--eval-every", "4", "--checkpoint-every", "3"]
        whole = os.path.join(self.tmp.name, "whole")
        self.assertEqual(self.dpo(whole, "--steps", "8", *args).returncode, 0)
        part = os.path.join(self.tmp.name, "part")
        self.assertEqual(self.dpo(part, "--steps", "5", *args).returncode, 0)
        done = kiln("dpo", "--resume", "--out", part, "--steps", "8")
        self.assertEqual(done.returncode, 0, done.stderr)
        a = read_jsonl(os.path.join(whole, "metrics.jsonl"))
        b = read_jsonl(os.path.join(part, "metrics.jsonl"))
        pick = lambda rows: [(r["step"], r.get("loss"), r.get("grad_norm"),
                              r.get("eval_accuracy") if r["step"] % 4 == 0 else None) for r in rows]
        self.assertEqual(pick(a), pick(b))

    def test_bad_input(self):
        def fails(lines, artifact=None):
            with tempfile.TemporaryDirectory() as tmp:
                data = os.path.join(tmp, "bad.jsonl")
                with open(data, "w") as f:
                    f.write("".join(json.dumps(line) + "\n" for line in lines))
                done = kiln("dpo", artifact or self.artifact, "--out", os.path.join(tmp, "run"), "--data", data,
                            "--tokenizer", self.tokenizer, "--steps", "1")
                self.assertEqual(done.returncode, 1, done.stderr)
                self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
                return done.stderr

        good = {"prompt": "1+1=", "chosen": "2", "rejected": "3"}
        self.assertIn("line 2: the chosen and rejected responses are the same",
                      fails([good, {"prompt": "1+1=", "chosen": "2", "rejected": "2"}]))
        self.assertIn('line 1: "rejected" is missing', fails([{"prompt": "1+1=", "chosen": "2"}]))
        self.assertIn("compile it with kiln-compile --mode train --objective dpo",
                      fails([good] * 4, artifact=self.lm))
        # And the other way round: kiln sft on the DPO artifact.
        with tempfile.TemporaryDirectory() as tmp:
            done = kiln("sft", self.artifact, "--out", os.path.join(tmp, "run"), "--data", self.pairs,
                        "--tokenizer", self.tokenizer)
            self.assertEqual(done.returncode, 1)
            self.assertIn("compiled for another objective", done.stderr)


class RewardModel(unittest.TestCase):
    """kiln reward: the score head trained with the Bradley-Terry loss
    (checked against torch in test_objectives). Trained and evaluated on
    the same pairs, the pairwise accuracy reaches 1; the held-out metrics
    equal those recomputed in torch from the final checkpoint; --init from
    a language-model run keeps the trunk and starts the score head afresh."""

    @classmethod
    def setUpClass(cls):
        Dpo.setUpClass.__func__(cls)
        cls.reward = os.path.join(cls.tmp.name, "reward.kiln")
        compile_artifact(cls.config, cls.reward,
                         extra=["--mode", "train", "--objective", "reward",
                                "--batch", str(2 * PAIRS), "--seq", str(SEQ)])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def scores(self, weights, examples):
        ids, _ = rows(examples, pad=2)
        params = {n: torch.tensor(w, dtype=torch.float64) for n, w in weights.items()}
        h = gpt2_forward(params, torch.from_numpy(ids), self.cfg, hidden=True)
        lengths = torch.tensor([min(len(e["tokens"]), SEQ) for e in examples])
        return (h[torch.arange(len(examples)), lengths - 1] @ params["score.weight"][0]).numpy()

    def test_learns_pairs_and_reports_torch_metrics(self):
        run = os.path.join(self.tmp.name, "reward-run")
        lm_run = os.path.join(self.tmp.name, "tok")
        done = kiln("reward", self.reward, "--out", run, "--data", self.pairs, "--val-data", self.pairs,
                    "--init", lm_run, "--steps", "30", "--lr", "3e-3", "--eval-every", "10",
                    "--schedule", "constant")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("starting from the parameters of", done.stderr)
        metrics = read_jsonl(os.path.join(run, "metrics.jsonl"))
        last = metrics[-1]
        self.assertEqual(last["eval_accuracy"], 1.0, last)
        trained = load_safetensors(os.path.join(run, "checkpoint.safetensors"))
        # The trunk came from the language-model run.
        start = load_safetensors(os.path.join(lm_run, "checkpoint.safetensors"))
        self.assertFalse(np.array_equal(start["transformer.wpe.weight"], trained["transformer.wpe.weight"]))
        pairs = read_jsonl(os.path.join(run, "val.pairs.jsonl"))
        margin = self.scores(trained, [p["chosen"] for p in pairs]) - \
            self.scores(trained, [p["rejected"] for p in pairs])
        expected = {"eval_loss": np.mean(np.log1p(np.exp(-margin))),
                    "eval_accuracy": np.mean(margin > 0),
                    "eval_margin": np.mean(margin)}
        for key, value in expected.items():
            self.assertAlmostEqual(last[key], value, delta=1e-4, msg=key)

    def test_refuses_other_artifacts(self):
        with tempfile.TemporaryDirectory() as tmp:
            done = kiln("reward", self.artifact, "--out", os.path.join(tmp, "run"), "--data", self.pairs,
                        "--tokenizer", self.tokenizer)
            self.assertEqual(done.returncode, 1)
            self.assertIn("is not a reward model", done.stderr)


if __name__ == "__main__":
    unittest.main()
