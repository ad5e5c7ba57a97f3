#!/usr/bin/env python3
"""Image-text training step: a Kiln training artifact against PyTorch eager
(transformers' own model of the config), same config, same batch, same
optimizer (AdamW, lr 1e-3, weight decay 0.01, betas 0.9/0.999, global-norm
clipping at 1.0: kiln-compile's defaults), same number of threads, in one
run. The config's model_type picks the model and its loss:

  clip                    CLIPModel with return_loss (--objective contrastive)
  llava                   LlavaForConditionalGeneration: the image token,
                          then the caption; cross-entropy of the caption
                          positions' logits (--objective lm)
  vision-encoder-decoder  VisionEncoderDecoderModel: cross-entropy of the
                          decoder's logits (--objective lm)

Compiles models/clip-shapes.json (or --config) with --mode train at
--batch x --seq, times `kiln bench --entry train_step` on one batch of
random images and captions, and times the same step in PyTorch (forward
and loss, backward, clip_grad_norm_, AdamW.step, zero_grad) in the Hugging
Face venv (build/hf-venv, made by scripts/test; its torch is Debian's)
with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment.
Prints the step latency, images/s and Kiln's speed-up. The two start from
different random weights: a step's cost does not depend on them.

  bench/image_text_train.py [--config models/clip-shapes.json] [--build build]
                            [--batch 64] [--seq 16] [--threads 2] [--iters 10]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

import machine

HERE = os.path.dirname(os.path.abspath(__file__))

PEER = r"""
import json, sys, time
import numpy as np, torch, transformers
cfg_path, threads, iters, x_path, ids_path, mask_path, targets_path = sys.argv[1:8]
torch.set_num_threads(int(threads))
cfg = json.load(open(cfg_path))
kind = cfg["model_type"]
x = torch.from_numpy(np.load(x_path)); ids = torch.from_numpy(np.load(ids_path))
mask = torch.from_numpy(np.load(mask_path)); targets = torch.from_numpy(np.load(targets_path))
if kind == "clip":
    config = transformers.CLIPConfig(text_config=cfg["text_config"], vision_config=cfg["vision_config"],
                                     projection_dim=cfg["projection_dim"])
    config._attn_implementation = "eager"
    model = transformers.CLIPModel(config)
    loss_of = lambda: model(input_ids=ids, pixel_values=x, attention_mask=mask, return_loss=True).loss
elif kind == "llava":
    text = cfg["text_config"]
    image_token = text["vocab_size"] - 1
    config = transformers.LlavaConfig(
        vision_config=cfg["vision_config"], text_config=text, image_token_index=image_token,
        **{k: cfg[k] for k in ("projector_hidden_act", "vision_feature_layer",
                               "vision_feature_select_strategy") if k in cfg})
    config._attn_implementation = "eager"
    model = transformers.LlavaForConditionalGeneration(config)
    marked = torch.cat([torch.full((ids.shape[0], 1), image_token), ids], 1)
    ones = torch.ones_like(marked)
    def loss_of():
        logits = model(input_ids=marked, pixel_values=x, attention_mask=ones).logits
        logits = logits[:, logits.shape[1] - ids.shape[1]:]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
else:
    enc, dec = dict(cfg["encoder"]), dict(cfg["decoder"])
    enc_class = transformers.CONFIG_MAPPING[enc.pop("model_type")]
    dec_class = transformers.CONFIG_MAPPING[dec.pop("model_type")]
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        enc_class(**enc), dec_class(**dec))
    config._attn_implementation = "eager"
    model = transformers.VisionEncoderDecoderModel(config)
    def loss_of():
        logits = model(pixel_values=x, decoder_input_ids=ids).logits
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
def step():
    loss = loss_of()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); opt.zero_grad(set_to_none=True)
step()
times = []
for _ in range(int(iters)):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(sorted(times)[len(times) // 2])
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--config", default=os.path.join(HERE, "..", "models", "clip-shapes.json"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    line, _ = machine.describe(args.threads, None)
    print(line, flush=True)
    hf_python = os.path.join(args.build, "hf-venv", "bin", "python3")
    if not os.path.exists(hf_python):
        sys.exit(f"{hf_python}: no Hugging Face venv (scripts/test makes it)")
    with open(args.config) as f:
        cfg = json.load(f)
    bin_dir = os.path.join(args.build, "bin")
    with tempfile.TemporaryDirectory() as tmp:
        art = os.path.join(tmp, "model.kiln")
        kind = cfg["model_type"]
        objective = "contrastive" if kind == "clip" else "lm"
        subprocess.run([os.path.join(bin_dir, "kiln-compile"), args.config, "--mode", "train", "--objective",
                        objective, "--batch", str(args.batch), "--seq", str(args.seq), "--target", "cpu",
                        "-o", art], check=True, capture_output=True)
        rng = np.random.default_rng(0)
        vision = cfg["vision_config"] if "vision_config" in cfg else cfg["encoder"]
        text = cfg["text_config"] if "text_config" in cfg else cfg["decoder"]
        size = vision["image_size"]
        x = rng.standard_normal((args.batch, 3, size, size)).astype(np.float32)
        vocab = text.get("eos_token_id", text["vocab_size"] - 1)
        ids = rng.integers(0, vocab, (args.batch, args.seq)).astype(np.int64)
        targets = rng.integers(0, vocab, (args.batch, args.seq)).astype(np.int64)
        lengths = rng.integers(4, args.seq + 1, args.batch)
        mask = (np.arange(args.seq)[None, :] < lengths[:, None]).astype(np.int64)
        if kind == "clip":
            ids[np.arange(args.batch), lengths - 1] = text["eos_token_id"]
        paths = {}
        for name, array in (("pixel_values", x), ("input_ids", ids), ("attention_mask", mask),
                            ("targets", targets), ("lr", np.array(1e-3, np.float32))):
            paths[name] = os.path.join(tmp, name + ".npy")
            np.save(paths[name], array)
        cmd = [os.path.join(bin_dir, "kiln"), "bench", art, "--entry", "train_step", "--warmup", "2",
               "--iters", str(args.iters)]
        inputs = ("input_ids", "pixel_values", "attention_mask", "lr") if kind == "clip" else \
            ("input_ids", "pixel_values", "targets", "lr")
        for name in inputs:
            cmd += ["--input", f"{name}={paths[name]}"]
        out = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)), check=True,
                             capture_output=True, text=True).stdout
        kiln_s = float(re.search(r"p50[^0-9]*([0-9.]+)", out).group(1)) / 1e3
        env = machine.peer_env()
        env["OMP_NUM_THREADS"] = str(args.threads)
        peer = subprocess.run([hf_python, "-c", PEER, args.config, str(args.threads), str(args.iters),
                               paths["pixel_values"], paths["input_ids"], paths["attention_mask"],
                               paths["targets"]],
                              env=env, check=True, capture_output=True, text=True)
        torch_s = float(peer.stdout.strip().splitlines()[-1])
    print(f"{os.path.basename(args.config)} train_step (AdamW), batch {args.batch} x seq {args.seq}, "
          f"{args.threads} threads")
    print(f"{'':>8} {'step ms':>9} {'images/s':>9} {'kiln speed-up':>13}")
    for name, seconds in (("kiln", kiln_s), ("pytorch", torch_s)):
        print(f"{name:>8} {seconds * 1e3:>9.1f} {args.batch / seconds:>9.1f} {seconds / kiln_s:>12.3f}x")


if __name__ == "__main__":
    main()
