#!/usr/bin/python3
"""Pretrained-weight import fixtures for test/io/vit-import.test.ts and test/io/glove.test.ts.

One tiny timm ViT (a module tree with timm's VisionTransformer names: 64x64 images, patch 16, so a
4x4 grid; width 8, 2 heads, depth 2, MLP 32; class token and pos_embed [1, 17, 8]; a 5-class head),
every parameter random, written the three ways its real counterparts ship:

  test/fixtures/vit/vit_tiny_timm.pth          torch.save({'model': state_dict}) (zip format), the
                                               DeiT/unilm wrapping (timm's own files are unwrapped:
                                               test/fixtures/io/vit_tiny.pth covers that case)
  test/fixtures/vit/vit_tiny_timm.safetensors  the state dict as a Hugging Face hub model.safetensors
                                               (written by hand, scripts/golden/common.py: the
                                               safetensors package is not among Debian's)
  test/fixtures/vit/vit_tiny_augreg.npz        Google's big_vision/augreg .npz layout (np.savez):
                                               embedding/kernel [P,P,3,D], cls,
                                               Transformer/posembed_input/pos_embedding,
                                               Transformer/encoderblock_N/{LayerNorm_0,
                                               MultiHeadDotProductAttention_1/{query,key,value,out},
                                               LayerNorm_2, MlpBlock_3/Dense_{0,1}},
                                               Transformer/encoder_norm, head. The file is checked
                                               below by loading it back with a transcription of
                                               timm's `_load_weights` and comparing with the state dict.
  test/fixtures/vit/vit_tiny_expected.safetensors
                                               pos_embed grid (class position dropped) resampled by
                                               timm's resample_abs_pos_embed rule, i.e.
                                               F.interpolate(mode='bicubic', align_corners=False,
                                               antialias=False), to 6x6, 3x3 and 9x9: pos_grid_6 [1,36,8] ...
  test/fixtures/vit/glove_tiny.txt             GloVe text format, 8-d: some words of the synthetic
                                               benchmark, a cased-only form ("Star"), a cased form
                                               before the lowercase one ("Red" then "red"), a word
                                               with spaces (as glove.840B has: ". . .", "at
                                               name@domain.com"), words no
                                               vocabulary here has.

Regenerate (Debian's python3-torch; the pyenv `python3` on PATH has no torch):
    /usr/bin/python3 scripts/make-vit-fixtures.py
"""

import collections
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
from common import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "vit")
IMG, PATCH, D, HEADS, DEPTH, MLP, CLASSES = 64, 16, 8, 2, 2, 32, 5
GRID = IMG // PATCH


# --- a module tree with timm's VisionTransformer names (timm itself is not installed here) ---
class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, MLP)
        self.fc2 = nn.Linear(MLP, D)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=1e-6)
        self.attn = Attention()
        self.norm2 = nn.LayerNorm(D, eps=1e-6)
        self.mlp = Mlp()


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, D, kernel_size=PATCH, stride=PATCH)


class VisionTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, GRID * GRID + 1, D))
        self.patch_embed = PatchEmbed()
        self.blocks = nn.Sequential(*[Block() for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.head = nn.Linear(D, CLASSES)


def state_dict():
    gen = torch.Generator().manual_seed(20240611)
    sd = VisionTransformer().state_dict()
    # every value random (LayerNorm scales near 1), so a swapped or transposed tensor cannot pass
    return collections.OrderedDict(
        (k, (1 + 0.1 * torch.randn(v.shape, generator=gen)) if k.endswith("norm1.weight")
         or k.endswith("norm2.weight") or k == "norm.weight" else torch.randn(v.shape, generator=gen))
        for k, v in sd.items())


# --- Google's .npz layout: the inverse of timm's _load_weights ---
def to_google(sd):
    hd = D // HEADS
    w = collections.OrderedDict()
    w["cls"] = sd["cls_token"]
    w["embedding/kernel"] = sd["patch_embed.proj.weight"].permute(2, 3, 1, 0)  # OIHW -> HWIO
    w["embedding/bias"] = sd["patch_embed.proj.bias"]
    w["Transformer/posembed_input/pos_embedding"] = sd["pos_embed"]
    for i in range(DEPTH):
        b, g = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        mha = g + "MultiHeadDotProductAttention_1/"
        w[g + "LayerNorm_0/scale"] = sd[b + "norm1.weight"]
        w[g + "LayerNorm_0/bias"] = sd[b + "norm1.bias"]
        qkv_w = sd[b + "attn.qkv.weight"].reshape(3, D, D)  # [q;k;v] rows, each [out, in]
        qkv_b = sd[b + "attn.qkv.bias"].reshape(3, D)
        for j, n in enumerate(("query", "key", "value")):
            w[mha + f"{n}/kernel"] = qkv_w[j].T.reshape(D, HEADS, hd)  # [in, heads, head_dim]
            w[mha + f"{n}/bias"] = qkv_b[j].reshape(HEADS, hd)
        w[mha + "out/kernel"] = sd[b + "attn.proj.weight"].T.reshape(HEADS, hd, D)  # [heads, head_dim, out]
        w[mha + "out/bias"] = sd[b + "attn.proj.bias"]
        w[g + "LayerNorm_2/scale"] = sd[b + "norm2.weight"]
        w[g + "LayerNorm_2/bias"] = sd[b + "norm2.bias"]
        for r, fc in enumerate(("fc1", "fc2")):
            w[g + f"MlpBlock_3/Dense_{r}/kernel"] = sd[b + f"mlp.{fc}.weight"].T  # [in, out]
            w[g + f"MlpBlock_3/Dense_{r}/bias"] = sd[b + f"mlp.{fc}.bias"]
    w["Transformer/encoder_norm/scale"] = sd["norm.weight"]
    w["Transformer/encoder_norm/bias"] = sd["norm.bias"]
    w["head/kernel"] = sd["head.weight"].T
    w["head/bias"] = sd["head.bias"]
    return collections.OrderedDict((k, np.ascontiguousarray(v.numpy().astype("<f4"))) for k, v in w.items())


def timm_load_weights(w):
    """timm.models.vision_transformer._load_weights (non-hybrid, augreg naming), transcribed."""

    def _n2p(x, t=True):
        if x.ndim == 4 and x.shape[0] == x.shape[1] == x.shape[2] == 1:
            x = x.flatten()
        if t:
            if x.ndim == 4:
                x = x.transpose([3, 2, 0, 1])
            elif x.ndim == 3:
                x = x.transpose([2, 0, 1])
            elif x.ndim == 2:
                x = x.transpose([1, 0])
        return torch.from_numpy(np.ascontiguousarray(x))

    sd = collections.OrderedDict()
    sd["cls_token"] = _n2p(w["cls"], t=False)
    sd["pos_embed"] = _n2p(w["Transformer/posembed_input/pos_embedding"], t=False)
    sd["patch_embed.proj.weight"] = _n2p(w["embedding/kernel"])
    sd["patch_embed.proj.bias"] = _n2p(w["embedding/bias"])
    for i in range(DEPTH):
        bp, mha = f"Transformer/encoderblock_{i}/", f"Transformer/encoderblock_{i}/MultiHeadDotProductAttention_1/"
        b = f"blocks.{i}."
        sd[b + "norm1.weight"] = _n2p(w[bp + "LayerNorm_0/scale"])
        sd[b + "norm1.bias"] = _n2p(w[bp + "LayerNorm_0/bias"])
        sd[b + "attn.qkv.weight"] = torch.cat([_n2p(w[mha + f"{n}/kernel"], t=False).flatten(1).T for n in ("query", "key", "value")])
        sd[b + "attn.qkv.bias"] = torch.cat([_n2p(w[mha + f"{n}/bias"], t=False).reshape(-1) for n in ("query", "key", "value")])
        sd[b + "attn.proj.weight"] = _n2p(w[mha + "out/kernel"]).flatten(1)
        sd[b + "attn.proj.bias"] = _n2p(w[mha + "out/bias"])
        sd[b + "norm2.weight"] = _n2p(w[bp + "LayerNorm_2/scale"])
        sd[b + "norm2.bias"] = _n2p(w[bp + "LayerNorm_2/bias"])
        for r in range(2):
            sd[b + f"mlp.fc{r + 1}.weight"] = _n2p(w[bp + f"MlpBlock_3/Dense_{r}/kernel"])
            sd[b + f"mlp.fc{r + 1}.bias"] = _n2p(w[bp + f"MlpBlock_3/Dense_{r}/bias"])
    sd["norm.weight"] = _n2p(w["Transformer/encoder_norm/scale"])
    sd["norm.bias"] = _n2p(w["Transformer/encoder_norm/bias"])
    sd["head.weight"] = _n2p(w["head/kernel"])
    sd["head.bias"] = _n2p(w["head/bias"])
    return sd


def resample_abs_pos_embed(posemb, new_grid, num_prefix_tokens=1):
    """timm.layers.resample_abs_pos_embed with interpolation='bicubic', antialias=False."""
    prefix, grid = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    g = int(round(grid.shape[1] ** 0.5))
    grid = grid.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new_grid, new_grid), mode="bicubic", align_corners=False, antialias=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, posemb.shape[-1])
    return torch.cat([prefix, grid], dim=1)


GLOVE_WORDS = [  # order matters for the cased-form tests; "at" is a vocabulary word, "at name@..." is not
    "the", "Red", "red", "circle", "Star", "left", ". . .", "blue", "at name@domain.com", "zebra",
    "square", "small", "quantum", "on", "Green",
]


def write_glove(path):
    gen = torch.Generator().manual_seed(7)
    with open(path, "w", encoding="utf-8") as f:
        for word in GLOVE_WORDS:
            v = torch.randn(D, generator=gen).tolist()
            f.write(word + " " + " ".join("%.5g" % x for x in v) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    path = lambda f: os.path.join(OUT, f)  # noqa: E731

    torch.save({"model": sd}, path("vit_tiny_timm.pth"))
    write_safetensors(path("vit_tiny_timm.safetensors"), sd, {"format": "pt"})
    google = to_google(sd)
    np.savez(path("vit_tiny_augreg.npz"), **google)
    back = timm_load_weights(dict(np.load(path("vit_tiny_augreg.npz"))))
    assert list(back) == [k for k in sd], "timm's loader yields other names"
    for k, v in sd.items():
        assert torch.equal(back[k], v), f"{k}: timm's loader does not give the state dict back"

    expected = collections.OrderedDict()
    for g in (6, 3, 9):
        r = resample_abs_pos_embed(sd["pos_embed"], g)
        assert torch.equal(r[:, :1], sd["pos_embed"][:, :1])
        expected[f"pos_grid_{g}"] = r[:, 1:].contiguous()
    write_safetensors(path("vit_tiny_expected.safetensors"), expected,
                      {"note": "pos_embed grid resampled with F.interpolate bicubic, align_corners=False, antialias=False",
                       "torch": torch.__version__})
    write_glove(path("glove_tiny.txt"))

    total = 0
    for f in sorted(os.listdir(OUT)):
        size = os.path.getsize(path(f))
        total += size
        print(f"wrote test/fixtures/vit/{f} ({size} bytes)")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
