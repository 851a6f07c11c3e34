// evaluate() (src/eval/evaluate.ts) against cases whose right answer is known by construction:
// a hand-made predictor that reads which expression it is running from the token ids and returns
// logits drawing that expression's ground truth into the letterbox (placed with geometry written
// out here, not taken from image.ts) must score IoU 1 everywhere; an all-negative one IoU 0 except
// where the union is empty. Non-square images at half the model size make the crop and the
// bilinear map back exact, so any error in the letterbox geometry, the crop or the batch layout
// shows up as a wrong pixel. Then the real tiny model: batch size does not change any record.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  CorruptBudget,
  loadRefer,
  readSampleImage,
  sampleMask,
  type ReferSample,
} from '../../src/data/refer.js';
import { textEncoderFromCheckpoint, type TextEncoder } from '../../src/data/text.js';
import { evaluate, type EvalPredictor } from '../../src/eval/evaluate.js';
import { Predictor } from '../../src/infer/predictor.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import type { AnyModelDef } from '../../src/models/model.js';
import { makeEvalFixture } from '../cli/eval-fixture.js';

const S = 64;
const L = 4;
let dir: string;
let samples: ReferSample[];

// Two solid-colour images: 32×16 (letterboxed ×2 to 64×32, 16 rows of padding above) and 16×32
// (×2 to 32×64, 16 columns of padding on the left).
const IMAGES = {
  a: { w: 32, h: 16, rgb: [255, 0, 128], padX: 0, padY: 16 },
  b: { w: 16, h: 32, rgb: [0, 255, 64], padX: 16, padY: 0 },
} as const;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'refseg-evaluate-'));
  for (const [name, im] of Object.entries(IMAGES)) {
    const data = Buffer.alloc(im.w * im.h * 3);
    for (let i = 0; i < im.w * im.h; i++) data.set(im.rgb, i * 3);
    await sharp(data, { raw: { width: im.w, height: im.h, channels: 3 } })
      .png()
      .toFile(join(dir, `${name}.png`));
  }
  const sample = (
    img: 'a' | 'b',
    refId: number,
    sentId: number,
    annId: number,
    sentence: string,
    segmentation: ReferSample['segmentation'],
  ): ReferSample => ({
    refId,
    sentId,
    sentence,
    imageId: img === 'a' ? 1 : 2,
    file: join(dir, `${img}.png`),
    annId,
    segmentation,
    width: IMAGES[img].w,
    height: IMAGES[img].h,
    category: 'thing',
    categoryId: 1,
    split: 'val',
  });
  const empty = { size: [32, 16] as [number, number], counts: [32 * 16] };
  // Interleaved on purpose: grouping by image must not depend on the input order.
  samples = [
    sample('a', 1, 1, 11, 'the left box', [[2, 2, 12, 2, 12, 10, 2, 10]]),
    sample('b', 3, 4, 21, 'the tall triangle', [[1, 1, 14, 1, 7, 30]]),
    sample('a', 2, 3, 12, 'box on the right', [[20, 4, 30, 4, 30, 14, 20, 14]]),
    sample('b', 4, 5, 22, 'nothing at all', empty),
    sample('a', 1, 2, 11, 'a box on the left side', [[2, 2, 12, 2, 12, 10, 2, 10]]),
  ];
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Token ids carry the sample's index: [index + 1, 0, 0, 0]. */
function indexEncoder(length = L): TextEncoder {
  return {
    length,
    encode: (sentence) => {
      const t = new BigInt64Array(length);
      t[0] = BigInt(samples.findIndex((s) => s.sentence === sentence) + 1);
      return t;
    },
    toJSON: () => null,
  };
}

const stubDef = {
  normalization: () => ({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }),
} as unknown as AnyModelDef;

/**
 * 'truth': +10 on the ground truth upsampled ×2 into its letterbox place, −10 elsewhere.
 * 'negative': −10 everywhere. 'zero': logit 0 (probability exactly 0.5) everywhere.
 * Also checks the image it is given: padding is pixel 0, the picture its colour, normalized.
 */
