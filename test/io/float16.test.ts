// float16 <-> float32: exhaustive over all 65536 halves, round-to-nearest-even at every midpoint,
// and torch's own conversions as the golden reference.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f16ArrayToF32, f16BitsToF32, toF16Array, toF16Bits } from '../../src/io/float16.js';
import { expectedJson } from './helpers.js';

/** The value of half bits by the textbook formula, independent of the implementation's table. */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

test('every half decodes to its exact value, and encodes back to the same bits', () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16BitsToF32(h);
    const want = halfValue(h);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(v), `bits ${h.toString(16)} should decode to NaN`);
      const back = toF16Bits(v);
      assert.equal(back & 0x7c00, 0x7c00, 'NaN stays NaN');
      assert.notEqual(back & 0x3ff, 0, 'NaN stays NaN, not Infinity');
      continue;
    }
    assert.ok(Object.is(v, want), `bits ${h.toString(16)}: ${v} vs ${want}`);
    assert.equal(toF16Bits(v), h, `round trip of ${h.toString(16)}`);
  }
});

test('midpoints between adjacent halves round to the even one; anything off the midpoint to the nearer', () => {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const step = (x: number, d: number): number => {
    f32[0] = x;
    u32[0] = u32[0]! + d; // next float32 away from / toward zero for positive x
    return f32[0]!;
  };
  for (let h = 0; h < 0x7bff; h++) {
    for (const sign of [0, 0x8000]) {
      const a = halfValue(h | sign);
      const b = halfValue((h + 1) | sign);
      const mid = (a + b) / 2; // exact in float32: halves have 11 significant bits
      assert.equal(Math.fround(mid), mid);
      const even = (h & 1) === 0 ? h : h + 1;
      assert.equal(toF16Bits(mid), even | sign, `midpoint of ${h.toString(16)}`);
      if (h > 0 || sign === 0) {
        const mag = Math.abs(mid);
        const s = sign ? -1 : 1;
        assert.equal(toF16Bits(s * step(mag, 1)), (h + 1) | sign, `just above midpoint of ${h.toString(16)}`);
        if (mag > 0)
          assert.equal(toF16Bits(s * step(mag, -1)), h | sign, `just below midpoint of ${h.toString(16)}`);
      }
    }
  }
});

test('overflow, underflow and specials', () => {
  assert.equal(toF16Bits(65504), 0x7bff);
  assert.equal(toF16Bits(65519.99), 0x7bff); // below the 65504/65536 midpoint
  assert.equal(toF16Bits(65520), 0x7c00); // the midpoint ties to "even" 65536 = Infinity
  assert.equal(toF16Bits(1e9), 0x7c00);
  assert.equal(toF16Bits(-1e9), 0xfc00);
  assert.equal(toF16Bits(Infinity), 0x7c00);
  assert.equal(toF16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(toF16Bits(2 ** -25), 0x0000); // half of it ties to even zero
  assert.equal(toF16Bits(2 ** -25 * 1.0001), 0x0001);
  assert.equal(toF16Bits(-(2 ** -26)), 0x8000); // signed zero kept
  assert.equal(toF16Bits(-0), 0x8000);
  assert.equal(toF16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up from the subnormals into the smallest normal
});

test('float64 inputs are rounded once, not twice through float32', () => {
  // 1 + 2^-11 is the midpoint of halves 1 and 1 + 2^-10; a value a hair above it must round up,
  // although rounding it to float32 first would land exactly on the midpoint and round to even (1).
  const above = 1 + 2 ** -11 + 2 ** -40;
  assert.equal(Math.fround(above), 1 + 2 ** -11);
  assert.equal(toF16Bits(1 + 2 ** -11), 0x3c00);
  assert.equal(toF16Bits(above), 0x3c01);
  assert.equal(toF16Bits(1 + 2 ** -11 - 2 ** -40), 0x3c00);
});

test('matches torch: Python floats → float16 (dtypes fixture) and float32 tensors → .half() (vit fixture)', () => {
  const dt = expectedJson('dtypes.expected.json');
  assert.deepEqual([...toF16Array([0.1, -65504.0, 6e-8])], dt.f16.values);
  const f32 = expectedJson('vit_tiny.expected.json');
  const f16 = expectedJson('vit_tiny_f16.expected.json');
  let n = 0;
  for (const name of Object.keys(f32)) {
    const bits = toF16Array(Float32Array.from(f32[name].values as number[]));
    assert.deepEqual([...bits], f16[name].values, name);
    n += bits.length;
    assert.deepEqual([...f16ArrayToF32(bits)], [...bits].map(halfValue).map(Math.fround), name);
  }
  assert.ok(n > 1000);
});
