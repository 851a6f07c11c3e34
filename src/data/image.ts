// Image decoding (reliability.md "Images") and the letterbox of restr.md §5, with its inverse.
//
// decodeImage: magic-byte allow-list (JPEG, PNG, WebP, GIF, BMP), explicit pixel limit, first frame
// only, EXIF orientation applied first (masks align with what a person sees), any colour space /
// bit depth / alpha → 8-bit sRGB RGB. Alpha is composited onto WHITE by default: that is what a
// browser or image viewer shows a transparent image on, so it is "what a person sees"; black would
// also collide with the letterbox padding, which is black. sharp decodes everything but BMP
// (its prebuilt libvips has no BMP loader), which src/data/bmp.ts decodes, and plain 8-bit grey/RGB
// PNGs, which src/data/png.ts decodes in the calling thread (the same pixels; training workers read
// thousands of them and sharp's threads would compete with ONNX Runtime's for the cores).
//
// letterbox: scale = S/max(h,w), aspect kept, centered, zero padding in pixel space, then
// (x/255 - mean)/std per channel. The geometry is computed here (letterboxGeometry) and returned,
// so evaluation can undo it exactly. Resampling is pure TypeScript — identical in Node and the
// browser demo, and independent of the libvips version — with PIL's Image.resize(BILINEAR)
// semantics: a triangle filter widened by the scale factor when shrinking (antialiased, like
// torchvision's antialias=True), plain half-pixel bilinear when enlarging. PIL rounds to 8 bits
// between the two separable passes; we keep float32 throughout.
//
// unletterboxProbability: crop the letterboxed area and resize the probability map BILINEARLY
// (ONNX Resize linear, half_pixel, no antialias = PyTorch F.interpolate(align_corners=False)) to the
// original size, per restr.md §5 evaluation protocol. It reuses src/graph/interp.ts's sourceCoord so
// the graph's Resize and the metric's resize share one definition.

import sharp from 'sharp';
import { sourceCoord } from '../graph/interp.js';
import { decodeBmp, isBmp } from './bmp.js';
import type { Mask } from './rle.js';

/** An 8-bit RGB image, HWC row-major. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A binary (0/1) mask, HW row-major: rle.ts's Mask. */
export type BinaryMask = Mask;

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'bmp';

export interface DecodeOptions {
  /** Named in every error (a file path or "request body"). */
  source: string;
  /** Refuse images with more pixels than this (default 40 MP). */
  maxPixels?: number;
  /** What transparent pixels are composited onto (default white, see the file header). */
  background?: 'white' | 'black';
}

export interface DecodedImage extends RgbImage {
  format: ImageFormat;
  /** EXIF orientation found in the file (1 when absent); already applied to `data`. */
  orientation: number;
}

export const DEFAULT_MAX_PIXELS = 40e6;

export class ImageDecodeError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'ImageDecodeError';
  }
}

