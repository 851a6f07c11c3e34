// Metrics of spec/data.md §5, hand-computed, shard merging, and the report.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { letterboxGeometry } from '../../src/data/image.js';
import { Rng } from '../../src/data/random.js';
import {
  LENGTH_BUCKETS,
  MetricAccumulator,
  areaBucket,
  intersectionUnion,
  iouOf,
  lengthBucket,
  pointingHit,
  type ExpressionRecord,
  type MetricsState,
} from '../../src/eval/metrics.js';
import { buildReport, reportMarkdown, writeReport } from '../../src/eval/report.js';

const setting = { dataset: 'refcoco', split: 'val', threshold: 0.5 } as const;
const u8 = (a: number[]): Uint8Array => Uint8Array.from(a);

test('I and U per expression; IoU = 1 when the union is empty', () => {
  assert.deepEqual(intersectionUnion(u8([1, 1, 0, 0]), u8([0, 1, 1, 0])), {
    intersection: 1,
    union: 3,
    target: 2,
  });
  assert.deepEqual(intersectionUnion(u8([0, 0]), u8([0, 0])), { intersection: 0, union: 0, target: 0 });
  assert.equal(iouOf(0, 0), 1);
  assert.equal(iouOf(0, 2), 0);
  assert.throws(() => intersectionUnion(u8([1]), u8([1, 0])), /1 pixels, ground truth 2/);
});

test('oIoU, mIoU, Prec@t hand-computed (thresholds inclusive)', () => {
  const acc = new MetricAccumulator(setting);
  const ids = (refId: number, sentence = 'a b') => ({ refId, sentId: refId * 10, sentence });
  assert.equal(acc.addMasks(ids(1), u8([1, 1, 0, 0]), u8([0, 1, 1, 0])), 1 / 3); // I 1, U 3
  assert.equal(acc.addMasks(ids(2), u8([1, 1, 1, 0]), u8([1, 1, 1, 0])), 1); //      I 3, U 3
  assert.equal(acc.addMasks(ids(3), u8([0, 0, 0, 0]), u8([0, 0, 0, 0])), 1); //      I 0, U 0 → IoU 1
  assert.equal(acc.addMasks(ids(4), u8([1, 0, 0, 0]), u8([0, 0, 0, 1])), 0); //      I 0, U 2
  acc.add({ refId: 5, sentId: 50, intersection: 3, union: 5, words: 2, target: 4, pixels: 10 }); // IoU 0.6
  const s = acc.summary();
  assert.equal(s.count, 5);
  assert.equal(s.intersection, 7);
  assert.equal(s.union, 13);
  assert.equal(s.oIoU, 7 / 13);
  assert.ok(Math.abs(s.mIoU - (1 / 3 + 1 + 1 + 0 + 0.6) / 5) < 1e-15);
  assert.deepEqual(s.precision, { '0.5': 3 / 5, '0.6': 3 / 5, '0.7': 2 / 5, '0.8': 2 / 5, '0.9': 2 / 5 });
});

test('length buckets per dataset (paper Table 2) and area buckets', () => {
  const b = LENGTH_BUCKETS.refcoco;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 20, 25].map((n) => b[lengthBucket(b, n)]!.label),
    ['1-2', '1-2', '1-2', '3', '4-5', '4-5', '6-20', '6-20', '6-20'],
  );
  const g = LENGTH_BUCKETS.refcocog;
  assert.deepEqual(
    [5, 6, 7, 8, 10, 11, 30].map((n) => g[lengthBucket(g, n)]!.label),
    ['1-5', '6-7', '6-7', '8-10', '8-10', '11-20', '11-20'],
  );
  const r = LENGTH_BUCKETS.referit;
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => r[lengthBucket(r, n)]!.label),
    ['1', '2', '3-4', '3-4', '5-20'],
  );
  assert.deepEqual([0, 0.0099, 0.01, 0.049, 0.05, 0.2, 1].map(areaBucket), [0, 0, 1, 1, 2, 3, 3]);

  // Synthetic flavors use their real counterpart's buckets; words are counted with the tokenizer.
  const acc = new MetricAccumulator({ dataset: 'synth-refcocog', split: 'test', threshold: 0.5 });
  acc.addMasks(
    { refId: 1, sentId: 1, sentence: 'the blue square that is below the large yellow star' },
    u8([1, 0]),
    u8([1, 0]),
  );
  acc.addMasks({ refId: 1, sentId: 2, sentence: 'blue square' }, u8([0, 0]), u8([1, 0]));
  const s = acc.summary();
  assert.deepEqual(
    s.byLength.map((x) => [x.label, x.count, x.mIoU]),
    [
      ['1-5', 1, 0],
      ['6-7', 0, 0],
      ['8-10', 1, 1],
      ['11-20', 0, 0],
    ],
  );
  // Both targets cover half the image.
  assert.deepEqual(
    s.byArea.map((x) => x.count),
    [0, 0, 0, 2],
  );
});

