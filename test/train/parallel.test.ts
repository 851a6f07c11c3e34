// Several expressions of one image per batch (the image half shared), and data-parallel workers:
// both must compute what the plain batch computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import { Rng } from '../../src/data/random.js';
import { initModel } from '../../src/models/build.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import { resolveConfig } from '../../src/models/registry.js';
import { type HostTensor, Session } from '../../src/runtime/session.js';
import { ownership } from '../../src/train/parallel.js';
import { packSamples, sampleTable } from '../../src/train/batch.js';
import { loadRefer } from '../../src/data/refer.js';
import { gradName } from '../../src/train/step.js';
import { type TrainOptions, buildStep, train } from '../../src/train/train.js';
import { testTrainOptions, trainLog as log } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'refseg-parallel-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
// the training runs' dataset (`options`)
test.before(() =>
  writeSynthDataset({ flavor: 'synth-refcoco', out: join(root, 'data'), images: 24, size: 64, seed: 5 }),
);

const SETS = ['imageSize=32', 'vision.depth=1', 'language.depth=1', 'fusion.depth=2'];

test('ownership: every parameter once, largest first to the lighter set', () => {
  // 100 → A, 60 → B, 50 → B (110), 40 → A (140), 7 → B (117), 3 → B (120)
  assert.deepEqual(ownership([100, 7, 60, 40, 3, 50], 2), [
    [0, 3],
    [1, 2, 4, 5],
  ]);
  assert.deepEqual(ownership([5], 3), [[0], [], []]);
});

test('per-image batch: the image half runs once per image and equals a batch that repeats each image', async () => {
  // drop path on, so the image half's per-image scales are checked too
  const { def, config } = resolveConfig('restr-tiny', [
    ...SETS,
    'vision.dropPath=0.3',
    'fusion.dropPath=0.3',
  ]);
  const values = initModel(def, config, 4);
  const base = testTrainOptions({ config: '', data: '', out: '', batch: 4 });
  const shared = buildStep(def, config, { ...base, perImage: 2 });
  const plain = buildStep(def, config, { ...base, perImage: 1 });
  const rng = Rng.from(11);
  const S = 32;
  const img = Float32Array.from({ length: 2 * 3 * S * S }, () => rng.float(-1, 1));
  const repeated = new Float32Array(4 * 3 * S * S);
  for (let r = 0; r < 4; r++)
    repeated.set(img.subarray((r >> 1) * 3 * S * S, ((r >> 1) + 1) * 3 * S * S), r * 3 * S * S);
  const words = BigInt64Array.from({ length: 4 * 20 }, (_, i) =>
    i % 20 < 3 + (i >> 5) ? BigInt(2 + ((i * 7) % 50)) : 0n,
  );
  const mask = Float32Array.from({ length: 4 * S * S }, () => (rng.next() < 0.2 ? 1 : 0));
  const labels = Float32Array.from({ length: 4 * 4 }, () => (rng.next() < 0.3 ? 1 : 0));
  const feeds = (image: Float32Array, rows: number): Record<string, HostTensor> => {
    const f: Record<string, HostTensor> = {
      image: { dtype: 'float32', shape: [rows, 3, S, S], data: image },
      words: { dtype: 'int64', shape: [4, 20], data: words },
      target_mask: { dtype: 'float32', shape: [4, 1, S, S], data: mask },
      patch_labels: { dtype: 'float32', shape: [4, 4], data: labels },
    };
    for (const d of plain.dataInputs.filter((x) => x.name.startsWith('droppath.'))) {
      // vision blocks: one draw per image (rows 0,1 and 2,3 alike), as the shared graph reads them
      const data = d.name.startsWith('droppath.vision.')
        ? Float32Array.from([0, 0, 1.4, 1.4])
        : Float32Array.from([1.4, 0, 0, 1.4]);
      f[d.name] = { dtype: 'float32', shape: [4, 1, 1], data };
    }
    for (const p of plain.params) f[p.name] = { dtype: 'float32', shape: p.shape, data: values.get(p.name)! };
    return f;
  };
  const outs = ['loss', ...plain.params.map((p) => gradName(p.name))];
  const run = async (model: Uint8Array, f: Record<string, HostTensor>) => {
    const s = await Session.create(model, { threads: 1 });
    try {
      return await s.run(f, outs);
    } finally {
      await s.dispose();
    }
  };
  assert.ok(
    plain.dataInputs.some((d) => d.name.startsWith('droppath.vision.')),
    'vision drop path is on',
  );
  const a = await run(shared.model, feeds(img, 2));
  const b = await run(plain.model, feeds(repeated, 4));
  const close = (x: number, y: number, what: string) =>
    assert.ok(Math.abs(x - y) <= 1e-5 + 1e-4 * Math.abs(y), `${what}: ${x} vs ${y}`);
  close(Number(a.loss!.data[0]), Number(b.loss!.data[0]), 'loss');
  let moved = 0;
  for (const n of outs.slice(1)) {
    const ga = a[n]!.data as Float32Array;
    const gb = b[n]!.data as Float32Array;
    for (let i = 0; i < gb.length; i++) close(ga[i]!, gb[i]!, `${n}[${i}]`);
    if (n.startsWith('grad.vision.') && gb.some((x) => x !== 0)) moved++;
  }
  assert.ok(moved > 5, 'vision gradients are non-zero (the repeat sums the expressions into the image pass)');
});

