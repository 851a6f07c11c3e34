// Transformer layers as pure builder functions over a parameter `Scope`, named as timm names them
// (ViT: `norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`), so timm checkpoints and
// the PyTorch golden re-implementations load by name. Each layer reads like its equation.

import { Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { type Init, type Scope, TRUNC_NORMAL_02 } from './params.js';

/** y = x Wᵀ + b with W [out, in] (PyTorch Linear layout). */
export function linear(
  s: Scope,
  x: Tensor,
  inDim: number,
  outDim: number,
  o: { bias?: boolean; init?: Init } = {},
): Tensor {
  const w = s.param('weight', [outDim, inDim], o.init ?? TRUNC_NORMAL_02);
  const y = op.matmul(x, op.transpose(w, [1, 0]));
  return o.bias === false ? y : op.add(y, s.param('bias', [outDim], { kind: 'zeros' }));
}

export function layerNorm(s: Scope, x: Tensor, dim: number, eps: number): Tensor {
  const w = s.param('weight', [dim], { kind: 'ones' });
  const b = s.param('bias', [dim], { kind: 'zeros' });
  return op.layerNorm(x, w, b, eps);
}

/** fc2(gelu(fc1(x))), exact GELU. */
export function mlp(s: Scope, x: Tensor, dim: number, hidden: number, outDim = dim): Tensor {
  return linear(s.sub('fc2'), op.gelu(linear(s.sub('fc1'), x, dim, hidden)), hidden, outDim);
}

/**
 * Multi-head self-attention with a fused qkv projection laid out as q, k, v, each split into heads
 * as consecutive chunks of dim/heads (timm). `keyMask` is additive, broadcast to [B, heads, N, N]
 * (e.g. [B,1,1,N] with -1e9 at padded keys).
 */
export function attention(s: Scope, x: Tensor, dim: number, heads: number, keyMask?: Tensor): Tensor {
  const dh = dim / heads;
  const qkv = linear(s.sub('qkv'), x, dim, 3 * dim); // [B, N, 3D]
  const split5 = op.reshape(qkv, [0, 0, 3, heads, dh]); // [B, N, 3, heads, dh]
  const qkvT = op.transpose(split5, [2, 0, 3, 1, 4]); // [3, B, heads, N, dh]
  const [q, k, v] = op.split(qkvT, [1, 1, 1], 0).map((t) => op.squeeze(t, [0])) as [Tensor, Tensor, Tensor]; // [B, heads, N, dh]
  const scores = op.matmul(op.mul(q, 1 / Math.sqrt(dh)), op.transpose(k, [0, 1, 3, 2])); // [B, heads, N, N]
  const probs = op.softmax(keyMask ? op.add(scores, keyMask) : scores, -1);
  const ctx = op.transpose(op.matmul(probs, v), [0, 2, 1, 3]); // [B, N, heads, dh]
  return linear(s.sub('proj'), op.reshape(ctx, [0, 0, dim]), dim, dim); // [B, N, D]
}

export interface BlockConfig {
  dim: number;
  heads: number;
  mlpDim: number;
  eps: number;
}

/**
 * Stochastic depth scales for one block's two residual branches: [B,1,1] tensors holding 0 or
 * 1/keep per sample, fed from the host (exactly reproducible across resume).
 */
export interface DropPath {
  attn: Tensor;
  mlp: Tensor;
}

/** Pre-LN block: x = x + attn(norm1(x)); x = x + mlp(norm2(x)). */
export function block(s: Scope, x: Tensor, c: BlockConfig, keyMask?: Tensor, drop?: DropPath): Tensor {
  const branch = (t: Tensor, scale?: Tensor) => (scale ? op.mul(t, scale) : t);
  const a = attention(s.sub('attn'), layerNorm(s.sub('norm1'), x, c.dim, c.eps), c.dim, c.heads, keyMask);
  x = op.add(x, branch(a, drop?.attn));
  const m = mlp(s.sub('mlp'), layerNorm(s.sub('norm2'), x, c.dim, c.eps), c.dim, c.mlpDim);
  return op.add(x, branch(m, drop?.mlp));
}

/** Additive key mask [B,1,1,L] from word ids: -1e9 where id == 0 (padding). */
export function paddingKeyMask(words: Tensor, dtype: 'float32' | 'float64' = 'float32'): Tensor {
  const g = words.graph;
  const isPad = op.equal(words, op.scalar(g, 0, words.dtype));
  const m = op.where(isPad, op.scalar(g, -1e9, dtype), op.scalar(g, 0, dtype)); // [B, L]
  return op.unsqueeze(m, [1, 2]); // [B, 1, 1, L]
}

/**
 * BCE with logits, mean over all elements: mean(max(z,0) − z·y + log(1 + e^−|z|)).
 * −|z| is written min(z, −z) so that the gradient at z = 0 is exactly σ(0) − y (Abs's is 0 there).
 */
export function bceWithLogits(z: Tensor, y: Tensor): Tensor {
  const pos = op.relu(z);
  const softplus = op.log(op.add(op.exp(op.min(z, op.neg(z))), 1));
  const per = op.add(op.sub(pos, op.mul(z, y)), softplus);
  return op.reduceMean(per, op.allAxes(per), false);
}

/**
 * Dice loss of [B, ...] mask logits against targets: per sample 1 − (2Σpy + 1)/(Σp + Σy + 1) with
 * p = σ(z), summed over every axis but the batch's, then the batch mean (Shared-RIS Eq. 12).
 */
export function diceLoss(z: Tensor, y: Tensor): Tensor {
  const p = op.sigmoid(z);
  const axes = op.allAxes(z).slice(1);
  const sum = (v: Tensor) => op.reduceSum(v, axes, false); // [B]
  const dice = op.sub(
    op.scalarLike(p, 1),
    op.div(op.add(op.mul(sum(op.mul(p, y)), 2), 1), op.add(op.add(sum(p), sum(y)), 1)),
  );
  return op.reduceMean(dice, [0], false);
}
