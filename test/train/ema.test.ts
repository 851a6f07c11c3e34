// `--ema`: the weight average follows ema ← d_t·ema + (1 − d_t)·θ_t after each update, starting
// from the initial weights; checkpoints hold it; a resumed run continues it exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import { emaBlend, emaDecay } from '../../src/train/ema.js';
import { type TrainOptions, train } from '../../src/train/train.js';
import { trainCommand } from '../../src/cli/train.js';
import { runCli, testTrainOptions, trainLog } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'refseg-ema-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
test.before(() =>
  writeSynthDataset({ flavor: 'synth-refcoco', out: join(root, 'data'), images: 24, size: 64, seed: 4 }),
);

test('emaDecay warms up as (1 + t) / (10 + t), then holds the decay; emaBlend blends in place', () => {
  assert.equal(emaDecay(0.99, 1), 2 / 11);
  assert.equal(emaDecay(0.99, 50), 51 / 60);
  assert.equal(emaDecay(0.99, 900), 0.99); // 901 / 910 > 0.99
  const ema = new Float32Array([1, -2, 4]);
  emaBlend(ema, new Float32Array([3, 2, 4]), 0.75);
  assert.deepEqual([...ema], [1.5, -1, 4]);
  assert.throws(() => emaBlend(ema, new Float32Array(2), 0.5), /weight average: 3 values, parameter 2/);
});

const weights = (run: string) => loadModelCheckpoint(join(root, run, 'last.safetensors')).params;

function options(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return testTrainOptions({
    config: 'restr-tiny',
    sets: ['imageSize=64', 'vision.depth=1', 'language.depth=1', 'fusion.depth=2'],
    data: join(root, 'data'),
    out: join(root, out),
    steps: 3,
    batch: 4,
    lr: 3e-3,
    schedule: 'poly',
    clipNorm: 1,
    seed: 5,
    augment: true,
    ...extra,
  });
}

test('the checkpoint holds the average of the weights after each update, and resumes exactly', async () => {
  await train(options('base', { steps: 2 }));
  const init = join(root, 'base', 'last.safetensors');
  // the raw weights after updates 1, 2 and 3, read from a run stopped after each
  const raw = [weights('base')];
  for (const stopAt of [1, 2, 3]) {
    await train(options('raw', stopAt === 1 ? { init, stopAt } : { resume: true, steps: 0, stopAt }));
    raw.push(weights('raw'));
  }
  await train(options('ema', { init, ema: 0.9 }));
  const got = weights('ema');
  let far = 0; // how far the average is from the last weights
  for (const [name, w0] of raw[0]!) {
    const e = Float64Array.from(w0);
    for (let t = 1; t <= 3; t++) {
      const d = Math.min(0.9, (1 + t) / (10 + t));
      const w = raw[t]!.get(name)!;
      for (let i = 0; i < e.length; i++) e[i] = d * e[i]! + (1 - d) * w[i]!;
    }
    const g = got.get(name)!;
    const w3 = raw[3]!.get(name)!;
    for (let i = 0; i < e.length; i++) {
      assert.ok(Math.abs(g[i]! - e[i]!) <= 1e-6 * (1 + Math.abs(e[i]!)), `${name}[${i}]: ${g[i]} vs ${e[i]}`);
      far = Math.max(far, Math.abs(g[i]! - w3[i]!));
    }
  }
  // the 1e-6 match above tells the average from the last weights (a checkpoint of the weights fails it)
  assert.ok(far > 1e-4, `the average is only ${far} from the last weights`);
  // the training itself is the raw run's: the average is only read
  assert.deepEqual(
    trainLog(join(root, 'ema')).map((l) => l.loss),
    trainLog(join(root, 'raw')).map((l) => l.loss),
  );

  // stop + resume continues the average bit for bit, in one session and with two workers
  await train(options('ema-split', { init, ema: 0.9, stopAt: 2 }));
  await train(options('ema-split', { resume: true, steps: 0 }));
  for (const [name, v] of got) assert.deepEqual(weights('ema-split').get(name), v, `${name} after resume`);
  await train(options('ema-two', { init, ema: 0.9, workers: 2 }));
  let worst = 0;
  for (const [name, v] of weights('ema-two')) {
    const u = got.get(name)!;
    for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - u[i]!));
  }
  assert.ok(worst < 2e-4, `two workers' average differs from one session's by up to ${worst}`);
  await train(options('ema-two-split', { init, ema: 0.9, workers: 2, stopAt: 1 }));
  await train(options('ema-two-split', { resume: true, steps: 0 }));
  for (const [name, v] of weights('ema-two'))
    assert.deepEqual(weights('ema-two-split').get(name), v, `${name} after resume with two workers`);
});

test('--ema refuses a decay outside [0, 1), before any data is read', async (t) => {
  const train = (d: string) =>
    runCli(t, trainCommand, [
      '--config',
      'restr-tiny',
      '--data',
      join(root, 'nowhere'),
      '--dataset',
      'synth-refcoco',
      '--out',
      join(root, 'bad'),
      `--ema=${d}`,
    ]);
  for (const [d, message] of [
    ['1', /--ema must be below 1/],
    ['1.5', /--ema must be a number in \[0, 1\], got '1\.5'/],
    ['-0.1', /--ema must be a number in \[0, 1\], got '-0\.1'/],
    ['fast', /--ema must be a number in \[0, 1\], got 'fast'/],
  ] as const) {
    const r = await train(d);
    assert.equal(r.code, 2, `--ema ${d}`);
    assert.match(r.err, message);
  }
});
