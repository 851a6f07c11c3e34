// ReSTR config (spec/restr.md §4): presets, completion of optional fields, validation errors that
// name the field, `--set` overrides and config files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RESTR_PRESETS, restrPreset, validateRestrConfig } from '../../src/models/restr/config.js';
import { applyOverrides } from '../../src/models/overrides.js';
import { resolveConfig } from '../../src/models/registry.js';
import { ConfigError } from '../../src/models/schema.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

test('restr-b16 is spec §4 verbatim (vocabulary 10,000 as placeholder)', () => {
  const spec = {
    model: 'restr',
    imageSize: 480,
    patchSize: 16,
    vision: { dim: 768, depth: 12, heads: 12, mlpDim: 3072, dropPath: 0.1 },
    language: {
      vocabSize: 10000,
      wordDim: 300,
      depth: 6,
      heads: 12,
      mlpDim: 1200,
      maxWords: 20,
      dropPath: 0.0,
    },
    fusion: { variant: 'cme', dim: 768, depth: 4, heads: 12, mlpDim: 3072, share: false, dropPath: 0.1 },
    decoder: true,
    patchLabel: 'ratio',
    tau: 0.8,
    lambda: 0.1,
  };
  assert.deepEqual(restrPreset('restr-b16'), spec);
  assert.deepEqual(restrPreset('restr-b16-shared'), { ...spec, fusion: { ...spec.fusion, share: true } });
});

test('every preset validates to itself; the CPU presets are small', () => {
  for (const [name, c] of Object.entries(RESTR_PRESETS))
    assert.deepEqual(validateRestrConfig(structuredClone(c)), c, name);
  for (const name of ['restr-tiny', 'restr-small']) {
    const c = RESTR_PRESETS[name]!;
    assert.ok(c.imageSize >= 128 && c.imageSize <= 160, `${name}: imageSize ${c.imageSize}`);
    assert.ok(c.decoder && c.fusion.variant === 'cme', name);
  }
});

test('optional fields are completed from the spec defaults', () => {
  const c = validateRestrConfig({
    model: 'restr',
    imageSize: 64,
    patchSize: 16,
    vision: { dim: 32, depth: 1, heads: 2 },
    language: { vocabSize: 10, wordDim: 8, depth: 1, heads: 2 },
    fusion: { dim: 32, depth: 2, heads: 2 },
  });
  assert.deepEqual(c.vision, { dim: 32, depth: 1, heads: 2, mlpDim: 128, dropPath: 0.1 });
  assert.deepEqual(c.language, {
    vocabSize: 10,
    wordDim: 8,
    depth: 1,
    heads: 2,
    mlpDim: 32,
    maxWords: 20,
    dropPath: 0,
  });
  assert.deepEqual(c.fusion, {
    variant: 'cme',
    dim: 32,
    depth: 2,
    heads: 2,
    mlpDim: 128,
    share: false,
    dropPath: 0.1,
  });
  assert.equal(c.decoder, true);
  assert.equal(c.patchLabel, 'ratio');
  assert.equal(c.tau, 0.8);
  assert.equal(c.lambda, 0.1);
});

/** [description, mutation of a restr-tiny copy, field the error must name, message fragment] */
const BAD: [string, (c: Json) => void, string, RegExp][] = [
  [
    'patch size not dividing the image',
    (c) => (c.patchSize = 24),
    'patchSize',
    /does not divide imageSize = 128/,
  ],
  [
    'patch not a power of two with the decoder',
    (c) => ((c.imageSize = 120), (c.patchSize = 12)),
    'patchSize',
    /power of two/,
  ],
  [
    'vision heads not dividing the width',
    (c) => (c.vision.heads = 5),
    'vision.heads',
    /5 does not divide vision.dim = 128/,
  ],
  [
    'language heads not dividing the width',
    (c) => (c.language.heads = 3),
    'language.heads',
    /does not divide language.wordDim/,
  ],
  [
    'fusion heads not dividing the width',
    (c) => (c.fusion.heads = 3),
    'fusion.heads',
    /does not divide fusion.dim/,
  ],
  [
    'odd word dimension',
    (c) => ((c.language.wordDim = 63), (c.language.heads = 3)),
    'language.wordDim',
    /even/,
  ],
  ['unknown variant', (c) => (c.fusion.variant = 'xme'), 'fusion.variant', /"cme", "ime", "vme"/],
  ['odd fusion depth for cme', (c) => (c.fusion.depth = 3), 'fusion.depth', /even/],
  [
    'odd fusion depth for ime',
    (c) => ((c.fusion.variant = 'ime'), (c.fusion.depth = 1)),
    'fusion.depth',
    /even/,
  ],
  ['zero depth', (c) => (c.vision.depth = 0), 'vision.depth', /≥ 1/],
  ['negative image size', (c) => (c.imageSize = -128), 'imageSize', /≥ 1/],
  ['fractional width', (c) => (c.fusion.dim = 127.5), 'fusion.dim', /integer/],
  ['string number', (c) => (c.language.maxWords = '20'), 'language.maxWords', /integer/],
  ['vocabulary without <pad> and <unk>', (c) => (c.language.vocabSize = 1), 'language.vocabSize', /≥ 2/],
  ['drop path of 1', (c) => (c.vision.dropPath = 1), 'vision.dropPath', /\[0, 1\)/],
  ['tau above 1', (c) => (c.tau = 1.5), 'tau', /\[0, 1\]/],
  ['negative lambda', (c) => (c.lambda = -0.1), 'lambda', /≥|\[0/],
  ['unknown patch label mode', (c) => (c.patchLabel = 'all'), 'patchLabel', /"ratio", "any"/],
  ['non-boolean decoder', (c) => (c.decoder = 'yes'), 'decoder', /true or false/],
  ['non-boolean share', (c) => (c.fusion.share = 1), 'fusion.share', /true or false/],
  [
    'typo in a nested key',
    (c) => ((c.vision.dimm = 128), delete c.vision.dim),
    'vision.dimm',
    /unknown key \(did you mean 'dim'\?\)/,
  ],
  ['typo at the top level', (c) => (c.decodr = true), 'decodr', /did you mean 'decoder'/],
  ['missing required field', (c) => delete c.language.vocabSize, 'language.vocabSize', /required/],
  ['missing section', (c) => delete c.fusion, 'fusion', /must be an object/],
  ['wrong model kind', (c) => (c.model = 'shared-ris'), 'model', /"restr"/],
  [
    'decoder channels not halving K times',
    (c) => ((c.fusion.dim = 20), (c.fusion.heads = 4)),
    'fusion.dim',
    /divisible by patchSize = 16/,
  ],
];

for (const [what, mutate, field, message] of BAD) {
  test(`config error names the field: ${what}`, () => {
    const c = structuredClone(RESTR_PRESETS['restr-tiny']!) as Json;
    mutate(c);
    assert.throws(
      () => validateRestrConfig(c),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
        assert.equal(e.field, field, e.message);
        assert.match(e.message, new RegExp(`config field '${field.replace(/\./g, '\\.')}'`));
        assert.match(e.message, message);
        return true;
      },
    );
  });
}

