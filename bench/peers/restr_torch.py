#!/usr/bin/env python3
"""PyTorch eager peer of `npm run bench -- restr` (bench/restr.ts).

The ReSTR inference forward (spec/restr.md §1) of the SAME config refseg times, in eager mode: the
model is the golden-fixture re-implementation scripts/golden/restr.py (imported, not copied), with
its random O(1) initialization at the config's shapes (weights differ from refseg's; shapes, and so
the work, are the same). Inputs: a random image [B,3,S,S] and word ids [B,L] right-padded with 0
to the per-sample lengths refseg uses. Float32, torch.inference_mode(), set_num_threads(threads),
one interop thread; warmup + timed repeats as refseg; one case per process so ru_maxrss is its
peak. Prints one JSON line (the fields of bench/peers/vit_torch.py's).

Run with Debian's python3-torch (the pyenv `python3` on PATH has no torch):
    /usr/bin/python3 bench/peers/restr_torch.py --config-json "$(cat cfg.json)" --threads 2
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ left in bench/peers or scripts/golden
sys.path.insert(0, HERE)  # vit_torch: the memory and statistics helpers the engine peer uses
from vit_torch import measure, mib, runtime_record, status_kib  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--case', default='full', choices=['full'])
    ap.add_argument('--config-json', required=True, help='the validated refseg ReSTR config (JSON)')
    ap.add_argument('--threads', type=int, required=True)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--repeat', type=int, default=10)
    ap.add_argument('--batch', type=int, default=1)
    ap.add_argument('--words', default='', help='comma-separated non-padding words per sample (default: all)')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    c = json.loads(a.config_json)

    baseline_rss = mib(status_kib('VmRSS'))
    t_import = time.perf_counter()
    import torch

    sys.path.insert(0, os.path.join(HERE, '..', '..', 'scripts', 'golden'))
    import restr as golden  # scripts/golden/restr.py: forward(c, p, image, words, drop), param_shapes(c)

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    rss_after_import = mib(status_kib('VmRSS'))

    out = runtime_record(torch, a.case, baseline_rss, rss_after_import, t_import)
    out['model'] = 'scripts/golden/restr.py forward'

    t_setup = time.perf_counter()
    B, S, L, V = a.batch, c['imageSize'], c['language']['maxWords'], c['language']['vocabSize']
    golden.B = B  # the golden script's batch is a module-level constant
    gen = torch.Generator().manual_seed(a.seed)
    shapes = golden.param_shapes(c)
    p = golden.init_params(shapes, gen)
    out['params'] = sum(t.numel() for t in p.values())
    image = torch.randn(B, 3, S, S, generator=gen)
    lengths = [int(x) for x in a.words.split(',') if x] or [L]
    words = torch.zeros(B, L, dtype=torch.int64)
    for b in range(B):
        n = max(1, min(L, lengths[b % len(lengths)]))
        words[b, :n] = torch.randint(2, V, (n,), generator=gen)
    out['wordsPerSample'] = [int((words[b] != 0).sum()) for b in range(B)]

    def run():
        with torch.inference_mode():
            return golden.forward(c, p, image, words, {})

    measure(out, run, t_setup, a.warmup, a.repeat)


if __name__ == '__main__':
    main()