/** The format named by the first bytes, or null when it is not one we accept. */
export function sniffFormat(b: Uint8Array): ImageFormat | null {
  const ascii = (start: number, s: string): boolean =>
    b.length >= start + s.length && [...s].every((c, i) => b[start + i] === c.charCodeAt(0));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (ascii(0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'gif';
  if (isBmp(b)) return 'bmp';
  return null;
}

/** One PNG chunk: its type, its offset in the file (where its length field is), data and stored CRC. */
export interface PngChunk {
  type: string;
  at: number;
  body: Uint8Array;
  crc: number;
}

/** A PNG's chunks up to and including IEND, or (`truncated`) where the file is cut short. */
export function pngChunks(b: Uint8Array): { chunks: PngChunk[]; truncated: string | null } {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const chunks: PngChunk[] = [];
  for (let p = 8; ;) {
    if (p + 8 > b.length)
      return {
        chunks,
        truncated: `truncated PNG: chunk header at byte ${p} is past the end (${b.length} bytes)`,
      };
    const len = view.getUint32(p);
    const type = String.fromCharCode(b[p + 4]!, b[p + 5]!, b[p + 6]!, b[p + 7]!);
    const end = p + 12 + len;
    if (end > b.length)
      return {
        chunks,
        truncated: `truncated PNG: chunk ${type} at byte ${p} needs ${end} bytes, file has ${b.length}`,
      };
    chunks.push({ type, at: p, body: b.subarray(p + 8, p + 8 + len), crc: view.getUint32(p + 8 + len) });
    if (type === 'IEND') return { chunks, truncated: null };
    p = end;
  }
}

/**
 * Container-level completeness checks where the decoders are lenient: libspng accepts a PNG whose
 * last IDAT CRC and IEND are missing, giflib a GIF cut after its last frame, and a RIFF that declares
 * more bytes than present is cut short. JPEG is left to sharp's failOn: 'error' (libjpeg reports
 * a missing EOI marker as premature end of data).
 */
function checkComplete(b: Uint8Array, format: ImageFormat, fail: (m: string) => never): void {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (format === 'png') {
    const { truncated } = pngChunks(b);
    if (truncated) fail(truncated);
    return;
  }
  if (format === 'gif') {
    // Walk the block structure to the trailer (0x3B): giflib accepts a file cut after its last frame.
    const at = (p: number, what: string): number => {
      if (p >= b.length) fail(`truncated GIF: ${what} at byte ${p} is past the end (${b.length} bytes)`);
      return b[p]!;
    };
    const tableSize = (flags: number): number => (flags & 0x80 ? 3 << ((flags & 7) + 1) : 0);
    const skipSubBlocks = (p: number, what: string): number => {
      for (let n = at(p, what); n !== 0; n = at(p, what)) p += n + 1;
      return p + 1;
    };
    let p = 13 + tableSize(at(10, 'screen descriptor'));
    for (;;) {
      const intro = at(p, 'block');
      if (intro === 0x3b) return;
      if (intro === 0x21) p = skipSubBlocks(p + 2, 'extension');
      else if (intro === 0x2c)
        p = skipSubBlocks(p + 11 + tableSize(at(p + 9, 'image descriptor')), 'image data');
      else fail(`GIF: unknown block 0x${intro.toString(16)} at byte ${p}`);
    }
  }
  if (format === 'webp') {
    const declared = 8 + view.getUint32(4, true);
    if (declared > b.length) fail(`truncated WebP: RIFF declares ${declared} bytes, file has ${b.length}`);
  }
}

const BACKGROUNDS = { white: [255, 255, 255], black: [0, 0, 0] } as const;

/** Decodes an image file's bytes to 8-bit sRGB RGB (see the file header for every rule). */
export async function decodeImage(bytes: Uint8Array, opts: DecodeOptions): Promise<DecodedImage> {
  const { source } = opts;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const background = BACKGROUNDS[opts.background ?? 'white'];
  const fail = (m: string): never => {
    throw new ImageDecodeError(source, m);
  };
  const format = sniffFormat(bytes);
  if (!format) {
    const head = [...bytes.subarray(0, 8)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    return fail(`not a JPEG, PNG, WebP, GIF or BMP file (first bytes: ${head || 'none, file is empty'})`);
  }
  if (format === 'bmp') {
    try {
      return { ...decodeBmp(bytes, { maxPixels, background }), format, orientation: 1 };
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  checkComplete(bytes, format, fail);
  if (format === 'png') {
    // imported here, not at the top: png.ts needs node:zlib, and the web page imports this module
    // for letterbox (web/app.js) without ever decoding through it
    const { decodePlainPng } = await import('./png.js');
    const plain = decodePlainPng(bytes, maxPixels); // null: sharp decodes it (png.ts says when)
    if (plain) return { ...plain, format, orientation: 1 };
  }

  // The header is read without a pixel limit (no pixels are decoded) so the refusal can say how big
  // the image is; the decode below still carries limitInputPixels as a second guard.
  // failOn 'error' (which includes truncation) rather than sharp's default 'warning': libjpeg warns
  // on benign quirks such as extraneous bytes before a marker, found in a few COCO images.
  const input = { failOn: 'error', pages: 1, page: 0 } as const;
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { ...input, limitInputPixels: false }).metadata();
  } catch (e) {
    return fail(`cannot read the ${format} header: ${(e as Error).message}`);
  }
  const w = meta.width ?? 0;
  const h = meta.pageHeight ?? meta.height ?? 0;
  if (w * h > maxPixels) return fail(`image is ${w}×${h} = ${w * h} pixels, over the limit of ${maxPixels}`);

  try {
    const { data, info } = await sharp(bytes, { ...input, limitInputPixels: maxPixels })
      .rotate() // no angle: apply the EXIF orientation, before anything else
      .flatten({ background: { r: background[0], g: background[1], b: background[2] } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) fail(`decoded to ${info.channels} channels, expected 3`);
    const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { width: info.width, height: info.height, data: rgb, format, orientation: meta.orientation ?? 1 };
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    return fail(`cannot decode ${format}: ${(e as Error).message}`);
  }
}

// ---------- letterbox (restr.md §5) ----------

/** Where the original image sits inside the S×S letterbox. */
export interface LetterboxGeometry {
  /** Side of the square canvas, S. */
  size: number;
  /** S / max(h, w). */
  scale: number;
  /** Left and top padding in canvas pixels. */
  padX: number;
  padY: number;
  /** Size of the resized image inside the canvas. */
  newW: number;
  newH: number;
}

/**
 * newW = round(w·scale), newH = round(h·scale) (the long side is exactly S), and the image is centered
 * with the odd pixel of padding, if any, on the right/bottom (floor on the left/top).
 */
export function letterboxGeometry(width: number, height: number, size: number): LetterboxGeometry {
  if (!(width > 0 && height > 0 && size > 0))
    throw new Error(`letterbox: invalid sizes ${width}×${height} → ${size}`);
  const scale = size / Math.max(width, height);
  const newW = Math.min(size, Math.max(1, Math.round(width * scale)));
  const newH = Math.min(size, Math.max(1, Math.round(height * scale)));
  return {
    size,
    scale,
    padX: Math.floor((size - newW) / 2),
    padY: Math.floor((size - newH) / 2),
    newW,
    newH,
  };
}

export interface Normalization {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** ViT-B/16 augreg normalization of restr.md §5: (x/255 - 0.5)/0.5. */
export const VIT_NORMALIZATION: Normalization = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

export interface Letterboxed extends LetterboxGeometry {
  /** [3, S, S] float32, normalized; padding is pixel value 0 before normalization. */
  tensor: Float32Array;
}

/** 1-D resampling taps: output o reads in[start[o] .. start[o]+count[o]) with weights w[o*taps ..]. */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  taps: number;
  weights: Float32Array;
}

/** PIL's bilinear filter (ImagingResample with the triangle filter): antialiased when shrinking. */
function bilinearTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // triangle support is 1, widened by the shrink factor
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const w = Math.max(0, 1 - Math.abs((i - center + 0.5) / filterScale));
      weights[o * taps + i - lo] = w;
      sum += w;
    }
    for (let i = 0; i < hi - lo; i++) weights[o * taps + i]! /= sum || 1;
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, taps, weights };
}

/** Exact area coverage: output o covers [o·r, (o+1)·r) of the input, r = in/out. */
function areaTaps(inSize: number, outSize: number): Taps {
  const r = inSize / outSize;
  const taps = Math.ceil(r) + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const a = o * r;
    const b = Math.min((o + 1) * r, inSize);
    const lo = Math.floor(a);
    const hi = Math.min(inSize, Math.ceil(b));
    for (let i = lo; i < hi; i++)
      weights[o * taps + i - lo] = (Math.min(b, i + 1) - Math.max(a, i)) / (b - a);
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, taps, weights };
}

