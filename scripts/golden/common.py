"""Shared by the golden-fixture scripts: the error measure the TypeScript tests use, and a
float32 safetensors writer (by hand: the `safetensors` package is not among Debian's)."""

import json
import os
import struct

import numpy as np


def rel_err(a, b):
    """max|a - b| / max|b|, the measure the TypeScript test uses."""
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-30))


def write_safetensors(path, tensors, metadata):
    """safetensors by hand: u64 LE header size, JSON header (padded with spaces to 8 bytes), data."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        blob = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)
