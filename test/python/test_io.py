"""python/kiln/io.py: safetensors round trips and malformed files."""

import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
from kiln.io import load_safetensors, save_safetensors, to_bf16  # noqa: E402


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

    def test_bf16(self):
        # Round to nearest even on the 16 bits dropped: 1 + 2^-8 is a tie
        # (to 1.0), 1 + 3·2^-8 rounds up, the largest float32 to inf; NaN
        # stays NaN. Written as BF16 and read back as the same bits.
        values = np.array([1.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, np.float32(3.4028235e38), np.nan],
                          dtype=np.float32)
        bits = to_bf16(values)
        self.assertEqual(list(bits[:5]), [0x3F80, 0x3F80, 0x3F82, 0xC020, 0x7F80])
        self.assertEqual(bits[5] & 0x7F80, 0x7F80)
        self.assertNotEqual(bits[5] & 0x7F, 0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "b.safetensors")
            save_safetensors({"w": bits, "f": values}, path, bf16={"w"})
            with open(path, "rb") as f:
                header = f.read(int.from_bytes(f.read(8), "little")).decode()
            self.assertIn('"w":{"dtype":"BF16"', header)
            back = load_safetensors(path)
            np.testing.assert_array_equal(back["w"], bits)
            self.assertEqual(back["w"].dtype, np.uint16)
            with self.assertRaisesRegex(ValueError, "uint16 bit patterns"):
                save_safetensors({"w": values}, path, bf16={"w"})

    def test_rejects_unsupported_dtype(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaisesRegex(ValueError, "complex64"):
                save_safetensors({"c": np.zeros(2, np.complex64)}, os.path.join(tmp, "c.safetensors"))


if __name__ == "__main__":
    unittest.main()