/**
 * Separable resampling of an HWC float image (any channel count), columns then rows.
 * Returns [outH, outW, C] float32.
 */
function resampleSeparable(
  src: ArrayLike<number>,
  inW: number,
  inH: number,
  c: number,
  tx: Taps,
  ty: Taps,
  outW: number,
  outH: number,
): Float32Array {
  const mid = new Float32Array(inH * outW * c);
  const { start, count, weights, taps } = tx;
  for (let y = 0; y < inH; y++) {
    const rowIn = y * inW;
    const rowOut = y * outW * c;
    for (let o = 0; o < outW; o++) {
      const base = (rowIn + start[o]!) * c;
      const n = count[o]!;
      const wo = o * taps;
      if (c === 3) {
        // The hot path (RGB letterbox): three accumulators, one pass over the taps.
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        for (let k = 0, j = base; k < n; k++, j += 3) {
          const w = weights[wo + k]!;
          a0 += w * src[j]!;
          a1 += w * src[j + 1]!;
          a2 += w * src[j + 2]!;
        }
        mid[rowOut + o * 3] = a0;
        mid[rowOut + o * 3 + 1] = a1;
        mid[rowOut + o * 3 + 2] = a2;
      } else {
        for (let ch = 0; ch < c; ch++) {
          let acc = 0;
          for (let k = 0; k < n; k++) acc += weights[wo + k]! * src[base + k * c + ch]!;
          mid[rowOut + o * c + ch] = acc;
        }
      }
    }
  }
  const out = new Float32Array(outH * outW * c);
  for (let o = 0; o < outH; o++) {
    const s = ty.start[o]!;
    const n = ty.count[o]!;
    for (let k = 0; k < n; k++) {
      const w = ty.weights[o * ty.taps + k]!;
      const row = (s + k) * outW * c;
      const dst = o * outW * c;
      for (let i = 0; i < outW * c; i++) out[dst + i]! += w * mid[row + i]!;
    }
  }
  return out;
}

