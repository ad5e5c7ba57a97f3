"""The rnn family (GRU and LSTM text encoders) against torch.nn.GRU and
torch.nn.LSTM.

Each case builds a torch module (an nn.Embedding named `embedding` and the
recurrent layer named `rnn`, batch_first), saves its state_dict as the
weights, compiles the config with --seq S, and compares `kiln run` with
torch on right-padded batches run through pack_padded_sequence (lengths S,
3 and 1 in one batch; padded positions of the output are zeros, the final
states are those at each row's end). Cases cover GRU and LSTM, one and two
directions, one to three layers, no biases, an embedding width other than
the hidden size, and a dynamic batch.

Tolerance: float32 against float64 from the same weights, 1e-5 absolute
plus 1e-4 relative: the outputs are bounded by 1 (tanh), and a wrong gate
order, direction or mask moves them by O(0.1).
"""

import os
import sys
import tempfile
import unittest

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import compile_torch_module, report, run_artifact  # noqa: E402

SEQ = 7


class Encoder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        cell = torch.nn.LSTM if cfg["cell"] == "lstm" else torch.nn.GRU
        self.embedding = torch.nn.Embedding(cfg["vocab_size"], cfg.get("embedding_dim", cfg["hidden_size"]))
        self.rnn = cell(self.embedding.embedding_dim, cfg["hidden_size"], num_layers=cfg.get("num_layers", 1),
                        bidirectional=cfg.get("bidirectional", False), bias=cfg.get("bias", True),
                        batch_first=True)

    def forward(self, ids, lengths):
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return out, state


class RNN(unittest.TestCase):
    def check(self, cfg, batch=None):
        torch.manual_seed(0)
        model = Encoder(cfg).double().eval()
        with tempfile.TemporaryDirectory() as tmp:
            extra = ["--seq", str(SEQ)] + (["--batch", str(batch)] if batch else [])
            art = compile_torch_module(model, cfg, "rnn", tmp, extra=extra)
            for lengths in ([SEQ, 3, 1], [SEQ]) if not batch else ([SEQ, 3, 1],):
                rng = np.random.default_rng(len(lengths))
                ids = rng.integers(0, cfg["vocab_size"], (len(lengths), SEQ)).astype(np.int64)
                mask = (np.arange(SEQ)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
                out = run_artifact(art, {"input_ids": ids, "attention_mask": mask}, tmp)
                with torch.no_grad():
                    ref, state = model(torch.from_numpy(ids), torch.tensor(lengths))
                h = state[0] if cfg["cell"] == "lstm" else state
                label = f"{cfg} lengths {lengths}"
                expected = {"output": ref.numpy(), "h_n": h.numpy()}
                if cfg["cell"] == "lstm":
                    expected["c_n"] = state[1].numpy()
                layers, dirs = cfg.get("num_layers", 1), 2 if cfg.get("bidirectional") else 1
                last = h.view(layers, dirs, len(lengths), -1)[-1]
                expected["text_embeds"] = torch.cat(list(last), dim=-1).numpy()
                for name, want in expected.items():
                    report(f"{label} {name}", out[name], want)
                    np.testing.assert_allclose(out[name], want, rtol=1e-4, atol=1e-5, err_msg=f"{label} {name}")
                self.assertTrue(np.all(out["output"][~mask.astype(bool)] == 0))

    def test_gru_bidirectional(self):
        self.check({"cell": "gru", "vocab_size": 40, "embedding_dim": 5, "hidden_size": 6, "num_layers": 2,
                    "bidirectional": True})

    def test_lstm_three_layers(self):
        self.check({"cell": "lstm", "vocab_size": 40, "hidden_size": 6, "num_layers": 3})

    def test_lstm_bidirectional_without_bias(self):
        self.check({"cell": "lstm", "vocab_size": 40, "embedding_dim": 4, "hidden_size": 5, "bidirectional": True,
                    "bias": False})

    def test_gru_static_batch(self):
        self.check({"cell": "gru", "vocab_size": 40, "hidden_size": 6}, batch=3)


if __name__ == "__main__":
    unittest.main()
