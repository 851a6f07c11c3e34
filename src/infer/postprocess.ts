// Model outputs → what a person asked for (restr.md §5 evaluation protocol): mask logits on the
// S×S letterbox → probability at the ORIGINAL resolution (crop the letterbox, bilinear resize) →
// binary mask at the threshold, plus ReSTR's patch probabilities (sigmoid of patch_logits, Eq. 9)
// and a confidence score.
//
// Browser-safe on purpose: no node built-ins and no ONNX Runtime import, so the web demo imports
// this compiled module and post-processes exactly as the Node segmenter does. (predictor.ts has a
// sigmoid too, but importing it would pull onnxruntime-node into the browser.)

import { type BinaryMask, type LetterboxGeometry, binarize, unletterboxProbability } from '../data/image.js';

/**
 * ReSTR's patch probabilities: sigmoid(patch_logits) on the `grid`×`grid` patch grid that covers the
 * S×S letterboxed canvas (padding included), row-major.
 */
export interface PatchProbability {
  grid: number;
  data: Float32Array;
}

/** Logistic function into a new array (the model's outputs stay untouched). */
export function sigmoid(logits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = 1 / (1 + Math.exp(-logits[i]!));
  return out;
}

/**
 * Probability at the original resolution from one S×S mask-logit map: sigmoid first, then the
 * bilinear un-letterbox (the probability, not the logit, is what §5 resizes).
 */
export function probabilityFromLogits(
  maskLogits: Float32Array,
  box: LetterboxGeometry,
  width: number,
  height: number,
): Float32Array {
  return unletterboxProbability(sigmoid(maskLogits), box, width, height);
}

/**
 * Mean probability inside the mask: how sure the model is about the pixels it selected (0 for an
 * empty mask, where there is nothing to be sure about).
 */
export function maskScore(probability: Float32Array, mask: Uint8Array): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      sum += probability[i]!;
      n++;
    }
  }
  return n > 0 ? sum / n : 0;
}

/** The binary mask (probability ≥ threshold, §5), its area and score. */
export function maskFromProbability(
  probability: Float32Array,
  width: number,
  height: number,
  threshold: number,
): { mask: BinaryMask; area: number; score: number } {
  const data = binarize(probability, threshold);
  let area = 0;
  for (let i = 0; i < data.length; i++) area += data[i]!;
  return { mask: { width, height, data }, area, score: maskScore(probability, data) };
}

/** sigmoid(patch_logits) for one sample; the patch count must be a square (Nv = (S/P)²). */
export function patchProbabilityFromLogits(patchLogits: ArrayLike<number>): PatchProbability {
  const grid = Math.round(Math.sqrt(patchLogits.length));
  if (grid * grid !== patchLogits.length)
    throw new Error(`patch_logits holds ${patchLogits.length} values, not a square grid`);
  return { grid, data: sigmoid(patchLogits) };
}
