// BEiT-3 checkpoint import (src/models/shared-ris/import.ts) on a tiny fake BEiT-3 written by
// torch.save (scripts/make-beit3-fixture.py): every `beit3.*` parameter of the model comes from the
// checkpoint by name, unchanged; mask_token, the final layer_norm and the task heads are skipped;
// the vision position table is resampled bicubically to another image size exactly as unilm beit3's
// load_model_and_may_interpolate (torch F.interpolate) does; shape mismatches name the tensor; the
// imported model runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { loadTorch, readTorch } from '../../src/io/torch.js';
import { f16ArrayToF32 } from '../../src/io/float16.js';
import type { IoTensor } from '../../src/io/tensor.js';
import { toModelProto } from '../../src/graph/onnx.js';
import { buildInference } from '../../src/models/build.js';
import { sharedRisModel } from '../../src/models/shared-ris/model.js';
import {
  Beit3ImportError,
  importBeit3,
  initFromBeit3,
  loadBeit3Checkpoint,
  resampleGridBicubic,
} from '../../src/models/shared-ris/import.js';
import type { SharedRisConfig } from '../../src/models/shared-ris/config.js';
import { maxAbs, maxAbsDiff, runOnnx } from './restr-helpers.js';
import { microConfig, sampleInputs } from './shared-ris-helpers.js';

const fixture = (f: string) => fileURLToPath(new URL(`../../../test/fixtures/beit3/${f}`, import.meta.url));
const CKPT = fixture('tiny_beit3.pth');

/** The fixture's BEiT-3: 32×32 images, patch 8, width 16, 2 layers, FFN 24, 30 words, 12 text positions. */
const tinyConfig = (imageSize = 32): SharedRisConfig =>
  microConfig({
    imageSize,
    patchSize: 8,
    maxTokens: 6,
    encoder: { dim: 16, depth: 2, heads: 2, mlpDim: 24, vocabSize: 30, maxPositions: 12 },
    fpn: { dim: 8, heads: 2, stages: [1, 2] },
    decoder: { heads: 2, mlpDim: 16, upsamples: 2 },
  });

const asF32 = (t: IoTensor) =>
  t.dtype === 'float16' ? f16ArrayToF32(t.data as Uint16Array) : (t.data as Float32Array);

test('same image size: every beit3.* parameter is the checkpoint tensor of the same name; extras are skipped', () => {
  const c = tinyConfig();
  const state = loadTorch(CKPT, { key: 'model' });
  const r = loadBeit3Checkpoint(CKPT, c);
  assert.equal(r.resampled, undefined);
  assert.deepEqual(r.skipped, [
    'beit3.vision_embed.mask_token',
    'beit3.encoder.layer_norm.A.weight',
    'beit3.encoder.layer_norm.A.bias',
    'beit3.encoder.layer_norm.B.weight',
    'beit3.encoder.layer_norm.B.bias',
    'vision_head.weight',
    'language_head.weight',
    'logit_scale',
  ]);
  // the checkpoint's beit3.* keys are exactly our encoder's parameters plus the two unused ones
  const ours = new Set(
    [...buildInference(sharedRisModel, c, 1).registry.specs.keys()].filter((k) => k.startsWith('beit3.')),
  );
  assert.deepEqual([...r.params.keys()].sort(), [...ours].sort());
  assert.equal(ours.size, 6 + 2 * 2 * 20);
  for (const [k, v] of r.params) assert.deepEqual(v, asF32(state.get(k)!), k);
  assert.equal(
    state.get('beit3.text_embed.weight')!.dtype,
    'float16',
    'the fixture exercises float16 widening',
  );
});

test('vision positions: the 4×4 grid resampled to 6×6 and 3×3 as unilm beit3 (F.interpolate bicubic), 3 rows kept', () => {
  const expected = readTorch(new Uint8Array(readFileSync(fixture('tiny_beit3.expected.pth'))));
  const state = loadTorch(CKPT, { key: 'model' });
  const original = state.get('beit3.encoder.embed_positions.A.weight')!.data as Float32Array;
  for (const [size, G] of [
    [48, 6],
    [24, 3],
  ] as const) {
    const r = loadBeit3Checkpoint(CKPT, tinyConfig(size));
    assert.deepEqual(r.resampled, { from: 4, to: G });
    const got = r.params.get('beit3.encoder.embed_positions.A.weight')!;
    const want = expected.get(`pos_A_${G}`)!;
    assert.deepEqual(want.shape, [3 + G * G, 16]);
    const err = maxAbsDiff(got, want.data as Float32Array);
    assert.ok(err <= 1e-5 * maxAbs(want.data as Float32Array), `${G}×${G}: differs from torch by ${err}`);
    assert.deepEqual(
      got.subarray(0, 3 * 16),
      original.subarray(0, 3 * 16),
      'fairseq rows and CLS are copied',
    );
  }
});