function randomRecords(n: number, seed: number): ExpressionRecord[] {
  const rng = Rng.from('metrics-test', seed);
  return Array.from({ length: n }, (_, k) => {
    const pixels = rng.int(1, 5000);
    const union = rng.int(0, pixels);
    const target = rng.int(0, union);
    return {
      refId: Math.floor(k / 3),
      sentId: k,
      intersection: rng.int(0, target),
      union,
      words: rng.int(0, 25),
      target,
      pixels,
    };
  });
}

test('shards merged (through JSON, in any order) equal the whole run exactly', () => {
  const recs = randomRecords(300, 1);
  const whole = new MetricAccumulator(setting);
  for (const r of recs) whole.add(r);
  const shards = [
    new MetricAccumulator(setting),
    new MetricAccumulator(setting),
    new MetricAccumulator(setting),
  ];
  // Round-robin, reversed, so insertion order differs from the whole run.
  [...recs].reverse().forEach((r, i) => shards[i % 3]!.add(r));
  const states = shards.map((s) => JSON.parse(JSON.stringify(s.toJSON())));
  const merged = MetricAccumulator.merge([states[2], states[0], states[1]]);
  assert.deepEqual(merged.summary(), whole.summary());
  assert.deepEqual(merged.ious(), whole.ious());
  assert.deepEqual(
    merged.ious().map((x) => [x.refId, x.sentId]),
    [...recs].sort((a, b) => a.refId - b.refId || a.sentId - b.sentId).map((r) => [r.refId, r.sentId]),
  );
  const sum = recs.reduce((a, r) => a + r.intersection, 0);
  assert.equal(merged.summary().intersection, sum);
});

test('merge refuses overlapping shards and different settings; bad records refused', () => {
  const a = new MetricAccumulator(setting);
  a.add({ refId: 1, sentId: 1, intersection: 1, union: 2, words: 3, target: 1, pixels: 4 });
  assert.throws(() => MetricAccumulator.merge([a, a]), /ref 1 sent 1 counted twice/);
  const b = new MetricAccumulator({ ...setting, threshold: 0.35 });
  assert.throws(() => MetricAccumulator.merge([a, b]), /cannot merge/);
  assert.throws(
    () => a.add({ refId: 2, sentId: 2, intersection: 3, union: 2, words: 1, target: 1, pixels: 4 }),
    /inconsistent/,
  );
  assert.throws(
    () => a.add({ refId: 2, sentId: 2, intersection: 0.5, union: 2, words: 1, target: 1, pixels: 4 }),
    /integer/,
  );
  assert.throws(() => MetricAccumulator.fromJSON({ format: 'x' }), /format/);
});

test('addProbability: maps back to the original size and binarizes at probability ≥ threshold', () => {
  // 4×2 image letterboxed into S = 4: rows 1..2 hold it at scale 1.
  const g = letterboxGeometry(4, 2, 4);
  const prob = new Float32Array(16);
  prob.set([0.5, 0.49, 0.9, 0], 4); // image row 0
  prob.set([0, 0, 0, 0], 8); // image row 1
  prob.fill(0.99, 0, 4); // padding row: must be ignored
  const gt = { width: 4, height: 2, data: u8([1, 1, 0, 0, 0, 0, 0, 0]) };
  const acc = new MetricAccumulator({ ...setting, threshold: 0.5 });
  // Prediction {0, 2} vs gt {0, 1}: I 1, U 3.
  assert.equal(acc.addProbability({ refId: 1, sentId: 1, sentence: 'x' }, prob, g, gt), 1 / 3);
});