/**
 * `src` (inW×inH, c channels interleaved) resampled to outW×outH with `taps`; at scale 1 both
 * filters are the identity (one tap of weight 1), so `src` itself comes back (the training loop's
 * images usually are at scale 1).
 */
function resampleTo(
  src: Uint8Array,
  inW: number,
  inH: number,
  c: number,
  taps: (inSize: number, outSize: number) => Taps,
  outW: number,
  outH: number,
): Uint8Array | Float32Array {
  if (inW === outW && inH === outH) return src;
  return resampleSeparable(src, inW, inH, c, taps(inW, outW), taps(inH, outH), outW, outH);
}

/** Letterboxes an RGB image to [3, S, S] float32, normalized (restr.md §5). */
export function letterbox(rgb: RgbImage, size: number, norm: Normalization = VIT_NORMALIZATION): Letterboxed {
  const g = letterboxGeometry(rgb.width, rgb.height, size);
  const resized = resampleTo(rgb.data, rgb.width, rgb.height, 3, bilinearTaps, g.newW, g.newH);
  const plane = size * size;
  const tensor = new Float32Array(3 * plane);
  for (let ch = 0; ch < 3; ch++) {
    const mean = norm.mean[ch]!;
    const std = norm.std[ch]!;
    tensor.fill((0 - mean) / std, ch * plane, (ch + 1) * plane); // zero padding in pixel space
    for (let y = 0; y < g.newH; y++) {
      const dst = ch * plane + (g.padY + y) * size + g.padX;
      for (let x = 0, i = y * g.newW * 3 + ch; x < g.newW; x++, i += 3) {
        const r = resized[i]!;
        // Triangle weights are ≥ 0 and sum to 1; the clamp only absorbs float rounding.
        const v = r < 0 ? 0 : r > 255 ? 255 : r;
        tensor[dst + x] = (v / 255 - mean) / std;
      }
    }
  }
  return { ...g, tensor };
}

export type MaskResampling = 'nearest' | 'area';

/**
 * Letterboxes a binary mask to S×S float32 with the same geometry as `letterbox`, padding 0.
 * 'nearest' (default) keeps targets binary, as the ground truth is, for the BCE of restr.md §2;
 * source index = floor((o + 0.5)·in/out), the pixel whose area holds the output pixel's center.
 * 'area' gives each output pixel the exact fraction of its footprint covered by the mask (soft
 * targets, and the mean a patch label would see at the original resolution).
 */
