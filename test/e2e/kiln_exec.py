"""Runs a kiln function on numpy inputs through the CPU pipeline.

Until the artifact runtime exists, the test vehicle is upstream mlir-runner:
the function is lowered with `kiln-opt --kiln-cpu-pipeline`, a `main` embeds
the inputs as constants, calls the function (not inlined) and prints every
result with the MLIR runner utilities, and the printed values are parsed
back. f32 results are printed as their bit patterns (i32), so they come back
bit-exact rather than rounded to the printer's 6 digits. It is slow for big
tensors and meant for op-level numerics only.
"""

import os
import re
import subprocess
import tempfile

import numpy as np

LLVM = "/usr/lib/llvm-22"
KILN_OPT = os.environ.get("KILN_OPT", "kiln-opt")

_DTYPES = {
    np.dtype("float32"): ("f32", "F32"),
    np.dtype("int64"): ("i64", "I64"),
    np.dtype("int32"): ("i32", "I32"),
    np.dtype("bool"): ("i1", None),
}


def tensor_type(shape, elem):
    dims = "x".join(str(d) for d in shape)
    return f"tensor<{dims}x{elem}>" if shape else f"tensor<{elem}>"


def _dense(array):
    elem = _DTYPES[array.dtype][0]
    if array.dtype == np.bool_:
        flat = ["true" if v else "false" for v in array.reshape(-1)]
    elif array.dtype == np.float32:
        # Non-finite values have no decimal spelling in MLIR; use the bits.
        flat = [np.format_float_scientific(np.float32(v), unique=True) if np.isfinite(v)
                else "0x%08X" % np.array(v, np.float32).view(np.uint32) for v in array.reshape(-1)]
    else:
        flat = [str(int(v)) for v in array.reshape(-1)]

    def nest(values, shape):
        if not shape:
            return values[0]
        step = len(values) // shape[0] if shape[0] else 0
        return "[" + ", ".join(nest(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"

    # An empty tensor's literal is `dense<>` (nesting gives `[]`, a [0] shape).
    body = nest(flat, list(array.shape)) if array.size else ""
    return f"dense<{body}> : {tensor_type(array.shape, elem)}"


def run(source, func, inputs, outputs, pipeline="--kiln-cpu-pipeline"):
    """Runs `func` defined in kiln IR `source`.

    inputs: list of numpy arrays (float32, int64, int32, bool), passed in order.
    outputs: list of (shape, dtype) of the results (f32, i64, i32 or i1 ->
    float32, int64, int32, bool); f32 results come back bit-exact; dynamic dims in the
    function signature are fine, the shapes here are the concrete ones.
    pipeline: the kiln-opt lowering (e.g. with keep=kiln.attention).
    Returns the list of result arrays.
    """
    arg_types = []
    consts = []
    for i, array in enumerate(inputs):
        t = tensor_type(array.shape, _DTYPES[array.dtype][0])
        consts.append(f"  %in{i} = arith.constant {_dense(array)}")
        arg_types.append(t)
    # The call uses the function's declared types; cast the constants.
    sig = re.search(r"func\.func @" + re.escape(func) + r"\((.*?)\)\s*->", source, re.S)
    declared = re.findall(r"%\w+\s*:\s*(tensor<[^>]*>)", sig.group(1)) if sig else arg_types
    lines = consts[:]
    call_args = []
    for i, (actual, want) in enumerate(zip(arg_types, declared)):
        if actual != want:
            lines.append(f"  %c{i} = tensor.cast %in{i} : {actual} to {want}")
            call_args.append(f"%c{i}")
        else:
            call_args.append(f"%in{i}")
    ret = re.search(r"func\.func @" + re.escape(func) + r"\(.*?\)\s*->\s*(\(.*?\)|tensor<[^>]*>)\s*(attributes\s*\{[^}]*\}\s*)?\{", source, re.S)
    ret_types = re.findall(r"tensor<[^>]*>", ret.group(1))
    results = ", ".join(f"%r{i}" for i in range(len(ret_types)))
    # no_inline keeps the kiln function a real function with run-time
    # arguments: the dynamic dims stay dynamic and nothing is folded against
    # the constant inputs.
    lines.append(f"  {results} = call @{func}({', '.join(call_args)}) {{no_inline}} : ({', '.join(declared)}) -> ({', '.join(ret_types)})")
    printers = set()
    for i, (t, (shape, dtype)) in enumerate(zip(ret_types, outputs)):
        elem = re.search(r"(?:<|x)([a-z]\w*)>$", t).group(1)
        concrete = tensor_type(shape, elem)
        lines.append(f"  %s{i} = tensor.cast %r{i} : {t} to {concrete}")
        value, printed = f"%s{i}", elem
        # Floats are printed as their bits (the printer shows only ~6
        # significant digits) and i1 widened to i64, elementwise.
        convert = {"f32": ("i32", "arith.bitcast"), "i1": ("i64", "arith.extui")}.get(elem)
        if convert:
            printed, op = convert
            wide = tensor_type(shape, printed)
            ids = ", ".join(f"d{k}" for k in range(len(shape)))
            amap = f"affine_map<({ids}) -> ({ids})>"
            iters = ", ".join('"parallel"' for _ in shape)
            lines.append(f"  %e{i} = tensor.empty() : {wide}")
            lines.append(f"  %w{i} = linalg.generic {{indexing_maps = [{amap}, {amap}], "
                         f"iterator_types = [{iters}]}} ins(%s{i} : {concrete}) outs(%e{i} : {wide}) {{")
            lines.append(f"  ^bb0(%x{i}: {elem}, %o{i}: {printed}):")
            lines.append(f"    %y{i} = {op} %x{i} : {elem} to {printed}")
            lines.append(f"    linalg.yield %y{i} : {printed}")
            lines.append(f"  }} -> {wide}")
            value = f"%w{i}"
            concrete = wide
        printer = {"i64": "printMemrefI64", "i32": "printMemrefI32"}[printed]
        printers.add((printer, printed))
        lines.append(f"  %u{i} = tensor.cast {value} : {concrete} to tensor<*x{printed}>")
        lines.append(f"  call @{printer}(%u{i}) : (tensor<*x{printed}>) -> ()")
    main = "\n".join(f"func.func private @{p}(tensor<*x{e}>)" for p, e in sorted(printers))
    main += "\nfunc.func @main() {\n" + "\n".join(lines) + "\n  return\n}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "prog.mlir")
        with open(path, "w") as f:
            f.write(source + "\n" + main)
        lowered = subprocess.run([KILN_OPT, path, pipeline], capture_output=True, text=True)
        if lowered.returncode != 0:
            raise RuntimeError("kiln-opt failed:\n" + lowered.stderr)
        libs = ",".join(f"{LLVM}/lib/{l}" for l in ("libmlir_runner_utils.so", "libmlir_c_runner_utils.so", "libomp.so"))
        ran = subprocess.run([f"{LLVM}/bin/mlir-runner", "-e", "main", "-entry-point-result=void",
                              f"-shared-libs={libs}"], input=lowered.stdout, capture_output=True, text=True)
        if ran.returncode != 0:
            raise RuntimeError("mlir-runner failed:\n" + ran.stderr)
    chunks = ran.stdout.split("Unranked Memref")[1:]
    arrays = []
    for chunk, (shape, dtype) in zip(chunks, outputs):
        if int(np.prod(shape)) == 0:   # nothing printed worth parsing
            arrays.append(np.zeros(shape, dtype))
            continue
        data = chunk.split("data =", 1)[1]
        numbers = [int(v) for v in re.findall(r"[-+]?\d+", data)]
        if np.dtype(dtype) == np.float32:
            values = np.array(numbers, dtype=np.int64).astype(np.int32).view(np.float32)
        elif np.dtype(dtype) == np.bool_:
            values = np.array(numbers, dtype=np.int64) != 0
        else:
            values = np.array(numbers, dtype=np.int64).astype(dtype)
        arrays.append(values.reshape(shape))
    if len(arrays) != len(outputs):
        raise RuntimeError("expected %d results, parsed %d:\n%s" % (len(outputs), len(arrays), ran.stdout))
    return arrays
