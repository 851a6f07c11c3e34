// Shared-RIS config (spec/shared-ris.md §1–3, paper Sec. IV-A): presets, completion of optional
// fields, validation errors that name the field, the registry (presets, format, token input name).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SHARED_RIS_PRESETS,
  sharedRisPreset,
  validateSharedRisConfig,
} from '../../src/models/shared-ris/config.js';
import { SHARED_RIS_FORMAT, sharedRisModel } from '../../src/models/shared-ris/model.js';
import { modelDef, modelForFormat, presetNames, resolveConfig } from '../../src/models/registry.js';
import { ConfigError } from '../../src/models/schema.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

test('shared-ris-b16 carries the paper numbers (BEiT-3 base, S = 480, dw = 512, stages 3/6/9/12, τ = 0.35)', () => {
  assert.deepEqual(sharedRisPreset('shared-ris-b16'), {
    model: 'shared-ris',
    imageSize: 480,
    patchSize: 16,
    maxTokens: 22,
    encoder: {
      dim: 768,
      depth: 12,
      heads: 12,
      mlpDim: 3072,
      vocabSize: 64010,
      maxPositions: 1024,
      dropPath: 0.1,
    },
    fpn: { dim: 512, heads: 8, stages: [3, 6, 9, 12] },
    decoder: { heads: 8, mlpDim: 2048, upsamples: 2 },
    threshold: 0.35,
    loss: { bce: 2.0, dice: 0.5 },
    bnMomentum: 0.1,
  });
});