function options(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return testTrainOptions({
    config: 'restr-tiny',
    sets: SETS,
    data: join(root, 'data'),
    out,
    steps: 4,
    batch: 4,
    lr: 1e-3,
    warmup: 0.25,
    schedule: 'poly',
    clipNorm: 0.5, // biting: the clip coefficient comes from the workers' combined norm
    seed: 2,
    augment: true,
    ...extra,
  });
}

test('two workers train as one session does (float rounding apart) and resume exactly', async () => {
  for (const perImage of [1, 2]) {
    const one = join(root, `one-${perImage}`);
    const two = join(root, `two-${perImage}`);
    const split = join(root, `split-${perImage}`);
    await train(options(one, { perImage }));
    await train(options(two, { perImage, workers: 2 }));
    const a = log(one);
    const b = log(two);
    assert.equal(b.length, 4);
    a.forEach((x, i) => {
      const y = b[i]!;
      assert.ok(
        Math.abs(x.loss - y.loss) <= 1e-4 * x.loss,
        `per-image ${perImage}, step ${x.step}: loss ${x.loss} vs ${y.loss}`,
      );
      assert.ok(
        Math.abs(x.grad_norm - y.grad_norm) <= 1e-3 * x.grad_norm,
        `per-image ${perImage}, step ${x.step}: grad norm ${x.grad_norm} vs ${y.grad_norm}`,
      );
    });
    assert.ok(a[0]!.grad_norm > 0.5, 'clipping bites');
    const wa = loadModelCheckpoint(join(one, 'last.safetensors')).params;
    const wb = loadModelCheckpoint(join(two, 'last.safetensors')).params;
    let worst = 0;
    for (const [k, v] of wa) {
      const u = wb.get(k)!;
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - u[i]!));
    }
    assert.ok(worst < 2e-4, `per-image ${perImage}: weights differ by up to ${worst}`);

    // resume with workers: bit for bit
    await train(options(split, { perImage, workers: 2, stopAt: 2 }));
    await train(options(split, { resume: true, config: '', steps: 0 }));
    assert.deepEqual(
      log(split).map((l) => [l.step, l.loss]),
      b.map((l) => [l.step, l.loss]),
      `per-image ${perImage}: resumed losses equal the straight run's`,
    );
    const wc = loadModelCheckpoint(join(split, 'last.safetensors')).params;
    for (const [k, v] of wb) assert.deepEqual(wc.get(k), v, `weights of ${k} differ after resume`);
  }
});

