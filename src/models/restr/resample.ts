// A trained ReSTR checkpoint carried to a finer patch grid or another input size (`refseg resample`).
//
// ReSTR's masks are drawn from a (S/P)×(S/P) grid of patch features (restr.md §1.6): at 128 px and
// P = 16 that is 8×8, and the masks' outline is the grid's. A model trained at P = 16 is carried to
// P = 8 (a 16×16 grid) and fine-tuned there only for the last part of training, since a step at
// P = 8 costs about three at P = 16. The carried model starts close to the trained one:
//
// - Patch embedding (FlexiViT's resize, Beyer et al. 2023, in the exact direction): the new
//   weights are ŵ = Bᵀw, B the bilinear upsampling of a p×p patch to P×P (half-pixel, as ONNX
//   Resize and PyTorch's align_corners = False). A token of a p×p patch x is then ⟨Bᵀw, x⟩ = ⟨w,
//   Bx⟩: the old token of x upsampled to P×P, i.e. the old model looking at the image enlarged P/p
//   times. A constant patch keeps its token exactly.
// - Position table: resampled bicubically to the new grid (as a timm ViT is imported, same code).
// - Decoder: K = log2 P blocks of ×2 upsampling. The first log2 p blocks keep their weights (their
//   shapes do not depend on P); the dropped blocks are folded into the head as the product of their
//   linear maps, i.e. with their LeakyReLU(0.01) taken as the identity (exact where its inputs are
//   positive). Fine-tuning corrects the rest.
// - Everything else (language, fusion, the seed) does not depend on the grid and is kept.

import { resampleGridBicubic } from '../shared-ris/import.js';
import { resizeBilinear } from '../../data/image.js';
import { type RestrConfig, decoderBlocks, gridSize, isPow2, validateRestrConfig } from './config.js';

export class ResampleError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'ResampleError';
  }
}

export interface ResampleTarget {
  /** New patch side: the old one divided by a power of two (a finer grid). */
  patchSize?: number;
  /** New input side S (the position table is resampled to S / P per side). */
  imageSize?: number;
}

export interface Resampled {
  config: RestrConfig;
  params: Map<string, Float32Array>;
  /** What changed, one line each (for the CLI to print). */
  changes: string[];
}

/**
 * The patch-embedding weight [D, 3, P, P] for patch side p < P: ŵ = Bᵀw per (output, channel),
 * B = half-pixel bilinear upsampling p×p → P×P.
 */
export function shrinkPatchEmbed(w: Float32Array, P: number, p: number): Float32Array {
  if (w.length % (3 * P * P) !== 0)
    throw new Error(`shrinkPatchEmbed: ${w.length} values is not [D, 3, ${P}, ${P}]`);
  const maps = w.length / (P * P); // D·3
  const out = new Float32Array(maps * p * p);
  const unit = new Float32Array(p * p);
  for (let i = 0; i < p * p; i++) {
    unit.fill(0);
    unit[i] = 1;
    const b = resizeBilinear(unit, p, 0, 0, p, p, P, P); // B e_i: column i of B
    for (let m = 0; m < maps; m++) {
      let s = 0;
      const off = m * P * P;
      for (let k = 0; k < P * P; k++) s += w[off + k]! * b[k]!;
      out[m * p * p + i] = s;
    }
  }
  return out;
}

/** `head [1, C_K]` folded back through the linear maps `W_k [C_k/2 … ]` of the dropped blocks. */
function foldHead(head: Float32Array, dropped: readonly Float32Array[]): Float32Array {
  let h = Float64Array.from(head);
  for (let k = dropped.length - 1; k >= 0; k--) {
    const w = dropped[k]!; // [out = h.length, in]
    const cin = w.length / h.length;
    const next = new Float64Array(cin);
    for (let o = 0; o < h.length; o++) for (let i = 0; i < cin; i++) next[i]! += h[o]! * w[o * cin + i]!;
    h = next;
  }
  return Float32Array.from(h);
}

/** A ReSTR checkpoint's config and parameters carried to a finer patch grid and/or another size. */
export function resampleRestr(
  config: RestrConfig,
  params: ReadonlyMap<string, Float32Array>,
  target: ResampleTarget,
  source = '<checkpoint>',
): Resampled {
  const fail = (msg: string): never => {
    throw new ResampleError(source, msg);
  };
  const P = config.patchSize;
  const p = target.patchSize ?? P;
  const S = target.imageSize ?? config.imageSize;
  if (p > P || P % p !== 0 || !isPow2(P / p))
    fail(
      `patch size ${p}: only a finer grid is supported, the checkpoint's patch size ${P} divided by a power of two`,
    );
  const next: RestrConfig = { ...structuredClone(config), patchSize: p, imageSize: S };
  try {
    validateRestrConfig(next);
  } catch (e) {
    fail(`the resampled config is not valid: ${(e as Error).message}`);
  }
  const get = (name: string): Float32Array => params.get(name) ?? fail(`parameter '${name}' is missing`);
  const out = new Map(params);
  const changes: string[] = [];

  if (p !== P) {
    out.set('vision.patch_embed.proj.weight', shrinkPatchEmbed(get('vision.patch_embed.proj.weight'), P, p));
    changes.push(`vision.patch_embed.proj.weight: ${P}×${P} → ${p}×${p} patches (ŵ = Bᵀw)`);
  }
  const g = gridSize(config);
  const G = gridSize(next);
  if (g !== G) {
    out.set('vision.pos_embed', resampleGridBicubic(get('vision.pos_embed'), g, G, config.vision.dim));
    changes.push(`vision.pos_embed: ${g}×${g} → ${G}×${G} grid (bicubic)`);
  }
  if (config.decoder && p !== P) {
    const K = decoderBlocks(config);
    const k = decoderBlocks(next);
    const dropped: Float32Array[] = [];
    for (let b = k; b < K; b++) {
      dropped.push(get(`decoder.blocks.${b}.proj.weight`));
      out.delete(`decoder.blocks.${b}.proj.weight`);
    }
    out.set('decoder.head.weight', foldHead(get('decoder.head.weight'), dropped));
    const folded = K - k > 1 ? `decoder.blocks.${k}–${K - 1}` : `decoder.blocks.${k}`;
    changes.push(
      `decoder: ${K} → ${k} blocks; ${folded} folded into decoder.head (LeakyReLU taken as the identity)`,
    );
  }
  if (!changes.length) fail('nothing to change: give a smaller patch size or another image size');
  return { config: next, params: out, changes };
}
