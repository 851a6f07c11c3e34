// Deterministic batching with exact resume, and expression-preserving augmentation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BatchSampler,
  augment,
  augmentRng,
  epochOrder,
  groupByImage,
  hasHorizontalWord,
  pickPerImage,
  pickRng,
  type Batch,
} from '../../src/data/batching.js';
import { Rng } from '../../src/data/random.js';

const take = (s: BatchSampler, n: number): Batch[] => Array.from({ length: n }, () => s.next());

test('same seed → same batches; different seed or epoch → different order; each epoch is a permutation', () => {
  const a = take(new BatchSampler(10, { seed: 7, batchSize: 3 }), 9);
  const b = take(new BatchSampler(10, { seed: 7, batchSize: 3 }), 9);
  assert.deepEqual(a, b);
  const c = take(new BatchSampler(10, { seed: 8, batchSize: 3 }), 9);
  assert.notDeepEqual(
    a.map((x) => x.indices),
    c.map((x) => x.indices),
  );
  assert.notDeepEqual(epochOrder(10, 7, 0), epochOrder(10, 7, 1));
  // dropLast: 3 batches of 3 per epoch, the 10th sample of each epoch's order is left out.
  assert.deepEqual(
    a.map((x) => x.epoch),
    [0, 0, 0, 1, 1, 1, 2, 2, 2],
  );
  for (let e = 0; e < 3; e++) {
    const seen = a.filter((x) => x.epoch === e).flatMap((x) => x.indices);
    assert.deepEqual(seen, epochOrder(10, 7, e).slice(0, 9));
    assert.equal(new Set(seen).size, 9);
  }
});

test('resume from any saved state equals the straight run', () => {
  const o = { seed: 123, batchSize: 4 };
  const straight = take(new BatchSampler(11, o), 12);
  for (let k = 0; k <= 12; k++) {
    const s = new BatchSampler(11, o);
    take(s, k);
    const saved = JSON.parse(JSON.stringify(s.state()));
    const resumed = new BatchSampler(11, o, saved);
    assert.deepEqual(take(resumed, 12 - k), straight.slice(k), `resumed after ${k} batches`);
  }
});

test('no dropLast: the short last batch is yielded; no shuffle: identity order', () => {
  const s = new BatchSampler(5, { seed: 1, batchSize: 2, shuffle: false, dropLast: false });
  assert.deepEqual(
    take(s, 4).map((b) => b.indices),
    [[0, 1], [2, 3], [4], [0, 1]],
  );
});

test('restoring onto a different seed or dataset size is refused', () => {
  const st = new BatchSampler(10, { seed: 1, batchSize: 2 }).state();
  assert.throws(() => new BatchSampler(10, { seed: 2, batchSize: 2 }, st), /seed 1/);
  assert.throws(() => new BatchSampler(12, { seed: 1, batchSize: 2 }, st), /10 samples/);
  assert.throws(
    () => new BatchSampler(10, { seed: 1, batchSize: 2 }, { ...st, position: 11 }),
    /invalid state/,
  );
});

test('horizontal words block flipping, including typos; other location words do not', () => {
  for (const s of [
    'man on the LEFT',
    'rightmost zebra',
    'guy on rigth',
    'left-most cup',
    'second from right',
  ]) {
    assert.ok(hasHorizontalWord(s), s);
  }
  for (const s of ['top cup', 'the bottom red circle', 'man in front', 'the bright lamp', 'leftover pizza']) {
    assert.ok(!hasHorizontalWord(s), s);
  }
});

test('augment: flips image and mask together, never an expression with a horizontal word; deterministic per slot', () => {
  const w = 4;
  const h = 2;
  const image = { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => i * 10) };
  const mask = { width: w, height: h, data: Uint8Array.from([1, 0, 0, 0, 1, 1, 0, 0]) };
  const noJitter = { brightness: 0, contrast: 0 };
  const flipped = augment(image, mask, 'the red circle', Rng.from(0), { ...noJitter, flip: 1 });
  assert.ok(flipped.flipped);
  assert.deepEqual([...flipped.mask.data], [0, 0, 0, 1, 0, 0, 1, 1]);
  assert.deepEqual([...flipped.image.data.subarray(0, 3)], [...image.data.subarray(9, 12)]);
  const kept = augment(image, mask, 'the circle on the left', Rng.from(0), { ...noJitter, flip: 1 });
  assert.ok(!kept.flipped);
  assert.equal(kept.mask, mask);
  assert.equal(kept.image, image);

  // Photometric jitter leaves the mask alone and stays within [0, 255]; same slot → same result.
  const a = augment(image, mask, 'the circle on the left', augmentRng(5, 2, 17), {
    brightness: 0.5,
    contrast: 0.5,
  });
  const b = augment(image, mask, 'the circle on the left', augmentRng(5, 2, 17), {
    brightness: 0.5,
    contrast: 0.5,
  });
  assert.deepEqual(a, b);
  assert.notEqual(a.brightness, 1);
  assert.notDeepEqual(a.image.data, image.data);
  assert.equal(a.mask, mask);
  assert.throws(
    () => augment(image, { width: 3, height: 2, data: new Uint8Array(6) }, 'x', Rng.from(0)),
    /mask 3×2/,
  );
});

test('groupByImage: sample indices by image file, groups in order of first appearance', () => {
  const files = ['b', 'a', 'b', 'c', 'a', 'b'];
  assert.deepEqual(groupByImage(files.map((file) => ({ file }))), [[0, 2, 5], [1, 4], [3]]);
});

test('pickPerImage: distinct objects first, then other expressions, repeats only when the image has too few', () => {
  // samples 10..15; objects: 10,11,12 → object 1; 13,14 → object 2; 15 → object 3
  const objectOf = (i: number) => (i <= 12 ? 1 : i <= 14 ? 2 : 3);
  const group = [10, 11, 12, 13, 14, 15];
  for (let slot = 0; slot < 20; slot++) {
    const two = pickPerImage(group, objectOf, 2, pickRng(5, 0, slot));
    assert.equal(new Set(two.map(objectOf)).size, 2, `slot ${slot}: two different objects`);
    const three = pickPerImage(group, objectOf, 3, pickRng(5, 0, slot));
    assert.deepEqual(new Set(three.map(objectOf)), new Set([1, 2, 3]), `slot ${slot}: all three objects`);
    const five = pickPerImage(group, objectOf, 5, pickRng(5, 0, slot));
    assert.equal(new Set(five).size, 5, `slot ${slot}: no repeat while expressions remain`);
    assert.deepEqual(new Set(five.slice(0, 3).map(objectOf)), new Set([1, 2, 3]), 'objects come first');
  }
  // deterministic in (seed, epoch, slot); other slots draw differently
  assert.deepEqual(
    pickPerImage(group, objectOf, 3, pickRng(5, 2, 7)),
    pickPerImage(group, objectOf, 3, pickRng(5, 2, 7)),
  );
  const draws = new Set(
    Array.from({ length: 20 }, (_, k) => pickPerImage(group, objectOf, 3, pickRng(5, 0, k)).join()),
  );
  assert.ok(draws.size > 5, 'the choice varies with the slot');
  // an image with two expressions and k = 4 repeats them
  const four = pickPerImage([3, 4], () => 0, 4, pickRng(1, 0, 0));
  assert.equal(four.length, 4);
  assert.deepEqual(new Set(four), new Set([3, 4]));
  assert.throws(() => pickPerImage([], () => 0, 2, pickRng(1, 0, 0)), /no expressions/);
});
