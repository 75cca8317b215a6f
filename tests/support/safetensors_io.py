"""Shared helpers of the Python cross-checks: reading and writing .safetensors without the
safetensors package (Debian's python3 has only torch and numpy), and the pass/fail ending."""
import json
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    """Every F32 tensor of the file as a float64 torch tensor, by name."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).astype(np.float64))
    return out


def write_safetensors(path, tensors, dtype="F32"):
    """Writes tensors as F32, or BF16 (the top 16 bits of each f32: truncation)."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        arr = t.detach().to(torch.float32).numpy()
        if dtype == "F32":
            data = arr.astype("<f4").tobytes()
        else:
            data = (arr.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def finish(failures):
    """Prints the verdict ctest matches on and exits accordingly."""
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("PASSED")
