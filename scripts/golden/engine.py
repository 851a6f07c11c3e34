#!/usr/bin/python3
"""Golden fixture for the engine (llm.c's test_gpt2 pattern): PyTorch computes, TypeScript must match.

Model: x [B=2, N=10, 64] -> blocks.0, blocks.1 (timm VisionTransformer `Block`, pre-LN, 4 heads,
LayerNorm eps 1e-6, exact GELU) -> norm -> head Linear(64 -> 1) -> logits [2, 10, 1], then
BCEWithLogitsLoss (mean) against fixed 0/1 targets. An additive key-padding mask [B, 1, 1, N]
(-1e9 at the last keys of sample 1) goes into every block's attention, so the masking path is
covered. Plain PyTorch, no timm: the modules below copy timm's Block/Attention/Mlp code paths
and parameter names (norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2), so the fixture maps
onto src/nn/layers.ts by name.

The fixture (test/fixtures/golden/engine.safetensors, written by hand below: 8-byte little-endian
header length, JSON header, raw little-endian float32) holds
  input.x, input.y, input.mask                      the batch of the gradient check and step 1
  input2.x, input2.y                                the batch of step 2 of the 'groups' run (soft y)
  param.<name>                                      initial parameters
  loss, grad.<name>                                 loss and every parameter gradient at them
  plain.<name>                                      parameters after ONE torch.optim.AdamW step
                                                    (lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0.05)
  groups.<name>, groups.loss1/2, groups.norm1/2     parameters after TWO steps with blocks.0 at
                                                    lr x0.1 and clip_grad_norm_(0.5) before each
                                                    step; losses and (pre-clip) norms of both steps
and, in __metadata__, the configuration and float32-vs-float64 errors of this very computation
(how tight a float32 engine can be expected to match). About 1.1 MB: four copies (initial values,
gradients, two after-step sets) of the 67k parameters; mlp_ratio 2 instead of timm's 4 keeps it so.

Why two steps for 'groups': from zero moments Adam's first update is lr * g / (|g| + eps), i.e.
invariant to any rescaling of g, so one step cannot see the clipping coefficient at all. The second
step runs on a different batch whose gradient norm is below max_norm (step 1's is above it), so
the moments mix a clipped and an unclipped gradient and both the coefficient and its clamp at 1
show in the result.

Weight decay follows timm/refseg's registry (src/nn/params.ts): only parameters of rank >= 2 decay,
expressed here as torch param groups (norms and biases get weight_decay 0).

Regenerate (Debian's python3-torch; the pyenv `python3` on PATH has no torch):
    /usr/bin/python3 scripts/golden/engine.py
"""

import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import rel_err, write_safetensors  # noqa: E402  (scripts/golden/common.py)

DIM, HEADS, MLP_HIDDEN, DEPTH, EPS = 64, 4, 128, 2, 1e-6  # mlp_ratio 2 keeps the fixture small
B, N = 2, 10
PAD_KEYS = 3  # sample 1's last 3 keys are padding
LR, BETAS, ADAM_EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.05
SLOW_PREFIX, SLOW_MULT, MAX_NORM = "blocks.0.", 0.1, 0.5
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "golden", "engine.safetensors")


class Attention(nn.Module):
    """timm.models.vision_transformer.Attention (qkv_bias=True, no q/k norm, no dropout)."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, heads, N, dh]
        q = q * self.scale
        attn = q @ k.transpose(-2, -1) + mask  # additive key mask [B, 1, 1, N]
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, timm's nn.GELU default


class Block(nn.Module):
    """timm Block, pre-LN: x = x + attn(norm1(x)); x = x + mlp(norm2(x))."""

    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x, mask):
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(DIM, HEADS, MLP_HIDDEN) for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM, eps=EPS)
        self.head = nn.Linear(DIM, 1)

    def forward(self, x, mask):
        for blk in self.blocks:
            x = blk(x, mask)
        return self.head(self.norm(x))  # [B, N, 1]


def init_(model, gen):
    """Weights N(0, 0.02); biases and LayerNorm parameters non-trivial so that a gradient routed to
    the wrong one (or an ignored LN scale) changes the numbers."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".norm" in "." + name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif ".norm" in "." + name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))


def make_batch(gen):
    x = torch.randn(B, N, DIM, generator=gen)
    y = (torch.rand(B, N, 1, generator=gen) > 0.5).float()
    return x, y


def key_mask():
    m = torch.zeros(B, 1, 1, N)
    m[1, :, :, N - PAD_KEYS :] = -1e9
    return m


def loss_fn(model, x, y, mask):
    return F.binary_cross_entropy_with_logits(model(x, mask), y)  # reduction='mean'


def param_groups(model, lr_mult):
    """timm-style: decay only rank >= 2; `lr_mult` gives blocks.0 its own learning rate."""
    groups = {}
    for name, p in model.named_parameters():
        mult = SLOW_MULT if lr_mult and name.startswith(SLOW_PREFIX) else 1.0
        decay = p.ndim >= 2
        groups.setdefault((mult, decay), []).append(p)
    return [{"params": ps, "lr": LR * m, "weight_decay": WD if d else 0.0} for (m, d), ps in groups.items()]


