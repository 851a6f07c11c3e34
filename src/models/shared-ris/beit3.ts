// The single encoder of Shared-RIS (spec/shared-ris.md §1.1; paper Sec. III-A, Eq. 1–5): BEiT-3 as
// torchscale implements it (microsoft/torchscale `BEiT3`, `Encoder`, `EncoderLayer`), parameters
// named as Microsoft's checkpoints name them under `beit3.`:
//   vision_embed.proj (16×16 stride-16 conv), vision_embed.cls_token, text_embed,
//   encoder.embed_positions.{A,B} (vision / text tables, read from row 2 as fairseq does),
//   encoder.layers.i.* (multiway layers, src/nn/multiway.ts).
// Not used here, and so not parameters: vision_embed.mask_token (masked-image pretraining only) and
// the final encoder.layer_norm.{A,B} (the FPN reads the layer outputs h_j; spec §1.2).

import type { Tensor } from '../../graph/graph.js';
import * as op from '../../graph/ops.js';
import { type Ways, multiwayEncoderLayer } from '../../nn/multiway.js';
import { type Scope, TRUNC_NORMAL_02 } from '../../nn/params.js';
import type { TrainInputs } from '../model.js';
import { POSITION_OFFSET, type SharedRisConfig, gridSize, numPatches, visionTokens } from './config.js';

/** torchscale's default LayerNorm epsilon (EncoderConfig.layernorm_eps). */
export const LN_EPS = 1e-5;
const ZEROS = { kind: 'zeros' } as const;

/** Rows of the vision position table: [2 fairseq rows; CLS; n patches] (torchscale num_position_embeddings() + 2). */
export const visionPositionRows = (c: SharedRisConfig): number => visionTokens(c) + POSITION_OFFSET;

/** Rows `POSITION_OFFSET .. POSITION_OFFSET + n` of a position table: [1, n, D]. */
function positions(table: Tensor, n: number): Tensor {
  return op.unsqueeze(op.slice(table, [0], [POSITION_OFFSET], [POSITION_OFFSET + n]), [0]); // [n, D] → [1, n, D]
}

/** Eq. 1: v0 = [v_cls; x P] + v_pos, the patch projection as a MatMul on flattened patches. */
function visionEmbed(s: Scope, c: SharedRisConfig, image: Tensor, posTable: Tensor): Tensor {
  const { dim } = c.encoder;
  const [P, G, n] = [c.patchSize, gridSize(c), numPatches(c)];
  const proj = s.sub('proj');
  const w = proj.param('weight', [dim, 3, P, P], TRUNC_NORMAL_02);
  const b = proj.param('bias', [dim], ZEROS);
  // The P×P stride-P convolution as a linear map on flattened patches (channel, row, column).
  const grid = op.reshape(image, [0, 3, G, P, G, P]); // [B, 3, G, P, G, P]
  const patches = op.reshape(op.transpose(grid, [0, 2, 4, 1, 3, 5]), [0, n, 3 * P * P]); // [B, G, G, 3, P, P] → [B, n, 3·P·P]
  const wFlat = op.transpose(op.reshape(w, [dim, 3 * P * P]), [1, 0]); // [3·P·P, D]
  const x = op.add(op.matmul(patches, wFlat), b); // [B, n, D]
  const cls = s.param('cls_token', [1, 1, dim], TRUNC_NORMAL_02, { decay: false });
  const clsB = op.broadcastTo(cls, op.slice(x, [1], [0], [1])); // [B, 1, D]
  return op.add(op.concat([clsB, x], 1), positions(posTable, visionTokens(c))); // [B, n+1, D]
}

/** Eq. 2: t0 = embed(text) + t_pos, the text table read from row 2 as well. */
function textEmbed(s: Scope, c: SharedRisConfig, tokens: Tensor, posTable: Tensor): Tensor {
  const table = s.param('weight', [c.encoder.vocabSize, c.encoder.dim], TRUNC_NORMAL_02);
  return op.add(op.gather(table, tokens, 0), positions(posTable, c.maxTokens)); // [B, T, D]
}

/**
 * BEiT-3 over [image; text] (Eq. 3–5): the embeddings, padding positions zeroed (torchscale
 * `x * (1 - encoder_padding_mask)`), then L multiway layers. Returns h_1 … h_L, each as its
 * vision [B, n+1, D] and text [B, T, D] groups. `keep` is [B, T, 1]: 0 at padding, 1 elsewhere.
 */
export function beit3Encoder(
  s: Scope,
  c: SharedRisConfig,
  image: Tensor,
  tokens: Tensor,
  keep: Tensor,
  keyMask: Tensor,
  dropPath: TrainInputs['dropPath'],
): Ways[] {
  const g = s.graph;
  const e = c.encoder;
  const pos = s.sub('encoder').sub('embed_positions');
  const posA = pos
    .sub('A')
    .param('weight', [visionPositionRows(c), e.dim], TRUNC_NORMAL_02, { decay: false });
  const posB = pos.sub('B').param('weight', [e.maxPositions, e.dim], TRUNC_NORMAL_02);
  let x: Ways = g.scope('embed', () => ({
    A: visionEmbed(s.sub('vision_embed'), c, image, posA),
    B: op.mul(textEmbed(s.sub('text_embed'), c, tokens, posB), keep),
  }));
  const layer = { dim: e.dim, heads: e.heads, mlpDim: e.mlpDim, eps: LN_EPS };
  const states: Ways[] = [];
  for (let i = 0; i < e.depth; i++) {
    const name = `layers.${i}`;
    const ls = s.sub('encoder').sub('layers').sub(i);
    x = g.scope(name, () =>
      multiwayEncoderLayer(ls, x, layer, keyMask, dropPath?.get(`${s.prefix}.encoder.${name}`)),
    );
    states.push(x);
  }
  return states;
}