test('every preset validates to itself; the model speaks `text`, thresholds at 0.35, normalizes as BEiT-3', () => {
  for (const [name, c] of Object.entries(SHARED_RIS_PRESETS))
    assert.deepEqual(validateSharedRisConfig(structuredClone(c)), c, name);
  const tiny = SHARED_RIS_PRESETS['shared-ris-tiny']!;
  assert.equal(tiny.imageSize, 128);
  assert.equal(sharedRisModel.tokenInput, 'text');
  assert.equal(sharedRisModel.threshold(tiny), 0.35);
  assert.equal(sharedRisModel.maxTokens(tiny), 22);
  assert.deepEqual(sharedRisModel.normalization(tiny), { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  assert.equal(sharedRisModel.split, undefined, 'image and text mix from layer 1: no split');
});

test('registry: the presets, the kind and the checkpoint format resolve to the Shared-RIS model', () => {
  assert.ok(presetNames().includes('shared-ris-b16') && presetNames().includes('shared-ris-tiny'));
  assert.equal(modelDef('shared-ris'), sharedRisModel);
  assert.equal(SHARED_RIS_FORMAT, 'refseg.shared-ris/1');
  assert.equal(modelForFormat('refseg.shared-ris/1'), sharedRisModel);
  const { def, config } = resolveConfig('shared-ris-tiny', ['encoder.depth=6', 'threshold=0.4']);
  assert.equal(def, sharedRisModel);
  assert.equal((config as Json).encoder.depth, 6);
  assert.equal((config as Json).threshold, 0.4);
  assert.throws(
    () => resolveConfig('shared-ris-tiny', ['encoder.depth=3']),
    /fpn\.stages\.3.*1\.\.3.*\(in preset 'shared-ris-tiny'\)/,
  );
});

test('optional fields are completed from the spec defaults', () => {
  const c = validateSharedRisConfig({
    model: 'shared-ris',
    imageSize: 64,
    encoder: { dim: 32, depth: 12, heads: 2 },
    fpn: {},
    decoder: {},
  });
  assert.equal(c.patchSize, 16);
  assert.equal(c.maxTokens, 22);
  assert.deepEqual(c.encoder, {
    dim: 32,
    depth: 12,
    heads: 2,
    mlpDim: 128,
    vocabSize: 64010,
    maxPositions: 1024,
    dropPath: 0.1,
  });
  assert.deepEqual(c.fpn, { dim: 512, heads: 8, stages: [3, 6, 9, 12] });
  assert.deepEqual(c.decoder, { heads: 8, mlpDim: 2048, upsamples: 2 });
  assert.equal(c.threshold, 0.35);
  assert.deepEqual(c.loss, { bce: 2.0, dice: 0.5 });
  assert.equal(c.bnMomentum, 0.1);
});

/** [description, mutation of a shared-ris-tiny copy, field the error must name, message fragment] */
const BAD: [string, (c: Json) => void, string, RegExp][] = [
  [
    'patch size not dividing the image',
    (c) => (c.patchSize = 24),
    'patchSize',
    /does not divide imageSize = 128/,
  ],
  [
    'encoder heads not dividing the width',
    (c) => (c.encoder.heads = 5),
    'encoder.heads',
    /5 does not divide encoder.dim = 128/,
  ],
  ['FPN heads not dividing dw', (c) => (c.fpn.heads = 5), 'fpn.heads', /does not divide fpn.dim = 64/],
  [
    'decoder heads not dividing dw',
    (c) => (c.decoder.heads = 3),
    'decoder.heads',
    /does not divide fpn.dim = 64/,
  ],
  [
    'a stage past the last layer',
    (c) => (c.fpn.stages = [2, 5]),
    'fpn.stages.1',
    /1\.\.4 \(encoder.depth\), got 5/,
  ],
  ['stage 0 (stages are 1-based)', (c) => (c.fpn.stages = [0, 4]), 'fpn.stages.0', /got 0/],
  ['stages out of order', (c) => (c.fpn.stages = [3, 2]), 'fpn.stages.1', /strictly ascending/],
  ['repeated stage', (c) => (c.fpn.stages = [2, 2]), 'fpn.stages.1', /strictly ascending/],
  ['no stages', (c) => (c.fpn.stages = []), 'fpn.stages', /non-empty array/],
  ['stages not an array', (c) => (c.fpn.stages = 4), 'fpn.stages', /non-empty array/],
  ['fractional stage', (c) => (c.fpn.stages = [1.5]), 'fpn.stages.0', /layer number/],
  [
    'too many upsamplings for the patch',
    (c) => (c.decoder.upsamples = 5),
    'decoder.upsamples',
    /2\^5 must divide patchSize = 16/,
  ],
  [
    'text table too short for T',
    (c) => (c.encoder.maxPositions = 23),
    'encoder.maxPositions',
    /maxTokens = 22/,
  ],
  ['maxTokens without room for a word', (c) => (c.maxTokens = 2), 'maxTokens', /≥ 3/],
  ['vocabulary without the fairseq specials', (c) => (c.encoder.vocabSize = 3), 'encoder.vocabSize', /≥ 4/],
  ['threshold above 1', (c) => (c.threshold = 1.5), 'threshold', /\[0, 1\]/],
  ['momentum above 1', (c) => (c.bnMomentum = 2), 'bnMomentum', /\[0, 1\]/],
  ['negative loss weight', (c) => (c.loss.dice = -1), 'loss.dice', /\[0,/],
  ['drop path of 1', (c) => (c.encoder.dropPath = 1), 'encoder.dropPath', /\[0, 1\)/],
  [
    'typo in a nested key',
    (c) => ((c.fpn.stage = [1]), delete c.fpn.stages),
    'fpn.stage',
    /did you mean 'stages'/,
  ],
  ['typo at the top level', (c) => (c.treshold = 0.3), 'treshold', /did you mean 'threshold'/],
  ['missing required field', (c) => delete c.encoder.dim, 'encoder.dim', /required/],
  ['missing section', (c) => delete c.decoder, 'decoder', /must be an object/],
  ['wrong model kind', (c) => (c.model = 'restr'), 'model', /"shared-ris"/],
];

for (const [what, mutate, field, message] of BAD) {
  test(`config error names the field: ${what}`, () => {
    const c = structuredClone(SHARED_RIS_PRESETS['shared-ris-tiny']!) as Json;
    mutate(c);
    assert.throws(
      () => validateSharedRisConfig(c),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
        assert.equal(e.field, field, e.message);
        assert.match(e.message, message);
        return true;
      },
    );
  });
}
