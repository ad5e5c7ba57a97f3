"""The tamper matrix: a compiled gpt2-tiny artifact edited the ways a
careless or hostile user might, then run with `kiln run` and described with
`kiln info`. Every edit must give exit status 1 and one `kiln: error:` line
naming the problem, never a signal (a crash, a sanitizer abort) or a
successful run on garbage. docs/untrusted-input.md lists what is checked.

The same matrix runs under AddressSanitizer and UBSan in scripts/sanitize.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

from kiln_artifacts import KILN, MODELS, compile_artifact


def edit_manifest(change):
    def apply(artifact):
        path = os.path.join(artifact, "manifest.json")
        with open(path) as f:
            manifest = json.load(f)
        change(manifest)
        with open(path, "w") as f:
            json.dump(manifest, f)
    return apply


def write_file(name, data):
    def apply(artifact):
        with open(os.path.join(artifact, name), "wb") as f:
            f.write(data)
    return apply


def truncate_file(name, keep):
    def apply(artifact):
        path = os.path.join(artifact, name)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:keep if keep >= 0 else len(data) + keep])
    return apply


def edit_weights_header(change):
    """Rewrites the safetensors JSON header (keeping the data section)."""
    def apply(artifact):
        path = os.path.join(artifact, "weights.safetensors")
        with open(path, "rb") as f:
            data = f.read()
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + length])
        change(header)
        text = json.dumps(header).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        with open(path, "wb") as f:
            f.write(len(text).to_bytes(8, "little") + text + data[8 + length:])
    return apply


def entry(manifest, name="forward"):
    return next(e for e in manifest["entry_points"] if e["name"] == name)


def param(manifest, index=0):
    return manifest["parameters"][index]


def packed(manifest):
    """The first parameter stored as column panels (the CPU artifact's
    linear weights)."""
    return next(p for p in manifest["parameters"] if "packed" in p)


class TamperMatrix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.good = os.path.join(root, "good.kiln")
        # Weights stored as column panels too (their layout is in the
        # manifest, checked when it is read).
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), cls.good,
                         extra=["--seq", "8", "--pack-weights"])
        # Another artifact whose module.so is swapped in.
        cls.other = os.path.join(root, "other.kiln")
        compile_artifact(os.path.join(MODELS, "llama-tiny.json"), cls.other,
                         extra=["--seq", "8"])
        cls.ids = os.path.join(root, "ids.npy")
        np.save(cls.ids, np.arange(16, dtype=np.int64).reshape(2, 8) % 50)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def kiln(self, *args):
        return subprocess.run([KILN, *args], capture_output=True, text=True)

    def run_forward(self, artifact):
        return self.kiln("run", artifact, "--input", f"input_ids={self.ids}",
                         "--output-dir", os.path.join(artifact, "out"))

    def test_the_untampered_artifact_runs(self):
        done = self.run_forward(self.good)
        self.assertEqual(done.returncode, 0, done.stderr)

    def check(self, name, tamper, needle, commands=("run",)):
        artifact = os.path.join(self.tmp.name, name + ".kiln")
        shutil.copytree(self.good, artifact)
        tamper(artifact)
        for command in commands:
            done = (self.run_forward(artifact) if command == "run"
                    else self.kiln("info", artifact))
            with self.subTest(tamper=name, command=command):
                self.assertEqual(done.returncode, 1,
                                 f"exit {done.returncode}\n{done.stderr[-2000:]}")
                lines = done.stderr.strip().splitlines()
                self.assertTrue(lines and lines[-1].startswith("kiln: error: "), done.stderr[-2000:])
                self.assertNotIn("Sanitizer", done.stderr)
                self.assertIn(needle, lines[-1])

    def test_manifest_edits(self):
        cases = {
            "param-shape": (lambda m: param(m).update(shape=[1000, 32]), "transformer.wte.weight"),
            "param-dtype": (lambda m: param(m).update(dtype="F16"), "transformer.wte.weight"),
            "param-dropped": (lambda m: m["parameters"].pop(3), "transformer.h.0.ln_1.bias"),
            "params-swapped": (lambda m: m["parameters"].insert(0, m["parameters"].pop(1)), "parameter"),
            "param-offset": (lambda m: param(m).update(offset=8), "offset"),
            "param-huge-shape": (lambda m: param(m).update(shape=[2**40, 2**40]), "transformer.wte.weight"),
            "param-negative-dim": (lambda m: param(m).update(shape=[-5, 64]), "transformer.wte.weight"),
            # A weight stored as column panels whose layout does not give
            # its stored shape, or is not an object.
            "packed-shape": (lambda m: packed(m)["packed"].update(shape=[64, 64]), "does not describe its shape"),
            "packed-width": (lambda m: packed(m)["packed"].update(width=0), "does not describe its shape"),
            "packed-pairs": (lambda m: packed(m)["packed"].update(pairs=3), "does not describe its shape"),
            "packed-type": (lambda m: packed(m).update(packed=[1]), "\"packed\" is not an object"),
            # A square weight's panels taken the other way round fit every
            # shape: the module's signature names the layout.
            "packed-square-flipped": (lambda m: next(p for p in m["parameters"]
                                                     if p.get("packed", {}).get("shape") == [64, 64])
                                      ["packed"].update(in_out=False), "was not built for this manifest"),
            # Packed when loaded: the file must hold the checkpoint's shape.
            "packed-at-load": (lambda m: packed(m)["packed"].update(at_load=True), "to be packed when loaded"),
            "input-rank": (lambda m: entry(m)["inputs"][0].update(shape=[-1]), "input_ids"),
            "input-dtype": (lambda m: entry(m)["inputs"][0].update(dtype="I32"), "input_ids"),
            "output-dtype": (lambda m: entry(m)["outputs"][0].update(dtype="F64"), "logits"),
            "output-static-dim": (lambda m: entry(m)["outputs"][0].update(shape=[-1, -1, 999]), "logits"),
            "entry-symbol": (lambda m: entry(m).update(symbol="kiln_entry_other"), "kiln_entry_other"),
            "entry-params-reordered": (lambda m: entry(m)["parameters"].reverse(), "was not built for this manifest"),
            "entry-renamed": (lambda m: entry(m).update(name="train_step"), "train_step"),
            "format-version": (lambda m: m.update(format_version=99), "format version 99"),
            "format": (lambda m: m.update(format="onnx"), "format"),
            "target": (lambda m: m.update(target="tpu"), "tpu"),
            "module-path": (lambda m: m.update(module="../../etc/passwd"), "module"),
            "weights-path": (lambda m: m.update(weights="missing.safetensors"), "missing.safetensors"),
        }
        for name, (change, needle) in cases.items():
            self.check(name, edit_manifest(change), needle)

    def test_malformed_manifests(self):
        self.check("manifest-truncated", truncate_file("manifest.json", 100), "manifest.json",
                   commands=("run", "info"))
        self.check("manifest-empty", write_file("manifest.json", b""), "manifest.json",
                   commands=("run", "info"))
        self.check("manifest-deep", write_file("manifest.json", b"[" * 100000 + b"]" * 100000),
                   "nest", commands=("run", "info"))
        self.check("manifest-not-object", write_file("manifest.json", b"[1, 2]"), "manifest.json",
                   commands=("run", "info"))

    def test_weights_edits(self):
        self.check("weights-truncated", truncate_file("weights.safetensors", -1000), "weights.safetensors")
        self.check("weights-header-only", truncate_file("weights.safetensors", 20), "weights.safetensors")
        self.check("weights-empty", write_file("weights.safetensors", b""), "weights.safetensors")
        self.check("weights-header-length", write_file("weights.safetensors", (2**62).to_bytes(8, "little")),
                   "weights.safetensors")
        self.check("weights-dtype", edit_weights_header(
            lambda h: h["transformer.wte.weight"].update(dtype="F16")), "transformer.wte.weight")
        self.check("weights-shape", edit_weights_header(
            lambda h: h["transformer.wte.weight"].update(shape=[500, 64])), "transformer.wte.weight")
        self.check("weights-offsets", edit_weights_header(
            lambda h: h["transformer.wte.weight"].update(data_offsets=[0, 10**12])), "weights.safetensors")
        self.check("weights-tensor-dropped", edit_weights_header(
            lambda h: h.pop("transformer.ln_f.bias")), "transformer.ln_f.bias")
        self.check("weights-missing", lambda a: os.remove(os.path.join(a, "weights.safetensors")),
                   "weights.safetensors")

    def test_module_edits(self):
        self.check("module-swapped", lambda a: shutil.copy(os.path.join(self.other, "module.so"),
                                                           os.path.join(a, "module.so")),
                   "module.so")
        self.check("module-truncated", truncate_file("module.so", 4096), "truncated")
        self.check("module-header-only", truncate_file("module.so", 40), "not an ELF file")
        self.check("module-text", write_file("module.so", b"not an ELF file\n"), "module.so")
        self.check("module-missing", lambda a: os.remove(os.path.join(a, "module.so")), "module.so")


if __name__ == "__main__":
    unittest.main()
