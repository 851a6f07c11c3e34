// Shared-RIS forward pass and loss (spec/shared-ris.md §1–2; paper Sec. III, Eq. 1–12), traced to ONNX.
//
//   encoder  BEiT-3 over [image; text] (Sec. III-A, beit3.ts)          → h_1 … h_L
//   fpn      Shared FPN over h_j, j ∈ stages (Sec. III-B, Eq. 6–7)      → z [B, n+1+T, dw]
//   decoder  one shared transformer layer (Sec. III-C, Eq. 8–9), F_0 → l × (Upsample ×2, Conv3×3,
//            BN, ReLU) (Eq. 10), logits F_l · t' (Eq. 11), upsampled to S×S
// Image and text mix from the first layer, so the model has no image/text split (`split` stays
// undefined). Graph scopes 'encoder', 'fpn', 'decoder' let `inspect` count MACs per part;
// parameter names are spec §3's (BEiT-3 checkpoint names under `beit3.`).

import { BEIT3_TOKENS } from '../../data/sentencepiece.js';
import type { Tensor } from '../../graph/graph.js';
import * as op from '../../graph/ops.js';
import { attention, bceWithLogits, block, diceLoss, layerNorm, linear, mlp } from '../../nn/layers.js';
import { joinWays } from '../../nn/multiway.js';
import type { Scope } from '../../nn/params.js';
import type { ForwardResult, ModelDef, ModelInputs, PaperNumber, PartDef, TrainInputs } from '../model.js';
import { LN_EPS, beit3Encoder } from './beit3.js';
import { type SharedRisConfig, gridSize, maskSide, validateSharedRisConfig, visionTokens } from './config.js';

export const SHARED_RIS_FORMAT = 'refseg.shared-ris/1';
const BN_EPS = 1e-5;

/**
 * Padding of the text (id <pad> = 1): `keep` [B, T, 1] (0 at padding) zeroes the padded embeddings
 * as torchscale does, `keyMask` [B, 1, 1, n+1+T] (−1e9 at padded text keys, 0 elsewhere) keeps every
 * attention in the model (encoder, FPN, decoder) from reading them.
 */
function textPadding(c: SharedRisConfig, tokens: Tensor): { keep: Tensor; keyMask: Tensor } {
  const g = tokens.graph;
  const isPad = op.equal(tokens, op.scalar(g, BEIT3_TOKENS.pad, tokens.dtype)); // [B, T]
  const keep = op.unsqueeze(op.where(isPad, op.scalar(g, 0), op.scalar(g, 1)), [2]); // [B, T, 1]
  const textKeys = op.where(isPad, op.scalar(g, -1e9), op.scalar(g, 0)); // [B, T]
  const keys = op.pad(textKeys, [0, visionTokens(c), 0, 0]); // [B, n+1+T], vision keys never masked
  return { keep, keyMask: op.unsqueeze(keys, [1, 2]) }; // [B, 1, 1, n+1+T]
}

/** Eq. 6–7: z_j = MSA(LN(h_j W_j)) + h_j W_j per stage; z = [z_j1, …, z_jK] W_f over channels. */
function sharedFpn(s: Scope, c: SharedRisConfig, h: Tensor[], keyMask: Tensor): Tensor {
  const g = s.graph;
  const { dim: dw, heads } = c.fpn;
  const z = h.map((hj, k) =>
    g.scope(`stages.${k}`, () => {
      const st = s.sub('stages').sub(k);
      const u = linear(st.sub('proj'), hj, c.encoder.dim, dw); // [B, N, dw]
      return op.add(
        attention(st.sub('attn'), layerNorm(st.sub('norm'), u, dw, LN_EPS), dw, heads, keyMask),
        u,
      );
    }),
  );
  return g.scope('fuse', () => linear(s.sub('fuse'), op.concat(z, 2), h.length * dw, dw)); // [B, N, K·dw] → [B, N, dw]
}

/**
 * BatchNorm2d over [B, C, H, W]. Training: batch statistics (mean and biased variance over N, H, W)
 * written as primitive ops, and the running statistics' new values put in `updates` (PyTorch:
 * r ← (1 − m)·r + m·stat, the variance unbiased by n/(n − 1)). Inference: the running statistics.
 */
