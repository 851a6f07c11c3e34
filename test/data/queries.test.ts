// Queries (data/queries.ts): one per image, its mask the union of the objects that share its word.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageQueries } from '../../src/data/queries.js';
import { sampleMask, type ReferDataset, type ReferObject, type ReferSample } from '../../src/data/refer.js';
import { encodeRle, type Mask } from '../../src/data/rle.js';

const W = 6;
const H = 4;
function rect(x0: number, y0: number, x1: number, y1: number): Mask {
  const data = new Uint8Array(W * H);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * W + x] = 1;
  return { width: W, height: H, data };
}
const or = (...ms: Mask[]) => ms[0]!.data.map((_, i) => (ms.some((m) => m.data[i]) ? 1 : 0));
const sample = (imageId: number, annId: number, sentId: number): ReferSample => ({
  refId: annId,
  sentId,
  sentence: 'the thing',
  imageId,
  file: `/img/${imageId}.png`,
  annId,
  segmentation: encodeRle(rect(0, 0, 1, 1)),
  height: H,
  width: W,
  category: 'star',
  categoryId: 4,
  split: 'train',
});

// Every image: a red star (left column), a blue circle (middle), a blue star (right column), and
// a red object of category 9, which has no name.
const LEFT = rect(0, 0, 1, 4);
const MID = rect(2, 1, 4, 3);
const RIGHT = rect(5, 0, 6, 4);
const ALL = rect(0, 0, 6, 4);
function dataset(images: number, edit: (o: ReferObject[]) => void = () => {}): ReferDataset {
  const objects = new Map<number, ReferObject[]>();
  const samples: ReferSample[] = [];
  const obj = (annId: number, categoryId: number, m: Mask, color: string): ReferObject => ({
    annId,
    categoryId,
    segmentation: encodeRle(m),
    extra: { synth: { color } },
  });
  for (let i = 0; i < images; i++) {
    const list = [
      obj(10 * i, 4, LEFT, 'red'),
      obj(10 * i + 1, 1, MID, 'blue'),
      obj(10 * i + 2, 4, RIGHT, 'blue'),
      obj(10 * i + 3, 9, ALL, 'red'),
    ];
    edit(list);
    objects.set(i, list);
    samples.push(sample(i, 10 * i, 2 * i), sample(i, 10 * i + 1, 2 * i + 1));
  }
  return {
    dataset: 'refcoco',
    splitBy: 'unc',
    split: 'train',
    root: '/',
    imageDir: '/img',
    refsFile: '/refs(unc).json',
    samples,
    splits: { train: samples.length },
    categories: new Map([
      [1, 'circle'],
      [4, 'star'],
    ]),
    budget: undefined as never,
    objects,
  };
}

test('category queries: one per image, a named category present, every object of it in the mask', () => {
  const qs = imageQueries(dataset(40), ['category'], 0);
  assert.deepEqual(
    qs.map((q) => q.imageId),
    Array.from({ length: 40 }, (_, i) => i),
  );
  for (const q of qs) {
    assert.deepEqual(
      [q.refId, q.sentId, q.annId, q.file, q.split],
      [-1, -1, -1, `/img/${q.imageId}.png`, 'train'],
    );
    assert.equal(q.category, q.sentence);
    assert.equal(q.categoryId, { star: 4, circle: 1 }[q.sentence]);
    assert.deepEqual(
      sampleMask(q).data,
      q.sentence === 'star' ? or(LEFT, RIGHT) : MID.data,
      `image ${q.imageId}`,
    );
  }
  // both categories drawn; the unnamed category 9 never
  assert.deepEqual([...new Set(qs.map((q) => q.sentence))].sort(), ['circle', 'star']);
});

test('field queries: a value of the named field, masked as every object that has it', () => {
  const qs = imageQueries(dataset(40), ['synth.color'], 0);
  for (const q of qs) {
    assert.deepEqual([q.category, q.categoryId], ['', -1]);
    // red: the red star and the unnamed category's object (fields do not need a category name)
    assert.deepEqual(sampleMask(q).data, q.sentence === 'red' ? or(LEFT, ALL) : or(MID, RIGHT), q.sentence);
  }
  assert.deepEqual([...new Set(qs.map((q) => q.sentence))].sort(), ['blue', 'red']);
  // two fields: all four values are candidates
  const both = imageQueries(dataset(60), ['category', 'synth.color'], 0);
  assert.deepEqual([...new Set(both.map((q) => q.sentence))].sort(), ['blue', 'circle', 'red', 'star']);
});

test('the choice is a function of the seed and the image', () => {
  const pick = (seed: number) => imageQueries(dataset(40), ['category'], seed).map((q) => q.categoryId);
  assert.deepEqual(pick(3), pick(3));
  assert.notDeepEqual(pick(3), pick(4));
});

test('bad input: no fields, no objects, an object without the field', () => {
  assert.throws(() => imageQueries(dataset(1), [], 0), /no fields/);
  const { objects: _, ...bare } = dataset(1);
  assert.throws(() => imageQueries(bare, ['category'], 0), /refcoco: queries need the images' objects/);
  const missing = dataset(2, (list) => delete list[2]!.extra);
  assert.throws(
    () => imageQueries(missing, ['synth.color'], 0),
    /annotation 2: no string field 'synth.color' \(--queries names fields every object has\)/,
  );
});
