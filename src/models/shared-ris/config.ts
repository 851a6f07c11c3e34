// Shared-RIS configuration (spec/shared-ris.md §1–3; paper Sec. IV-A "Implementation Details"):
// the typed object, its validation, and the presets.
//
// `shared-ris-b16` carries the paper's numbers: BEiT-3 base (ViT-B/16: L = 12 layers, d = 768,
// 12 heads, FFN 3072, XLM-R vocabulary 64,010), S = 480, shared FPN over layers {3, 6, 9, 12} with
// dw = 512, one shared decoder layer (512, 8 heads, MLP 2048), l = 2 upsampling steps, τ = 0.35,
// λbce = 2.0, λdice = 0.5, stochastic depth 0.1. Validation completes optional fields from the
// spec's defaults and names the field in every error.

import { ConfigError, check, int, num, object, oneOf } from '../schema.js';

export interface EncoderConfig {
  /** d: BEiT-3 width (encoder_embed_dim). */
  dim: number;
  /** L: multiway layers. */
  depth: number;
  heads: number;
  /** encoder_ffn_embed_dim. */
  mlpDim: number;
  /** Rows of `beit3.text_embed` (64,010 for BEiT-3's XLM-R SentencePiece vocabulary). */
  vocabSize: number;
  /** Rows of the text position table `embed_positions.B` (torchscale max_source_positions, 1024). */
  maxPositions: number;
  /** Stochastic depth, rising linearly from 0 over the layers (torchscale np.linspace). */
  dropPath: number;
}

export interface FpnConfig {
  /** dw: reduced width. */
  dim: number;
  heads: number;
  /** Encoder layers (1-based) whose outputs h_j feed the FPN, ascending. */
  stages: number[];
}

export interface DecoderConfig {
  heads: number;
  mlpDim: number;
  /** l: ×2 upsampling + Conv3×3/BN/ReLU steps after F_0 (paper l = 2: F_2 at S/4 for P = 16). */
  upsamples: number;
}

export interface SharedRisConfig {
  model: 'shared-ris';
  /** S: input side (square, letterboxed). */
  imageSize: number;
  /** P: patch side. */
  patchSize: number;
  /** T: text length including [CLS] and [EOT], padded (spec default 22). */
  maxTokens: number;
  encoder: EncoderConfig;
  fpn: FpnConfig;
  decoder: DecoderConfig;
  /** τ: probability threshold for the binary mask. */
  threshold: number;
  loss: { bce: number; dice: number };
  /** BatchNorm running-statistics momentum (PyTorch convention: new = (1 − m)·old + m·batch). */
  bnMomentum: number;
}

/** Patches per side S/P. */
export const gridSize = (c: SharedRisConfig): number => c.imageSize / c.patchSize;
/** Number of patches n = (S/P)². */
export const numPatches = (c: SharedRisConfig): number => gridSize(c) ** 2;
/** Vision tokens n + 1 (the visual CLS token first). */
export const visionTokens = (c: SharedRisConfig): number => numPatches(c) + 1;
/** Side of F_l, the decoder's last feature map: (S/P)·2^l. */
export const maskSide = (c: SharedRisConfig): number => gridSize(c) * 2 ** c.decoder.upsamples;

/** BEiT-3 / fairseq position offset: position p of a group reads row p + 2 of its table. */
export const POSITION_OFFSET = 2;

function validateEncoder(raw: unknown): EncoderConfig {
  const e = object('encoder', raw, [
    'dim',
    'depth',
    'heads',
    'mlpDim',
    'vocabSize',
    'maxPositions',
    'dropPath',
  ]);
  const dim = int(e, 'dim', 'encoder');
  const heads = int(e, 'heads', 'encoder');
  check(dim % heads === 0, 'encoder.heads', `${heads} does not divide encoder.dim = ${dim}`);
  return {
    dim,
    depth: int(e, 'depth', 'encoder'),
    heads,
    mlpDim: int(e, 'mlpDim', 'encoder', 4 * dim),
    // ids 0 ([CLS] <s>), 1 (<pad>), 2 ([EOT] </s>), 3 (<unk>) always exist
    vocabSize: int(e, 'vocabSize', 'encoder', 64010, 4),
    maxPositions: int(e, 'maxPositions', 'encoder', 1024),
    dropPath: num(e, 'dropPath', 'encoder', 0, 1, 0.1, true),
  };
}