function stubPredictor(mode: 'truth' | 'negative' | 'zero', calls: number[] = []): EvalPredictor {
  return {
    def: stubDef,
    config: {},
    imageSize: S,
    maxTokens: L,
    async predict(images, tokens, batch) {
      calls.push(batch);
      const logits = new Float32Array(batch * S * S);
      for (let k = 0; k < batch; k++) {
        const s = samples[Number(tokens[k * L]!) - 1]!;
        const im = IMAGES[s.file.endsWith('a.png') ? 'a' : 'b'];
        const px = (c: number, x: number, y: number): number =>
          images[k * 3 * S * S + c * S * S + y * S + x]!;
        for (let c = 0; c < 3; c++) {
          assert.ok(Math.abs(px(c, 0, 0) - -1) < 1e-6, `padding of ${s.sentence} channel ${c}`);
          const want = (im.rgb[c]! / 255 - 0.5) / 0.5;
          assert.ok(
            Math.abs(px(c, 40, 40) - want) < 1e-5,
            `pixel of ${s.sentence} channel ${c}: ${px(c, 40, 40)} vs ${want}`,
          );
        }
        const out = logits.subarray(k * S * S, (k + 1) * S * S);
        out.fill(mode === 'zero' ? 0 : -10);
        if (mode !== 'truth') continue;
        const gt = sampleMask(s);
        for (let y = 0; y < gt.height; y++)
          for (let x = 0; x < gt.width; x++)
            if (gt.data[y * gt.width + x])
              for (const [dx, dy] of [
                [0, 0],
                [1, 0],
                [0, 1],
                [1, 1],
              ] as const)
                out[(im.padY + 2 * y + dy) * S + im.padX + 2 * x + dx] = 10;
      }
      return { maskLogits: logits, extra: {} };
    },
  };
}

const base = { dataset: 'refcoco', split: 'val', threshold: 0.5 } as const;

test('a prediction equal to the ground truth scores 1 everywhere, at any batch size, images read once', async () => {
  const records: string[] = [];
  for (const batchSize of [1, 2, 8]) {
    let reads = 0;
    const seen: number[] = [];
    const calls: number[] = [];
    const acc = await evaluate({
      ...base,
      predictor: stubPredictor('truth', calls),
      encoder: indexEncoder(),
      samples,
      batchSize,
      readImage: (s) => (reads++, readSampleImage(s)),
      onPrediction: (s, probability, pred, r) => {
        const gt = sampleMask(s);
        assert.equal(probability.length, s.width * s.height);
        assert.deepEqual(pred, gt.data, `prediction of '${s.sentence}' is its ground truth`);
        const area = gt.data.reduce((a, v) => a + v, 0);
        assert.deepEqual(r, { iou: 1, intersection: area, union: area });
        seen.push(s.sentId);
      },
    });
    assert.equal(reads, 2, 'each image decoded once');
    assert.deepEqual(calls, batchSize === 1 ? [1, 1, 1, 1, 1] : batchSize === 2 ? [2, 2, 1] : [5]);
    assert.deepEqual([...seen].sort(), [1, 2, 3, 4, 5]);
    const s = acc.summary();
    assert.equal(s.count, 5);
    assert.equal(s.oIoU, 1);
    assert.equal(s.mIoU, 1);
    assert.deepEqual(Object.values(s.precision), [1, 1, 1, 1, 1]);
    records.push(JSON.stringify(acc.sorted()));
  }
  assert.equal(records[1], records[0]);
  assert.equal(records[2], records[0]);
});

test('an all-negative prediction scores 0, except the expression with an empty union (1)', async () => {
  const acc = await evaluate({
    ...base,
    predictor: stubPredictor('negative'),
    encoder: indexEncoder(),
    samples,
    batchSize: 3,
  });
  const ious = acc.ious();
  assert.deepEqual(
    ious.map((r) => [r.refId, r.sentId, r.iou]),
    [
      [1, 1, 0],
      [1, 2, 0],
      [2, 3, 0],
      [3, 4, 0],
      [4, 5, 1],
    ],
  );
  const s = acc.summary();
  assert.equal(s.intersection, 0);
  assert.ok(s.union > 0);
  assert.equal(s.oIoU, 0);
  assert.equal(s.mIoU, 1 / 5);
  assert.equal(s.precision['0.5'], 1 / 5);
});

