"""python/kiln/io.py: safetensors round trips and malformed files."""

import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
from kiln.io import load_safetensors, save_safetensors  # noqa: E402


class SafeTensorsIO(unittest.TestCase):
    def test_round_trip(self):
        tensors = {"h.0.w": np.arange(12, dtype=np.float32).reshape(3, 4),
                   "ids": np.array([1, -2], dtype=np.int64),
                   "scalar": np.array(2.5, dtype=np.float16),
                   "mask": np.array([True, False]),
                   "step": np.array(3.0, dtype=np.float32),
                   "strided": np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2]}
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "w.safetensors")
            save_safetensors(tensors, path, metadata={"format": "pt"})
            with open(path, "rb") as f:
                length = int.from_bytes(f.read(8), "little")
            self.assertEqual((8 + length) % 8, 0)
            back = load_safetensors(path)
            self.assertEqual(list(back), list(tensors))
            for name, array in tensors.items():
                self.assertEqual(back[name].dtype, array.dtype)
                self.assertEqual(back[name].shape, array.shape, name)
                np.testing.assert_array_equal(back[name], array)
            self.assertEqual(os.listdir(tmp), ["w.safetensors"])

    def test_malformed(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.safetensors")
            with open(path, "wb") as f:
                f.write(b"\x05")
            with self.assertRaisesRegex(ValueError, "shorter than 8 bytes"):
                load_safetensors(path)
            with open(path, "wb") as f:
                f.write((1000).to_bytes(8, "little") + b"{}")
            with self.assertRaisesRegex(ValueError, "runs past the end"):
                load_safetensors(path)

    def test_rejects_unsupported_dtype(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaisesRegex(ValueError, "complex64"):
                save_safetensors({"c": np.zeros(2, np.complex64)}, os.path.join(tmp, "c.safetensors"))


if __name__ == "__main__":
    unittest.main()
