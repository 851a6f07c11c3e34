// The seeded generator (src/data/random.ts): reproducible, resumable from its serialized state,
// and its helpers stay in range and unbiased enough to notice a broken one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/data/random.js';

const draws = (r: Rng, n: number): number[] => Array.from({ length: n }, () => r.uint32());

test('same seed parts, same stream; any different part, a different stream', () => {
  assert.deepEqual(draws(Rng.from(42), 20), draws(Rng.from(42), 20));
  assert.deepEqual(draws(Rng.from('scene', 42, 7), 5), draws(Rng.from('scene', 42, 7), 5));
  const base = draws(Rng.from(42), 5);
  for (const other of [Rng.from(43), Rng.from(42, 0), Rng.from('42'), Rng.from(42 + 2 ** 32)]) {
    assert.notDeepEqual(draws(other, 5), base);
  }
  assert.throws(() => Rng.from(1.5), /must be an integer/);
});

test('state() / fromState() resume the exact sequence (checkpoint round trip through JSON)', () => {
  const r = Rng.from(7);
  draws(r, 13);
  const saved = JSON.parse(JSON.stringify(r.state())) as number[];
  const expected = [r.next(), r.int(0, 9), r.normal(), r.uint32()];
  const resumed = Rng.fromState(saved);
  assert.deepEqual([resumed.next(), resumed.int(0, 9), resumed.normal(), resumed.uint32()], expected);
  assert.throws(() => Rng.fromState([1, 2, 3]), /four uint32/);
  assert.throws(() => Rng.fromState([1, 2, 3, -1]), /four uint32/);
});

test('sfc32 matches its reference output for a fixed state', () => {
  // Reference: sfc32 from PractRand / the common JS port, state a=1 b=2 c=3 d=4 (no warm-up).
  const r = Rng.fromState([1, 2, 3, 4]);
  // t = a + b + d = 7; then a = b ^ b>>>9 = 2, b = c + c<<3 = 27, c = rotl(3, 21) + 7, d = 5.
  assert.equal(r.uint32(), 7);
  assert.deepEqual(r.state(), [2, 27, ((3 << 21) | 0) + 7, 5]);
});

test('int is inclusive, in range, and roughly uniform', () => {
  const r = Rng.from('int');
  const hist = new Array(6).fill(0);
  for (let i = 0; i < 60000; i++) {
    const v = r.int(-2, 3);
    assert.ok(v >= -2 && v <= 3 && Number.isInteger(v));
    hist[v + 2]++;
  }
  for (const h of hist) assert.ok(Math.abs(h - 10000) < 400, `bucket ${h} far from 10000`);
  assert.equal(r.int(5, 5), 5);
  assert.throws(() => r.int(3, 2), /bad range/);
});

test('float, bool, normal, weighted, choice stay in their ranges', () => {
  const r = Rng.from('ranges');
  let trues = 0;
  let sum = 0;
  let sq = 0;
  const counts = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < 20000; i++) {
    const f = r.float(2, 3);
    assert.ok(f >= 2 && f < 3);
    if (r.bool(0.25)) trues++;
    const z = r.normal();
    sum += z;
    sq += z * z;
    counts[r.weighted(['a', 'b', 'c'] as const, [1, 0, 3])]++;
  }
  assert.ok(Math.abs(trues / 20000 - 0.25) < 0.015);
  assert.ok(Math.abs(sum / 20000) < 0.03 && Math.abs(sq / 20000 - 1) < 0.05);
  assert.equal(counts.b, 0);
  assert.ok(Math.abs(counts.c / counts.a - 3) < 0.25);
  assert.throws(() => r.choice([]), /empty/);
  assert.throws(() => r.weighted([1], [0]), /all weights are zero/);
});

test('shuffle and permutation are permutations; fork gives an independent stream', () => {
  const r = Rng.from('perm');
  const p = r.permutation(100);
  assert.deepEqual(
    [...p].sort((a, b) => a - b),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.notDeepEqual(
    p,
    Array.from({ length: 100 }, (_, i) => i),
  );
  const parent = Rng.from(1);
  const child = parent.fork('dropout');
  assert.notDeepEqual(draws(child, 5), draws(parent, 5));
});

test('fill(Float32Array) uses 24-bit fractions, so no value rounds up to 1.0', () => {
  // A 32-bit fraction above 1 - 2^-25 rounds up to 1 in float32; multiples of 2^-24 never do.
  const out = Rng.from('fill').fill(new Float32Array(10000));
  for (const v of out) {
    assert.ok(v >= 0 && v < 1);
    assert.ok(Number.isInteger(v * 2 ** 24), `${v} is not a multiple of 2^-24`);
  }
  const wide = Rng.from('fill').fill(new Float64Array(1000));
  assert.ok(
    wide.some((v) => !Number.isInteger(v * 2 ** 24)),
    'Float64Array keeps 32 bits',
  );
});
