// Patch labels of restr.md §2 (paper Eq. 11): yp_i = 1 when the mean of the ground-truth mask over
// patch i is > τ (τ = 0.8, strict); mode "any" (the authors' code) makes a patch positive when any of
// its pixels is. Computed over the letterboxed S×S target, patches row-major as the vision encoder
// orders them (restr.md §1.1), so label i lines up with patch token i.

export type PatchLabelMode = 'ratio' | 'any';

export interface PatchLabelOptions {
  /** 'ratio' (paper, default) or 'any' (authors' code). */
  mode?: PatchLabelMode;
  /** Threshold on the patch mean for 'ratio' (default 0.8). */
  tau?: number;
}

/**
 * mask: S×S row-major, values in [0, 1] (binary or area-resampled); returns Float32Array[(S/P)²].
 * With soft masks 'any' counts a pixel as set when its value is > 0.
 */
export function patchLabels(
  mask: ArrayLike<number>,
  size: number,
  patch: number,
  o: PatchLabelOptions = {},
): Float32Array {
  const mode = o.mode ?? 'ratio';
  const tau = o.tau ?? 0.8;
  if (mask.length !== size * size)
    throw new Error(`patchLabels: mask has ${mask.length} values, expected ${size}×${size}`);
  if (size % patch !== 0) throw new Error(`patchLabels: size ${size} is not a multiple of patch ${patch}`);
  const g = size / patch;
  const sums = new Float64Array(g * g);
  const any = new Uint8Array(g * g);
  for (let y = 0; y < size; y++) {
    const rowBase = Math.floor(y / patch) * g;
    for (let x = 0; x < size; x++) {
      const v = mask[y * size + x]!;
      const i = rowBase + Math.floor(x / patch);
      sums[i]! += v;
      if (v > 0) any[i] = 1;
    }
  }
  const out = new Float32Array(g * g);
  const area = patch * patch;
  for (let i = 0; i < out.length; i++) out[i] = mode === 'any' ? any[i]! : sums[i]! / area > tau ? 1 : 0;
  return out;
}
