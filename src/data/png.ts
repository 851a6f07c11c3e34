// A fast path for plain PNGs (PNG 1.2 spec: 8-bit greyscale or RGB, not interlaced, no colour
// management or transparency chunks) decoded with node:zlib in the calling thread.
//
// Why: a training worker decodes each image it has not cached, and sharp's decode, cheap alone
// (about 1 ms for a 128-px PNG), runs on libuv and libvips threads that compete with the ONNX
// Runtime threads for the cores. Measured on 2 cores, restr-tiny training with 2 workers: those
// threads took 12-17% of the CPU time while images were still being read for the first time.
// Everything this path does not cover exactly as sharp does (palette, 16-bit, alpha, tRNS, ICC,
// gAMA/cHRM, EXIF orientation, interlacing, any damage) returns null and goes to sharp, so sharp
// stays the one source of behaviour and error messages for those files.

import { crc32, inflateSync } from 'node:zlib';
import type { DecodedRgb } from './bmp.js';
import { pngChunks } from './image.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Ancillary chunks that change the pixels sharp returns (colour management, transparency, orientation). */
const DEFER = new Set(['tRNS', 'iCCP', 'gAMA', 'cHRM', 'sBIT', 'eXIf']);

/** The pixels of a plain 8-bit greyscale or RGB PNG as RGB, or null when sharp must decode it. */
export function decodePlainPng(bytes: Uint8Array, maxPixels: number): DecodedRgb | null {
  if (bytes.length < 8 || SIGNATURE.some((s, i) => bytes[i] !== s)) return null;
  const { chunks, truncated } = pngChunks(bytes);
  if (truncated) return null;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  for (const { type, at, body, crc } of chunks) {
    if (DEFER.has(type)) return null;
    if ((type === 'IHDR' || type === 'IDAT') && crc32(body, crc32(bytes.subarray(at + 4, at + 8))) !== crc)
      return null;
    if (type === 'IHDR') {
      if (body.length !== 13) return null;
      const view = new DataView(body.buffer, body.byteOffset, 8);
      width = view.getUint32(0);
      height = view.getUint32(4);
      const [depth, colorType, compression, filter, interlace] = body.subarray(8, 13);
      if (depth !== 8 || compression !== 0 || filter !== 0 || interlace !== 0) return null;
      channels = colorType === 0 ? 1 : colorType === 2 ? 3 : 0;
      if (!channels || width === 0 || height === 0 || width * height > maxPixels) return null;
    } else if (type === 'IDAT') {
      if (!channels) return null; // IDAT before IHDR
      idat.push(body);
    }
  }
  if (!channels || idat.length === 0) return null;
  const stride = width * channels;
  let raw: Uint8Array;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat));
  } catch {
    return null;
  }
  if (raw.length !== height * (stride + 1)) return null;
  const px = unfilter(raw, height, stride, channels);
  if (!px) return null;
  if (channels === 3) return { width, height, data: px };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = px[i]!;
  return { width, height, data: rgb };
}

/** Undoes the per-row filters (PNG §9: None, Sub, Up, Average, Paeth); null on an unknown filter. */
function unfilter(raw: Uint8Array, height: number, stride: number, bpp: number): Uint8Array | null {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const o = y * stride;
    const up = o - stride; // previous row's start in `out` (negative on the first row: zeros)
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[o + x - bpp]! : 0;
      const b = y > 0 ? out[up + x]! : 0;
      let v = src[x]!;
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const c = y > 0 && x >= bpp ? out[up + x - bpp]! : 0;
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (f !== 0) return null;
      out[o + x] = v; // Uint8Array stores mod 256
    }
  }
  return out;
}
