"""kiln-compile flags of a benchmark's weight scheme names, shared by
bench/quantize.py and bench/decode.py:

  f32                      the model as it is (kiln-compile's defaults:
                           linear weights packed into the matmul's column
                           panels when the artifact is loaded)
  SCHEME-packed            SCHEME with --pack-weights=file (the panels
                           stored in the weights file, read in place)
  SCHEME-rowmajor          SCHEME with --pack-weights=none (row-major
                           weights, each panel copied on every call)
  bf16                     --dtype bf16 (weights stored in bf16; AMX tiles
                           where the CPU has them)
  w8, w4g128, int8-dynamic --quantize SCHEME
  SCHEME+head              also --quantize-lm-head
  prune:METHOD[:SPARSITY][:compressed|:csr]
                           --prune METHOD --sparsity SPARSITY (default 0.5),
                           prune:2:4 for magnitude 2:4, :compressed for
                           --sparse-format compressed, :csr for that with
                           --csr-min-sparsity 0 (compressed sparse rows at
                           any sparsity, to find the break-even;
                           docs/pruning.md)
"""


def compile_flags(scheme):
    if scheme in ("f32", "init"):
        return []
    if scheme.endswith("-packed"):
        return compile_flags(scheme[:-len("-packed")]) + ["--pack-weights=file"]
    if scheme.endswith("-rowmajor"):
        return compile_flags(scheme[:-len("-rowmajor")]) + ["--pack-weights=none"]
    if scheme == "bf16":
        return ["--dtype", "bf16"]
    if scheme.startswith("prune:"):
        parts = scheme[len("prune:"):].split(":")
        compressed = parts[-1] in ("compressed", "csr")
        forced = parts[-1] == "csr"
        if compressed:
            parts = parts[:-1]
        if parts[:2] == ["2", "4"]:
            method, sparsity = "2:4", "2:4"
        else:
            method, sparsity = parts[0], ":".join(parts[1:]) or "0.5"
        return (["--prune", method, "--sparsity", sparsity]
                + (["--sparse-format", "compressed"] if compressed else [])
                + (["--csr-min-sparsity", "0"] if forced else []))
    name, head = (scheme[:-len("+head")], True) if scheme.endswith("+head") else (scheme, False)
    return ["--quantize", name] + (["--quantize-lm-head"] if head else [])
