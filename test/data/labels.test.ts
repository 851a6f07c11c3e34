// Patch labels (restr.md §2, paper Eq. 11).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { patchLabels } from '../../src/data/labels.js';

/** S = 10, P = 5 → 2×2 patches; fill `count` pixels of a patch (row-major inside it). */
function maskWith(counts: [number, number, number, number]): Float32Array {
  const s = 10;
  const m = new Float32Array(s * s);
  counts.forEach((n, p) => {
    const px = (p % 2) * 5;
    const py = Math.floor(p / 2) * 5;
    for (let k = 0; k < n; k++) m[(py + Math.floor(k / 5)) * s + px + (k % 5)] = 1;
  });
  return m;
}

test('ratio: positive only when the patch mean is strictly above tau (0.8)', () => {
  // 25 pixels per patch: 20 = 0.8 exactly (not > τ), 21 = 0.84, 25 = 1, 1 = 0.04.
  const m = maskWith([20, 21, 25, 1]);
  assert.deepEqual([...patchLabels(m, 10, 5)], [0, 1, 1, 0]);
  assert.deepEqual([...patchLabels(m, 10, 5, { tau: 0.5 })], [1, 1, 1, 0]);
});

test('any: a single pixel makes a patch positive; row-major patch order', () => {
  const m = maskWith([0, 1, 0, 0]); // top-right patch
  assert.deepEqual([...patchLabels(m, 10, 5, { mode: 'any' })], [0, 1, 0, 0]);
  assert.deepEqual([...patchLabels(m, 10, 5)], [0, 0, 0, 0]);
});

test('soft (area-resampled) masks average; bad sizes are refused', () => {
  const m = new Float32Array(100).fill(0.9);
  assert.deepEqual([...patchLabels(m, 10, 5)], [1, 1, 1, 1]);
  m.fill(0.79);
  assert.deepEqual([...patchLabels(m, 10, 5)], [0, 0, 0, 0]);
  assert.throws(() => patchLabels(new Float32Array(99), 10, 5), /expected 10×10/);
  assert.throws(() => patchLabels(new Float32Array(100), 10, 3), /not a multiple/);
});
