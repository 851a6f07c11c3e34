// ReSTR forward pass and loss (spec/restr.md §1–2; paper Sec. 3, Eq. 1–12), traced to ONNX.
//
// Two halves, so an image is encoded once and serves many expressions (design.md §3.8):
//   encodeImage:  image → vision encoder (Sec. 3.1, Eq. 6) → v = proj_v(l2normalize(zv))
//   fromFeatures: v, words → language encoder → fusion encoder (Sec. 3.2, Eq. 7–8, variant
//                 cme / ime / vme of Sec. 4.3) → patch prediction (Eq. 9) → coarse-to-fine decoder
//                 (Sec. 3.3, Eq. 10)
// Graph scopes 'vision', 'language', 'fusion' (…/vl, …/ls), 'decoder' let `inspect` count MACs
// per part. Parameter names are spec §3's (timm's for the blocks).

import { patchLabels } from '../../data/labels.js';
import type { Tensor } from '../../graph/graph.js';
import * as op from '../../graph/ops.js';
import { bceWithLogits, block, layerNorm, linear, paddingKeyMask } from '../../nn/layers.js';
import { type Scope, TRUNC_NORMAL_02, torchLinearInit } from '../../nn/params.js';
import type { ForwardResult, ModelDef, ModelInputs, PaperNumber, PartDef, TrainInputs } from '../model.js';
import { reuseScope } from '../scope.js';
import { type RestrConfig, decoderBlocks, gridSize, numPatches, validateRestrConfig } from './config.js';

export const RESTR_FORMAT = 'refseg.restr/1';
const LN_EPS = 1e-6;
const ZEROS = { kind: 'zeros' } as const;
/**
 * proj_v and proj_l map L2-normalized tokens (norm 1) into the fusion encoder. N(0, 1) weights give
 * the projected tokens unit-scale features, as a LayerNorm output has. With timm's 0.02 they enter
 * the pre-LN fusion blocks 10× below the blocks' own outputs: every token starts as the same
 * attention average, v' loses its locality and the sentence its say. Measured on restr-tiny
 * (16-scene overfit, 400 steps): train oIoU 0 with 0.02 (saliency only, the same map for every
 * sentence), 13% and sentence-specific maps with N(0, 1).
 */
const FUSION_INPUT_INIT = { kind: 'normal', std: 1 } as const;

type DropScales = TrainInputs['dropPath'];

interface Width {
  dim: number;
  heads: number;
  mlpDim: number;
}

/**
 * A transformer encoder (Eq. 1–2 repeated, then LN): `depth` pre-LN blocks `<s>.blocks.i` and the
 * final `<s>.norm`. With `share`, one block `<s>.blocks.0` is applied `depth` times (CME†).
 * Drop-path scales are looked up per APPLICATION as `<s>.blocks.i`, shared or not.
 */
function transformer(
  s: Scope,
  x: Tensor,
  w: Width,
  depth: number,
  share: boolean,
  keyMask: Tensor | undefined,
  drop: DropScales,
): Tensor {
  const g = s.graph;
  const shared = share ? reuseScope(s.sub('blocks').sub(0)) : null;
  for (let i = 0; i < depth; i++) {
    const bs = shared ?? s.sub('blocks').sub(i);
    const scales = drop?.get(`${s.prefix}.blocks.${i}`);
    x = g.scope(`blocks.${i}`, () => block(bs, x, { ...w, eps: LN_EPS }, keyMask, scales));
  }
  return g.scope('norm', () => layerNorm(s.sub('norm'), x, w.dim, LN_EPS));
}

/** x / max(‖x‖₂, 1e-12) over channels (torch.nn.functional.normalize). */
function l2normalize(x: Tensor): Tensor {
  const norm = op.sqrt(op.reduceSum(op.mul(x, x), [-1], true)); // [..., 1]
  return op.div(x, op.max(norm, 1e-12));
}

