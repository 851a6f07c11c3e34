// COCO RLE (src/data/rle.ts) against pycocotools semantics: column-major runs starting with a
// 0-run, and rleToString's 5-bits-per-char encoding with deltas after index 2. The expected
// strings below are worked out by hand from maskApi.c (shown step by step), since pycocotools
// is not installed on the build machines.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  countsFromString,
  countsToString,
  decodeCounts,
  decodeRle,
  encodeCounts,
  encodeLabelCounts,
  encodeRle,
  maskArea,
  maskBbox,
  rleArea,
  type Mask,
} from '../../src/data/rle.js';
import { Rng } from '../../src/data/random.js';

function maskFrom(rows: string[]): Mask {
  const height = rows.length;
  const width = rows[0]!.length;
  const data = new Uint8Array(height * width);
  rows.forEach((r, y) => [...r].forEach((c, x) => (data[y * width + x] = c === '1' ? 1 : 0)));
  return { height, width, data };
}

test('3×3 mask: column-major runs and string, worked by hand', () => {
  // Column-major pixels: col0 = 0,1,0  col1 = 1,1,0  col2 = 0,0,1 → 0 1 0 1 1 0 0 0 1
  const m = maskFrom(['010', '110', '001']);
  assert.deepEqual(encodeCounts(m), [1, 1, 1, 2, 3, 1]);
  // Deltas from index 3 on: 2-1 = 1, 3-1 = 2, 1-2 = -1. Each fits one char: 48 + value;
  // -1 is 5 bits 11111 (31, sign bit 0x10 set, and x >> 5 = -1 ends it) → chr(79) 'O'.
  assert.equal(countsToString([1, 1, 1, 2, 3, 1]), '11112O');
  assert.deepEqual(countsFromString('11112O'), [1, 1, 1, 2, 3, 1]);
  assert.deepEqual(encodeRle(m), { size: [3, 3], counts: '11112O' });
  assert.deepEqual(decodeRle({ size: [3, 3], counts: '11112O' }), m);
  assert.equal(rleArea({ size: [3, 3], counts: '11112O' }), 4);
});

test('multi-char and negative counts: [0, 100, 60, 60, 20] → "0T3l1hNhN"', () => {
  // 0   → '0'
  // 100 → low 5 bits 4, rest 3 ≠ 0: chr(48+4+32)='T', then chr(48+3)='3'
  // 60  → low bits 28 (sign bit set), rest 1 ≠ -1: chr(48+28+32)='l', then '1'
  // 60-100 = -40 → low bits 24, rest -2 ≠ -1: chr(48+24+32)='h'; low bits of -2 = 30, rest -1: 'N'
  // 20-60 = -40 → 'hN' again
  assert.equal(countsToString([0, 100, 60, 60, 20]), '0T3l1hNhN');
  assert.deepEqual(countsFromString('0T3l1hNhN'), [0, 100, 60, 60, 20]);
  // As a 10×24 mask: columns 0–9 and 16–21 set.
  const m = decodeRle({ size: [10, 24], counts: '0T3l1hNhN' });
  for (let y = 0; y < 10; y++) {
    for (let x = 0; x < 24; x++) assert.equal(m.data[y * 24 + x], x < 10 || (x >= 16 && x < 22) ? 1 : 0);
  }
  assert.equal(maskArea(m), 160);
  assert.deepEqual(maskBbox(m), [0, 0, 22, 10]);
});

test('the first run counts zeros: a mask whose first pixel is set starts with 0', () => {
  assert.deepEqual(encodeCounts(maskFrom(['10', '00'])), [0, 1, 3]);
  assert.deepEqual(encodeCounts(maskFrom(['00', '00'])), [4]);
  assert.deepEqual(encodeCounts(maskFrom(['11', '11'])), [0, 4]);
  // Column-major, not row-major: the top-right pixel is the 3rd in order.
  assert.deepEqual(encodeCounts(maskFrom(['01', '00'])), [2, 1, 1]);
});

test('random masks of many shapes round-trip through counts and strings', () => {
  const rng = Rng.from('rle-roundtrip');
  for (let trial = 0; trial < 200; trial++) {
    const height = rng.int(1, 40);
    const width = rng.int(1, 40);
    const density = rng.float(0, 1);
    // Blocky masks give long runs (multi-char counts), noisy ones many short runs.
    const block = rng.int(1, 8);
    const data = new Uint8Array(height * width);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bx = Math.floor(x / block);
        const by = Math.floor(y / block);
        data[y * width + x] = Rng.from(trial, bx, by).next() < density ? 1 : 0;
      }
    }
    const m: Mask = { height, width, data };
    const counts = encodeCounts(m);
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      height * width,
    );
    assert.deepEqual(decodeCounts(counts, height, width), m);
    const s = countsToString(counts);
    assert.match(s, /^[0-o]*$/);
    assert.deepEqual(countsFromString(s), counts);
    assert.deepEqual(decodeRle(encodeRle(m)), m);
    assert.equal(rleArea({ size: [height, width], counts: s }), maskArea(m));
  }
});

test('large counts round-trip (a 4000×4000 mask with one pixel)', () => {
  const counts = [16_000_000 - 1, 1];
  assert.deepEqual(countsFromString(countsToString(counts)), counts);
  assert.deepEqual(
    countsFromString(countsToString([5, 3_000_000, 7, 12_999_988])),
    [5, 3_000_000, 7, 12_999_988],
  );
});

test('encodeLabelCounts gives every label its own encodeCounts in one pass', () => {
  const rng = Rng.from('labels');
  for (let trial = 0; trial < 50; trial++) {
    const h = rng.int(1, 30);
    const w = rng.int(1, 30);
    const n = rng.int(1, 6);
    const labels = new Uint8Array(h * w).map(() => rng.int(0, n));
    const all = encodeLabelCounts(labels, h, w, n);
    assert.equal(all.length, n);
    for (let k = 1; k <= n; k++) {
      const data = labels.map((l) => (l === k ? 1 : 0));
      assert.deepEqual(all[k - 1], encodeCounts({ height: h, width: w, data }), `label ${k}`);
    }
  }
  assert.throws(() => encodeLabelCounts(new Uint8Array([0, 3]), 1, 2, 2), /value 3 at pixel 1/);
});

test('bad RLE input gets a clear error', () => {
  assert.throws(() => decodeRle({ size: [2, 2], counts: [1, 2] }), /sum to 3 but the mask is 2×2 = 4/);
  assert.throws(() => decodeRle({ size: [2, 2], counts: [1, -1, 4] }), /count 1 is -1/);
  assert.throws(() => countsFromString('1 2'), /char " " at 1 is outside '0'..'o'/);
  assert.throws(() => countsFromString('1T'), /truncated count at char 2/);
  assert.throws(
    () => decodeRle({ size: [2] as unknown as [number, number], counts: '4' }),
    /size must be \[height, width\]/,
  );
  assert.throws(
    () => encodeCounts({ height: 2, width: 2, data: new Uint8Array(3) }),
    /3 bytes, expected 2×2/,
  );
});
