"""safetensors reading and writing with numpy only.

The format: an 8-byte little-endian header length, a JSON header mapping
each tensor name to {dtype, shape, data_offsets} (plus an optional
"__metadata__" of strings), then the packed little-endian tensor bytes.
bf16 has no numpy dtype; such tensors are returned as uint16 bit patterns,
and written from them (`bf16` names the tensors whose uint16 arrays are
bf16; `to_bf16` rounds float32 to those bit patterns).
"""

import json
import os
import struct
import tempfile

import numpy as np

_TO_NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
             "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
             "U8": np.uint8, "BOOL": np.bool_,
             # fp8 e4m3 codes (torch.float8_e4m3fn), read as their bytes.
             "F8_E4M3": np.uint8}
_FROM_NUMPY = {np.dtype(v): k for k, v in _TO_NUMPY.items() if k not in ("BF16", "F8_E4M3")}


def to_bf16(array):
    """float32 -> bf16 bit patterns (uint16), rounded to nearest even as
    torch's .to(torch.bfloat16) and Kiln's casts round (NaN stays NaN)."""
    values = np.asarray(array, dtype=np.float32)
    bits = np.ascontiguousarray(values).view(np.uint32).reshape(values.shape)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(values), ((bits >> 16) | 0x40).astype(np.uint16), rounded)


def save_safetensors(tensors, path, metadata=None, bf16=()):
    """Writes {name: array} to `path` atomically, in the given order; the
    uint16 arrays of the names in `bf16` are written as BF16."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, array in tensors.items():
        # np.ascontiguousarray would make a 0-d array 1-d (shape [1]), and
        # a checkpoint written so would no longer load.
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        if name in bf16 and array.dtype != np.uint16:
            raise ValueError(f"tensor '{name}': a BF16 tensor is given as its uint16 bit patterns "
                             f"(kiln.io.to_bf16), not {array.dtype}")
        if name not in bf16 and array.dtype not in _FROM_NUMPY:
            raise ValueError(f"tensor '{name}': dtype {array.dtype} has no safetensors name")
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": "BF16" if name in bf16 else _FROM_NUMPY[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".tmp.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def load_safetensors(path):
    """Reads `path` into {name: array} (copies); raises ValueError when the
    file is malformed."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"'{path}' is not a safetensors file: shorter than 8 bytes")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError(f"'{path}': header length {length} runs past the end of the file")
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _TO_NUMPY.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"'{path}': tensor '{name}' has unknown dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        if not 0 <= begin <= end <= len(body):
            raise ValueError(f"'{path}': tensor '{name}' lies outside the data section")
        array = np.frombuffer(body[begin:end], dtype=np.dtype(dtype).newbyteorder("<"))
        tensors[name] = array.reshape(entry["shape"]).copy()
    return tensors
