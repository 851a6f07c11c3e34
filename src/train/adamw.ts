// AdamW as torch.optim.AdamW (single-tensor path) computes it, applied in place to host arrays:
//   p ← p·(1 − lr·wd)                      (decoupled weight decay, only where the parameter decays)
//   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / bc1) · m / (√v / √bc2 + ε),  bc_i = 1 − β_i^t
// with the gradient first scaled by the global-norm clipping coefficient
// (torch.nn.utils.clip_grad_norm_: coef = max / (‖g‖ + 1e-6), capped at 1).
// Arithmetic is float64 per element, stored as float32 (torch rounds each op to float32 instead;
// the golden test bounds the difference).

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Max global gradient norm; null or 0 disables clipping. */
  clipNorm?: number | null;
}

export const TORCH_ADAMW_DEFAULTS: AdamWConfig = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  clipNorm: null,
};

/** The factor clip_grad_norm_ multiplies every gradient by (1 when clipping is off or not needed). */
export function clipCoefficient(c: AdamWConfig, gradNorm: number): number {
  return c.clipNorm ? Math.min(c.clipNorm / (gradNorm + 1e-6), 1) : 1;
}

export interface AdamWUpdate {
  /** This parameter's learning rate (base lr × its group's multiplier). */
  lr: number;
  /** 1-based number of this update (bias correction). */
  t: number;
  /** Whether decoupled weight decay applies to this parameter. */
  decay: boolean;
  /** Gradient scale (the clipping coefficient). */
  gradScale: number;
}

/** One AdamW update of parameter `p` and its moments `m`, `v` from gradient `g`, in place. */
export function adamwStep(
  c: AdamWConfig,
  u: AdamWUpdate,
  p: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
): void {
  const n = p.length;
  if (m.length !== n || v.length !== n || g.length !== n)
    throw new Error(`adamwStep: lengths differ (param ${n}, m ${m.length}, v ${v.length}, grad ${g.length})`);
  const k = SCALARS;
  k[0] = c.beta1;
  k[1] = c.beta2;
  k[2] = c.eps;
  k[3] = u.decay && c.weightDecay ? 1 - u.lr * c.weightDecay : 1; // keep
  k[4] = u.lr / (1 - c.beta1 ** u.t); // step size
  k[5] = Math.sqrt(1 - c.beta2 ** u.t); // √bc2
  k[6] = u.gradScale;
  update(p, m, v, g, k);
}

/**
 * The scalars of `update`, passed as raw float64s. Passed as number arguments, the update of
 * restr-tiny with clipping on turned 10× slower from about step 120 for the rest of the run (15 →
 * 200 ms per step; no deoptimization traced), which is when the clip coefficient stops biting and
 * arrives as the integer 1 instead of a double; without clipping it stayed fast. Read from this
 * array the loop stays at 13–16 ms per step (27 vs 15 samples/s over 300 clipped steps).
 */
const SCALARS = new Float64Array(7);

/** The element loop: [b1, b2, eps, keep, stepSize, bc2Sqrt, scale] = k. */
function update(p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, k: Float64Array): void {
  const b1 = k[0]!;
  const b2 = k[1]!;
  const eps = k[2]!;
  const keep = k[3]!;
  const stepSize = k[4]!;
  const bc2Sqrt = k[5]!;
  const scale = k[6]!;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i]! * scale;
    const mi = b1 * m[i]! + (1 - b1) * gi;
    const vi = b2 * v[i]! + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * keep - stepSize * (mi / (Math.sqrt(vi) / bc2Sqrt + eps));
  }
}