function batchNorm2d(
  s: Scope,
  x: Tensor,
  channels: number,
  momentum: number,
  updates?: Map<string, Tensor>,
): Tensor {
  const weight = s.param('weight', [channels], { kind: 'ones' });
  const bias = s.param('bias', [channels], { kind: 'zeros' });
  const runningMean = s.param('running_mean', [channels], { kind: 'zeros' }, { buffer: true });
  const runningVar = s.param('running_var', [channels], { kind: 'ones' }, { buffer: true });
  if (!updates) return op.batchNormInference(x, weight, bias, runningMean, runningVar, BN_EPS);

  const perChannel = (t: Tensor) => op.reshape(t, [1, channels, 1, 1]); // [C] → [1, C, 1, 1]
  const mean = op.reduceMean(x, [0, 2, 3], true); // [1, C, 1, 1]
  const centered = op.sub(x, mean);
  const variance = op.reduceMean(op.mul(centered, centered), [0, 2, 3], true); // [1, C, 1, 1]
  const y = op.add(
    op.mul(op.div(centered, op.sqrt(op.add(variance, BN_EPS))), perChannel(weight)),
    perChannel(bias),
  );

  const flat = (t: Tensor) => op.reshape(t, [channels]); // [1, C, 1, 1] → [C]
  const n = valuesPerChannel(x);
  const unbiased = op.mul(flat(variance), op.div(n, op.sub(n, 1)));
  const ema = (running: Tensor, batch: Tensor) =>
    op.add(op.mul(running, 1 - momentum), op.mul(batch, momentum));
  updates.set(`${s.prefix}.running_mean`, ema(runningMean, flat(mean)));
  updates.set(`${s.prefix}.running_var`, ema(runningVar, unbiased));
  return y;
}

/** B·H·W as a float32 scalar (read from the runtime shape when the batch is symbolic). */
function valuesPerChannel(x: Tensor): Tensor {
  const [b, , h, w] = x.shape as [number | string, number, number, number];
  if (typeof b === 'number') return op.scalar(x.graph, b * h * w);
  const batch = op.cast(op.gather(op.shapeOf(x), op.scalar(x.graph, 0, 'int64'), 0), 'float32'); // []
  return op.mul(batch, h * w);
}

/**
 * Sec. III-C: u = Block(z) (Eq. 8–9, one shared MLP); F_0 = v_u without CLS as [B, dw, G, G];
 * F_i = ReLU(BN(Conv3×3(Upsample×2(F_{i−1})))) (Eq. 10); t' = MLP(t_u^cls);
 * logits = F_l · t' (Eq. 11 before σ), bilinearly upsampled ×P/2^l to S×S.
 */
function decoder(
  s: Scope,
  c: SharedRisConfig,
  z: Tensor,
  keyMask: Tensor,
  train?: TrainInputs,
): ForwardResult {
  const g = s.graph;
  const dw = c.fpn.dim;
  const [G, nv, T] = [gridSize(c), visionTokens(c), c.maxTokens];
  const u = g.scope('block', () =>
    block(
      s.sub('block'),
      z,
      { dim: dw, heads: c.decoder.heads, mlpDim: c.decoder.mlpDim, eps: LN_EPS },
      keyMask,
    ),
  );
  const [vU, tU] = op.split(u, [nv, T], 1) as [Tensor, Tensor]; // [B, n+1, dw], [B, T, dw]

  const patches = op.slice(vU, [1], [1], [nv]); // [B, n, dw], CLS dropped
  let f = op.reshape(op.transpose(patches, [0, 2, 1]), [0, dw, G, G]); // [B, dw, n] → [B, dw, G, G]
  const updates = train ? new Map<string, Tensor>() : undefined;
  const fanOut = dw * 9;
  for (let i = 0; i < c.decoder.upsamples; i++) {
    const cs = s.sub('convs').sub(i);
    f = g.scope(`convs.${i}`, () => {
      const up = op.resize(f, 2, 'half_pixel'); // [B, dw, 2H, 2W], align_corners = false
      const w = cs
        .sub('conv')
        .param('weight', [dw, dw, 3, 3], { kind: 'normal', std: Math.sqrt(2 / fanOut) }); // kaiming, fan_out
      const y = op.conv(up, w, null, { pads: [1, 1, 1, 1] });
      return op.relu(batchNorm2d(cs.sub('bn'), y, dw, c.bnMomentum, updates));
    });
  }

  const tPrime = g.scope('text_mlp', () => mlp(s.sub('text_mlp'), op.slice(tU, [1], [0], [1]), dw, dw)); // [B, 1, dw]
  const side = maskSide(c);
  const dot = op.matmul(tPrime, op.reshape(f, [0, dw, side * side])); // [B, 1, dw] @ [B, dw, H·W] → [B, 1, H·W]
  const logits = op.reshape(dot, [0, 1, side, side]); // [B, 1, H, W]
  const scale = c.imageSize / side;
  const maskLogits = scale > 1 ? op.resize(logits, scale, 'half_pixel') : logits; // [B, 1, S, S]
  return { maskLogits, extra: {}, ...(updates ? { bufferUpdates: updates } : {}) };
}

