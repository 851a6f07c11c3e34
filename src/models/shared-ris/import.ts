// BEiT-3 checkpoint import (spec/shared-ris.md §1.1, §3): Microsoft's `.pth` files (microsoft/unilm
// beit3, torch.save of {'model': state_dict}) hold the encoder under exactly the names our model
// uses (`beit3.*`), so the swap table is the identity; every tensor is checked against the shape
// the config implies. One table may differ legitimately: the vision position table
// `beit3.encoder.embed_positions.A.weight`, [2 fairseq rows; CLS; g×g patches], is trained at one
// image size (224: g = 14) and used at another (480: G = 30). As unilm beit3's
// `load_model_and_may_interpolate` does, its first 3 rows are kept and the g×g grid is resampled
// bicubically (torch F.interpolate mode='bicubic', align_corners=False, no antialias: A = −0.75,
// border indices clamped) to G×G.
// Not imported: keys outside `beit3.` (task heads: vision_head, language_head, logit_scale, …),
// `beit3.vision_embed.mask_token` (masked-image pretraining) and `beit3.encoder.layer_norm.{A,B}`
// (the FPN reads the layer outputs, spec §1.2). Any other `beit3.` key is an error: it would mean
// a different architecture.

import { type IoTensor, floatDataAsF32 } from '../../io/tensor.js';
import { loadTorch } from '../../io/torch.js';
import { buildInference, initModel } from '../build.js';
import { type SharedRisConfig, gridSize } from './config.js';
import { sharedRisModel } from './model.js';

export class Beit3ImportError extends Error {
  override name = 'Beit3ImportError';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
  }
}

const POS_A = 'beit3.encoder.embed_positions.A.weight';
/** Rows of the vision table before the patch grid: 2 fairseq offset rows and the CLS position. */
const EXTRA_ROWS = 3;

/** `beit3.` keys of a BEiT-3 checkpoint that Shared-RIS does not use. */
export const UNUSED_BEIT3_KEYS: readonly RegExp[] = [
  /^beit3\.vision_embed\.mask_token$/,
  /^beit3\.encoder\.layer_norm\.[AB]\.(weight|bias)$/,
];

export interface Beit3Import {
  /** Every `beit3.*` parameter of the config, float32, by name. */
  params: Map<string, Float32Array>;
  /** Checkpoint keys not imported (task heads, mask_token, the final layer_norm), in file order. */
  skipped: string[];
  /** Patches per side of the vision position grid in the checkpoint and in the model, when they differ. */
  resampled?: { from: number; to: number };
}

/** cubic convolution weights for the 4 taps around t ∈ [0, 1) (torch get_cubic_upsample_coefficients, A = −0.75). */
function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| ≤ 1
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** Per output index: the 4 clamped source indices and their weights (align_corners = false, scale in/out). */
function cubicTaps(inSize: number, outSize: number): { idx: Int32Array; w: Float64Array } {
  const idx = new Int32Array(outSize * 4);
  const w = new Float64Array(outSize * 4);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const real = scale * (o + 0.5) - 0.5; // cubic: no clamping of the source coordinate
    const base = Math.floor(real);
    const ws = cubicWeights(real - base);
    for (let k = 0; k < 4; k++) {
      idx[o * 4 + k] = Math.min(Math.max(base - 1 + k, 0), inSize - 1);
      w[o * 4 + k] = ws[k]!;
    }
  }
  return { idx, w };
}

/**
 * Bicubic resampling of a row-major g×g grid of D-vectors ([g·g, D], row = y·g + x) to G×G, as
 * torch.nn.functional.interpolate(mode='bicubic', align_corners=False) on [1, D, g, g].
 */
export function resampleGridBicubic(grid: Float32Array, g: number, G: number, dim: number): Float32Array {
  if (grid.length !== g * g * dim)
    throw new Error(`resampleGridBicubic: ${grid.length} values, expected ${g}·${g}·${dim}`);
  const { idx, w } = cubicTaps(g, G);
  const out = new Float32Array(G * G * dim);
  const acc = new Float64Array(dim);
  for (let oy = 0; oy < G; oy++) {
    for (let ox = 0; ox < G; ox++) {
      acc.fill(0);
      for (let i = 0; i < 4; i++) {
        const y = idx[oy * 4 + i]!;
        const wy = w[oy * 4 + i]!;
        for (let j = 0; j < 4; j++) {
          const x = idx[ox * 4 + j]!;
          const wxy = wy * w[ox * 4 + j]!;
          const src = (y * g + x) * dim;
          for (let d = 0; d < dim; d++) acc[d]! += wxy * grid[src + d]!;
        }
      }
      out.set(acc, (oy * G + ox) * dim);
    }
  }
  return out;
}

