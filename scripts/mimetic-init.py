# Experiment (session 9, docs/restr-tiny-experiments.md): mimetic initialization of self-attention
# (Trockman & Kolter, ICML 2023) applied to a refseg ReSTR init checkpoint. Per head,
# W_q W_k^T ≈ a1·Z + b1·I (rank head-dim, from the SVD); per layer, W_v W_o ≈ a2·Z − b2·I, with
# Z ~ N(0, 1/d). Only the attention weights of blocks under the given prefixes change. Measured:
# no faster than timm's init for restr-tiny, so no shipped recipe uses it.
#
#   python3 scripts/mimetic-init.py INIT OUT PREFIXES [a1,b1,a2,b2]
#   e.g.  python3 scripts/mimetic-init.py init.safetensors mim.safetensors vision.   (needs numpy)
#   then  refseg train --init mim.safetensors ...
import json
import re
import struct
import sys

import numpy as np

src, dst, prefixes = sys.argv[1], sys.argv[2], sys.argv[3].split(',')
a1, b1, a2, b2 = (float(x) for x in (sys.argv[4] if len(sys.argv) > 4 else '0.7,0.7,0.4,0.4').split(','))

raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = bytearray(raw[8 + n:])
config = json.loads(header['__metadata__']['config'])
heads = {'vision': config['vision']['heads'], 'language': config['language']['heads'], 'fusion': config['fusion']['heads']}
rng = np.random.default_rng(1234)


def factors(d, alpha, beta, sign):
    """L, R with L @ R = alpha·Z + sign·beta·I (Z ~ N(0, 1/d)), split evenly by the SVD."""
    U, S, Vt = np.linalg.svd(alpha * rng.normal(size=(d, d)) / d ** 0.5 + sign * beta * np.eye(d))
    return U @ np.diag(np.sqrt(S)), np.diag(np.sqrt(S)) @ Vt


def get(name):
    e = header[name]
    start, end = e['data_offsets']
    return np.frombuffer(bytes(data[start:end]), dtype=np.float32).reshape(e['shape']).copy()


def put(name, value):
    start, end = header[name]['data_offsets']
    value = np.ascontiguousarray(value, dtype=np.float32)
    assert value.nbytes == end - start, name
    data[start:end] = value.tobytes()


layers = 0
for name in sorted(header):
    m = re.match(r'(.*)\.attn\.qkv\.weight$', name)
    if not m or not any(name.startswith(p) for p in prefixes):
        continue
    block = m.group(1)
    qkv = get(name)  # [3D, D], PyTorch layout: q = x @ W_q^T
    d = qkv.shape[1]
    hd = d // heads[block.split('.')[0]]
    for h in range(d // hd):
        L, R = factors(d, a1, b1, 1)
        qkv[h * hd:(h + 1) * hd] = L[:, :hd].T  # W_q^h = L[:, :hd]
        qkv[d + h * hd:d + (h + 1) * hd] = R[:hd]  # W_k^h = R[:hd]^T, so W_q^h W_k^hT = L[:, :hd] R[:hd]
    L, R = factors(d, a2, b2, -1)
    qkv[2 * d:] = L.T  # W_v = L
    put(name, qkv)
    put(block + '.attn.proj.weight', R.T)  # W_o = R, so W_v W_o = L R
    layers += 1
open(dst, 'wb').write(raw[:8 + n] + bytes(data))
print(f'mimetic init on {layers} attention layers -> {dst}')