/** PE[p,2i] = sin(p / 10000^(2i/C)), PE[p,2i+1] = cos(p / 10000^(2i/C)), p = 0..L-1. */
export function sinusoidalEncoding(length: number, dim: number): Float32Array {
  const pe = new Float32Array(length * dim);
  for (let p = 0; p < length; p++) {
    for (let i = 0; i < dim / 2; i++) {
      const angle = p / Math.pow(10000, (2 * i) / dim);
      pe[p * dim + 2 * i] = Math.sin(angle);
      pe[p * dim + 2 * i + 1] = Math.cos(angle);
    }
  }
  return pe;
}

/** Sec. 3.1 vision encoder: patch embedding + pos_embed → ViT blocks → norm: zv [B, Nv, Dv]. */
export function visionEncoder(s: Scope, c: RestrConfig, image: Tensor, drop: DropScales): Tensor {
  const { dim } = c.vision;
  const [P, G, N] = [c.patchSize, gridSize(c), numPatches(c)];
  // The P×P stride-P convolution as a linear map on flattened patches (channel, row, column).
  const proj = s.sub('patch_embed').sub('proj');
  const w = proj.param('weight', [dim, 3, P, P], TRUNC_NORMAL_02);
  const b = proj.param('bias', [dim], ZEROS);
  const grid = op.reshape(image, [0, 3, G, P, G, P]); // [B, 3, G, P, G, P]
  const patches = op.reshape(op.transpose(grid, [0, 2, 4, 1, 3, 5]), [0, N, 3 * P * P]); // [B, G, G, 3, P, P] → [B, Nv, 3·P·P]
  const wFlat = op.transpose(op.reshape(w, [dim, 3 * P * P]), [1, 0]); // [3·P·P, Dv]
  const xp = op.add(op.matmul(patches, wFlat), b); // [B, Nv, Dv]
  const z0 = op.add(xp, s.param('pos_embed', [1, N, dim], TRUNC_NORMAL_02, { decay: false }));
  return transformer(s, z0, c.vision, c.vision.depth, false, undefined, drop);
}

/** Sec. 3.1 language encoder: embed lookup + fixed sinusoidal PE → blocks (pads masked) → norm. */
function languageEncoder(s: Scope, c: RestrConfig, words: Tensor, keyMask: Tensor, drop: DropScales): Tensor {
  const { vocabSize, wordDim, maxWords } = c.language;
  // torch.nn.Embedding's default N(0, 1), as the authors' code when no GloVe is given: with timm's
  // N(0, 0.02) the word identity starts 50× below the unit-scale sinusoidal encoding it is added to,
  // and a model trained from scratch (restr-tiny) ignores the sentence for thousands of steps.
  const table = s.sub('embed').param('weight', [vocabSize, wordDim], { kind: 'normal', std: 1 });
  const pe = op.tensorConst(
    s.graph,
    sinusoidalEncoding(maxWords, wordDim),
    [maxWords, wordDim],
    'language_pe',
  );
  const z0 = op.add(op.gather(table, words, 0), pe); // [B, L, Cl]
  const w = { dim: wordDim, heads: c.language.heads, mlpDim: c.language.mlpDim };
  return transformer(s, z0, w, c.language.depth, false, keyMask, drop);
}

/** Image half: v = proj_v(l2normalize(zv)) [B, Nv, D]. */
function encodeImage(s: Scope, c: RestrConfig, image: Tensor, train?: TrainInputs): Tensor {
  const g = s.graph;
  const zv = g.scope('vision', () => visionEncoder(s.sub('vision', 'vision'), c, image, train?.dropPath));
  const f = s.sub('fusion', 'fusion');
  return g.scope('fusion', () =>
    g.scope('proj_v', () =>
      linear(f.sub('proj_v'), l2normalize(zv), c.vision.dim, c.fusion.dim, { init: FUSION_INPUT_INIT }),
    ),
  );
}

