"""Helpers for end-to-end tests of whole artifacts.

Compile with `kiln-compile --target cpu`, run with `kiln run`, and read and
write the files in between (safetensors weights, .npy inputs and outputs).
Tool paths come from the environment (KILN_COMPILE, KILN), as CTest sets
them; the defaults look on PATH.
"""

import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from kiln.io import load_safetensors, save_safetensors  # noqa: E402,F401

KILN_COMPILE = os.environ.get("KILN_COMPILE", "kiln-compile")
KILN = os.environ.get("KILN", "kiln")
MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models")
FORTUNES = "/usr/share/games/fortunes"


def fortunes_corpus(path, size):
    """Writes about `size` bytes of English to `path`: the first of Debian's
    fortune files (scripts/lib/common.sh installs them), concatenated."""
    with open(path, "w") as out:
        written = 0
        for name in sorted(os.listdir(FORTUNES)):
            source = os.path.join(FORTUNES, name)
            if name.endswith((".dat", ".u8")) or not os.path.isfile(source) or written > size:
                continue
            with open(source, errors="replace") as f:
                text = f.read()
            out.write(text)
            written += len(text)
    return path

def compile_artifact(model, out_dir, weights=None, extra=()):
    args = [KILN_COMPILE, model, "--target", "cpu", "-o", out_dir]
    if weights:
        args += ["--weights", weights]
    args += list(extra)
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("kiln-compile failed:\n" + result.stderr)
    with open(os.path.join(out_dir, "manifest.json")) as f:
        return json.load(f)


def compile_torch_module(module, config, model_type, tmp, extra=()):
    """Compiles the config `config` (a dict, written with `model_type`) with
    the weights of the torch `module` (its state_dict, by name, as float32)
    into tmp/<model_type>.kiln; returns the artifact's path."""
    path = os.path.join(tmp, model_type + ".json")
    with open(path, "w") as f:
        json.dump(dict(config, model_type=model_type), f)
    weights = os.path.join(tmp, model_type + ".safetensors")
    save_safetensors({k: v.float().numpy() for k, v in module.state_dict().items()}, weights)
    art = os.path.join(tmp, model_type + ".kiln")
    compile_artifact(path, art, weights=weights, extra=extra)
    return art


def run_artifact(artifact, inputs, work_dir, entry="forward"):
    """Runs `entry` with {name: np.ndarray}; returns {output name: array}."""
    args = [KILN, "run", artifact, "--entry", entry, "--output-dir", os.path.join(work_dir, "out")]
    for name, array in inputs.items():
        path = os.path.join(work_dir, name + ".npy")
        np.save(path, array)
        args += ["--input", f"{name}={path}"]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("kiln run failed:\n" + result.stderr)
    with open(os.path.join(artifact, "manifest.json")) as f:
        manifest = json.load(f)
    spec = next(e for e in manifest["entry_points"] if e["name"] == entry)
    return {o["name"]: np.load(os.path.join(work_dir, "out", o["name"] + ".npy")) for o in spec["outputs"]}


def report(name, actual, expected):
    """Max abs and relative error, printed for the log and returned."""
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    max_abs = float(diff.max())
    rel = float((diff / (np.abs(expected) + 1e-6)).max())
    print(f"{name}: max abs error {max_abs:.3e}, max rel error {rel:.3e} over {actual.size} values")
    return max_abs, rel