test('binarization is probability ≥ threshold at the original resolution', async () => {
  // Probability exactly 0.5 everywhere: foreground at threshold 0.5, background at 0.6.
  const at = async (threshold: number) =>
    evaluate({ ...base, threshold, predictor: stubPredictor('zero'), encoder: indexEncoder(), samples });
  const all = await at(0.5);
  for (const r of all.sorted()) {
    assert.equal(r.union, r.pixels, 'every pixel predicted');
    assert.equal(r.intersection, r.target);
  }
  assert.equal(all.threshold, 0.5);
  const none = await at(0.6);
  for (const r of none.sorted()) assert.equal(r.intersection, 0);
});

test('an unreadable image: an error naming the file, or skipped and counted with a budget', async () => {
  const broken = [
    ...samples,
    { ...samples[0]!, imageId: 9, sentId: 99, refId: 9, file: join(dir, 'missing.png') },
  ];
  await assert.rejects(
    evaluate({ ...base, predictor: stubPredictor('truth'), encoder: indexEncoder(), samples: broken }),
    /missing\.png/,
  );
  const budget = new CorruptBudget(broken.length, 0.5);
  const acc = await evaluate({
    ...base,
    predictor: stubPredictor('truth'),
    encoder: indexEncoder(),
    samples: broken,
    budget,
  });
  assert.equal(acc.size, 5);
  assert.equal(budget.count, 1);
  assert.match(budget.skipped[0]!.where, /missing\.png/);
  // An image whose size is not the annotation's would misplace the letterbox: refused.
  await assert.rejects(
    evaluate({
      ...base,
      predictor: stubPredictor('truth'),
      encoder: indexEncoder(),
      samples,
      readImage: async (s) => ({
        width: s.width + 1,
        height: s.height,
        data: new Uint8Array((s.width + 1) * s.height * 3),
      }),
    }),
    /a\.png: image is 33×16, instances\.json gives 32×16/,
  );
});

test('abort stops between batches; a text encoder of the wrong length is refused', async () => {
  const ctl = new AbortController();
  const calls: number[] = [];
  await assert.rejects(
    evaluate({
      ...base,
      predictor: stubPredictor('truth', calls),
      encoder: indexEncoder(),
      samples,
      batchSize: 1,
      signal: ctl.signal,
      onPrediction: () => ctl.abort(new Error('stop here')),
    }),
    /stop here/,
  );
  assert.deepEqual(calls, [1]);
  await assert.rejects(
    evaluate({ ...base, predictor: stubPredictor('truth'), encoder: indexEncoder(3), samples }),
    /pads to 3 tokens, the model reads 4/,
  );
});

test('progress reports every expression', async () => {
  const lines: string[] = [];
  await evaluate({
    ...base,
    predictor: stubPredictor('truth'),
    encoder: indexEncoder(),
    samples,
    progress: { stream: { write: (s: string) => lines.push(s) }, label: 'val' },
  });
  assert.match(lines.at(-1)!, /^val 5\/5 in .* expressions\/s\)\n$/);
});

test('real tiny model: records do not depend on the batch size or the sample order', async () => {
  const fx = await makeEvalFixture(join(dir, 'fx'));
  const ck = loadModelCheckpoint(fx.checkpoint);
  const encoder = textEncoderFromCheckpoint(ck.vocab, ck.def.maxTokens(ck.config), fx.checkpoint);
  const data = await loadRefer({ root: fx.root, dataset: 'synth-refcoco', split: 'val' });
  const predictor = await Predictor.create(ck.def, ck.config, ck.params);
  try {
    const run = async (batchSize: number, order: readonly ReferSample[]) =>
      JSON.stringify(
        (
          await evaluate({
            predictor,
            encoder,
            samples: order,
            dataset: 'synth-refcoco',
            split: 'val',
            threshold: 0.5,
            batchSize,
          })
        ).sorted(),
      );
    const one = await run(1, data.samples);
    assert.equal(await run(4, data.samples), one);
    assert.equal(await run(3, [...data.samples].reverse()), one);
    const records = JSON.parse(one) as { intersection: number; union: number }[];
    assert.equal(records.length, data.samples.length);
    assert.ok(
      records.some((r) => r.intersection > 0),
      'the jittered model predicts some foreground',
    );
  } finally {
    await predictor.dispose();
  }
});
