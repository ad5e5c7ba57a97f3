"""The preference, policy and distillation objectives (`kiln-compile
--mode train --objective dpo|grpo|reward|ppo|distill`) against
torch.autograd.

gpt2-tiny with random weights is compiled for each objective with SGD,
momentum 0.9, no weight decay and no clipping, so that after one
train_step every `<param>/momentum` buffer is exactly the gradient the step
used (the buffer starts at zero). The torch reference is written from the
methods' papers, independently of the compiled graph:

- token_logprobs: log_softmax(logits) gathered at the targets, 0 where the
  target is -100;
- DPO (Rafailov et al. 2023): -logsigmoid(beta * ((s_c - r_c) - (s_r - r_r)))
  averaged over pairs, s the summed response log-probability (rows [0, P)
  chosen, [P, 2P) rejected), plus nll_coef times the chosen responses'
  negative log-likelihood per token (iterative RPO);
- GRPO (Shao et al. 2024): per response token
  -(min(ratio * A, clip(ratio, 1 - e, 1 + e) * A) - kl_coef * k3), k3 =
  exp(q - l) - (q - l) - 1, averaged over each row's tokens, then rows.
  The sample log-probabilities are the model's plus noise, so some ratios
  fall outside the clip range (counted, so the test shows the clipped
  branch is exercised).
- Distillation (Hinton et al. 2015; the reverse KL of Gu et al. 2024,
  MiniLLM): alpha T^2 times the per-token KL between the temperature-
  softened teacher and student distributions, by F.kl_div with
  log_target, mixed (1 - reverse) forward + reverse, averaged over target
  tokens, plus (1 - alpha) F.cross_entropy; the hidden-state term (cosine,
  MSE) through a learned projection, by F.cosine_similarity and F.mse_loss.

The reference runs in float64 from the same float32 weights. Tolerances:
losses and log-probabilities 1e-5 relative (1e-5 absolute for
log-probabilities near 0); gradients ATOL 2e-6 + 32 float32 ulps of the
tensor's largest gradient element (rounding in sums of many terms, as in
test_training) and RTOL 1e-4. A wrong sign, a missed mask, a
transposed pair or a missing KL term moves gradients by orders more.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import KILN, MODELS, compile_artifact, load_safetensors, report, run_artifact, save_safetensors  # noqa: E402
from test_training import gpt2_forward, model_weights  # noqa: E402

BATCH, SEQ = 4, 10
GRAD_ATOL, GRAD_RTOL, GRAD_ULPS = 2e-6, 1e-4, 32
SGD = ["--optimizer", "sgd", "--momentum", "0.9", "--weight-decay", "0", "--max-grad-norm", "0"]


def response_targets(rng, vocab, prompt_lengths, response_lengths):
    """ids [B, SEQ] and targets: -100 except where the next token is a
    response token (a prompt, a response, then padding)."""
    ids = rng.integers(0, vocab, (BATCH, SEQ + 1))
    targets = np.full((BATCH, SEQ), -100, dtype=np.int64)
    for row, (p, r) in enumerate(zip(prompt_lengths, response_lengths)):
        targets[row, p - 1:p - 1 + r] = ids[row, p:p + r]
    return ids[:, :-1].astype(np.int64), targets


def train_step(artifact, inputs, work):
    """One train_step with lr 1; returns its loss and the gradients (the
    momentum buffers)."""
    checkpoint = os.path.join(work, "after.safetensors")
    args = [KILN, "run", artifact, "--entry", "train_step", "--save-parameters", checkpoint]
    for name, array in inputs.items():
        path = os.path.join(work, name + ".npy")
        np.save(path, array)
        args += ["--input", f"{name}={path}"]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("kiln run failed:\n" + done.stderr)
    loss = float(re.search(r"loss: F32 \[\] = (\S+)", done.stdout).group(1))
    state = load_safetensors(checkpoint)
    grads = {name[:-len("/momentum")]: value for name, value in state.items() if name.endswith("/momentum")}
    return loss, grads


class Objective:
    """Mixed into a TestCase with OBJECTIVE, inputs(rng, cfg, logp) and
    reference_loss(logp, inputs)."""
    FLAGS = []

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        config = os.path.join(MODELS, "gpt2-tiny.json")
        with open(config) as f:
            cls.cfg = json.load(f)
        first = compile_artifact(config, os.path.join(cls.tmp.name, "init.kiln"))
        cls.weights = model_weights(first, seed=21)
        cls.weights.update(cls.extra_weights(cls.cfg))
        path = os.path.join(cls.tmp.name, "w.safetensors")
        save_safetensors(cls.weights, path)
        cls.artifact = os.path.join(cls.tmp.name, cls.OBJECTIVE + ".kiln")
        cls.manifest = compile_artifact(config, cls.artifact, weights=path,
                                        extra=["--mode", "train", "--objective", cls.OBJECTIVE,
                                               "--batch", str(BATCH), "--seq", str(SEQ)] + SGD
                                        + cls.FLAGS)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def extra_weights(cls, cfg):
        return {}

    def torch_logprobs(self, ids, targets):
        """The float64 reference's token log-probabilities (differentiable
        in the returned parameters)."""
        params = {n: torch.tensor(w, dtype=torch.float64, requires_grad=True) for n, w in self.weights.items()}
        hidden = gpt2_forward(params, torch.from_numpy(ids), self.cfg, hidden=True)
        self.hidden = hidden
        logits = hidden @ params["transformer.wte.weight"].T
        t = torch.from_numpy(targets)
        keep = t != -100
        gathered = logits.log_softmax(-1).gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return gathered * keep, keep, params

    def test_token_logprobs(self):
        rng = np.random.default_rng(1)
        ids, targets = response_targets(rng, self.cfg["vocab_size"], [3, 1, 5, 2], [4, 9, 2, 0])
        got = run_artifact(self.artifact, {"input_ids": ids, "targets": targets}, self.tmp.name,
                           entry="token_logprobs")["logprobs"]
        expected, keep, _ = self.torch_logprobs(ids, targets)
        expected = expected.detach().numpy()
        report(f"{self.OBJECTIVE} token_logprobs", got, expected)
        self.assertTrue(np.all(got[~keep.numpy()] == 0))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    def test_loss_and_gradient(self):
        rng = np.random.default_rng(2)
        ids, targets = response_targets(rng, self.cfg["vocab_size"], [3, 2, 4, 1], [5, 7, 3, 6])
        logp, keep, params = self.torch_logprobs(ids, targets)
        self.params = params
        inputs = self.inputs(rng, ids, targets, logp.detach().numpy(), keep.numpy())
        self.params = params
        expected = self.reference_loss(logp, keep, {k: torch.from_numpy(np.asarray(v, dtype=np.float64))
                                                     for k, v in inputs.items()})
        expected.backward()
        evaluated = run_artifact(self.artifact, inputs, self.tmp.name, entry="eval_step")["loss"]
        inputs["lr"] = np.array(1.0, dtype=np.float32)
        loss, grads = train_step(self.artifact, inputs, self.tmp.name)
        self.assertAlmostEqual(loss / expected.item(), 1.0, delta=1e-5)
        self.assertAlmostEqual(float(evaluated) / expected.item(), 1.0, delta=1e-5)
        self.assertEqual(set(grads), set(params))
        for name, p in params.items():
            want = p.grad.numpy()
            tol = GRAD_ATOL + GRAD_ULPS * 2.0 ** -24 * np.abs(want).max()
            np.testing.assert_allclose(grads[name], want, rtol=GRAD_RTOL, atol=tol, err_msg=name)
        worst = max(np.abs(grads[n] - p.grad.numpy()).max() for n, p in params.items())
        print(f"{self.OBJECTIVE}: loss {loss:.6f} (torch {expected.item():.6f}), worst gradient error {worst:.2e}")


class DPO(Objective, unittest.TestCase):
    OBJECTIVE = "dpo"
    BETA, NLL = 0.5, 0.7

    def inputs(self, rng, ids, targets, logp, keep):
        # Reference log-probabilities near the model's, so margins are O(1).
        reference = (logp.sum(1) + rng.normal(0, 2, BATCH)).astype(np.float32)
        return {"input_ids": ids, "targets": targets, "reference_logprobs": reference,
                "beta": np.array(self.BETA, dtype=np.float32), "nll_coef": np.array(self.NLL, dtype=np.float32)}

    def reference_loss(self, logp, keep, x):
        s = logp.sum(1) - x["reference_logprobs"]
        pairs = BATCH // 2
        margin = x["beta"] * (s[:pairs] - s[pairs:])
        nll = -logp[:pairs].sum() / keep[:pairs].sum()
        return -F.logsigmoid(margin).mean() + x["nll_coef"] * nll

    def test_bad_batches(self):
        config = os.path.join(MODELS, "gpt2-tiny.json")
        for batch in (["--batch", "3"], []):
            with self.assertRaises(RuntimeError) as raised:
                compile_artifact(config, os.path.join(self.tmp.name, "bad.kiln"),
                                 extra=["--mode", "train", "--objective", "dpo", "--seq", "8"] + batch)
            self.assertIn("static, even --batch", str(raised.exception))


class Reward(unittest.TestCase):
    """The Bradley-Terry loss on the score head: score = score.weight · the
    final hidden state of each row's last token (lengths - 1); loss =
    -logsigmoid(score_chosen - score_rejected), mean over pairs. Loss and
    every gradient (score.weight included) against torch.autograd."""

    def test_loss_and_gradient(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(MODELS, "gpt2-tiny.json")
            with open(config) as f:
                cfg = json.load(f)
            first = compile_artifact(config, os.path.join(tmp, "init.kiln"), extra=["--score-head"])
            weights = model_weights(first, seed=23)
            self.assertEqual(weights["score.weight"].shape, (1, cfg["n_embd"]))
            path = os.path.join(tmp, "w.safetensors")
            save_safetensors(weights, path)
            artifact = os.path.join(tmp, "reward.kiln")
            compile_artifact(config, artifact, weights=path,
                             extra=["--mode", "train", "--objective", "reward", "--batch", str(BATCH),
                                    "--seq", str(SEQ)] + SGD)
            rng = np.random.default_rng(5)
            ids = rng.integers(0, cfg["vocab_size"], (BATCH, SEQ)).astype(np.int64)
            lengths = np.array([SEQ, 3, 7, 1], dtype=np.int64)
            scores = run_artifact(artifact, {"input_ids": ids, "lengths": lengths}, tmp, entry="score")["scores"]

            params = {n: torch.tensor(w, dtype=torch.float64, requires_grad=True) for n, w in weights.items()}
            h = gpt2_forward(params, torch.from_numpy(ids), cfg, hidden=True)
            last = h[torch.arange(BATCH), torch.from_numpy(lengths) - 1]
            expected_scores = last @ params["score.weight"][0]
            np.testing.assert_allclose(scores, expected_scores.detach().numpy(), rtol=1e-5, atol=1e-5)
            pairs = BATCH // 2
            expected = -F.logsigmoid(expected_scores[:pairs] - expected_scores[pairs:]).mean()
            expected.backward()
            loss, grads = train_step(artifact, {"input_ids": ids, "lengths": lengths,
                                                "lr": np.array(1.0, dtype=np.float32)}, tmp)
            self.assertAlmostEqual(loss / expected.item(), 1.0, delta=1e-5)
            self.assertEqual(set(grads), set(params))
            for name, p in params.items():
                want = p.grad.numpy()
                tol = GRAD_ATOL + GRAD_ULPS * 2.0 ** -24 * np.abs(want).max()
                np.testing.assert_allclose(grads[name], want, rtol=GRAD_RTOL, atol=tol, err_msg=name)
            print(f"reward: loss {loss:.6f} (torch {expected.item():.6f})")


class PPO(Objective, unittest.TestCase):
    """PPO (Schulman et al. 2017, as TRL): the clipped policy loss over the
    response tokens plus vf_coef times the clipped value loss of the value
    head (value_head.weight · hidden + value_head.bias at every position)."""
    OBJECTIVE = "ppo"
    CLIP, VALUE_CLIP, VF = 0.2, 0.2, 0.1

    @classmethod
    def extra_weights(cls, cfg):
        rng = np.random.default_rng(31)
        return {"value_head.weight": (0.1 * rng.standard_normal((1, cfg["n_embd"]))).astype(np.float32),
                "value_head.bias": np.array([0.3], dtype=np.float32)}

    def inputs(self, rng, ids, targets, logp, keep):
        sample = (logp + rng.normal(0, 0.3, logp.shape) * keep).astype(np.float32)
        values = (self.hidden @ self.params["value_head.weight"][0] + self.params["value_head.bias"]).detach().numpy()
        old = (values + rng.normal(0, 0.3, values.shape)).astype(np.float32)
        ratio = np.exp(logp - sample)[keep]
        clipped = np.sum((ratio < 1 - self.CLIP) | (ratio > 1 + self.CLIP))
        self.assertGreater(clipped, 2)
        self.assertLess(clipped, ratio.size - 2)
        moved = np.abs(values - old)[keep]
        self.assertGreater(np.sum(moved > self.VALUE_CLIP), 2)   # the value clip is used too
        return {"input_ids": ids, "targets": targets, "sample_logprobs": sample,
                "advantages": rng.normal(0, 1, logp.shape).astype(np.float32),
                "returns": rng.normal(0, 1, logp.shape).astype(np.float32),
                "sample_values": old,
                "clip": np.array(self.CLIP, dtype=np.float32),
                "value_clip": np.array(self.VALUE_CLIP, dtype=np.float32),
                "vf_coef": np.array(self.VF, dtype=np.float32)}

    def reference_loss(self, logp, keep, x):
        tokens = keep.sum()
        ratio = torch.exp(logp - x["sample_logprobs"])
        a = x["advantages"]
        pg = torch.max(-a * ratio, -a * torch.clamp(ratio, 1 - x["clip"], 1 + x["clip"]))
        policy = (pg * keep).sum() / tokens
        v = self.hidden @ self.params["value_head.weight"][0] + self.params["value_head.bias"]
        u = x["sample_values"]
        vc = u + torch.clamp(v - u, -x["value_clip"], x["value_clip"])
        r = x["returns"]
        value = (0.5 * torch.max((v - r) ** 2, (vc - r) ** 2) * keep).sum() / tokens
        return policy + x["vf_coef"] * value


class GRPO(Objective, unittest.TestCase):
    OBJECTIVE = "grpo"
    KL, CLIP = 0.05, 0.2

    def inputs(self, rng, ids, targets, logp, keep):
        sample = (logp + rng.normal(0, 0.3, logp.shape) * keep).astype(np.float32)
        reference = (logp + rng.normal(0, 0.3, logp.shape) * keep).astype(np.float32)
        ratio = np.exp(logp - sample)[keep]
        clipped = np.sum((ratio < 1 - self.CLIP) | (ratio > 1 + self.CLIP))
        self.assertGreater(clipped, 2)            # both branches of the clip are used
        self.assertLess(clipped, ratio.size - 2)
        return {"input_ids": ids, "targets": targets, "sample_logprobs": sample,
                "reference_logprobs": reference,
                "advantages": rng.normal(0, 1, BATCH).astype(np.float32),
                "kl_coef": np.array(self.KL, dtype=np.float32), "clip": np.array(self.CLIP, dtype=np.float32)}

    def reference_loss(self, logp, keep, x):
        ratio = torch.exp(logp - x["sample_logprobs"])
        a = x["advantages"].unsqueeze(1)
        surrogate = torch.min(ratio * a, torch.clamp(ratio, 1 - x["clip"], 1 + x["clip"]) * a)
        d = x["reference_logprobs"] - logp
        k3 = torch.exp(d) - d - 1
        per_token = -(surrogate - x["kl_coef"] * k3) * keep
        return (per_token.sum(1) / keep.sum(1).clamp(min=1)).mean()


class Distill(Objective, unittest.TestCase):
    """Forward KL at temperature 2, mixed with the cross-entropy."""
    OBJECTIVE = "distill"
    ALPHA, T, REVERSE = 0.6, 2.0, 0.0
    test_token_logprobs = None  # distillation scores no sequences

    def inputs(self, rng, ids, targets, logp, keep):
        vocab = self.cfg["vocab_size"]
        x = {"input_ids": ids, "targets": targets,
             "teacher_logits": (2.0 * rng.standard_normal((BATCH, SEQ, vocab))).astype(np.float32),
             "alpha": np.array(self.ALPHA, dtype=np.float32),
             "temperature": np.array(self.T, dtype=np.float32),
             "reverse": np.array(self.REVERSE, dtype=np.float32)}
        x.update(self.hidden_inputs(rng))
        return x

    def hidden_inputs(self, rng):
        return {}

    def reference_loss(self, logp, keep, x):
        logits = self.hidden @ self.params["transformer.wte.weight"].T
        t = x["temperature"]
        ls = F.log_softmax(logits / t, -1)
        lt = F.log_softmax(x["teacher_logits"] / t, -1)
        forward = F.kl_div(ls, lt, log_target=True, reduction="none").sum(-1)   # KL(teacher || student)
        backward = F.kl_div(lt, ls, log_target=True, reduction="none").sum(-1)  # KL(student || teacher)
        divergence = (1 - x["reverse"]) * forward + x["reverse"] * backward
        soft = (divergence * keep).sum() / keep.sum()
        targets = torch.from_numpy(self.targets)
        hard = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return x["alpha"] * t * t * soft + (1 - x["alpha"]) * hard + self.hidden_loss(keep, x)

    def hidden_loss(self, keep, x):
        return 0.0

    def test_loss_and_gradient(self):
        # The hard term needs the targets themselves.
        rng = np.random.default_rng(2)
        _, self.targets = response_targets(rng, self.cfg["vocab_size"], [3, 2, 4, 1], [5, 7, 3, 6])
        super().test_loss_and_gradient()


class DistillReverse(Distill):
    """Forward and reverse KL mixed (0.7 and 0.3), a low temperature."""
    ALPHA, T, REVERSE = 0.8, 0.7, 0.3


class DistillHidden(Distill):
    """The cosine hidden-state term through a learned projection from the
    student's width (64) to a wider teacher's (96)."""
    FLAGS = ["--distill-hidden", "cosine", "--hidden-projection", "96"]
    TERM, COEF = "cosine", 0.5

    @classmethod
    def extra_weights(cls, cfg):
        rng = np.random.default_rng(41)
        return {"distill_projection.weight": (0.1 * rng.standard_normal((96, cfg["n_embd"]))).astype(np.float32)}

    def hidden_inputs(self, rng):
        return {"teacher_hidden": rng.standard_normal((BATCH, SEQ, 96)).astype(np.float32),
                "hidden_coef": np.array(self.COEF, dtype=np.float32)}

    def hidden_loss(self, keep, x):
        student = self.hidden @ self.params["distill_projection.weight"].T
        teacher = x["teacher_hidden"]
        if self.TERM == "cosine":
            term = 1 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8)
        else:
            term = F.mse_loss(student, teacher, reduction="none").mean(-1)
        return x["hidden_coef"] * (term * keep).sum() / keep.sum()


class DistillHiddenMSE(DistillHidden):
    FLAGS = ["--distill-hidden", "mse", "--hidden-projection", "96"]
    TERM, COEF = "mse", 0.25


if __name__ == "__main__":
    unittest.main()
