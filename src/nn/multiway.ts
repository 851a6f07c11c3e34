// Multiway transformer layers (torchscale `MultiwayNetwork`, used by BEiT-3; Wang et al. 2023,
// "Image as a Foreign Language", Sec. 2.1): every Linear and LayerNorm has two experts, `A` for the
// vision tokens and `B` for the text tokens, while self-attention is computed jointly over both
// ("shared self-attention"). Named as torchscale names them, so BEiT-3 checkpoints load by name:
//   self_attn_layer_norm.{A,B}, self_attn.{q_proj,k_proj,v_proj,out_proj}.{A,B},
//   self_attn.inner_attn_ln.{A,B} (sub-LN), final_layer_norm.{A,B},
//   ffn.{A,B}.{fc1,ffn_layernorm,fc2} (the FFN module is wrapped whole, so A/B sits above fc1).
//
// Tokens travel as a pair {A: vision [B, Nv, D], B: text [B, Nt, D]} and are only concatenated
// where they meet (attention scores), which is what torchscale's split/cat at `split_position`
// amounts to.

import type { Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { type DropPath, layerNorm, linear } from './layers.js';
import type { Scope } from './params.js';

/** The two token groups of a multiway layer: vision tokens (expert A) and text tokens (expert B). */
export interface Ways {
  A: Tensor;
  B: Tensor;
}

/** `f` applied to each group with its own expert: A under `<s>.A`, B under `<s>.B`. */
export function multiway(s: Scope, x: Ways, f: (expert: Scope, t: Tensor) => Tensor): Ways {
  return { A: f(s.sub('A'), x.A), B: f(s.sub('B'), x.B) };
}

/** Element-wise combination of two pairs (residuals): { A: f(x.A, y.A), B: f(x.B, y.B) }. */
export function zipWays(x: Ways, y: Ways, f: (a: Tensor, b: Tensor) => Tensor): Ways {
  return { A: f(x.A, y.A), B: f(x.B, y.B) };
}

/** [A; B] along the token axis: [B, Nv + Nt, D]. */
export const joinWays = (x: Ways): Tensor => op.concat([x.A, x.B], 1);

export interface MultiwayLayerConfig {
  dim: number;
  heads: number;
  mlpDim: number;
  eps: number;
}

/**
 * torchscale MultiheadAttention with multiway projections and sub-LN:
 *   q = q_proj(x)·dh^-½, k = k_proj(x), v = v_proj(x)   (per expert)
 *   ctx = softmax(q kᵀ + keyMask) v                      (jointly over all Nv + Nt tokens)
 *   out = out_proj(inner_attn_ln(ctx))                  (per expert)
 * `keyMask` is additive, [B, 1, 1, Nv + Nt].
 */
export function multiwayAttention(
  s: Scope,
  x: Ways,
  dim: number,
  heads: number,
  eps: number,
  keyMask?: Tensor,
): Ways {
  const dh = dim / heads;
  const proj = (name: string) => joinWays(multiway(s.sub(name), x, (e, t) => linear(e, t, dim, dim))); // [B, N, D]
  const split = (t: Tensor) => op.transpose(op.reshape(t, [0, 0, heads, dh]), [0, 2, 1, 3]); // [B, N, heads, dh] → [B, heads, N, dh]
  const q = split(op.mul(proj('q_proj'), dh ** -0.5)); // torchscale scales q after its bias
  const k = split(proj('k_proj'));
  const v = split(proj('v_proj'));
  const scores = op.matmul(q, op.transpose(k, [0, 1, 3, 2])); // [B, heads, N, N]
  const probs = op.softmax(keyMask ? op.add(scores, keyMask) : scores, -1);
  const ctx = op.reshape(op.transpose(op.matmul(probs, v), [0, 2, 1, 3]), [0, 0, dim]); // [B, N, heads, dh] → [B, N, D]
  const nv = x.A.shape[1] as number;
  const nt = x.B.shape[1] as number;
  const [cA, cB] = op.split(ctx, [nv, nt], 1) as [Tensor, Tensor]; // [B, Nv, D], [B, Nt, D]
  const normed = multiway(s.sub('inner_attn_ln'), { A: cA, B: cB }, (e, t) => layerNorm(e, t, dim, eps));
  return multiway(s.sub('out_proj'), normed, (e, t) => linear(e, t, dim, dim));
}

/** torchscale FeedForwardNetwork with sub-LN: fc2(ffn_layernorm(gelu(fc1(x)))), one per expert. */
export function multiwayFfn(s: Scope, x: Ways, dim: number, hidden: number, eps: number): Ways {
  return multiway(s, x, (e, t) => {
    const h = op.gelu(linear(e.sub('fc1'), t, dim, hidden));
    return linear(e.sub('fc2'), layerNorm(e.sub('ffn_layernorm'), h, hidden, eps), hidden, dim);
  });
}

/**
 * torchscale EncoderLayer, pre-LN (encoder_normalize_before, subln, no deepnorm: α = 1):
 *   x = x + drop(self_attn(self_attn_layer_norm(x)))
 *   x = x + drop(ffn(final_layer_norm(x)))
 * `drop` holds host-fed stochastic-depth scales [B,1,1] (one draw per branch, as torchscale's
 * DropPath draws anew at each call).
 */
export function multiwayEncoderLayer(
  s: Scope,
  x: Ways,
  c: MultiwayLayerConfig,
  keyMask?: Tensor,
  drop?: DropPath,
): Ways {
  const ln = (name: string, t: Ways) => multiway(s.sub(name), t, (e, u) => layerNorm(e, u, c.dim, c.eps));
  const scaled = (t: Ways, scale?: Tensor): Ways =>
    scale ? { A: op.mul(t.A, scale), B: op.mul(t.B, scale) } : t;
  const a = multiwayAttention(
    s.sub('self_attn'),
    ln('self_attn_layer_norm', x),
    c.dim,
    c.heads,
    c.eps,
    keyMask,
  );
  x = zipWays(x, scaled(a, drop?.attn), op.add);
  const f = multiwayFfn(s.sub('ffn'), ln('final_layer_norm', x), c.dim, c.mlpDim, c.eps);
  return zipWays(x, scaled(f, drop?.mlp), op.add);
}
