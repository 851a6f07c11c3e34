// IEEE 754 binary16 <-> binary32 conversion on raw bits.
//
// float16 tensors are stored as Uint16Array bits (src/graph/graph.ts). float32 -> float16 rounds
// to nearest, ties to even, like numpy and torch `.half()`: values past the largest finite half
// (65504, or 65520 and up after rounding) become ±Infinity, tiny values become subnormals or ±0,
// NaN stays NaN (quiet, payload's top bits kept).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * float16 bits of any JS number, rounded once (a float64 is not double-rounded through float32:
 * it is first narrowed with round-to-odd, which cannot create a false tie at half precision).
 */
export function toF16Bits(x: number): number {
  f32[0] = x;
  if (f32[0] !== x && x === x) {
    // Inexact narrowing: truncate toward zero, then make the last bit sticky (round-to-odd).
    if (Math.abs(f32[0]!) > Math.abs(x)) u32[0] = u32[0]! - 1;
    u32[0] = u32[0]! | 1;
  }
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // rebias
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand, implicit 1 included, into place.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rem > half || (rem === half && (h & 1) !== 0)) h++; // may carry into the smallest normal: still right
    return sign | h;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa increments the exponent, and out of the top exponent gives
  // 0x7c00 = Infinity: exactly IEEE's overflow-on-rounding.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
  return h;
}

let table: Float32Array | undefined;

/** float32 value of half bits `h` (exact: every half is a float32). */
export function f16BitsToF32(h: number): number {
  return (table ??= buildTable())[h & 0xffff]!;
}

function buildTable(): Float32Array {
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0x1f) bits[h] = sign | 0x7f800000 | (m << 13);
    else if (e !== 0) bits[h] = sign | ((e - 15 + 127) << 23) | (m << 13);
    else if (m === 0) bits[h] = sign;
    else t[h] = (sign ? -1 : 1) * m * 2 ** -24; // subnormal half is a normal float32
  }
  return t;
}

/** float16 bits of float32 or float64 values. */
export function toF16Array(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = toF16Bits(src[i]!);
  return out;
}

export function f16ArrayToF32(src: Uint16Array): Float32Array {
  const t = (table ??= buildTable());
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
  return out;
}
