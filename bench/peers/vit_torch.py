#!/usr/bin/env python3
"""PyTorch eager peer of `npm run bench -- engine` (bench/engine.ts).

The same ViT encoder as bench/vit.ts (patch embedding as a Linear over flattened 16x16x3
patches, pos_embed, timm pre-LN blocks, final LayerNorm; loss = mean of squares of the output),
in eager mode, one case per process so ru_maxrss is that case's peak. Prints one JSON line.

Cases:
  matmul   torch.mm of two NxN float32 matrices into a preallocated output
  forward  model(x) under torch.inference_mode()
  fwdbwd   forward + loss + backward (grads set to None before each run)
  train    forward + loss + backward + AdamW.step() + zero_grad(set_to_none=True)

Run with Debian's python3-torch: /usr/bin/python3 bench/peers/vit_torch.py --case forward
"""

import argparse
import json
import math
import os
import re
import resource
import sys
import time


def status_kib(field):
    try:
        with open('/proc/self/status') as f:
            m = re.search(r'^%s:\s+(\d+) kB' % field, f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def mib(kib):
    return None if kib is None else kib / 1024.0


def reset_peak():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def stats(samples):
    s = sorted(samples)

    def q(p):
        i = p * (len(s) - 1)
        lo, hi = math.floor(i), math.ceil(i)
        return s[lo] + (s[hi] - s[lo]) * (i - lo)

    return {'median': q(0.5), 'min': s[0], 'p95': q(0.95), 'mean': sum(s) / len(s), 'n': len(s), 'samples': list(samples)}


def runtime_record(torch, case, baseline_rss, rss_after_import, t_import):
    """The start of a peer's JSON record: versions, threads, BLAS and the memory before any model."""
    return {
        'case': case,
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'interopThreads': torch.get_num_interop_threads(),
        'python': sys.version.split()[0],
        'blas': 'OpenBLAS' if 'openblas' in open('/proc/self/maps').read().lower() else 'unknown',
        'pythonRssMiB': baseline_rss,
        'baselineRssMiB': rss_after_import,  # the runtime alone: python + torch imported
        'importMs': (time.perf_counter() - t_import) * 1e3,
    }


def measure(out, run, t_setup, warmup, repeat):
    """Setup time and memory, warm-up, then `repeat` timed runs: fills `out` and prints it as JSON
    (the record bench/*.ts reads; both peers use it)."""
    out['setupMs'] = (time.perf_counter() - t_setup) * 1e3
    out['setupRssMiB'] = mib(status_kib('VmRSS'))

    for _ in range(warmup):
        run()
    out['afterWarmupRssMiB'] = mib(status_kib('VmRSS'))
    # The peak so far (import, setup, warmup), read before the reset below clears the mark.
    out['setupPeakRssMiB'] = mib(status_kib('VmHWM'))
    out['peakRssResettable'] = reset_peak()
    samples = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        samples.append((time.perf_counter() - t0) * 1e3)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out['timeMs'] = stats(samples)
    # CPU time of all threads over wall time: about the number of busy threads when alone on the machine.
    out['timeMs']['cpuPerWall'] = ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)) * 1e3 / sum(samples)
    out['runPeakRssMiB'] = mib(status_kib('VmHWM')) if out['peakRssResettable'] else None
    # ru_maxrss (KiB on Linux) follows the reset too, so the process peak is the larger of the two marks.
    out['processPeakRssMiB'] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, out['setupPeakRssMiB'] or 0)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--case', required=True, choices=['matmul', 'forward', 'fwdbwd', 'train'])
    ap.add_argument('--threads', type=int, required=True)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--n', type=int, default=2048, help='matmul size')
    ap.add_argument('--image', type=int, default=480)
    ap.add_argument('--patch', type=int, default=16)
    ap.add_argument('--dim', type=int, default=768)
    ap.add_argument('--depth', type=int, default=12)
    ap.add_argument('--heads', type=int, default=12)
    ap.add_argument('--mlp-dim', type=int, default=3072)
    ap.add_argument('--batch', type=int, default=1)
    a = ap.parse_args()

    baseline_rss = mib(status_kib('VmRSS'))
    t_import = time.perf_counter()
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    rss_after_import = mib(status_kib('VmRSS'))

    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):  # timm VisionTransformer Attention (no fused SDPA in 1.13)
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            attn = (q @ k.transpose(-2, -1)) * self.scale
            attn = attn.softmax(dim=-1)
            x = (attn @ v).transpose(1, 2).reshape(B, N, C)
            return self.proj(x)

    class Mlp(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(F.gelu(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self, dim, heads, mlp_dim):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp(dim, mlp_dim)

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class Encoder(nn.Module):
        def __init__(self, tokens, patch_dim, dim, depth, heads, mlp_dim):
            super().__init__()
            self.patch_embed = nn.Linear(patch_dim, dim)
            self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
            self.blocks = nn.ModuleList([Block(dim, heads, mlp_dim) for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)

        def forward(self, p):
            x = self.patch_embed(p) + self.pos_embed
            for b in self.blocks:
                x = b(x)
            return self.norm(x)

    out = runtime_record(torch, a.case, baseline_rss, rss_after_import, t_import)

    t_setup = time.perf_counter()
    if a.case == 'matmul':
        A = torch.rand(a.n, a.n)
        Bm = torch.rand(a.n, a.n)
        C = torch.empty(a.n, a.n)

        def run():
            torch.mm(A, Bm, out=C)

        out['macs'] = a.n ** 3
    else:
        tokens = (a.image // a.patch) ** 2
        patch_dim = a.patch * a.patch * 3
        model = Encoder(tokens, patch_dim, a.dim, a.depth, a.heads, a.mlp_dim)
        x = torch.rand(a.batch, tokens, patch_dim) * 2 - 1
        out['params'] = sum(p.numel() for p in model.parameters())
        if a.case == 'forward':
            model.eval()

            def run():
                with torch.inference_mode():
                    model(x)
        elif a.case == 'fwdbwd':
            def run():
                for p in model.parameters():
                    p.grad = None
                y = model(x)
                (y * y).mean().backward()
        else:
            # timm's weight-decay split, as refseg's registry: decay on rank >= 2 only (pos_embed excluded).
            decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n != 'pos_embed']
            no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and n != 'pos_embed')]
            opt = torch.optim.AdamW(
                [{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}],
                lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
            )

            def run():
                y = model(x)
                loss = (y * y).mean()
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
    measure(out, run, t_setup, a.warmup, a.repeat)


if __name__ == '__main__':
    main()