def run(dtype, state0, batches):
    """Everything the fixture holds, computed in `dtype` from the same float32 starting values."""
    model = Model().to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state0.items()})
    (x, y), (x2, y2) = [(a.to(dtype), b.to(dtype)) for a, b in batches]
    mask = key_mask().to(dtype)
    out = {}

    loss = loss_fn(model, x, y, mask)
    loss.backward()
    out["loss"] = loss.detach()
    for n, p in model.named_parameters():
        out["grad." + n] = p.grad.detach().clone()

    # plain: one AdamW step on the gradients above
    opt = torch.optim.AdamW(param_groups(model, False), lr=LR, betas=BETAS, eps=ADAM_EPS)
    opt.step()
    for n, p in model.named_parameters():
        out["plain." + n] = p.detach().clone()

    # groups: restart from the initial parameters, two steps with lr groups and clipping
    model.load_state_dict({k: v.to(dtype) for k, v in state0.items()})
    opt = torch.optim.AdamW(param_groups(model, True), lr=LR, betas=BETAS, eps=ADAM_EPS)
    for i, (bx, by) in enumerate([(x, y), (x2, y2)], start=1):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, bx, by, mask)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        opt.step()
        out[f"groups.loss{i}"] = loss.detach()
        out[f"groups.norm{i}"] = norm.detach()
    for n, p in model.named_parameters():
        out["groups." + n] = p.detach().clone()
    return out


def main():
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(20240611)
    model = Model()
    init_(model, gen)
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    batch1 = make_batch(gen)
    # Step 2's batch has soft targets 0.3 / 0.7: with logits near 0, |sigmoid(z) - y| drops from
    # ~0.5 to ~0.2 and the gradient norm falls below MAX_NORM (asserted below), so step 1 clips and
    # step 2 does not. Soft targets also exercise the z*y term beyond y in {0, 1}.
    x2, y2 = make_batch(gen)
    batch2 = (x2, 0.3 + 0.4 * y2)

    r32 = run(torch.float32, state0, [batch1, batch2])
    r64 = run(torch.float64, state0, [batch1, batch2])

    n1, n2 = float(r32["groups.norm1"]), float(r32["groups.norm2"])
    if not (n1 > MAX_NORM > n2):
        sys.exit(f"clipping must be active at step 1 only: norms {n1:.4f}, {n2:.4f}, max_norm {MAX_NORM}")

    names = [n for n, _ in model.named_parameters()]
    errs = {}
    for k in r32:
        if k.startswith(("plain.", "groups.")) and k.split(".", 1)[1] in names:
            # after-step parameters: judged on the update p_new - p0 (the parameters themselves agree
            # to a few ulp whatever the update does)
            p0 = state0[k.split(".", 1)[1]]
            errs[k] = rel_err(r32[k] - p0, r64[k] - p0.double())
        else:
            errs[k] = rel_err(r32[k], r64[k])
    summary = {
        "grad": max(errs["grad." + n] for n in names),
        "loss": errs["loss"],
        "plain_update": max(errs["plain." + n] for n in names),
        "groups_update": max(errs["groups." + n] for n in names),
    }

    tensors = {"input.x": batch1[0], "input.y": batch1[1], "input.mask": key_mask(), "input2.x": batch2[0], "input2.y": batch2[1]}
    tensors.update({"param." + n: state0[n] for n in names})
    tensors.update({k: v for k, v in r32.items()})
    metadata = {
        "generator": "scripts/golden/engine.py",
        "torch": torch.__version__,
        "config": json.dumps({"dim": DIM, "heads": HEADS, "mlp_hidden": MLP_HIDDEN, "depth": DEPTH, "ln_eps": EPS, "B": B, "N": N, "pad_keys": PAD_KEYS}),
        "adamw": json.dumps({"lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "eps": ADAM_EPS, "weight_decay": WD, "slow_prefix": SLOW_PREFIX, "slow_mult": SLOW_MULT, "max_norm": MAX_NORM}),
        "params": json.dumps(names),
        "f32_vs_f64": json.dumps(errs),
    }
    write_safetensors(OUT, tensors, metadata)
    size = os.path.getsize(OUT)
    print(f"wrote {os.path.relpath(OUT)} ({size / 1024:.0f} KiB, {len(tensors)} tensors)")
    print(f"loss {float(r32['loss']):.6f}; groups: norms {n1:.4f} / {n2:.4f} (max_norm {MAX_NORM}), losses {float(r32['groups.loss1']):.6f} / {float(r32['groups.loss2']):.6f}")
    print("float32 vs float64 (max|a-b|/max|b| per tensor, worst):", json.dumps({k: f"{v:.2e}" for k, v in summary.items()}))


if __name__ == "__main__":
    main()