export function letterboxMask(
  mask: BinaryMask,
  size: number,
  mode: MaskResampling = 'nearest',
): Float32Array {
  const g = letterboxGeometry(mask.width, mask.height, size);
  const out = new Float32Array(size * size);
  if (mode === 'area') {
    const r = resampleTo(mask.data, mask.width, mask.height, 1, areaTaps, g.newW, g.newH);
    for (let y = 0; y < g.newH; y++)
      out.set(r.subarray(y * g.newW, (y + 1) * g.newW), (g.padY + y) * size + g.padX);
    return out;
  }
  const sx = new Int32Array(g.newW);
  for (let x = 0; x < g.newW; x++)
    sx[x] = Math.min(mask.width - 1, Math.floor(((x + 0.5) * mask.width) / g.newW));
  for (let y = 0; y < g.newH; y++) {
    const srcRow = Math.min(mask.height - 1, Math.floor(((y + 0.5) * mask.height) / g.newH)) * mask.width;
    const dst = (g.padY + y) * size + g.padX;
    for (let x = 0; x < g.newW; x++) out[dst + x] = mask.data[srcRow + sx[x]!] ? 1 : 0;
  }
  return out;
}

/**
 * Half-pixel bilinear resize of a single-channel map (ONNX Resize mode linear, half_pixel, no
 * antialias), reading the window [x0, x0+inW) × [y0, y0+inH) of a `stride`-wide source.
 */
export function resizeBilinear(
  src: Float32Array,
  stride: number,
  x0: number,
  y0: number,
  inW: number,
  inH: number,
  outW: number,
  outH: number,
): Float32Array {
  const ix0 = new Int32Array(outW);
  const ix1 = new Int32Array(outW);
  const fx = new Float32Array(outW);
  for (let o = 0; o < outW; o++) {
    const x = sourceCoord(o, inW, outW, 'half_pixel');
    ix0[o] = Math.floor(x);
    ix1[o] = Math.min(ix0[o]! + 1, inW - 1);
    fx[o] = x - ix0[o]!;
  }
  const out = new Float32Array(outW * outH);
  for (let o = 0; o < outH; o++) {
    const y = sourceCoord(o, inH, outH, 'half_pixel');
    const ya = Math.floor(y);
    const yb = Math.min(ya + 1, inH - 1);
    const fy = y - ya;
    const ra = (y0 + ya) * stride + x0;
    const rb = (y0 + yb) * stride + x0;
    for (let x = 0; x < outW; x++) {
      const a = src[ra + ix0[x]!]! + fx[x]! * (src[ra + ix1[x]!]! - src[ra + ix0[x]!]!);
      const b = src[rb + ix0[x]!]! + fx[x]! * (src[rb + ix1[x]!]! - src[rb + ix0[x]!]!);
      out[o * outW + x] = a + fy * (b - a);
    }
  }
  return out;
}

/**
 * Maps an S×S probability map back to the original image: crop the letterboxed area, then bilinear
 * resize (half_pixel) to origW × origH. Returns [origH, origW] float32.
 */
export function unletterboxProbability(
  prob: Float32Array,
  box: LetterboxGeometry,
  origW: number,
  origH: number,
): Float32Array {
  const s = box.size;
  if (prob.length !== s * s)
    throw new Error(`unletterbox: probability has ${prob.length} values, expected ${s}×${s}`);
  if (box.padX + box.newW > s || box.padY + box.newH > s)
    throw new Error('unletterbox: box lies outside the canvas');
  return resizeBilinear(prob, s, box.padX, box.padY, box.newW, box.newH, origW, origH);
}

/** Binarizes a probability map at `threshold` (probability ≥ threshold is foreground, restr.md §5). */
export function binarize(prob: Float32Array, threshold: number): Uint8Array {
  const out = new Uint8Array(prob.length);
  for (let i = 0; i < prob.length; i++) out[i] = prob[i]! >= threshold ? 1 : 0;
  return out;
}

// ---------- simple geometric/photometric transforms (augmentation in batching.ts) ----------

/** Mirror an HWC image with `c` channels left↔right (or, with c = 1, planes of rows stacked). */
export function flipHorizontal<T extends { width: number; height: number; data: Uint8Array | Float32Array }>(
  img: T,
  c: number,
): T {
  const { width: w, height: h, data } = img;
  const out = data.slice() as T['data'];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * c;
      const d = (y * w + (w - 1 - x)) * c;
      for (let k = 0; k < c; k++) out[d + k] = data[s + k]!;
    }
  }
  return { ...img, data: out };
}
