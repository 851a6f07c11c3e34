// Shared by the Shared-RIS model tests: a micro config (runs in ONNX Runtime in milliseconds),
// BEiT-3-framed inputs with padded expressions, and the parameter list spec §3 spells out.

import { parameterSpecs } from '../../src/models/build.js';
import { sharedRisModel } from '../../src/models/shared-ris/model.js';
import type { SharedRisConfig } from '../../src/models/shared-ris/config.js';
import type { HostTensor } from '../../src/runtime/session.js';
import { Rng } from '../../src/data/random.js';
import { BEIT3_TOKENS } from '../../src/data/sentencepiece.js';
import type { DeepPartial } from './restr-helpers.js';

/**
 * 32×32 images, 8×8 patches (n = 16, G = 4), T = 6 tokens; widths 24 (encoder) / 16 (FPN, decoder)
 * and FFN 40 / MLP 20 all differ, so a projection wired to the wrong width fails to trace. l = 2
 * upsamplings give F_2 at 16×16, upsampled ×2 to S.
 */
export function microConfig(o: DeepPartial<SharedRisConfig> = {}): SharedRisConfig {
  return sharedRisModel.validate({
    model: 'shared-ris',
    imageSize: 32,
    patchSize: 8,
    maxTokens: 6,
    ...o,
    encoder: {
      dim: 24,
      depth: 2,
      heads: 2,
      mlpDim: 40,
      vocabSize: 30,
      maxPositions: 10,
      dropPath: 0.1,
      ...o.encoder,
    },
    fpn: { dim: 16, heads: 2, stages: [1, 2], ...o.fpn },
    decoder: { heads: 2, mlpDim: 20, upsamples: 2, ...o.decoder },
  });
}

/** Images in [-1, 1] and BEiT-3 ids [CLS] w… [EOT] <pad>…; sample b has `lengths[b]` words. */
export function sampleInputs(
  c: SharedRisConfig,
  lengths: readonly number[],
  seed = 1,
): { image: HostTensor; text: HostTensor } {
  const r = Rng.from('shared-ris-test', seed);
  const B = lengths.length;
  const [S, T] = [c.imageSize, c.maxTokens];
  const image = Float32Array.from({ length: B * 3 * S * S }, () => r.float(-1, 1));
  const text = new BigInt64Array(B * T).fill(BigInt(BEIT3_TOKENS.pad));
  lengths.forEach((n, b) => {
    if (n + 2 > T) throw new Error(`sample ${b}: ${n} words do not fit T = ${T}`);
    text[b * T] = BigInt(BEIT3_TOKENS.cls);
    for (let i = 1; i <= n; i++) text[b * T + i] = BigInt(r.int(4, c.encoder.vocabSize - 1));
    text[b * T + n + 1] = BigInt(BEIT3_TOKENS.eot);
  });
  return {
    image: { dtype: 'float32', shape: [B, 3, S, S], data: image },
    text: { dtype: 'int64', shape: [B, T], data: text },
  };
}

/** Spec §3 spelled out (BEiT-3 checkpoint names under `beit3.`): name → shape; buffers listed apart. */
export function expectedParams(c: SharedRisConfig): {
  params: Map<string, number[]>;
  buffers: Map<string, number[]>;
} {
  const m = new Map<string, number[]>();
  const buffers = new Map<string, number[]>();
  const lin = (p: string, o: number, i: number) => m.set(`${p}.weight`, [o, i]).set(`${p}.bias`, [o]);
  const ln = (p: string, d: number) => m.set(`${p}.weight`, [d]).set(`${p}.bias`, [d]);
  const { dim: D, depth, mlpDim: F, vocabSize: V, maxPositions } = c.encoder;
  const P = c.patchSize;
  const n = (c.imageSize / P) ** 2;
  m.set('beit3.vision_embed.proj.weight', [D, 3, P, P]).set('beit3.vision_embed.proj.bias', [D]);
  m.set('beit3.vision_embed.cls_token', [1, 1, D]);
  m.set('beit3.text_embed.weight', [V, D]);
  m.set('beit3.encoder.embed_positions.A.weight', [n + 1 + 2, D]);
  m.set('beit3.encoder.embed_positions.B.weight', [maxPositions, D]);
  for (let i = 0; i < depth; i++) {
    const l = `beit3.encoder.layers.${i}`;
    for (const e of ['A', 'B']) {
      for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) lin(`${l}.self_attn.${p}.${e}`, D, D);
      ln(`${l}.self_attn.inner_attn_ln.${e}`, D);
      ln(`${l}.self_attn_layer_norm.${e}`, D);
      lin(`${l}.ffn.${e}.fc1`, F, D);
      ln(`${l}.ffn.${e}.ffn_layernorm`, F);
      lin(`${l}.ffn.${e}.fc2`, D, F);
      ln(`${l}.final_layer_norm.${e}`, D);
    }
  }
  const dw = c.fpn.dim;
  c.fpn.stages.forEach((_, k) => {
    lin(`fpn.stages.${k}.proj`, dw, D);
    ln(`fpn.stages.${k}.norm`, dw);
    lin(`fpn.stages.${k}.attn.qkv`, 3 * dw, dw);
    lin(`fpn.stages.${k}.attn.proj`, dw, dw);
  });
  lin('fpn.fuse', dw, c.fpn.stages.length * dw);
  ln('decoder.block.norm1', dw);
  lin('decoder.block.attn.qkv', 3 * dw, dw);
  lin('decoder.block.attn.proj', dw, dw);
  ln('decoder.block.norm2', dw);
  lin('decoder.block.mlp.fc1', c.decoder.mlpDim, dw);
  lin('decoder.block.mlp.fc2', dw, c.decoder.mlpDim);
  for (let k = 0; k < c.decoder.upsamples; k++) {
    m.set(`decoder.convs.${k}.conv.weight`, [dw, dw, 3, 3]);
    ln(`decoder.convs.${k}.bn`, dw);
    buffers.set(`decoder.convs.${k}.bn.running_mean`, [dw]).set(`decoder.convs.${k}.bn.running_var`, [dw]);
  }
  lin('decoder.text_mlp.fc1', dw, dw);
  lin('decoder.text_mlp.fc2', dw, dw);
  return { params: m, buffers };
}

/**
 * Random parameters with O(1) activations everywhere (weights ~ N(0, 1/fan_in), tables ~ N(0, 0.5²),
 * norms 1 ± 0.1, biases ± 0.1), so a wrong wire or a dropped term visibly changes the logits; the
 * timm init (std 0.02) leaves them ~1e-4. Buffers keep their start values (0 and 1).
 */
export function livelyParams(c: SharedRisConfig, seed: number): Map<string, Float32Array> {
  const r = Rng.from('shared-ris-lively', seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r.float())) * Math.cos(2 * Math.PI * r.float());
  const out = new Map<string, Float32Array>();
  const specs = parameterSpecs(sharedRisModel, c);
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    let gen: () => number;
    if (s.buffer) gen = () => (s.name.endsWith('running_var') ? 1 : 0);
    else if (s.shape.length === 1)
      gen = s.name.endsWith('.bias') ? () => 0.1 * normal() : () => 1 + 0.1 * normal();
    else if (/embed|cls_token/.test(s.name)) gen = () => 0.5 * normal();
    else {
      const fanIn = s.shape.slice(1).reduce((a, b) => a * b, 1);
      gen = () => normal() / Math.sqrt(fanIn);
    }
    out.set(s.name, Float32Array.from({ length: n }, gen));
  }
  return out;
}
