// Checkpoint names and shapes (spec/shared-ris.md §3): the parameters the traced model registers are
// exactly the list spec §3 spells out, with the encoder under BEiT-3's checkpoint names (torchscale
// MultiwayNetwork `A`/`B`, `self_attn.{q,k,v,out}_proj`, sub-LN `inner_attn_ln` and
// `ffn.X.ffn_layernorm`, the +2-row vision position table); BatchNorm running statistics are
// buffers; optimizer attributes follow BEiT-3 (no decay for cls_token and the vision positions);
// checkpoints (format refseg.shared-ris/1, SentencePiece vocabulary) and the ONNX export round-trip.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameterSpecs } from '../../src/models/build.js';
import { type SharedRisConfig, sharedRisPreset } from '../../src/models/shared-ris/config.js';
import { sharedRisModel } from '../../src/models/shared-ris/model.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeModelCheckpoint, encodeModelCheckpoint } from '../../src/models/checkpoint.js';
import { exportModel } from '../../src/models/export.js';
import { sentencePieceEncoder } from '../../src/data/sentencepiece.js';
import { textEncoderFromCheckpoint } from '../../src/data/text.js';
import { runOnnx } from './restr-helpers.js';
import { expectedParams, livelyParams, microConfig, sampleInputs } from './shared-ris-helpers.js';

const sorted = (m: Map<string, number[]>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

function registered(c: SharedRisConfig) {
  const specs = parameterSpecs(sharedRisModel, c);
  return {
    params: new Map(specs.filter((s) => !s.buffer).map((s) => [s.name, [...s.shape]])),
    buffers: new Map(specs.filter((s) => s.buffer).map((s) => [s.name, [...s.shape]])),
    specs,
  };
}

test('shared-ris-b16: names and shapes are spec §3 (BEiT-3 base under beit3.*, 4 FPN stages, 2 conv steps)', () => {
  const c = sharedRisPreset('shared-ris-b16');
  const want = expectedParams(c);
  const got = registered(c);
  assert.deepEqual(sorted(got.params), sorted(want.params));
  assert.deepEqual(sorted(got.buffers), sorted(want.buffers));
  // 6 embedding tensors + 12 layers × 2 experts × 20 tensors; FPN 4 × 8 + 2; decoder 12 + 2·(1 + 2) + 4
  assert.equal(got.params.size, 6 + 12 * 2 * 20 + 34 + 22);
  // BEiT-3 base at 480×480: the vision table holds [2 fairseq rows; CLS; 30×30 patches]
  assert.deepEqual(got.params.get('beit3.encoder.embed_positions.A.weight'), [903, 768]);
  assert.deepEqual(got.params.get('beit3.encoder.embed_positions.B.weight'), [1024, 768]);
  assert.deepEqual(got.params.get('beit3.text_embed.weight'), [64010, 768]);
  assert.deepEqual(got.params.get('beit3.encoder.layers.11.ffn.B.ffn_layernorm.weight'), [3072]);
  assert.deepEqual(got.params.get('decoder.convs.1.conv.weight'), [512, 512, 3, 3]);
  // what the model does not use is not a parameter (a BEiT-3 checkpoint's extras are skipped on import)
  for (const unused of ['beit3.vision_embed.mask_token', 'beit3.encoder.layer_norm.A.weight'])
    assert.ok(!got.params.has(unused), unused);
});

test('micro config: names follow the config (3 layers, stages 1 and 3, one upsampling)', () => {
  const c = microConfig({ encoder: { depth: 3 }, fpn: { stages: [1, 3] }, decoder: { upsamples: 1 } });
  const want = expectedParams(c);
  const got = registered(c);
  assert.deepEqual(sorted(got.params), sorted(want.params));
  assert.deepEqual(sorted(got.buffers), sorted(want.buffers));
  assert.ok(!got.params.has('fpn.stages.2.proj.weight') && !got.params.has('decoder.convs.1.conv.weight'));
});

test('optimizer attributes: decay for weight matrices except cls_token and the vision positions; lr group per part', () => {
  const { specs } = registered(sharedRisPreset('shared-ris-tiny'));
  for (const s of specs) {
    const noDecay =
      s.buffer ||
      s.shape.length < 2 ||
      s.name === 'beit3.vision_embed.cls_token' ||
      s.name === 'beit3.encoder.embed_positions.A.weight';
    assert.equal(s.decay, !noDecay, s.name);
    const group = s.name.startsWith('beit3.') ? 'encoder' : s.name.split('.')[0];
    assert.equal(s.group, group, s.name);
  }
  const bn = specs.filter((s) => s.name.includes('.bn.running_'));
  assert.equal(bn.length, 4);
  for (const s of bn) {
    assert.equal(s.buffer, true, s.name);
    assert.deepEqual(s.init, { kind: s.name.endsWith('running_var') ? 'ones' : 'zeros' }, s.name);
  }
});

test('checkpoint round trip: format refseg.shared-ris/1, BN running stats saved, SentencePiece vocab restores the encoder', async () => {
  const c = microConfig();
  const params = livelyParams(c, 2);
  params.set('decoder.convs.0.bn.running_var', new Float32Array(c.fpn.dim).fill(2.5));
  const spm = new Uint8Array(
    readFileSync(fileURLToPath(new URL('../../../test/fixtures/spm/bytes.model', import.meta.url))),
  );
  const vocab = sentencePieceEncoder(spm, c.maxTokens).toJSON();
  const ck = decodeModelCheckpoint(encodeModelCheckpoint(sharedRisModel, c, params, { vocab }));
  assert.equal(ck.def, sharedRisModel);
  assert.equal(ck.metadata.format, 'refseg.shared-ris/1');
  assert.deepEqual(ck.config, c);
  assert.deepEqual([...ck.params.keys()].sort(), [...params.keys()].sort());
  assert.deepEqual(
    ck.params.get('decoder.convs.0.bn.running_var'),
    params.get('decoder.convs.0.bn.running_var'),
  );
  const enc = textEncoderFromCheckpoint(ck.vocab, c.maxTokens, 'ck');
  assert.deepEqual([...enc.encode('the left-most dog')].map(Number).slice(0, 1), [0]);
  assert.equal(Number(enc.encode('a')[c.maxTokens - 1]), 1, 'padding id 1');
  // the full ONNX export (no split for a single-encoder model)
  const ex = exportModel(sharedRisModel, c, params, { vocab });
  assert.equal(ex.image, undefined);
  assert.throws(() => exportModel(sharedRisModel, c, params, { parts: 'split' }), /cannot be split/);
  const out = await runOnnx(ex.full, sampleInputs(c, [1, 2]));
  assert.deepEqual(out.mask_logits!.shape, [2, 1, 32, 32]);
});