function forward(s: Scope, c: SharedRisConfig, x: ModelInputs, train?: TrainInputs): ForwardResult {
  const g = s.graph;
  const { keep, keyMask } = textPadding(c, x.tokens);
  const h = g.scope('encoder', () =>
    beit3Encoder(s.sub('beit3', 'encoder'), c, x.image, x.tokens, keep, keyMask, train?.dropPath),
  );
  const z = g.scope('fpn', () =>
    sharedFpn(
      s.sub('fpn', 'fpn'),
      c,
      c.fpn.stages.map((j) => joinWays(h[j - 1]!)), // h_j as [B, n+1+T, D]
      keyMask,
    ),
  );
  return g.scope('decoder', () => decoder(s.sub('decoder', 'decoder'), c, z, keyMask, train));
}

/** Eq. 12: λbce·BCE(logits, Y) + λdice·Dice(σ(logits), Y) (nn/layers.ts `diceLoss`). */
function loss(c: SharedRisConfig, out: ForwardResult, t: TrainInputs): Tensor {
  const bce = bceWithLogits(out.maskLogits, t.mask);
  return op.add(op.mul(bce, c.loss.bce), op.mul(diceLoss(out.maskLogits, t.mask), c.loss.dice));
}

/** torchscale: drop_path_prob = np.linspace(0, rate, L)[layer]. */
function dropPathBlocks(c: SharedRisConfig): { name: string; rate: number }[] {
  const { depth, dropPath } = c.encoder;
  return Array.from({ length: depth }, (_, i) => ({
    name: `beit3.encoder.layers.${i}`,
    rate: depth > 1 ? (dropPath * i) / (depth - 1) : dropPath,
  })).filter((b) => b.rate > 0);
}

const isPaperB16 = (c: SharedRisConfig): boolean =>
  c.patchSize === 16 &&
  c.maxTokens === 22 &&
  c.encoder.dim === 768 &&
  c.encoder.depth === 12 &&
  c.encoder.heads === 12 &&
  c.encoder.mlpDim === 3072 &&
  c.encoder.vocabSize === 64010 &&
  c.encoder.maxPositions === 1024 &&
  c.fpn.dim === 512 &&
  c.fpn.heads === 8 &&
  c.fpn.stages.join(',') === '3,6,9,12' &&
  c.decoder.heads === 8 &&
  c.decoder.mlpDim === 2048 &&
  c.decoder.upsamples === 2;

/** Tables IV–VI (fvcore "FLOPs" are MACs; 480×480; the totals include BEiT-3's text table). */
function paperNumbers(c: SharedRisConfig): PaperNumber[] {
  if (!isPaperB16(c)) return [];
  return [
    { row: 'fpn', params: 8e6, source: 'Table IV Shared FPN' },
    { row: 'fpn', macs: 9e9, imageSize: 480, source: 'Table IV Shared FPN' },
    { row: 'decoder', params: 9e6, source: 'Table V Shared Decoder' },
    { row: 'decoder', macs: 50e9, imageSize: 480, source: 'Table V Shared Decoder' },
    { row: 'total', params: 239e6, withWordTable: true, source: 'Table VI Shared-RIS' },
    { row: 'total', macs: 155e9, imageSize: 480, source: 'Table VI Shared-RIS' },
  ];
}

const PARTS: PartDef[] = [
  { name: 'encoder', paramPrefix: ['beit3.'], scope: ['encoder'] },
  { name: 'fpn', paramPrefix: ['fpn.'], scope: ['fpn'] },
  { name: 'decoder', paramPrefix: ['decoder.'], scope: ['decoder'] },
];

export const sharedRisModel: ModelDef<SharedRisConfig> = {
  kind: 'shared-ris',
  format: SHARED_RIS_FORMAT,
  tokenInput: 'text',
  textFraming: 'beit3', // [CLS] … [EOT], padding 1: what textPadding masks
  configPaths: { imageSize: 'imageSize', vocabSize: 'encoder.vocabSize' },
  validate: validateSharedRisConfig,
  imageSize: (c) => c.imageSize,
  maxTokens: (c) => c.maxTokens,
  threshold: (c) => c.threshold,
  // BEiT-3 (unilm beit3): IMAGENET_INCEPTION_MEAN/STD, (x/255 − 0.5)/0.5
  normalization: () => ({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }),
  forward,
  loss,
  trainTargets: () => ({}),
  makeTargets: () => ({}),
  dropPathBlocks,
  parts: () => PARTS.map((p) => ({ ...p })),
  wordEmbeddingParams: () => ['beit3.text_embed.weight'],
  paperNumbers,
};
