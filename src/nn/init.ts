// Random initialization as timm does it: truncated normal (std 0.02, cut at ±2 absolute, i.e.
// timm's trunc_normal_ defaults) for weights, zero biases, unit LayerNorm scales.

import type { Init, ParamSpec } from './params.js';

/** Standard normal draws from a uniform source (Box–Muller, both values used). */
export function normalSource(uniform: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u <= Number.MIN_VALUE) u = uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

export function initTensor(init: Init, size: number, normal: () => number, uniform: () => number): Float32Array {
  const out = new Float32Array(size);
  switch (init.kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'fixed':
      if (init.data.length !== size) throw new Error(`fixed init has ${init.data.length} values, expected ${size}`);
      return Float32Array.from(init.data);
    case 'normal':
      for (let i = 0; i < size; i++) out[i] = normal() * init.std;
      return out;
    case 'uniform':
      for (let i = 0; i < size; i++) out[i] = (2 * uniform() - 1) * init.bound;
      return out;
    case 'trunc_normal':
      for (let i = 0; i < size; i++) {
        let v: number;
        do v = normal() * init.std;
        while (v < -2 || v > 2);
        out[i] = v;
      }
      return out;
  }
}

/** Initial values for every parameter, in registry order (deterministic for a given uniform source). */
export function initParams(specs: Iterable<ParamSpec>, uniform: () => number): Map<string, Float32Array> {
  const normal = normalSource(uniform);
  const out = new Map<string, Float32Array>();
  for (const s of specs) out.set(s.name, initTensor(s.init, s.shape.reduce((a, b) => a * b, 1), normal, uniform));
  return out;
}

/** Peak value of the `sincos` position init: about the patch embedding's initial output (std ≈ 0.3). */
export const SINCOS_AMPLITUDE = 0.5;

/**
 * A fixed 2-D sine-cosine table for a grid×grid patch grid (row-major, as ViT orders patches),
 * `dim` channels in four quarters [sin y, cos y, sin x, cos x] with frequencies
 * 1/10000^(i/(dim/4)), i = 0..dim/4−1 (MAE's layout), times `amplitude`. As an INIT of the learned
 * pos_embed it gives the encoder position codes whose dot products already fall off with distance,
 * which the location words ("the star on the left") need; trunc-normal noise has to learn them.
 */
export function sincos2d(grid: number, dim: number, amplitude = SINCOS_AMPLITUDE): Float32Array {
  if (!Number.isInteger(grid) || grid < 1) throw new Error(`sincos2d: grid must be a positive integer, got ${grid}`);
  if (dim % 4 !== 0) throw new Error(`sincos2d: dim must be a multiple of 4, got ${dim}`);
  const q = dim / 4;
  const out = new Float32Array(grid * grid * dim);
  for (let y = 0; y < grid; y++) {
    for (let x = 0; x < grid; x++) {
      const o = (y * grid + x) * dim;
      for (let i = 0; i < q; i++) {
        const w = 1 / Math.pow(10000, i / q);
        out[o + i] = amplitude * Math.sin(y * w);
        out[o + q + i] = amplitude * Math.cos(y * w);
        out[o + 2 * q + i] = amplitude * Math.sin(x * w);
        out[o + 3 * q + i] = amplitude * Math.cos(x * w);
      }
    }
  }
  return out;
}
