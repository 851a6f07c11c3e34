// The ViT-B/16 image encoder the engine benchmark times (timm names, pre-LN blocks), and the same
// model at the small sizes of `--quick`. Patch embedding is a Linear over flattened 16×16×3 patches
// (equal in cost to timm's stride-16 Conv); no class token, so tokens = (image/16)².

import type { Graph, Tensor } from '../src/graph/graph.js';
import * as op from '../src/graph/ops.js';
import { block, layerNorm, linear } from '../src/nn/layers.js';
import type { Scope } from '../src/nn/params.js';
import { TRUNC_NORMAL_02 } from '../src/nn/params.js';

export interface VitConfig {
  name: string;
  image: number; // square image side in pixels
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  mlpDim: number;
  batch: number;
}

/** ViT-B/16 at 480×480 (900 tokens), batch 1: the paper configuration's image encoder. */
export const VIT_B16_480: VitConfig = {
  name: 'ViT-B/16',
  image: 480,
  patch: 16,
  dim: 768,
  depth: 12,
  heads: 12,
  mlpDim: 3072,
  batch: 1,
};

/** A smoke-test size (`--quick`): ViT-Ti-like width, 2 blocks, 64 tokens. */
export const VIT_QUICK: VitConfig = {
  name: 'ViT-quick',
  image: 128,
  patch: 16,
  dim: 192,
  depth: 2,
  heads: 3,
  mlpDim: 768,
  batch: 1,
};

export const tokensOf = (c: VitConfig): number => (c.image / c.patch) ** 2;
export const patchDimOf = (c: VitConfig): number => c.patch * c.patch * 3;

/** patches [B, N, 16·16·3] → tokens [B, N, D]. */
export function vitEncoder(s: Scope, patches: Tensor, c: VitConfig): Tensor {
  const n = tokensOf(c);
  let x = linear(s.sub('patch_embed.proj'), patches, patchDimOf(c), c.dim); // [B, N, D]
  x = op.add(x, s.param('pos_embed', [1, n, c.dim], TRUNC_NORMAL_02, { decay: false }));
  const bc = { dim: c.dim, heads: c.heads, mlpDim: c.mlpDim, eps: 1e-6 };
  for (let i = 0; i < c.depth; i++) x = block(s.sub(`blocks.${i}`), x, bc);
  return layerNorm(s.sub('norm'), x, c.dim, 1e-6); // [B, N, D]
}

export function patchesInput(g: Graph, c: VitConfig): Tensor {
  return g.input('patches', 'float32', [c.batch, tokensOf(c), patchDimOf(c)]);
}

/** The benchmark's loss: mean of squares of the encoder output (same on both sides). */
export function meanSquare(y: Tensor): Tensor {
  return op.reduceMean(op.mul(y, y), op.allAxes(y), false);
}

/** Deterministic uniform source (LCG) for parameter init and inputs. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}
