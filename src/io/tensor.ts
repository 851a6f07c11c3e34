// Host tensors as the readers return them, and the byte-level helpers they share.
//
// `IoTensor` has the same shape as runtime's HostTensor ({ dtype, shape, data }) without importing
// src/runtime (src/io sits below it). float16 data is kept as raw bits in a Uint16Array, bool as
// 0/1 bytes, int64 as BigInt64Array, as in src/graph/graph.ts. All file formats here are
// little-endian and typed arrays use the host's byte order, so the host must be little-endian.

import * as os from 'node:os';
import type { DType, TensorData } from '../graph/graph.js';
import { f16ArrayToF32 } from './float16.js';

export type { DType, TensorData };

export interface IoTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

if (os.endianness() !== 'LE') throw new Error('src/io assumes a little-endian host');

export const ITEMSIZE: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
};

/**
 * Element count of `shape`, or an error message when a dim is not a non-negative safe integer or
 * the product leaves the safe-integer range (hostile shapes must not turn into wrong sizes).
 */
export function checkedNumel(shape: readonly unknown[]): number | string {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      return `dim ${String(d)} is not a non-negative integer`;
    n *= d;
    if (!Number.isSafeInteger(n)) return `shape [${shape.join(',')}] has too many elements`;
  }
  return n;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A typed array of `dtype` over a COPY of little-endian `bytes` (length already checked). Copying
 * gives the array its own aligned buffer: views into a file buffer would be misaligned in general
 * and would pin the whole file in memory.
 */
export function typedFromBytes(dtype: DType, bytes: Uint8Array): TensorData {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const b = copy.buffer;
  switch (dtype) {
    case 'float32':
      return new Float32Array(b, 0, bytes.length / 4);
    case 'float64':
      return new Float64Array(b, 0, bytes.length / 8);
    case 'float16':
      return new Uint16Array(b, 0, bytes.length / 2);
    case 'int64':
      return new BigInt64Array(b, 0, bytes.length / 8);
    case 'int32':
      return new Int32Array(b, 0, bytes.length / 4);
    case 'bool':
    case 'uint8':
      return copy;
  }
}

/** Like typedFromBytes but wraps a buffer the caller owns (offset 0, e.g. fresh from gatherStrided). */
export function typedOverOwnedBytes(dtype: DType, bytes: Uint8Array): TensorData {
  if (bytes.byteOffset % ITEMSIZE[dtype] !== 0) return typedFromBytes(dtype, bytes);
  const n = bytes.length / ITEMSIZE[dtype];
  switch (dtype) {
    case 'float32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'float64':
      return new Float64Array(bytes.buffer, bytes.byteOffset, n);
    case 'float16':
      return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    case 'int64':
      return new BigInt64Array(bytes.buffer, bytes.byteOffset, n);
    case 'int32':
      return new Int32Array(bytes.buffer, bytes.byteOffset, n);
    case 'bool':
    case 'uint8':
      return bytes;
  }
}

/** The little-endian bytes of `data` (a view, no copy). */
export function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** bfloat16 bits (little-endian bytes) widened to float32: bf16 is the top half of an f32. */
export function bf16BytesToF32(bytes: Uint8Array): Float32Array {
  const n = bytes.length >> 1;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = (bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16;
  return new Float32Array(out.buffer);
}

/** Reverses the byte order of each `itemsize`-byte element in place (big-endian files). */
export function swapBytes(bytes: Uint8Array, itemsize: number): void {
  for (let i = 0; i + itemsize <= bytes.length; i += itemsize) {
    for (let a = i, z = i + itemsize - 1; a < z; a++, z--) {
      const t = bytes[a]!;
      bytes[a] = bytes[z]!;
      bytes[z] = t;
    }
  }
}

/**
 * Gathers a strided view (element `offset`, `shape`, `strides` in elements) of `src` into a new
 * C-order byte array. Callers must have checked that the view's extent lies within `src`.
 * Works on bytes so one routine serves every dtype; the innermost contiguous run is copied with
 * `set`, so the common cases (C order, row slices) are memcpy speed.
 */
export function gatherStrided(
  src: Uint8Array,
  itemsize: number,
  offset: number,
  shape: readonly number[],
  strides: readonly number[],
): Uint8Array {
  const n = numel(shape);
  const out = new Uint8Array(n * itemsize);
  if (n === 0) return out;
  const rank = shape.length;
  // Merge trailing dims that are contiguous in the source into one run (a size-1 dim never moves).
  let run = 1;
  let k = rank;
  while (k > 0 && (strides[k - 1] === run || shape[k - 1] === 1)) {
    run *= shape[k - 1]!;
    k--;
  }
  const runBytes = run * itemsize;
  const idx = new Array<number>(k).fill(0);
  let srcElem = offset;
  for (let o = 0; o < out.length; o += runBytes) {
    const s = srcElem * itemsize;
    if (run === 1 && itemsize <= 8) {
      for (let b = 0; b < itemsize; b++) out[o + b] = src[s + b]!;
    } else {
      out.set(src.subarray(s, s + runBytes), o);
    }
    // Odometer over the outer k dims, last fastest.
    for (let d = k - 1; d >= 0; d--) {
      idx[d]!++;
      srcElem += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      srcElem -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * Largest element index a strided view touches (offset + Σ (size-1)·stride), or -1 for an empty
 * view; an error message when strides are not non-negative safe integers.
 */
export function viewExtent(
  offset: number,
  shape: readonly number[],
  strides: readonly unknown[],
): number | string {
  if (strides.length !== shape.length) return `stride has ${strides.length} dims, size has ${shape.length}`;
  if (shape.some((d) => d === 0)) return -1;
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    const s = strides[i];
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0)
      return `stride ${String(s)} is not a non-negative integer`;
    last += (shape[i]! - 1) * s;
    if (!Number.isSafeInteger(last)) return 'view extent overflows';
  }
  return last;
}

/**
 * A floating-point tensor's values as float32 (float32 data is returned as is, not copied; float16
 * and float64 are converted); null for any other dtype, so the caller names the tensor in its error.
 */
export function floatDataAsF32(t: IoTensor): Float32Array | null {
  switch (t.dtype) {
    case 'float32':
      return t.data as Float32Array;
    case 'float16':
      return f16ArrayToF32(t.data as Uint16Array);
    case 'float64':
      return Float32Array.from(t.data as Float64Array);
    default:
      return null;
  }
}
