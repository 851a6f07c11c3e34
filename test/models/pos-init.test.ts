// `--pos-init sincos` (src/nn/init.ts sincos2d, src/models/build.ts initModel): the 2-D sine-cosine
// table against hand-computed values, its distance fall-off, that it replaces ReSTR's pos_embed and
// nothing else, that Shared-RIS refuses it, and the CLI's checks (exit 2 naming the flag).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelCommands } from '../../src/cli/model-commands.js';
import { trainCommand } from '../../src/cli/train.js';
import { initModel } from '../../src/models/build.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import { restrPreset } from '../../src/models/restr/config.js';
import { restrModel } from '../../src/models/restr/model.js';
import { sharedRisModel } from '../../src/models/shared-ris/model.js';
import { resolveConfig } from '../../src/models/registry.js';
import { SINCOS_AMPLITUDE, sincos2d } from '../../src/nn/init.js';
import { runCli } from '../helpers/cli.js';

const f32 = Math.fround;

test('sincos2d: quarters [sin y, cos y, sin x, cos x], frequencies 1/10000^(i/(D/4)), row-major', () => {
  // grid 2, dim 8: two frequencies per quarter, 1 and 1/100
  const t = sincos2d(2, 8, 0.5);
  assert.equal(t.length, 2 * 2 * 8);
  const at = (y: number, x: number) => Array.from(t.subarray((y * 2 + x) * 8, (y * 2 + x + 1) * 8));
  const h = (v: number) => f32(0.5 * v);
  assert.deepEqual(at(0, 0), [0, 0, 0.5, 0.5, 0, 0, 0.5, 0.5]);
  assert.deepEqual(at(0, 1), [
    0,
    0,
    0.5,
    0.5,
    h(Math.sin(1)),
    h(Math.sin(0.01)),
    h(Math.cos(1)),
    h(Math.cos(0.01)),
  ]);
  assert.deepEqual(at(1, 0), [
    h(Math.sin(1)),
    h(Math.sin(0.01)),
    h(Math.cos(1)),
    h(Math.cos(0.01)),
    0,
    0,
    0.5,
    0.5,
  ]);
  assert.throws(() => sincos2d(2, 6), /dim must be a multiple of 4, got 6/);
  assert.throws(() => sincos2d(0, 8), /grid must be a positive integer, got 0/);
});

test('sincos2d: a patch is most similar to itself and less so the farther away, along rows and columns', () => {
  const g = 8;
  const D = 128;
  const t = sincos2d(g, D);
  const dot = (a: number, b: number) => {
    let s = 0;
    for (let k = 0; k < D; k++) s += t[a * D + k]! * t[b * D + k]!;
    return s;
  };
  const c = 3 * g + 3; // patch (3, 3)
  for (const step of [1, g]) {
    const sims = [0, 1, 2, 3].map((d) => dot(c, c + d * step));
    for (let d = 1; d < sims.length; d++)
      assert.ok(sims[d]! < sims[d - 1]!, `step ${step}: ${sims.join(', ')}`);
    assert.ok(Math.abs(dot(c, c - 2 * step) - sims[2]!) < 1e-4, 'symmetric');
  }
  assert.ok(Math.abs(Math.max(...t) - SINCOS_AMPLITUDE) < 1e-6);
});

test('initModel posInit sincos: ReSTR pos_embed is the table, every other tensor as the default init', () => {
  const c = restrModel.validate(restrPreset('restr-tiny'));
  const base = initModel(restrModel, c, 3);
  const sc = initModel(restrModel, c, 3, { posInit: 'sincos' });
  assert.deepEqual([...sc.keys()], [...base.keys()]);
  for (const [k, v] of base) {
    if (k === 'vision.pos_embed') assert.deepEqual(sc.get(k), sincos2d(8, 128), k);
    else assert.deepEqual(sc.get(k), v, k);
  }
  assert.notDeepEqual(base.get('vision.pos_embed'), sc.get('vision.pos_embed'));
  const shared = resolveConfig('shared-ris-tiny').config;
  assert.throws(
    () => initModel(sharedRisModel, shared, 0, { posInit: 'sincos' }),
    /--pos-init sincos: model 'shared-ris' has no learned patch position table of its own/,
  );
});

test('CLI: init --pos-init sincos writes the table; bad values and --init beside it exit 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'refseg-posinit-'));
  try {
    const out = join(dir, 'm.safetensors');
    const init = modelCommands.init!;
    const ok = await runCli(t, init, [
      '--config',
      'restr-tiny',
      '--vocab-size',
      '50',
      '--pos-init',
      'sincos',
      '--seed',
      '0',
      '--out',
      out,
    ]);
    assert.equal(ok.code, 0, ok.err);
    assert.deepEqual(loadModelCheckpoint(out).params.get('vision.pos_embed'), sincos2d(8, 128));

    const bad = await runCli(t, init, [
      '--config',
      'restr-tiny',
      '--pos-init',
      'random',
      '--seed',
      '0',
      '--out',
      out,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--pos-init must be trunc_normal or sincos, got 'random'/);

    const train = (...a: string[]) =>
      runCli(t, trainCommand, ['--data', dir, '--dataset', 'synth-refcoco', '--out', join(dir, 'run'), ...a]);
    const both = await train('--init', out, '--pos-init', 'sincos');
    assert.equal(both.code, 2);
    assert.match(both.err, /--pos-init initializes from scratch; --init .* brings its own weights/);
    const badTrain = await train('--config', 'restr-tiny', '--pos-init', 'sin');
    assert.equal(badTrain.code, 2);
    assert.match(badTrain.err, /--pos-init must be trunc_normal or sincos, got 'sin'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