/** Text half: language encoder, fusion encoder, patch prediction, decoder. */
function fromFeatures(
  s: Scope,
  c: RestrConfig,
  v: Tensor,
  words: Tensor,
  train?: TrainInputs,
): ForwardResult {
  const g = s.graph;
  const drop = train?.dropPath;
  const [Nv, L, D] = [numPatches(c), c.language.maxWords, c.fusion.dim];
  const padKeys = paddingKeyMask(words); // [B, 1, 1, L], -1e9 at padding words
  const zl = g.scope('language', () =>
    languageEncoder(s.sub('language', 'language'), c, words, padKeys, drop),
  );

  const f = s.sub('fusion', 'fusion');
  const fw: Width = { dim: D, heads: c.fusion.heads, mlpDim: c.fusion.mlpDim };
  const { share, variant, depth } = c.fusion;
  const [vPrime, sPrime] = g.scope('fusion', (): [Tensor, Tensor] => {
    const l = g.scope('proj_l', () =>
      linear(f.sub('proj_l'), l2normalize(zl), c.language.wordDim, D, { init: FUSION_INPUT_INIT }),
    ); // [B, L, D]
    const seed = f.param('seed', [1, 1, D], TRUNC_NORMAL_02, { decay: false });
    const seedB = op.broadcastTo(seed, op.slice(l, [1], [0], [1])); // [B, 1, D]
    // Keys: vision and seed tokens are never masked, language padding always is.
    const keys = (before: number, after: number) => op.pad(padKeys, [0, 0, 0, before, 0, 0, 0, after]); // [B, 1, 1, before+L+after]
    if (variant === 'vme') {
      // [v', _, s'] = VL([v, l, seed]) with all fusion layers in one encoder
      const out = g.scope('vl', () =>
        transformer(f.sub('vl'), op.concat([v, l, seedB], 1), fw, depth, share, keys(Nv, 1), drop),
      );
      const [vP, , sP] = op.split(out, [Nv, L, 1], 1) as [Tensor, Tensor, Tensor]; // [B,Nv,D], [B,L,D], [B,1,D]
      return [vP, sP];
    }
    // Eq. 7: [v', l'] = VL([v, l])
    const vl = g.scope('vl', () =>
      transformer(f.sub('vl'), op.concat([v, l], 1), fw, depth / 2, share, keys(Nv, 0), drop),
    );
    const [vP, lP] = op.split(vl, [Nv, L], 1) as [Tensor, Tensor]; // [B, Nv, D], [B, L, D]
    // Eq. 8: s' = LS([l', seed])[last] (cme); ime's seed sees only the un-fused l
    const lsIn = op.concat([variant === 'cme' ? lP : l, seedB], 1); // [B, L+1, D]
    const ls = g.scope('ls', () => transformer(f.sub('ls'), lsIn, fw, depth / 2, share, keys(0, 1), drop));
    return [vP, op.slice(ls, [1], [L], [L + 1])]; // s' [B, 1, D]
  });

  return g.scope('decoder', () => {
    // Eq. 9: patchLogits = v' s'ᵀ / √D
    const logits = op.mul(op.matmul(vPrime, op.transpose(sPrime, [0, 2, 1])), 1 / Math.sqrt(D)); // [B, Nv, 1]
    const patchLogits = op.reshape(logits, [0, Nv]); // [B, Nv]
    const maskLogits = c.decoder
      ? decoder(s.sub('decoder', 'decoder'), c, v, vPrime, op.sigmoid(logits))
      : op.resize(op.reshape(patchLogits, [0, 1, gridSize(c), gridSize(c)]), c.patchSize, 'half_pixel'); // [B,1,G,G] → [B,1,S,S]
    return { maskLogits, extra: { patch_logits: patchLogits } };
  });
}

/**
 * Sec. 3.3 coarse-to-fine decoder: x = [v, v' ⊙ yp] as a [B, 2D, G, G] map (Eq. 10), then K = log2 P
 * blocks of ×2 bilinear upsampling (align_corners) → linear C → C/2 without bias → LeakyReLU(0.01),
 * then `head` C → 1. The per-pixel linear maps are W [C/2, C] · X [B, C, H·W] (a 1×1 convolution).
 *
 * Computed in the cheaper, equal order: a per-pixel linear map and a bilinear resize commute
 * (the resize mixes positions within a channel, W mixes channels within a position), so each block
 * applies W at the coarse resolution and upsamples C/2 channels instead of C: a quarter of the
 * multiply-adds and half the resize work. Measured on the restr-tiny training step (batch 8,
 * 2 threads): the decoder was about a third of the step.
 *
 * The decoder is no timm module: its weights start as torch.nn.Linear's do (U(±1/√C)), as in the
 * authors' code. With timm's N(0, 0.02) five bias-free layers shrink the signal ~10⁶-fold and the
 * mask head starts (and, measured on restr-tiny, stays) blind to its input.
 */