test('per-image and workers refuse what they cannot split', async () => {
  await assert.rejects(
    train(options(join(root, 'bad1'), { batch: 6, perImage: 4 })),
    /--batch 6 is not a multiple of --per-image 4/,
  );
  await assert.rejects(
    train(options(join(root, 'bad2'), { batch: 6, workers: 4 })),
    /--batch 6 does not split evenly over --workers 4/,
  );
  await assert.rejects(
    train(options(join(root, 'bad3'), { config: 'shared-ris-tiny', sets: [], perImage: 2 })),
    /--per-image 2: model 'shared-ris' has no image half to share/,
  );
});

test('packed samples: every record reads back as the loader gave it, out-of-range indices are undefined', async () => {
  const data = join(root, 'pack');
  await writeSynthDataset({ flavor: 'synth-refcocog', out: data, images: 12, size: 64, seed: 4 });
  const { samples } = await loadRefer({ root: data, dataset: 'synth-refcocog', split: 'train' });
  const table = sampleTable(packSamples(samples));
  assert.equal(table.length, samples.length);
  samples.forEach((s, i) => assert.deepEqual(table.at(i), s, `sample ${i}`));
  assert.equal(table.at(-1), undefined);
  assert.equal(table.at(samples.length), undefined);
});

test('a vision learning-rate multiplier of 0 freezes the encoder: no backward through it, the rest trains as before', async () => {
  const { def, config } = resolveConfig('restr-tiny', SETS);
  const base = testTrainOptions({ config: '', data: '', out: '', batch: 4, perImage: 2 });
  const full = buildStep(def, config, base);
  const frozen = buildStep(def, config, { ...base, visionLrMult: 0 });
  const isVision = (name: string) => name.startsWith('vision.');
  assert.deepEqual(
    frozen.trainable,
    full.params.flatMap((p, i) => (isVision(p.name) ? [] : [i])),
  );
  assert.ok(frozen.trainable.length < full.trainable.length && full.trainable.length === full.params.length);
  // the vision encoder's backward is not in the graph at all
  assert.ok(
    frozen.model.byteLength < 0.85 * full.model.byteLength,
    `step graph ${frozen.model.byteLength} bytes frozen, ${full.model.byteLength} not`,
  );

  // One step without clipping: AdamW is per parameter, so the others move as in a full step. Its
  // first update is about ±lr = 1e-3 per weight whatever the gradient's size, so float rounding in
  // a tiny gradient shows up to a few 1e-6; a wrong or missing gradient shows as about 1e-3.
  const run = async (name: string, extra: Partial<TrainOptions>) => {
    const out = join(root, name);
    await train(options(out, { steps: 1, clipNorm: null, perImage: 2, ...extra }));
    return { loss: log(out)[0]!.loss, w: loadModelCheckpoint(join(out, 'last.safetensors')).params };
  };
  const init = initModel(def, config, 2);
  const a = await run('frozen-one', { visionLrMult: 0 });
  const b = await run('full-one', { visionLrMult: 1 });
  const c = await run('frozen-two', { visionLrMult: 0, workers: 2 });
  // the same forward pass (ONNX Runtime fuses the two graphs' kernels differently: float rounding)
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * b.loss, `loss ${a.loss} vs ${b.loss}`);
  for (const [k, v] of b.w) {
    if (isVision(k)) {
      assert.deepEqual(a.w.get(k), init.get(k), `${k} is frozen`);
      assert.deepEqual(c.w.get(k), init.get(k), `${k} is frozen with two workers`);
      continue;
    }
    const moved = v.some((x, i) => x !== init.get(k)![i]);
    assert.ok(moved || k.endsWith('.bias'), `${k} trains`);
    for (const [name, w, tol] of [
      ['one session', a.w.get(k)!, 1e-4],
      ['two workers', c.w.get(k)!, 1e-4],
    ] as const)
      for (let i = 0; i < v.length; i++)
        assert.ok(Math.abs(w[i]! - v[i]!) <= tol, `${k}[${i}] (${name}): ${w[i]} vs ${v[i]}`);
  }
  assert.ok(
    [...b.w].some(([k, v]) => isVision(k) && v.some((x, i) => x !== init.get(k)![i])),
    'a full step moves the vision encoder',
  );
});
