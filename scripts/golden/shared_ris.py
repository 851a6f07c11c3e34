#!/usr/bin/python3
"""Golden fixture for Shared-RIS (spec/shared-ris.md §1-3): a plain PyTorch re-implementation of the
contract, written from the spec and torchscale's BEiT-3 code paths (no refseg code), computes the
mask logits, the loss, every parameter gradient and the BatchNorm running-statistics updates in
training mode, and the mask logits in inference mode (running statistics);
test/golden/shared-ris.test.ts must reproduce them from the same weights.

One small case: S = 32, P = 8 (n = 16), T = 7, a 3-layer multiway encoder (width 16, 4 heads, FFN 24)
whose layers 1 and 3 feed the FPN (width 12, 2 heads), a decoder with 3 heads and MLP 20, l = 2
(F_2 at 16x16, upsampled x2). Every width differs from its neighbours' so a projection wired to the
wrong width fails. Batch 2 with 2 and 0 padding tokens; drop-path scales on every encoder layer.

Independent routes on purpose: tokens run through the encoder CONCATENATED and every multiway module
splits and re-concatenates at the split position (torchscale MultiwayNetwork), where refseg keeps the
groups apart; the patch embedding is F.conv2d(stride=P) (refseg: reshape + MatMul); padded keys are
masked with -inf (torchscale) where refseg adds -1e9; BatchNorm is F.batch_norm(training=True),
which updates the running statistics in place (refseg: a composition of primitive ops); upsampling is
F.interpolate (refseg: ONNX Resize).

The fixture test/fixtures/golden/shared-ris.safetensors (F32, written by hand like restr.py) holds
  param.<name>      initial parameters, named as spec §3
  buffer.<name>     BatchNorm running statistics before the step (not 0/1, so inference reads them)
  input.image, input.text (ids as float), input.mask
  droppath.<layer>.attn|mlp   [B,1,1] stochastic-depth scales (0 or 1/keep)
  out.mask_logits, loss, grad.<name>, running.<name> (training mode)
  out.mask_logits_eval (inference mode, running statistics)
computed in float64 from the float32 values (stored rounded to float32); __metadata__ has the refseg
config JSON, the parameter, buffer and drop-path names, and the float32-vs-float64 error of this same
computation (what a float32 engine can be expected to match).

Regenerate (Debian's python3-torch; the pyenv `python3` on PATH has no torch):
    /usr/bin/python3 scripts/golden/shared_ris.py
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from common import rel_err, write_safetensors  # noqa: E402  (scripts/golden/common.py)

LN_EPS = 1e-5
BN_EPS = 1e-5
B = 2
WORDS_PER_SAMPLE = [3, 5]  # + [CLS] and [EOT]; the rest is <pad> (id 1)
CLS, PAD, EOT = 0, 1, 2
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "golden", "shared-ris.safetensors")

CONFIG = {
    "model": "shared-ris",
    "imageSize": 32,
    "patchSize": 8,
    "maxTokens": 7,
    "encoder": {"dim": 16, "depth": 3, "heads": 4, "mlpDim": 24, "vocabSize": 30, "maxPositions": 11, "dropPath": 0.1},
    "fpn": {"dim": 12, "heads": 2, "stages": [1, 3]},
    "decoder": {"heads": 3, "mlpDim": 20, "upsamples": 2},
    "threshold": 0.35,
    "loss": {"bce": 2.0, "dice": 0.5},
    "bnMomentum": 0.1,
}


# ---------------------------------------------------------------- parameters (spec §3 names)


def param_shapes(c):
    e, P, S = c["encoder"], c["patchSize"], c["imageSize"]
    D, Fd = e["dim"], e["mlpDim"]
    n = (S // P) ** 2
    shapes = {
        "beit3.vision_embed.proj.weight": [D, 3, P, P],
        "beit3.vision_embed.proj.bias": [D],
        "beit3.vision_embed.cls_token": [1, 1, D],
        "beit3.text_embed.weight": [e["vocabSize"], D],
        "beit3.encoder.embed_positions.A.weight": [n + 1 + 2, D],
        "beit3.encoder.embed_positions.B.weight": [e["maxPositions"], D],
    }

    def lin(name, o, i):
        shapes[name + ".weight"] = [o, i]
        shapes[name + ".bias"] = [o]

    def ln(name, d):
        shapes[name + ".weight"] = [d]
        shapes[name + ".bias"] = [d]

    for i in range(e["depth"]):
        l = f"beit3.encoder.layers.{i}"
        for w in "AB":
            for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
                lin(f"{l}.self_attn.{p}.{w}", D, D)
            ln(f"{l}.self_attn.inner_attn_ln.{w}", D)
            ln(f"{l}.self_attn_layer_norm.{w}", D)
            lin(f"{l}.ffn.{w}.fc1", Fd, D)
            ln(f"{l}.ffn.{w}.ffn_layernorm", Fd)
            lin(f"{l}.ffn.{w}.fc2", D, Fd)
            ln(f"{l}.final_layer_norm.{w}", D)
    dw = c["fpn"]["dim"]
    for k, _ in enumerate(c["fpn"]["stages"]):
        lin(f"fpn.stages.{k}.proj", dw, D)
        ln(f"fpn.stages.{k}.norm", dw)
        lin(f"fpn.stages.{k}.attn.qkv", 3 * dw, dw)
        lin(f"fpn.stages.{k}.attn.proj", dw, dw)
    lin("fpn.fuse", dw, len(c["fpn"]["stages"]) * dw)
    m = c["decoder"]["mlpDim"]
    ln("decoder.block.norm1", dw)
    lin("decoder.block.attn.qkv", 3 * dw, dw)
    lin("decoder.block.attn.proj", dw, dw)
    ln("decoder.block.norm2", dw)
    lin("decoder.block.mlp.fc1", m, dw)
    lin("decoder.block.mlp.fc2", dw, m)
    buffers = {}
    for k in range(c["decoder"]["upsamples"]):
        shapes[f"decoder.convs.{k}.conv.weight"] = [dw, dw, 3, 3]
        ln(f"decoder.convs.{k}.bn", dw)
        buffers[f"decoder.convs.{k}.bn.running_mean"] = [dw]
        buffers[f"decoder.convs.{k}.bn.running_var"] = [dw]
    lin("decoder.text_mlp.fc1", dw, dw)
    lin("decoder.text_mlp.fc2", dw, dw)
    return shapes, buffers


def init_params(shapes, buffers, gen):
    """O(1) activations everywhere (weights ~ N(0, 1/fan_in), norms and biases perturbed)."""
    out = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            t = 0.1 * torch.randn(shape, generator=gen) + (0.0 if name.endswith(".bias") else 1.0)
        elif "embed" in name or "cls_token" in name:
            t = 0.5 * torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) / math.sqrt(int(np.prod(shape[1:])))
        out[name] = t.float()
    bufs = {}
    for name, shape in buffers.items():
        if name.endswith("running_mean"):
            bufs[name] = (0.1 * torch.randn(shape, generator=gen)).float()
        else:
            bufs[name] = (0.5 + torch.rand(shape, generator=gen)).float()
    return out, bufs


# ---------------------------------------------------------------- the model (spec §1, torchscale)


def layer_norm(p, name, x):
    return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], LN_EPS)


def linear(p, name, x):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"])


def multiway(x, split, fa, fb):
    """torchscale MultiwayNetwork: expert A before the split position, B after, along dim 1."""
    x1, x2 = torch.split(x, [split, x.size(1) - split], dim=1)
    return torch.cat([fa(x1), fb(x2)], dim=1)


def mw_linear(p, name, x, split):
    return multiway(x, split, lambda t: linear(p, name + ".A", t), lambda t: linear(p, name + ".B", t))


def mw_ln(p, name, x, split):
    return multiway(x, split, lambda t: layer_norm(p, name + ".A", t), lambda t: layer_norm(p, name + ".B", t))


def mw_attention(p, pre, x, heads, pad, split):
    """torchscale MultiheadAttention (q scaled after its bias, -inf at padded keys, sub-LN)."""
    Bn, N, D = x.shape
    dh = D // heads
    q = mw_linear(p, pre + ".q_proj", x, split) * dh ** -0.5
    k = mw_linear(p, pre + ".k_proj", x, split)
    v = mw_linear(p, pre + ".v_proj", x, split)
    q, k, v = (t.view(Bn, N, heads, dh).transpose(1, 2) for t in (q, k, v))
    w = q @ k.transpose(-1, -2)
    w = w.masked_fill(pad[:, None, None, :], float("-inf"))
    a = (w.softmax(-1) @ v).transpose(1, 2).reshape(Bn, N, D)
    return mw_linear(p, pre + ".out_proj", mw_ln(p, pre + ".inner_attn_ln", a, split), split)


def mw_ffn(p, pre, x, split):
    def expert(w):
        return lambda t: linear(p, f"{pre}.{w}.fc2", layer_norm(p, f"{pre}.{w}.ffn_layernorm", F.gelu(linear(p, f"{pre}.{w}.fc1", t))))

    return multiway(x, split, expert("A"), expert("B"))


def timm_attention(p, pre, x, heads, pad):
    Bn, N, D = x.shape
    dh = D // heads
    qkv = linear(p, pre + ".qkv", x).reshape(Bn, N, 3, heads, dh).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    w = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
    w = w.masked_fill(pad[:, None, None, :], float("-inf"))
    return linear(p, pre + ".proj", (w.softmax(-1) @ v).transpose(1, 2).reshape(Bn, N, D))


def forward(c, p, bufs, image, text, drop, training):
    e, P, S = c["encoder"], c["patchSize"], c["imageSize"]
    G, T, dw = S // P, c["maxTokens"], c["fpn"]["dim"]
    nv = G * G + 1
    # 1. BEiT-3: embeddings, positions from row 2 (fairseq), padding zeroed, L multiway layers
    v = F.conv2d(image, p["beit3.vision_embed.proj.weight"], p["beit3.vision_embed.proj.bias"], stride=P)
    v = torch.cat([p["beit3.vision_embed.cls_token"].expand(B, -1, -1), v.flatten(2).transpose(1, 2)], 1)
    t = F.embedding(text, p["beit3.text_embed.weight"])
    x = torch.cat([v, t], 1)
    pos = torch.cat([p["beit3.encoder.embed_positions.A.weight"][2 : 2 + nv], p["beit3.encoder.embed_positions.B.weight"][2 : 2 + T]], 0)
    x = x + pos[None]
    pad = torch.cat([torch.zeros(B, nv, dtype=torch.bool), text == PAD], 1)  # [B, N]
    x = x * (1 - pad.unsqueeze(-1).type_as(x))
    states = []
    for i in range(e["depth"]):
        pre = f"beit3.encoder.layers.{i}"
        s_attn, s_mlp = drop.get(pre, (1.0, 1.0))
        x = x + s_attn * mw_attention(p, pre + ".self_attn", mw_ln(p, pre + ".self_attn_layer_norm", x, nv), e["heads"], pad, nv)
        x = x + s_mlp * mw_ffn(p, pre + ".ffn", mw_ln(p, pre + ".final_layer_norm", x, nv), nv)
        states.append(x)
    # 2. shared FPN (Eq. 6-7)
    zs = []
    for k, j in enumerate(c["fpn"]["stages"]):
        u = linear(p, f"fpn.stages.{k}.proj", states[j - 1])
        zs.append(timm_attention(p, f"fpn.stages.{k}.attn", layer_norm(p, f"fpn.stages.{k}.norm", u), c["fpn"]["heads"], pad) + u)
    z = linear(p, "fpn.fuse", torch.cat(zs, -1))
    # 3. shared decoder (Eq. 8-11)
    u = z + timm_attention(p, "decoder.block.attn", layer_norm(p, "decoder.block.norm1", z), c["decoder"]["heads"], pad)
    u = u + linear(p, "decoder.block.mlp.fc2", F.gelu(linear(p, "decoder.block.mlp.fc1", layer_norm(p, "decoder.block.norm2", u))))
    vu, tu = u[:, :nv], u[:, nv:]
    f = vu[:, 1:].transpose(1, 2).reshape(B, dw, G, G)
    running = {}
    for k in range(c["decoder"]["upsamples"]):
        f = F.interpolate(f, scale_factor=2, mode="bilinear", align_corners=False)
        f = F.conv2d(f, p[f"decoder.convs.{k}.conv.weight"], padding=1)
        rm = bufs[f"decoder.convs.{k}.bn.running_mean"].clone()
        rv = bufs[f"decoder.convs.{k}.bn.running_var"].clone()
        f = F.batch_norm(f, rm, rv, p[f"decoder.convs.{k}.bn.weight"], p[f"decoder.convs.{k}.bn.bias"], training, c["bnMomentum"], BN_EPS)
        f = F.relu(f)
        running[f"decoder.convs.{k}.bn.running_mean"] = rm
        running[f"decoder.convs.{k}.bn.running_var"] = rv
    tp = linear(p, "decoder.text_mlp.fc2", F.gelu(linear(p, "decoder.text_mlp.fc1", tu[:, 0])))  # [B, dw]
    logits = torch.einsum("bchw,bc->bhw", f, tp)[:, None]
    logits = F.interpolate(logits, scale_factor=S // logits.shape[-1], mode="bilinear", align_corners=False)
    assert logits.shape == (B, 1, S, S)
    return logits, running


def loss_fn(c, logits, mask):
    prob = torch.sigmoid(logits)
    inter = (prob * mask).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum((1, 2, 3)) + mask.sum((1, 2, 3)) + 1)
    return c["loss"]["bce"] * F.binary_cross_entropy_with_logits(logits, mask) + c["loss"]["dice"] * dice.mean()


# ---------------------------------------------------------------- inputs


def make_inputs(c, gen):
    S, T, V = c["imageSize"], c["maxTokens"], c["encoder"]["vocabSize"]
    image = torch.randn(B, 3, S, S, generator=gen)
    text = torch.full((B, T), PAD, dtype=torch.int64)
    for b, n in enumerate(WORDS_PER_SAMPLE):
        text[b, 0] = CLS
        text[b, 1 : n + 1] = torch.randint(4, V, (n,), generator=gen)
        text[b, n + 1] = EOT
    mask = torch.zeros(B, 1, S, S)
    mask[0, :, 5:21, 9:29] = 1
    mask[1, :, 12:, :13] = 1
    return image, text, mask


def make_drop(c, gen, keep=0.9):
    """Per-sample scales 0 or 1/keep; every layer gets at least one dropped and one kept branch."""
    out = {}
    for j in range(c["encoder"]["depth"]):
        kept = (torch.rand(2, B, generator=gen) < keep).float()
        kept[j % 2, 0] = 0.0
        kept[(j + 1) % 2, 1] = 1.0
        s = kept / keep
        out[f"beit3.encoder.layers.{j}"] = (s[0].reshape(B, 1, 1), s[1].reshape(B, 1, 1))
    return out


# ---------------------------------------------------------------- fixture


def run(c, params32, bufs32, inputs32, drop32, dtype):
    p = {k: v.to(dtype).clone().requires_grad_(True) for k, v in params32.items()}
    bufs = {k: v.to(dtype) for k, v in bufs32.items()}
    image, text, mask = inputs32
    drop = {k: (a.to(dtype), m.to(dtype)) for k, (a, m) in drop32.items()}
    logits, running = forward(c, p, bufs, image.to(dtype), text, drop, True)
    loss = loss_fn(c, logits, mask.to(dtype))
    names = list(p.keys())
    grads = torch.autograd.grad(loss, [p[n] for n in names])
    with torch.no_grad():
        logits_eval, _ = forward(c, p, bufs, image.to(dtype), text, {}, False)
    out = {"out.mask_logits": logits.detach(), "loss": loss.detach(), "out.mask_logits_eval": logits_eval}
    out.update({"grad." + n: g for n, g in zip(names, grads)})
    out.update({"running." + n: t for n, t in running.items()})
    return out


def main():
    torch.use_deterministic_algorithms(True)
    c = CONFIG
    gen = torch.Generator().manual_seed(20240611)
    shapes, buffer_shapes = param_shapes(c)
    params, bufs = init_params(shapes, buffer_shapes, gen)
    inputs = make_inputs(c, gen)
    drop = make_drop(c, gen)
    r64 = run(c, params, bufs, inputs, drop, torch.float64)
    r32 = run(c, params, bufs, inputs, drop, torch.float32)
    errs = {k: rel_err(r32[k], r64[k]) for k in r64}
    image, text, mask = inputs
    tensors = {"input.image": image, "input.text": text.float(), "input.mask": mask}
    tensors.update({"param." + n: t for n, t in params.items()})
    tensors.update({"buffer." + n: t for n, t in bufs.items()})
    for k, (a, m) in drop.items():
        tensors[f"droppath.{k}.attn"], tensors[f"droppath.{k}.mlp"] = a, m
    tensors.update(r64)  # the float64 reference, rounded to float32
    metadata = {
        "generator": "scripts/golden/shared_ris.py",
        "torch": torch.__version__,
        "config": json.dumps(c),
        "params": json.dumps(list(shapes.keys())),
        "buffers": json.dumps(list(buffer_shapes.keys())),
        "drop_path": json.dumps(list(drop.keys())),
        "f32_vs_f64": json.dumps(errs),
    }
    write_safetensors(OUT, tensors, metadata)
    worst_grad = max(v for k, v in errs.items() if k.startswith("grad."))
    print(
        f"wrote {os.path.relpath(OUT)} ({os.path.getsize(OUT) / 1024:.0f} KiB, {len(tensors)} tensors, "
        f"{sum(int(np.prod(s)) for s in shapes.values())} parameters); loss {float(r64['loss']):.6f}; "
        f"float32 vs float64: logits {errs['out.mask_logits']:.1e}, eval logits {errs['out.mask_logits_eval']:.1e}, "
        f"worst grad {worst_grad:.1e}"
    )


if __name__ == "__main__":
    main()