function toFloat32(t: IoTensor, name: string, source: string): Float32Array {
  const data = floatDataAsF32(t);
  if (!data)
    throw new Beit3ImportError(source, `tensor '${name}' is ${t.dtype}, expected a floating-point type`);
  return data;
}

const shapeStr = (s: readonly number[]) => `[${s.join(',')}]`;

/** Where to change the config when a tensor's shape says the checkpoint is another configuration. */
function hint(name: string): string {
  if (name === 'beit3.text_embed.weight') return ' (set encoder.vocabSize to the checkpoint vocabulary)';
  if (name === 'beit3.encoder.embed_positions.B.weight') return ' (set encoder.maxPositions to its rows)';
  if (name.startsWith('beit3.vision_embed.proj')) return ' (patchSize or encoder.dim differ)';
  return ' (encoder.dim, encoder.mlpDim or encoder.depth differ)';
}

/** Maps a BEiT-3 state dict onto the `beit3.*` parameters of `c` (see the file header). */
export function importBeit3(
  state: ReadonlyMap<string, IoTensor>,
  c: SharedRisConfig,
  source = '<beit3 checkpoint>',
): Beit3Import {
  const specs = [...buildInference(sharedRisModel, c, 1).registry.specs.values()].filter((s) =>
    s.name.startsWith('beit3.'),
  );
  const wanted = new Set(specs.map((s) => s.name));
  const skipped: string[] = [];
  for (const k of state.keys()) {
    if (wanted.has(k)) continue;
    if (!k.startsWith('beit3.') || UNUSED_BEIT3_KEYS.some((re) => re.test(k))) skipped.push(k);
    else
      throw new Beit3ImportError(
        source,
        `unexpected tensor '${k}' (not a BEiT-3 parameter Shared-RIS knows)`,
      );
  }

  const params = new Map<string, Float32Array>();
  let resampled: Beit3Import['resampled'];
  for (const s of specs) {
    const t = state.get(s.name);
    if (!t) throw new Beit3ImportError(source, `tensor '${s.name}' ${shapeStr(s.shape)} is missing`);
    const data = toFloat32(t, s.name, source);
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0)
      throw new Beit3ImportError(source, `tensor '${s.name}' has a non-finite value at index ${bad}`);
    if (s.name === POS_A && t.shape.length === 2 && t.shape[1] === s.shape[1] && t.shape[0] !== s.shape[0]) {
      const g = Math.round(Math.sqrt(t.shape[0]! - EXTRA_ROWS));
      if (g * g + EXTRA_ROWS !== t.shape[0])
        throw new Beit3ImportError(
          source,
          `tensor '${s.name}' ${shapeStr(t.shape)}: ${t.shape[0]} rows are not 3 + g² (2 fairseq rows, CLS, a square patch grid)`,
        );
      const G = gridSize(c);
      const D = s.shape[1]!;
      const table = new Float32Array((EXTRA_ROWS + G * G) * D);
      table.set(data.subarray(0, EXTRA_ROWS * D));
      table.set(resampleGridBicubic(data.subarray(EXTRA_ROWS * D), g, G, D), EXTRA_ROWS * D);
      params.set(s.name, table);
      resampled = { from: g, to: G };
      continue;
    }
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i]))
      throw new Beit3ImportError(
        source,
        `tensor '${s.name}' is ${shapeStr(t.shape)}, the config needs ${shapeStr(s.shape)}${hint(s.name)}`,
      );
    params.set(s.name, data);
  }
  return { params, skipped, ...(resampled ? { resampled } : {}) };
}

/** Reads a BEiT-3 `.pth` (its state dict under key 'model') and imports it for `c`. */
export function loadBeit3Checkpoint(path: string, c: SharedRisConfig): Beit3Import {
  return importBeit3(loadTorch(path, { key: 'model' }), c, path);
}

/**
 * Initial Shared-RIS parameters from a BEiT-3 checkpoint: the encoder imported, the FPN and
 * decoder (and BN running statistics) randomly initialized from `seed` as `initModel` does.
 */
export function initFromBeit3(
  c: SharedRisConfig,
  seed: number,
  path: string,
): { params: Map<string, Float32Array>; import: Beit3Import } {
  const imported = loadBeit3Checkpoint(path, c);
  const params = initModel(sharedRisModel, c, seed);
  for (const [k, v] of imported.params) params.set(k, v);
  return { params, import: imported };
}