test('bicubic resampling: identity at the same size; weights sum to 1 (constants stay constant)', () => {
  const g = 5;
  const grid = Float32Array.from({ length: g * g * 2 }, (_, i) => Math.sin(i));
  assert.deepEqual(resampleGridBicubic(grid, g, g, 2), grid);
  for (const G of [3, 9]) {
    const out = resampleGridBicubic(new Float32Array(g * g).fill(3), g, G, 1);
    assert.ok(
      out.every((v) => Math.abs(v - 3) < 1e-6),
      `${g} → ${G}`,
    );
  }
});

test('mismatches are errors naming the file, the tensor and the config field', () => {
  const state = loadTorch(CKPT, { key: 'model' });
  const fails = (c: SharedRisConfig, s: ReadonlyMap<string, IoTensor>, re: RegExp) =>
    assert.throws(
      () => importBeit3(s, c, 'beit3.pth'),
      (e: unknown) =>
        e instanceof Beit3ImportError && e.message.startsWith('beit3.pth: ') && re.test(e.message),
    );
  const base = tinyConfig();
  fails(
    { ...base, encoder: { ...base.encoder, vocabSize: 64010 } },
    state,
    /'beit3\.text_embed\.weight' is \[30,16\], the config needs \[64010,16\].*encoder\.vocabSize/,
  );
  fails(
    { ...base, encoder: { ...base.encoder, maxPositions: 1024 } },
    state,
    /embed_positions\.B\.weight.*encoder\.maxPositions/,
  );
  fails(
    { ...base, encoder: { ...base.encoder, mlpDim: 32 } },
    state,
    /ffn\.A\.fc1\.weight' is \[24,16\], the config needs \[32,16\]/,
  );
  fails(
    { ...base, encoder: { ...base.encoder, depth: 3 } },
    state,
    /'beit3\.encoder\.layers\.2\.[^']*' \[[0-9,]+\] is missing/,
  );
  const extra = new Map(state).set('beit3.encoder.relative_position.weight', state.get('logit_scale')!);
  fails(base, extra, /unexpected tensor 'beit3\.encoder\.relative_position\.weight'/);
  const odd = new Map(state);
  const a = state.get('beit3.encoder.embed_positions.A.weight')!;
  odd.set('beit3.encoder.embed_positions.A.weight', {
    dtype: 'float32',
    shape: [18, 16],
    data: (a.data as Float32Array).slice(0, 18 * 16),
  });
  fails(base, odd, /18 rows are not 3 \+ g²/);
  const nan = new Map(state);
  const bias = Float32Array.from(state.get('beit3.vision_embed.proj.bias')!.data as Float32Array);
  bias[3] = NaN;
  nan.set('beit3.vision_embed.proj.bias', { dtype: 'float32', shape: [16], data: bias });
  fails(base, nan, /'beit3\.vision_embed\.proj\.bias' has a non-finite value at index 3/);
});

test('initFromBeit3: encoder from the checkpoint, FPN and decoder random; the model runs at a new image size', async () => {
  const c = tinyConfig(48);
  const { params, import: r } = initFromBeit3(c, 7, CKPT);
  const specs = [...buildInference(sharedRisModel, c, 1).registry.specs.keys()];
  assert.deepEqual([...params.keys()].sort(), [...specs].sort());
  assert.equal(
    params.get('beit3.encoder.layers.1.ffn.B.fc2.weight'),
    r.params.get('beit3.encoder.layers.1.ffn.B.fc2.weight'),
  );
  const b = buildInference(sharedRisModel, c, 'B');
  const out = await runOnnx(
    toModelProto(b.graph, { outputs: b.outputs, paramValues: params }),
    sampleInputs(c, [2, 3]),
  );
  assert.deepEqual(out.mask_logits!.shape, [2, 1, 48, 48]);
  assert.ok((out.mask_logits!.data as Float32Array).every(Number.isFinite));
});