function decoder(s: Scope, c: RestrConfig, v: Tensor, vPrime: Tensor, yp: Tensor): Tensor {
  const G = gridSize(c);
  let ch = 2 * c.fusion.dim;
  let side = G;
  const cat = op.concat([v, op.mul(vPrime, yp)], 2); // [B, Nv, 2D]
  let x = op.transpose(cat, [0, 2, 1]); // [B, 2D, G·G]
  for (let k = 0; k < decoderBlocks(c); k++) {
    const w = s
      .sub('blocks')
      .sub(k)
      .sub('proj')
      .param('weight', [ch / 2, ch], torchLinearInit(ch));
    ch /= 2;
    const y = op.reshape(op.matmul(w, x), [0, ch, side, side]); // [B, C/2, H, W]
    side *= 2;
    const up = op.resize(y, 2, 'align_corners'); // [B, C/2, 2H, 2W]
    x = op.reshape(op.leakyRelu(up, 0.01), [0, ch, side * side]); // [B, C/2, 4·H·W]
  }
  const head = s.sub('head').param('weight', [1, ch], torchLinearInit(ch));
  return op.reshape(op.matmul(head, x), [0, 1, side, side]); // [B, 1, H·W] → [B, 1, S, S]
}

/**
 * MACs the decoder saves at image size S by projecting before it upsamples (see `decoder`): block k
 * maps C → C/2 on a (G·2^k)² grid instead of a (G·2^(k+1))² one, 3/4 of the paper order's cost.
 */
export function decoderReorderSaving(c: RestrConfig, S: number): number {
  let [side, ch, saved] = [S / c.patchSize, 2 * c.fusion.dim, 0];
  for (let k = 0; k < decoderBlocks(c); k++, side *= 2, ch /= 2) saved += 3 * side * side * ch * (ch / 2);
  return saved;
}

/** timm's stochastic-depth rule: rates rise linearly from 0 to `rate` over an encoder's layers. */
const linspace = (rate: number, n: number) =>
  Array.from({ length: n }, (_, i) => (n > 1 ? (rate * i) / (n - 1) : rate));

function dropPathBlocks(c: RestrConfig): { name: string; rate: number }[] {
  const out: { name: string; rate: number }[] = [];
  const add = (prefix: string, rates: number[]) =>
    rates.forEach((rate, i) => rate > 0 && out.push({ name: `${prefix}.blocks.${i}`, rate }));
  add('vision', linspace(c.vision.dropPath, c.vision.depth));
  add('language', linspace(c.language.dropPath, c.language.depth));
  // The fusion encoder's layers f1..f_depth (paper Sec. 4.3) are one sequence: VL's, then LS's.
  const fr = linspace(c.fusion.dropPath, c.fusion.depth);
  if (c.fusion.variant === 'vme') add('fusion.vl', fr);
  else {
    add('fusion.vl', fr.slice(0, c.fusion.depth / 2));
    add('fusion.ls', fr.slice(c.fusion.depth / 2));
  }
  return out;
}

const isPaperB16 = (c: RestrConfig): boolean =>
  c.patchSize === 16 &&
  c.decoder &&
  c.vision.dim === 768 &&
  c.vision.depth === 12 &&
  c.vision.heads === 12 &&
  c.vision.mlpDim === 3072 &&
  c.language.wordDim === 300 &&
  c.language.depth === 6 &&
  c.language.mlpDim === 1200 &&
  c.language.maxWords === 20 &&
  c.fusion.dim === 768 &&
  c.fusion.depth === 4 &&
  c.fusion.heads === 12 &&
  c.fusion.mlpDim === 3072;

