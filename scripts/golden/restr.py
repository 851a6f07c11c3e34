#!/usr/bin/python3
"""Golden fixtures for ReSTR (spec/restr.md §1-2): a plain PyTorch re-implementation of the contract,
written from the spec alone (no refseg code), computes logits, loss and every parameter gradient;
test/golden/restr.test.ts must reproduce them from the same weights.

Three small cases cover every branch of the contract:
  cme         the paper's CME fusion, decoder on (P = 8, K = 3), drop-path scales on every block
  ime-share   IME fusion with weight sharing (one block per encoder applied twice), decoder on,
              drop-path scales that differ per APPLICATION of the shared block
  vme-nodec   VME fusion (odd depth 3), decoder off (bilinear x6, align_corners=False, P = 6)
Vision width 24 (1 block), language width 12 (1 block), fusion width 16 (all different, so a projection wired to the
wrong width fails), batch 2 with 3 and 6 padding words.

Independent routes on purpose: the patch embedding is F.conv2d(stride=P) here (refseg uses a
reshape + MatMul), upsampling is F.interpolate (refseg: ONNX Resize), the decoder's per-pixel
linear maps are 1x1 convolutions, attention masks are built from the words here.

Each fixture test/fixtures/golden/restr-<case>.safetensors (F32, written by hand like engine.py) holds
  param.<name>                 initial parameters, named as spec §3
  input.image, input.words (ids as float), input.mask, input.patch_labels
  droppath.<block>.attn|mlp    [B,1,1] stochastic-depth scales (0 or 1/keep), when the case has them
  out.mask_logits, out.patch_logits, loss, grad.<name>
computed in float64 from the float32 values (stored rounded to float32); __metadata__ has the
refseg config JSON, the parameter and drop-path names, and the float32-vs-float64 error of this
same computation (what a float32 engine can be expected to match).

Regenerate (Debian's python3-torch; the pyenv `python3` on PATH has no torch):
    /usr/bin/python3 scripts/golden/restr.py
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from common import rel_err, write_safetensors  # noqa: E402  (scripts/golden/common.py)

LN_EPS = 1e-6
B = 2
WORDS_PER_SAMPLE = [5, 2]  # the rest is padding (id 0)
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "golden")


def make_config(image, patch, variant, depth, share, decoder):
    return {
        "model": "restr",
        "imageSize": image,
        "patchSize": patch,
        "vision": {"dim": 24, "depth": 1, "heads": 2, "mlpDim": 48, "dropPath": 0.1},
        "language": {"vocabSize": 30, "wordDim": 12, "depth": 1, "heads": 2, "mlpDim": 24, "maxWords": 8, "dropPath": 0.1},
        "fusion": {"variant": variant, "dim": 16, "depth": depth, "heads": 2, "mlpDim": 32, "share": share, "dropPath": 0.1},
        "decoder": decoder,
        "patchLabel": "ratio",
        "tau": 0.8,
        "lambda": 0.1,
    }


CASES = {
    "cme": (make_config(32, 8, "cme", 2, False, True), True),
    "ime-share": (make_config(32, 8, "ime", 4, True, True), True),
    "vme-nodec": (make_config(24, 6, "vme", 3, False, False), False),
}


# ---------------------------------------------------------------- parameters (spec §3 names)


def block_shapes(prefix, d, mlp):
    return {
        f"{prefix}.norm1.weight": [d], f"{prefix}.norm1.bias": [d],
        f"{prefix}.attn.qkv.weight": [3 * d, d], f"{prefix}.attn.qkv.bias": [3 * d],
        f"{prefix}.attn.proj.weight": [d, d], f"{prefix}.attn.proj.bias": [d],
        f"{prefix}.norm2.weight": [d], f"{prefix}.norm2.bias": [d],
        f"{prefix}.mlp.fc1.weight": [mlp, d], f"{prefix}.mlp.fc1.bias": [mlp],
        f"{prefix}.mlp.fc2.weight": [d, mlp], f"{prefix}.mlp.fc2.bias": [d],
    }


def encoder_layers(c):
    """(param prefix, number of block APPLICATIONS, blocks stored) per fusion encoder."""
    f = c["fusion"]
    if f["variant"] == "vme":
        return [("fusion.vl", f["depth"])]
    return [("fusion.vl", f["depth"] // 2), ("fusion.ls", f["depth"] // 2)]


def param_shapes(c):
    v, l, f = c["vision"], c["language"], c["fusion"]
    P, S = c["patchSize"], c["imageSize"]
    nv = (S // P) ** 2
    shapes = {
        "vision.patch_embed.proj.weight": [v["dim"], 3, P, P],
        "vision.patch_embed.proj.bias": [v["dim"]],
        "vision.pos_embed": [1, nv, v["dim"]],
    }
    for i in range(v["depth"]):
        shapes.update(block_shapes(f"vision.blocks.{i}", v["dim"], v["mlpDim"]))
    shapes.update({"vision.norm.weight": [v["dim"]], "vision.norm.bias": [v["dim"]]})
    shapes["language.embed.weight"] = [l["vocabSize"], l["wordDim"]]
    for i in range(l["depth"]):
        shapes.update(block_shapes(f"language.blocks.{i}", l["wordDim"], l["mlpDim"]))
    shapes.update({"language.norm.weight": [l["wordDim"]], "language.norm.bias": [l["wordDim"]]})
    d = f["dim"]
    shapes.update({
        "fusion.proj_v.weight": [d, v["dim"]], "fusion.proj_v.bias": [d],
        "fusion.proj_l.weight": [d, l["wordDim"]], "fusion.proj_l.bias": [d],
        "fusion.seed": [1, 1, d],
    })
    for prefix, n in encoder_layers(c):
        for i in range(1 if f["share"] else n):
            shapes.update(block_shapes(f"{prefix}.blocks.{i}", d, f["mlpDim"]))
        shapes.update({f"{prefix}.norm.weight": [d], f"{prefix}.norm.bias": [d]})
    if c["decoder"]:
        ch = 2 * d
        for k in range(int(round(math.log2(P)))):
            shapes[f"decoder.blocks.{k}.proj.weight"] = [ch // 2, ch]
            ch //= 2
        shapes["decoder.head.weight"] = [1, ch]
    return shapes


def init_params(shapes, gen):
    """O(1) activations everywhere (weights ~ N(0, 1/fan_in), LN parameters and biases perturbed),
    so that every path carries a gradient a wrong rule would visibly change."""
    out = {}
    for name, shape in shapes.items():
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("norm.weight"):
            t = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        elif name in ("vision.pos_embed", "fusion.seed", "language.embed.weight"):
            t = 0.5 * torch.randn(shape, generator=gen)
        else:
            fan_in = int(np.prod(shape[1:]))
            t = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
        out[name] = t.float()
    return out


# ---------------------------------------------------------------- the model (spec §1)


def layer_norm(p, prefix, x):
    return F.layer_norm(x, (x.shape[-1],), p[prefix + ".weight"], p[prefix + ".bias"], LN_EPS)


def linear(p, prefix, x, bias=True):
    return F.linear(x, p[prefix + ".weight"], p[prefix + ".bias"] if bias else None)


def attention(p, prefix, x, heads, key_mask):
    Bn, N, D = x.shape
    dh = D // heads
    qkv = linear(p, prefix + ".qkv", x).reshape(Bn, N, 3, heads, dh).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, N, dh]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(dh)
    if key_mask is not None:
        scores = scores + key_mask[:, None, None, :]  # additive, keys only
    a = scores.softmax(-1)
    return linear(p, prefix + ".proj", (a @ v).transpose(1, 2).reshape(Bn, N, D))


def block(p, prefix, x, heads, key_mask, scales):
    s_attn, s_mlp = scales if scales is not None else (1.0, 1.0)
    x = x + s_attn * attention(p, prefix + ".attn", layer_norm(p, prefix + ".norm1", x), heads, key_mask)
    h = linear(p, prefix + ".mlp.fc2", F.gelu(linear(p, prefix + ".mlp.fc1", layer_norm(p, prefix + ".norm2", x))))
    return x + s_mlp * h


def encoder(p, prefix, x, heads, depth, share, key_mask, drop):
    for i in range(depth):
        bp = f"{prefix}.blocks.{0 if share else i}"
        x = block(p, bp, x, heads, key_mask, drop.get(f"{prefix}.blocks.{i}"))  # drop keys name the application
    return layer_norm(p, prefix + ".norm", x)


def sinusoid(L, C, dtype):
    pe = torch.zeros(L, C, dtype=torch.float64)
    pos = torch.arange(L, dtype=torch.float64)[:, None]
    i2 = torch.arange(0, C, 2, dtype=torch.float64)[None, :]
    pe[:, 0::2] = torch.sin(pos / 10000 ** (i2 / C))
    pe[:, 1::2] = torch.cos(pos / 10000 ** (i2 / C))
    return pe.to(dtype)


def forward(c, p, image, words, drop):
    v_c, l_c, f_c = c["vision"], c["language"], c["fusion"]
    P, S, D = c["patchSize"], c["imageSize"], f_c["dim"]
    G = S // P
    nv, L = G * G, l_c["maxWords"]
    pad = words == 0
    lang_mask = torch.zeros(words.shape, dtype=image.dtype).masked_fill(pad, -1e9)  # [B, L]
    zeros_v = torch.zeros(B, nv, dtype=image.dtype)
    zeros_1 = torch.zeros(B, 1, dtype=image.dtype)

    # 1. vision encoder
    x = F.conv2d(image, p["vision.patch_embed.proj.weight"], p["vision.patch_embed.proj.bias"], stride=P)
    x = x.flatten(2).transpose(1, 2) + p["vision.pos_embed"]  # [B, Nv, Dv], row-major patches
    zv = encoder(p, "vision", x, v_c["heads"], v_c["depth"], False, None, drop)
    # 2. language encoder
    x = F.embedding(words, p["language.embed.weight"]) + sinusoid(L, l_c["wordDim"], image.dtype)
    zl = encoder(p, "language", x, l_c["heads"], l_c["depth"], False, lang_mask, drop)
    # 3. fusion input
    v = linear(p, "fusion.proj_v", F.normalize(zv, dim=-1, eps=1e-12))
    l = linear(p, "fusion.proj_l", F.normalize(zl, dim=-1, eps=1e-12))
    seed = p["fusion.seed"].expand(B, 1, D)
    # 4. fusion encoder
    h, share, var = f_c["heads"], f_c["share"], f_c["variant"]
    if var == "vme":
        out = encoder(p, "fusion.vl", torch.cat([v, l, seed], 1), h, f_c["depth"], share, torch.cat([zeros_v, lang_mask, zeros_1], 1), drop)
        vp, sp = out[:, :nv], out[:, nv + L :]
    else:
        half = f_c["depth"] // 2
        out = encoder(p, "fusion.vl", torch.cat([v, l], 1), h, half, share, torch.cat([zeros_v, lang_mask], 1), drop)
        vp, lp = out[:, :nv], out[:, nv:]
        ls_in = torch.cat([lp if var == "cme" else l, seed], 1)
        sp = encoder(p, "fusion.ls", ls_in, h, half, share, torch.cat([lang_mask, zeros_1], 1), drop)[:, L:]
    # 5. patch prediction (Eq. 9)
    patch_logits = (vp @ sp.transpose(1, 2)).squeeze(-1) / math.sqrt(D)  # [B, Nv]
    # 6. decoder
    if c["decoder"]:
        yp = torch.sigmoid(patch_logits)[..., None]
        x = torch.cat([v, vp * yp], -1).transpose(1, 2).reshape(B, 2 * D, G, G)
        k = 0
        while f"decoder.blocks.{k}.proj.weight" in p:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            w = p[f"decoder.blocks.{k}.proj.weight"]
            x = F.leaky_relu(F.conv2d(x, w[:, :, None, None]), 0.01)
            k += 1
        mask_logits = F.conv2d(x, p["decoder.head.weight"][:, :, None, None])
    else:
        mask_logits = F.interpolate(patch_logits.reshape(B, 1, G, G), scale_factor=P, mode="bilinear", align_corners=False)
    assert mask_logits.shape == (B, 1, S, S)
    return mask_logits, patch_logits


def loss_fn(c, mask_logits, patch_logits, mask, patch_labels):
    bce = F.binary_cross_entropy_with_logits  # mean over elements
    return c["lambda"] * bce(patch_logits, patch_labels) + bce(mask_logits, mask)


# ---------------------------------------------------------------- inputs


def make_inputs(c, gen):
    S, P = c["imageSize"], c["patchSize"]
    L, V = c["language"]["maxWords"], c["language"]["vocabSize"]
    image = torch.randn(B, 3, S, S, generator=gen)
    words = torch.zeros(B, L, dtype=torch.int64)
    for b, n in enumerate(WORDS_PER_SAMPLE):
        words[b, :n] = torch.randint(2, V, (n,), generator=gen)
    # a rectangle per sample (patch-aligned on one side so some patches are fully inside)
    mask = torch.zeros(B, 1, S, S)
    mask[0, :, P : 3 * P, S // 4 : S - 3] = 1
    mask[1, :, S // 3 :, : P + P // 2] = 1
    G = S // P
    ratio = mask.reshape(B, G, P, G, P).mean(dim=(2, 4))  # [B, G, G], row-major patches
    patch_labels = (ratio > c["tau"]).float().reshape(B, G * G)
    assert 0 < patch_labels.sum() < patch_labels.numel()
    return image, words, mask, patch_labels


def drop_keys(c):
    keys = [f"vision.blocks.{i}" for i in range(c["vision"]["depth"])]
    keys += [f"language.blocks.{i}" for i in range(c["language"]["depth"])]
    for prefix, n in encoder_layers(c):
        keys += [f"{prefix}.blocks.{i}" for i in range(n)]
    return keys


def make_drop(keys, gen, keep=0.9):
    """Per-sample scales 0 or 1/keep; every block gets at least one dropped and one kept branch."""
    out = {}
    for j, k in enumerate(keys):
        kept = (torch.rand(2, B, generator=gen) < keep).float()
        kept[j % 2, 0] = 0.0  # guarantee some zeros...
        kept[(j + 1) % 2, 1] = 1.0  # ...and some kept samples
        s = kept / keep
        out[k] = (s[0].reshape(B, 1, 1), s[1].reshape(B, 1, 1))
    return out


# ---------------------------------------------------------------- fixture


def run(c, params32, inputs32, drop32, dtype):
    p = {k: v.to(dtype).clone().requires_grad_(True) for k, v in params32.items()}
    image, words, mask, labels = inputs32
    drop = {k: (a.to(dtype), m.to(dtype)) for k, (a, m) in drop32.items()}
    ml, pl = forward(c, p, image.to(dtype), words, drop)
    loss = loss_fn(c, ml, pl, mask.to(dtype), labels.to(dtype))
    names = list(p.keys())
    grads = torch.autograd.grad(loss, [p[n] for n in names])
    out = {"out.mask_logits": ml.detach(), "out.patch_logits": pl.detach(), "loss": loss.detach()}
    out.update({"grad." + n: g for n, g in zip(names, grads)})
    return out


def main():
    torch.use_deterministic_algorithms(True)
    for i, (case, (c, with_drop)) in enumerate(CASES.items()):
        gen = torch.Generator().manual_seed(20220619 + i)
        shapes = param_shapes(c)
        params = init_params(shapes, gen)
        inputs = make_inputs(c, gen)
        drop = make_drop(drop_keys(c), gen) if with_drop else {}
        r64 = run(c, params, inputs, drop, torch.float64)
        r32 = run(c, params, inputs, drop, torch.float32)
        errs = {k: rel_err(r32[k], r64[k]) for k in r64}
        image, words, mask, labels = inputs
        tensors = {"input.image": image, "input.words": words.float(), "input.mask": mask, "input.patch_labels": labels}
        tensors.update({"param." + n: t for n, t in params.items()})
        for k, (a, m) in drop.items():
            tensors[f"droppath.{k}.attn"], tensors[f"droppath.{k}.mlp"] = a, m
        tensors.update(r64)  # the float64 reference, rounded to float32
        metadata = {
            "generator": "scripts/golden/restr.py",
            "torch": torch.__version__,
            "case": case,
            "config": json.dumps(c),
            "params": json.dumps(list(shapes.keys())),
            "drop_path": json.dumps(list(drop.keys())),
            "f32_vs_f64": json.dumps(errs),
        }
        path = os.path.join(OUT_DIR, f"restr-{case}.safetensors")
        write_safetensors(path, tensors, metadata)
        worst_grad = max(v for k, v in errs.items() if k.startswith("grad."))
        print(
            f"wrote {os.path.relpath(path)} ({os.path.getsize(path) / 1024:.0f} KiB, {len(tensors)} tensors); "
            f"loss {float(r64['loss']):.6f}; float32 vs float64: mask {errs['out.mask_logits']:.1e}, "
            f"patch {errs['out.patch_logits']:.1e}, worst grad {worst_grad:.1e}"
        )


if __name__ == "__main__":
    main()
