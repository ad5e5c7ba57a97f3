"""ONNX Runtime and IREE as peers of a Kiln artifact, fed the same weights.

The model is Hugging Face transformers' GPT2LMHeadModel built from the same
config and loaded with the same safetensors file as the Kiln artifact, then
exported to ONNX with torch.onnx.export (opset 17, static shapes: the batch
and sequence the Kiln artifact was compiled for). ONNX Runtime runs that file
on its CPU execution provider with `threads` intra-op threads; IREE imports
it (iree-import-onnx), compiles it for the host CPU (llvm-cpu,
--iree-llvmcpu-target-cpu=host) and runs it on the local-task driver with
`threads` workers. Each peer's logits come back for the caller to compare.

The peers live in a virtual environment of their own under the build tree
(default build/bench-venv), made on first use with the versions in PINS and
the system's torch and numpy (--system-site-packages; numpy is held below 2,
which Debian's torch was built against). Nothing in the tests uses it.
"""

import json
import os
import subprocess
import sys

PINS = {
    "transformers": "4.44.2",
    "onnx": "1.23.2",
    "onnxruntime": "1.32.0",
    "iree-base-compiler": "3.13.0",
    "iree-base-runtime": "3.13.0",
}

NAMES = ("onnxruntime", "iree")


def venv_python(build):
    """The venv's python, made and filled with PINS when it is missing or stale."""
    venv = os.path.join(build, "bench-venv")
    python = os.path.join(venv, "bin", "python3")
    check = ("import importlib.metadata as m, sys; pins = " + json.dumps(PINS) +
             "; sys.exit(any(m.version(k) != v for k, v in pins.items()))")
    if os.path.exists(python) and subprocess.run([python, "-c", check], capture_output=True).returncode == 0:
        return python
    print(f"installing the benchmark peers in {venv}: " +
          ", ".join(f"{k} {v}" for k, v in PINS.items()), file=sys.stderr, flush=True)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy<2"] +
                   [f"{k}=={v}" for k, v in PINS.items()], check=True)
    return python


# transformers' GPT2LMHeadModel from a Kiln gpt2 config `cfg` (no dropout),
# as `model`: the peers' children start with it.
HF_GPT2 = r"""
hf = transformers.GPT2Config(
    vocab_size=cfg["vocab_size"], n_positions=cfg["n_positions"], n_embd=cfg["n_embd"],
    n_layer=cfg["n_layer"], n_head=cfg["n_head"], layer_norm_epsilon=cfg.get("layer_norm_epsilon", 1e-5),
    activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
model = transformers.GPT2LMHeadModel(hf).eval()
"""

# Runs in the venv: argv = python_dir weights ids config threads iters out_dir peers...
CHILD = r"""
import json, os, statistics, subprocess, sys, time
import numpy as np, torch, transformers
sys.path.insert(0, sys.argv[1])
from kiln.io import load_safetensors
weights_path, ids_path, cfg_path, threads, iters, out_dir = sys.argv[2:8]
peers = sys.argv[8:]
threads, iters = int(threads), int(iters)
bin_dir = os.path.dirname(sys.executable)
cfg = json.load(open(cfg_path))
torch.set_num_threads(threads)

""" + HF_GPT2 + r"""
state = {k: torch.from_numpy(v) for k, v in load_safetensors(weights_path).items()}
missing, unexpected = model.load_state_dict(state, strict=False)
missing = [k for k in missing if k != "lm_head.weight" and not k.endswith((".attn.bias", ".attn.masked_bias"))]
if missing or unexpected:
    sys.exit(f"weights do not fit GPT2LMHeadModel: missing {missing}, unexpected {unexpected}")
model.tie_weights()

class Logits(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m
    def forward(self, ids):
        return self.m(input_ids=ids, use_cache=False, return_dict=False)[0]

ids = np.load(ids_path)
onnx_path = os.path.join(out_dir, "gpt2.onnx")
# Exported once per out_dir (a later round reuses it).
if not os.path.exists(onnx_path):
    with torch.no_grad():
        torch.onnx.export(Logits(model), (torch.from_numpy(ids),), onnx_path + ".tmp", input_names=["input_ids"],
                          output_names=["logits"], opset_version=17)
    os.replace(onnx_path + ".tmp", onnx_path)

def timed(call):
    out = call()
    times = []
    for _ in range(iters):
        t = time.perf_counter(); call(); times.append(time.perf_counter() - t)
    return np.asarray(out), {"seconds": statistics.median(times), "min_seconds": min(times)}

results = {}
if "onnxruntime" in peers:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    logits, seconds = timed(lambda: session.run(None, {"input_ids": ids})[0])
    np.save(os.path.join(out_dir, "onnxruntime.npy"), logits)
    results["onnxruntime"] = dict(seconds, version=ort.__version__)

if "iree" in peers:
    import iree.runtime as rt
    mlir, vmfb = os.path.join(out_dir, "gpt2.mlir"), os.path.join(out_dir, "gpt2.vmfb")
    compile_s = None
    if not os.path.exists(vmfb):
        subprocess.run([os.path.join(bin_dir, "iree-import-onnx"), onnx_path, "-o", mlir], check=True)
        start = time.perf_counter()
        subprocess.run([os.path.join(bin_dir, "iree-compile"), mlir, "-o", vmfb + ".tmp",
                        "--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu",
                        "--iree-llvmcpu-target-cpu=host"], check=True)
        compile_s = time.perf_counter() - start
        os.replace(vmfb + ".tmp", vmfb)
    rt.flags.parse_flags(f"--task_topology_group_count={threads}")
    config = rt.Config("local-task")
    context = rt.SystemContext(config=config)
    context.add_vm_module(rt.VmModule.mmap(config.vm_instance, vmfb))
    entry = context.modules.module["torch_jit"]
    logits, seconds = timed(lambda: entry(ids).to_host())
    np.save(os.path.join(out_dir, "iree.npy"), logits)
    import importlib.metadata
    results["iree"] = dict(seconds, version=importlib.metadata.version("iree-base-runtime"))
    if compile_s is not None:
        results["iree"]["compile_seconds"] = compile_s
print(json.dumps(results))
"""


def run(build, python_dir, weights, ids, config, threads, iters, out_dir, peers, env):
    """Times `peers` (a subset of NAMES) on the same weights and input ids.

    Returns {name: {"seconds" (the median call), "min_seconds", "logits",
    "version", ...}}; the logits are numpy arrays loaded from out_dir.
    """
    import numpy as np

    python = venv_python(build)
    out = subprocess.run([python, "-c", CHILD, python_dir, weights, ids, config, str(threads), str(iters),
                          out_dir] + list(peers), env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    results = json.loads(out.strip().splitlines()[-1])
    for name, result in results.items():
        result["logits"] = np.load(os.path.join(out_dir, f"{name}.npy"))
    return results