test('pointing: the most probable pixel (first on ties) on the target; unknown for empty targets or masks only', () => {
  assert.equal(pointingHit(Float32Array.of(0.1, 0.9, 0.3), u8([0, 1, 0])), true);
  assert.equal(pointingHit(Float32Array.of(0.1, 0.9, 0.3), u8([1, 0, 1])), false);
  assert.equal(pointingHit(Float32Array.of(0.5, 0.5, 0.2), u8([0, 1, 0])), false, 'tie: the first pixel');
  assert.equal(pointingHit(Float32Array.of(0.5, 0.5, 0.2), u8([1, 0, 0])), true, 'tie: the first pixel');
  assert.equal(pointingHit(Float32Array.of(0.1, 0.9), u8([0, 0])), null, 'empty target');
  assert.throws(() => pointingHit(Float32Array.of(0.1), u8([0, 1])), /1 pixels, ground truth 2/);

  // Through addProbability (the letterbox of the test above): the 0.99 padding row is not the image.
  const g = letterboxGeometry(4, 2, 4);
  const prob = new Float32Array(16).fill(0.99, 0, 4);
  prob.set([0.2, 0.1, 0.9, 0], 4);
  const acc = new MetricAccumulator({ ...setting, threshold: 0.5 });
  const gt = (bits: number[]) => ({ width: 4, height: 2, data: u8(bits) });
  acc.addProbability({ refId: 1, sentId: 1, sentence: 'x' }, prob, g, gt([0, 0, 1, 0, 0, 0, 0, 0])); // hit
  acc.addProbability({ refId: 2, sentId: 2, sentence: 'x' }, prob, g, gt([1, 1, 0, 0, 0, 0, 0, 0])); // miss
  acc.addProbability({ refId: 3, sentId: 3, sentence: 'x' }, prob, g, gt([0, 0, 0, 0, 0, 0, 0, 0])); // unknown
  acc.addMasks({ refId: 4, sentId: 4, sentence: 'x' }, u8([1, 0]), u8([1, 0])); // masks only: unknown
  assert.equal(acc.summary().pointing, 1 / 2);
  assert.equal(new MetricAccumulator(setting).summary().pointing, null);

  // Shards carry it (1 / 0 / -1) and merge exactly; 7-number records of older shards read as unknown.
  const state = JSON.parse(JSON.stringify(acc.toJSON())) as MetricsState;
  assert.deepEqual(
    state.records.map((r) => r[7]),
    [1, 0, -1, -1],
  );
  assert.equal(MetricAccumulator.merge([state]).summary().pointing, 1 / 2);
  const old = { ...state, records: state.records.map((r) => r.slice(0, 7)) };
  assert.equal(MetricAccumulator.fromJSON(old).summary().pointing, null);
  const bad = { ...state, records: [[...state.records[0]!.slice(0, 7), 2]] };
  assert.throws(() => MetricAccumulator.fromJSON(bad), /record 0: pointed must be 1, 0 or -1, got 2/);
});

test('report names threshold, resolution and split, in Markdown and JSON', async () => {
  const acc = new MetricAccumulator({ dataset: 'refcocog', split: 'val', threshold: 0.35 });
  acc.addMasks({ refId: 1, sentId: 1, sentence: 'a man' }, u8([1, 1]), u8([1, 0]));
  const report = buildReport(acc, { model: 'shared-ris-tiny', splitBy: 'umd', skipped: 2 });
  assert.equal(report.threshold, 0.35);
  assert.equal(report.resolution, 'original');
  assert.equal(report.split, 'val');
  assert.deepEqual(report.buckets.length, ['1-5', '6-7', '8-10', '11-20']);
  const dir = await mkdtemp(join(tmpdir(), 'refseg-report-'));
  try {
    const paths = await writeReport(join(dir, 'eval'), report);
    const json = JSON.parse(await readFile(paths.json, 'utf8'));
    assert.deepEqual(json, JSON.parse(JSON.stringify(report)));
    const md = await readFile(paths.markdown, 'utf8');
    assert.equal(md, reportMarkdown(report));
    assert.match(md, /split: \*\*val\*\*/);
    assert.match(md, /threshold: probability ≥ 0\.35/);
    assert.match(md, /resolution: original/);
    assert.match(md, /skipped as corrupt: 2/);
    assert.match(md, /\| all \| 1 \| 50\.00 \| 50\.00 \| 100\.00 \| 0\.00 \|/);
    // Binary masks only: pointing unknown, a dash.
    assert.match(
      md,
      /\| all \| 1 \| 50\.00 \| 50\.00 \| 100\.00 \| 0\.00 \| 0\.00 \| 0\.00 \| 0\.00 \| – \|\n/,
    );
    // The 8-10-word bucket is empty: dashes, not 0/0 scored as 100 %.
    assert.match(md, /\| 8-10 \| 0 \| – \| – \| – \| – \| – \| – \| – \| – \|\n/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
