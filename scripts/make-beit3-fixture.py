#!/usr/bin/python3
"""BEiT-3 checkpoint fixtures for test/models/shared-ris-import.test.ts: a tiny fake BEiT-3 written by
torch.save exactly as Microsoft's checkpoints are laid out ({'model': state_dict}, every key of
torchscale's BEiT3 under `beit3.`, plus what Shared-RIS does not use: vision_embed.mask_token, the
final encoder.layer_norm.{A,B}, and task heads outside `beit3.`), and the vision position tables
that unilm beit3's `load_model_and_may_interpolate` produces for other image sizes.

The key list follows torchscale's module structure (BEiT3 -> text_embed, vision_embed{proj,
mask_token, cls_token}, encoder{embed_positions{A,B}, layers.i{self_attn{k,v,q,out}_proj{A,B},
inner_attn_ln{A,B}, self_attn_layer_norm{A,B}, ffn{A,B}{fc1,fc2,ffn_layernorm}, final_layer_norm{A,B}},
layer_norm{A,B}}); torchscale itself is not installed here.

  test/fixtures/beit3/tiny_beit3.pth           32x32 images, patch 8 (g = 4: vision table 3 + 16 rows),
                                               width 16, 2 layers, FFN 24, vocabulary 30, 12 text
                                               positions; text_embed stored as float16
  test/fixtures/beit3/tiny_beit3.expected.pth  {'pos_A_6': [3+36, 16], 'pos_A_3': [3+9, 16]}: the
                                               vision table resampled to 48x48 and 24x24 images

Regenerate (Debian's python3-torch; the pyenv `python3` on PATH has no torch):
    /usr/bin/python3 scripts/make-beit3-fixture.py
"""

import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "beit3")
D, DEPTH, FFN, VOCAB, MAX_POS, IMG, PATCH = 16, 2, 24, 30, 12, 32, 8


def state_dict(gen):
    g = IMG // PATCH
    shapes = {
        "beit3.text_embed.weight": [VOCAB, D],
        "beit3.vision_embed.mask_token": [1, 1, D],
        "beit3.vision_embed.cls_token": [1, 1, D],
        "beit3.vision_embed.proj.weight": [D, 3, PATCH, PATCH],
        "beit3.vision_embed.proj.bias": [D],
        "beit3.encoder.embed_positions.A.weight": [g * g + 1 + 2, D],
        "beit3.encoder.embed_positions.B.weight": [MAX_POS, D],
    }
    for i in range(DEPTH):
        l = f"beit3.encoder.layers.{i}"
        for p in ("k_proj", "v_proj", "q_proj", "out_proj"):
            for w in "AB":
                shapes[f"{l}.self_attn.{p}.{w}.weight"] = [D, D]
                shapes[f"{l}.self_attn.{p}.{w}.bias"] = [D]
        for m in ("self_attn.inner_attn_ln", "self_attn_layer_norm"):
            for w in "AB":
                shapes[f"{l}.{m}.{w}.weight"] = [D]
                shapes[f"{l}.{m}.{w}.bias"] = [D]
        for w in "AB":
            shapes[f"{l}.ffn.{w}.fc1.weight"] = [FFN, D]
            shapes[f"{l}.ffn.{w}.fc1.bias"] = [FFN]
            shapes[f"{l}.ffn.{w}.fc2.weight"] = [D, FFN]
            shapes[f"{l}.ffn.{w}.fc2.bias"] = [D]
            shapes[f"{l}.ffn.{w}.ffn_layernorm.weight"] = [FFN]
            shapes[f"{l}.ffn.{w}.ffn_layernorm.bias"] = [FFN]
        for w in "AB":
            shapes[f"{l}.final_layer_norm.{w}.weight"] = [D]
            shapes[f"{l}.final_layer_norm.{w}.bias"] = [D]
    for w in "AB":
        shapes[f"beit3.encoder.layer_norm.{w}.weight"] = [D]
        shapes[f"beit3.encoder.layer_norm.{w}.bias"] = [D]
    # a retrieval fine-tune's heads (not BEiT-3 itself)
    shapes["vision_head.weight"] = [8, D]
    shapes["language_head.weight"] = [8, D]
    shapes["logit_scale"] = []
    sd = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    sd["beit3.text_embed.weight"] = sd["beit3.text_embed.weight"].half()
    return sd


def resample(table, new_grid):
    """unilm beit3 load_model_and_may_interpolate, for the torchscale table (num_extra_tokens = 3)."""
    extra, pos = table[:3], table[3:]
    g = int(round(pos.shape[0] ** 0.5))
    pos = pos.reshape(-1, g, g, table.shape[-1]).permute(0, 3, 1, 2)
    pos = F.interpolate(pos, size=(new_grid, new_grid), mode="bicubic", align_corners=False)
    pos = pos.permute(0, 2, 3, 1).flatten(1, 2)
    return torch.cat((extra.unsqueeze(0), pos), dim=1).squeeze(0)


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20230301)
    sd = state_dict(gen)
    torch.save({"model": sd}, os.path.join(OUT, "tiny_beit3.pth"))
    a = sd["beit3.encoder.embed_positions.A.weight"]
    torch.save({"pos_A_6": resample(a, 6).contiguous(), "pos_A_3": resample(a, 3).contiguous()}, os.path.join(OUT, "tiny_beit3.expected.pth"))
    for f in ("tiny_beit3.pth", "tiny_beit3.expected.pth"):
        print(f"wrote test/fixtures/beit3/{f} ({os.path.getsize(os.path.join(OUT, f))} bytes)")


if __name__ == "__main__":
    main()
