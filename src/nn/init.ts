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