test('patch size needs not be a power of two without the decoder; vme takes any depth', () => {
  const c = structuredClone(RESTR_PRESETS['restr-tiny']!) as Json;
  Object.assign(c, { imageSize: 120, patchSize: 12, decoder: false });
  Object.assign(c.fusion, { variant: 'vme', depth: 3 });
  assert.equal(validateRestrConfig(c).patchSize, 12);
});

test('overrides: dotted paths typed by the existing value; the input is not modified', () => {
  const base = restrPreset('restr-tiny');
  const c = applyOverrides(base, [
    'fusion.variant=vme',
    'fusion.depth=3',
    'decoder=false',
    'lambda=0.25',
    'language.vocabSize=77',
  ]);
  assert.equal(c.fusion.variant, 'vme');
  assert.equal(c.fusion.depth, 3);
  assert.equal(c.decoder, false);
  assert.equal(c.lambda, 0.25);
  assert.equal(c.language.vocabSize, 77);
  assert.deepEqual(base, RESTR_PRESETS['restr-tiny'], 'the preset is untouched');
  const fail = (sets: string[], field: string, msg: RegExp) =>
    assert.throws(
      () => applyOverrides(base, sets),
      (e: unknown) => e instanceof ConfigError && e.field === field && msg.test(e.message),
    );
  fail(['vision.depht=3'], 'vision.depht', /no such key 'depht' in 'vision'/);
  fail(['vision.depth=three'], 'vision.depth', /expects a number/);
  fail(['decoder=0'], 'decoder', /expects true or false/);
  fail(['vision.depth'], 'vision.depth', /key=value/);
  fail(['vision.depth.x=1'], 'vision.depth.x', /not an object/);
});

test('resolveConfig: presets and JSON files, overrides validated, errors name the source', () => {
  const { def, config } = resolveConfig('restr-tiny', ['fusion.share=true']);
  assert.equal(def.kind, 'restr');
  assert.equal((config as Json).fusion.share, true);
  assert.throws(
    () => resolveConfig('restr-tiny', ['fusion.depth=3']),
    /config field 'fusion.depth': .*even.*\(in preset 'restr-tiny'\)/,
  );
  assert.throws(() => resolveConfig('restr-huge'), /neither a preset .*restr-b16.* nor a \.json file/);

  const dir = mkdtempSync(join(tmpdir(), 'refseg-config-'));
  try {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ ...RESTR_PRESETS['restr-small'], imageSize: 192 }));
    assert.equal((resolveConfig(file).config as Json).imageSize, 192);
    writeFileSync(file, JSON.stringify({ ...RESTR_PRESETS['restr-small'], imagesize: 192 }));
    assert.throws(
      () => resolveConfig(file),
      (e: unknown) => e instanceof ConfigError && e.field === 'imagesize' && /c\.json/.test(e.message),
    );
    writeFileSync(file, '{"model": "restr",');
    assert.throws(() => resolveConfig(file), /c\.json': invalid JSON/);
    writeFileSync(file, JSON.stringify({ ...RESTR_PRESETS['restr-small'], model: 'unet' }));
    assert.throws(
      () => resolveConfig(file),
      (e: unknown) =>
        e instanceof ConfigError && e.field === 'model' && /unknown model 'unet'/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