/** Validates a raw (JSON) config and completes its optional fields; errors name the field. */
export function validateSharedRisConfig(raw: unknown): SharedRisConfig {
  const top = object('', raw, [
    'model',
    'imageSize',
    'patchSize',
    'maxTokens',
    'encoder',
    'fpn',
    'decoder',
    'threshold',
    'loss',
    'bnMomentum',
  ]);
  const model = oneOf(top, 'model', '', ['shared-ris'] as const);
  const imageSize = int(top, 'imageSize', '');
  const patchSize = int(top, 'patchSize', '', 16);
  check(imageSize % patchSize === 0, 'patchSize', `${patchSize} does not divide imageSize = ${imageSize}`);
  const maxTokens = int(top, 'maxTokens', '', 22, 3); // [CLS], at least one token, [EOT]
  const encoder = validateEncoder(top.encoder);
  check(
    maxTokens + POSITION_OFFSET <= encoder.maxPositions,
    'encoder.maxPositions',
    `${encoder.maxPositions} rows cannot hold maxTokens = ${maxTokens} text positions after the fairseq offset of ${POSITION_OFFSET}`,
  );

  const f = object('fpn', top.fpn, ['dim', 'heads', 'stages']);
  const fdim = int(f, 'dim', 'fpn', 512);
  const fheads = int(f, 'heads', 'fpn', 8);
  check(fdim % fheads === 0, 'fpn.heads', `${fheads} does not divide fpn.dim = ${fdim}`);
  const stages = f.stages ?? [3, 6, 9, 12];
  if (!Array.isArray(stages) || stages.length === 0)
    throw new ConfigError(
      'fpn.stages',
      `must be a non-empty array of layer numbers, got ${JSON.stringify(stages)}`,
    );
  stages.forEach((j, i) => {
    check(
      typeof j === 'number' && Number.isInteger(j) && j >= 1 && j <= encoder.depth,
      `fpn.stages.${i}`,
      `must be an encoder layer number in 1..${encoder.depth} (encoder.depth), got ${JSON.stringify(j)}`,
    );
    check(
      i === 0 || j > stages[i - 1],
      `fpn.stages.${i}`,
      `stages must be strictly ascending, got ${JSON.stringify(stages)}`,
    );
  });

  const d = object('decoder', top.decoder, ['heads', 'mlpDim', 'upsamples']);
  const dheads = int(d, 'heads', 'decoder', 8);
  check(
    fdim % dheads === 0,
    'decoder.heads',
    `${dheads} does not divide fpn.dim = ${fdim} (the decoder's width)`,
  );
  const upsamples = int(d, 'upsamples', 'decoder', 2, 0);
  check(
    patchSize % 2 ** upsamples === 0,
    'decoder.upsamples',
    `2^${upsamples} must divide patchSize = ${patchSize} (F_l is upsampled to S by the integer factor P / 2^l)`,
  );

  const l = object('loss', top.loss ?? {}, ['bce', 'dice']);
  return {
    model,
    imageSize,
    patchSize,
    maxTokens,
    encoder,
    fpn: { dim: fdim, heads: fheads, stages: [...(stages as number[])] },
    decoder: { heads: dheads, mlpDim: int(d, 'mlpDim', 'decoder', 4 * fdim), upsamples },
    threshold: num(top, 'threshold', '', 0, 1, 0.35),
    loss: {
      bce: num(l, 'bce', 'loss', 0, Number.MAX_VALUE, 2.0),
      dice: num(l, 'dice', 'loss', 0, Number.MAX_VALUE, 0.5),
    },
    bnMomentum: num(top, 'bnMomentum', '', 0, 1, 0.1),
  };
}

/** Paper configuration (spec §1–2, paper Sec. IV-A). */
const SHARED_RIS_B16: SharedRisConfig = {
  model: 'shared-ris',
  imageSize: 480,
  patchSize: 16,
  maxTokens: 22,
  encoder: {
    dim: 768,
    depth: 12,
    heads: 12,
    mlpDim: 3072,
    vocabSize: 64010, // BEiT-3's XLM-R SentencePiece vocabulary (unilm beit3 `vocab_size=64010`)
    maxPositions: 1024, // torchscale max_source_positions: the checkpoint's embed_positions.B rows
    dropPath: 0.1,
  },
  fpn: { dim: 512, heads: 8, stages: [3, 6, 9, 12] },
  decoder: { heads: 8, mlpDim: 2048, upsamples: 2 },
  threshold: 0.35,
  loss: { bce: 2.0, dice: 0.5 },
  bnMomentum: 0.1,
};

export const SHARED_RIS_PRESETS: Readonly<Record<string, SharedRisConfig>> = {
  'shared-ris-b16': SHARED_RIS_B16,
  // CPU preset (not in the paper), comparable in cost to restr-tiny: 128 px, 8×8 patches, a
  // 4-layer 128-wide multiway encoder with every layer feeding the FPN, dw = 64. The text tables
  // are sized for a small SentencePiece vocabulary trained on the data (vocabSize is a placeholder
  // that `refseg init --vocab-size` or the tokenizer sets). Drop path 0: at this size the model
  // underfits rather than overfits (to be tuned).
  'shared-ris-tiny': {
    model: 'shared-ris',
    imageSize: 128,
    patchSize: 16,
    maxTokens: 22,
    encoder: { dim: 128, depth: 4, heads: 4, mlpDim: 512, vocabSize: 1000, maxPositions: 32, dropPath: 0.0 },
    fpn: { dim: 64, heads: 4, stages: [1, 2, 3, 4] },
    decoder: { heads: 4, mlpDim: 256, upsamples: 2 },
    threshold: 0.35,
    loss: { bce: 2.0, dice: 0.5 },
    bnMomentum: 0.1,
  },
};

/** A preset by name (a deep copy, safe to modify). */
export function sharedRisPreset(name: string): SharedRisConfig {
  const p = SHARED_RIS_PRESETS[name];
  if (!p)
    throw new ConfigError(
      '',
      `unknown Shared-RIS preset '${name}' (known: ${Object.keys(SHARED_RIS_PRESETS).join(', ')})`,
    );
  return structuredClone(p);
}
