"""What bench/quantize_perplexity.py and bench/prune_perplexity.py share:
compiling a model from a pretrain run's checkpoint, calibrating it and
evaluating an artifact on the run's held-out windows."""

import os
import re
import subprocess
import sys


class RunArtifacts:
    def __init__(self, build, model, run):
        self.bin_dir = os.path.join(build, "bin")
        self.model = model
        self.run = run
        self.checkpoint = os.path.join(run, "checkpoint.safetensors")
        if not os.path.exists(self.checkpoint):
            sys.exit(f"{self.checkpoint}: no checkpoint (is '{run}' a kiln pretrain run?)")

    def compile(self, out, *extra, model=None, weights=None):
        """kiln-compile the model (or `model`) from the run's checkpoint (or
        `weights`) to `out`; exits with the command and its errors on
        failure."""
        cmd = [os.path.join(self.bin_dir, "kiln-compile"), model or self.model, "--weights",
               weights or self.checkpoint, "--target", "cpu", "-o", out, *extra]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{' '.join(cmd)}\n{result.stderr}")

    def calibrate(self, tmp, batches, ranges=()):
        """A calibration file with Gram matrices, from the run's training
        split; with `ranges` (kiln calibrate options such as ("--range",
        "mse")), one made with them from a --calibration-histogram
        artifact (compiled once)."""
        histogram = bool(ranges)
        cal = os.path.join(tmp, "calibrate-histogram.kiln" if histogram else "calibrate.kiln")
        if not os.path.exists(cal):
            self.compile(cal, "--mode", "calibrate", "--calibration-gram",
                         *(["--calibration-histogram"] if histogram else []))
        name = "calibration" + "".join("-" + a.strip("-") for a in ranges)
        out = os.path.join(tmp, name + ".safetensors")
        subprocess.run([os.path.join(self.bin_dir, "kiln"), "calibrate", cal, "--run", self.run,
                        "--batches", str(batches), "--out", out, *ranges], check=True, capture_output=True)
        return out

    def evaluate(self, art, batches):
        """(loss, perplexity, tokens) of `art` on the run's held-out windows."""
        out = subprocess.run([os.path.join(self.bin_dir, "kiln"), "eval", art, "--run", self.run,
                              "--batches", str(batches)], check=True, capture_output=True, text=True).stdout
        m = re.search(r"loss ([0-9.]+), perplexity ([0-9.]+) over (\d+) tokens", out)
        return float(m.group(1)), float(m.group(2)), int(m.group(3))
