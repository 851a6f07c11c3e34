// An exponential moving average of the weights (Polyak averaging, as timm's ModelEmaV3 and
// TensorFlow's ExponentialMovingAverage keep it): after each optimizer update t (1-based),
//   ema ← d_t·ema + (1 − d_t)·θ,   d_t = min(decay, (1 + t) / (10 + t)),
// starting from the weights before the first update. The warm-up of d_t lets a short run's average
// follow the weights early instead of holding on to the initialization. The runners keep it beside
// the AdamW moments and blend each parameter right after its update (runner.ts, worker.ts).
// Arithmetic is float64 per element, stored as float32.

/** The decay used after update `t` (1-based). */
export function emaDecay(decay: number, t: number): number {
  return Math.min(decay, (1 + t) / (10 + t));
}

/** ema ← d·ema + (1 − d)·p, in place. */
export function emaBlend(ema: Float32Array, p: Float32Array, d: number): void {
  if (ema.length !== p.length) throw new Error(`weight average: ${ema.length} values, parameter ${p.length}`);
  DECAY[0] = d; // read from a float64 array: see adamw.ts SCALARS for why not a number argument
  blend(ema, p, DECAY);
}

const DECAY = new Float64Array(1);

function blend(e: Float32Array, p: Float32Array, k: Float64Array): void {
  const d = k[0]!;
  const n = e.length;
  for (let i = 0; i < n; i++) e[i] = d * e[i]! + (1 - d) * p[i]!;
}