/** Table 3(b) and Table 5 (counted with vocabulary 10,000 and 20 words, spec §4). */
function paperNumbers(c: RestrConfig): PaperNumber[] {
  if (!isPaperB16(c)) return [];
  const { variant, share } = c.fusion;
  const out: PaperNumber[] = [];
  const name = share ? `${variant.toUpperCase()}†` : variant.toUpperCase();
  out.push({ row: 'fusion encoders', params: share ? 14.18e6 : 28.35e6, source: `Table 3(b) ${name}` });
  if (!share || variant === 'cme') {
    out.push({
      row: 'fusion encoders',
      macs: variant === 'vme' ? 31.36e9 : 15.96e9,
      imageSize: 480,
      source: `Table 3(b) ${name}`,
    });
  }
  if (variant === 'cme') {
    out.push({ row: 'total', params: share ? 108.7e6 : 122.87e6, source: `Table 5 ReSTR (${name})` });
    out.push({
      row: 'total',
      macs: 52.29e9,
      imageSize: 320,
      source: `Table 5 ReSTR (${name})`,
      reordered: { macs: decoderReorderSaving(c, 320), what: 'the decoder projects before it upsamples' },
    });
  }
  return out;
}

const PARTS: PartDef[] = [
  { name: 'vision', paramPrefix: ['vision.'], scope: ['vision'] },
  { name: 'language', paramPrefix: ['language.'], scope: ['language'] },
  { name: 'fusion', paramPrefix: ['fusion.'], scope: ['fusion'] },
  {
    name: 'fusion encoders',
    paramPrefix: ['fusion.vl.', 'fusion.ls.'],
    scope: ['fusion/vl', 'fusion/ls'],
    sub: true,
  },
  { name: 'decoder', paramPrefix: ['decoder.'], scope: ['decoder'] },
];

export const restrModel: ModelDef<RestrConfig> = {
  kind: 'restr',
  format: RESTR_FORMAT,
  tokenInput: 'words',
  configPaths: { imageSize: 'imageSize', vocabSize: 'language.vocabSize' },
  validate: validateRestrConfig,
  imageSize: (c) => c.imageSize,
  maxTokens: (c) => c.language.maxWords,
  threshold: () => 0.5,
  // ViT-B/16 augreg normalization (spec §5): (x/255 − 0.5)/0.5
  normalization: () => ({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }),
  forward(s: Scope, c: RestrConfig, x: ModelInputs, train?: TrainInputs): ForwardResult {
    return fromFeatures(s, c, encodeImage(s, c, x.image, train), x.tokens, train);
  },
  // Eq. 12: λ·BCE(patchLogits, yp) + BCE(maskLogits, Y)
  loss(c: RestrConfig, out: ForwardResult, t: TrainInputs): Tensor {
    const labels = t.extra.patch_labels;
    const logits = out.extra.patch_logits;
    if (!labels || !logits) throw new Error('restr loss: needs patch_logits and the patch_labels target');
    return op.add(op.mul(bceWithLogits(logits, labels), c.lambda), bceWithLogits(out.maskLogits, t.mask));
  },
  trainTargets: (c, batch) => ({ patch_labels: { dtype: 'float32', shape: [batch, numPatches(c)] } }),
  makeTargets: (c, mask) => ({
    patch_labels: patchLabels(mask, c.imageSize, c.patchSize, {
      mode: c.patchLabel,
      tau: c.tau,
    }),
  }),
  dropPathBlocks,
  parts: () => PARTS.map((p) => ({ ...p })),
  wordEmbeddingParams: () => ['language.embed.weight'],
  patchPositionTable: (c) => ({ name: 'vision.pos_embed', grid: c.imageSize / c.patchSize, dim: c.vision.dim }),
  paperNumbers,
  split: {
    features: (c, batch) => ({ v: { dtype: 'float32', shape: [batch, numPatches(c), c.fusion.dim] } }),
    encodeImage: (s, c, image, train) => ({ v: encodeImage(s, c, image, train) }),
    fromFeatures(s, c, features, tokens, train) {
      const v = features.v;
      if (!v) throw new Error("restr: the text part needs the image feature 'v'");
      return fromFeatures(s, c, v, tokens, train);
    },
  },
};
