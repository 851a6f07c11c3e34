// Pictures of a segmentation for people: the mask drawn over the image (semi-transparent fill and a
// solid outline) and ReSTR's patch probabilities as a heatmap over the image (viridis colormap,
// nearest upsampling so each patch stays a visible square, as the model sees it).
//
// Shared by `refseg segment`, the server and the web demo, so it is browser-safe: plain typed
// arrays in and out (8-bit RGB, HWC row-major), no node built-ins. PNG encoding lives in png.ts.

import type { BinaryMask, LetterboxGeometry, RgbImage } from '../data/image.js';
import type { PatchProbability } from './postprocess.js';

export type Color = readonly [number, number, number];

/** A colour that stands out on photos and on the synthetic scenes' saturated palette. */
export const MASK_COLOR: Color = [255, 32, 160];

export interface OverlayOptions {
  /** Fill and outline colour (default MASK_COLOR). */
  color?: Color;
  /** Opacity of the fill, 0–1 (default 0.45): the object stays visible under it. */
  alpha?: number;
  /** Outline thickness in pixels; default scales with the image (≈ 1/200 of the short side, ≥ 1); 0 = none. */
  outline?: number;
}

function checkSizes(image: RgbImage, w: number, h: number, what: string): void {
  if (image.width !== w || image.height !== h)
    throw new Error(`${what} is ${w}×${h}, the image is ${image.width}×${image.height}`);
  if (image.data.length !== w * h * 3)
    throw new Error(`image data holds ${image.data.length} bytes, expected ${w}×${h}×3`);
}

/**
 * Mask pixels within `r` pixels (Chebyshev distance) of a non-mask pixel or the image border: a
 * separable minimum filter (erosion) of width 2r+1, mask minus its erosion.
 */
export function maskOutline(mask: BinaryMask, r: number): Uint8Array {
  const { width: w, height: h, data } = mask;
  const out = new Uint8Array(w * h);
  if (r <= 0) return out;
  // Erode rows, then columns; outside the image counts as background so borders get an outline.
  const rows = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 1;
      for (let d = -r; d <= r && v; d++) {
        const xx = x + d;
        v = xx >= 0 && xx < w && data[y * w + xx] ? 1 : 0;
      }
      rows[y * w + x] = v;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!data[i]) continue;
      let v = 1;
      for (let d = -r; d <= r && v; d++) {
        const yy = y + d;
        v = yy >= 0 && yy < h && rows[yy * w + x] ? 1 : 0;
      }
      out[i] = v ? 0 : 1;
    }
  }
  return out;
}

/** The image with the mask drawn over it: tinted fill plus outline. */
export function overlayMask(image: RgbImage, mask: BinaryMask, o: OverlayOptions = {}): RgbImage {
  const { width: w, height: h } = mask;
  checkSizes(image, w, h, 'mask');
  const color = o.color ?? MASK_COLOR;
  const alpha = o.alpha ?? 0.45;
  const thickness = o.outline ?? Math.max(1, Math.round(Math.min(w, h) / 200));
  const edge = maskOutline(mask, thickness);
  const out = new Uint8Array(image.data);
  for (let i = 0; i < w * h; i++) {
    if (!mask.data[i]) continue;
    for (let c = 0; c < 3; c++) {
      const p = 3 * i + c;
      out[p] = edge[i] ? color[c]! : Math.round(out[p]! * (1 - alpha) + color[c]! * alpha);
    }
  }
  return { width: w, height: h, data: out };
}

// matplotlib's viridis at 10 evenly spaced points (perceptually uniform, readable in grayscale and
// by colour-blind readers); linear interpolation in between is indistinguishable at heatmap scale.
const VIRIDIS: readonly Color[] = [
  [68, 1, 84],
  [72, 40, 120],
  [62, 74, 137],
  [49, 104, 142],
  [38, 130, 142],
  [31, 158, 137],
  [53, 183, 121],
  [109, 205, 89],
  [180, 222, 44],
  [253, 231, 37],
];

/** Viridis colour of t ∈ [0, 1] (clamped; NaN → 0). */
export function viridis(t: number): Color {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const f = x * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(f));
  const u = f - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return [
    Math.round(a[0] + u * (b[0] - a[0])),
    Math.round(a[1] + u * (b[1] - a[1])),
    Math.round(a[2] + u * (b[2] - a[2])),
  ];
}

/**
 * Patch probabilities at every pixel of the original image, nearest upsampling: pixel (x, y) takes
 * the patch under its centre once mapped into the letterboxed canvas (the patch grid covers the
 * canvas, padding included, so the image's own geometry decides which patches it sees).
 */
export function patchProbabilityAtPixels(
  patch: PatchProbability,
  box: LetterboxGeometry,
  width: number,
  height: number,
): Float32Array {
  const { grid, data } = patch;
  const cell = box.size / grid;
  const col = new Int32Array(width);
  for (let x = 0; x < width; x++) {
    const cx = box.padX + ((x + 0.5) * box.newW) / width;
    col[x] = Math.min(grid - 1, Math.max(0, Math.floor(cx / cell)));
  }
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const cy = box.padY + ((y + 0.5) * box.newH) / height;
    const row = Math.min(grid - 1, Math.max(0, Math.floor(cy / cell))) * grid;
    for (let x = 0; x < width; x++) out[y * width + x] = data[row + col[x]!]!;
  }
  return out;
}

export interface HeatmapOptions {
  /** Opacity of the colormap over the image, 0–1 (default 0.6). */
  alpha?: number;
}

/** The patch-probability heatmap (viridis, nearest upsampled) blended over the image. */
export function heatmapOverlay(
  image: RgbImage,
  patch: PatchProbability,
  box: LetterboxGeometry,
  o: HeatmapOptions = {},
): RgbImage {
  const { width: w, height: h } = image;
  checkSizes(image, w, h, 'heatmap');
  const alpha = o.alpha ?? 0.6;
  const p = patchProbabilityAtPixels(patch, box, w, h);
  // One colour per patch, not per pixel: the map only has grid² distinct values.
  const lut = new Map<number, Color>();
  const out = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    let c = lut.get(p[i]!);
    if (!c) lut.set(p[i]!, (c = viridis(p[i]!)));
    for (let k = 0; k < 3; k++)
      out[3 * i + k] = Math.round(image.data[3 * i + k]! * (1 - alpha) + c[k]! * alpha);
  }
  return { width: w, height: h, data: out };
}

/** The mask as 8-bit gray (0 / 255), what a mask PNG holds. */
export function maskToGray(mask: BinaryMask): Uint8Array {
  const out = new Uint8Array(mask.data.length);
  for (let i = 0; i < out.length; i++) out[i] = mask.data[i] ? 255 : 0;
  return out;
}

/** RGB → RGBA (opaque), the layout of a canvas ImageData. */
export function rgbToRgba(image: RgbImage): Uint8ClampedArray {
  const n = image.width * image.height;
  const out = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    out[4 * i] = image.data[3 * i]!;
    out[4 * i + 1] = image.data[3 * i + 1]!;
    out[4 * i + 2] = image.data[3 * i + 2]!;
    out[4 * i + 3] = 255;
  }
  return out;
}

/** RGBA (a canvas ImageData) → RGB, dropping alpha (the browser has composited it already). */
export function rgbaToRgb(rgba: ArrayLike<number>, width: number, height: number): RgbImage {
  const n = width * height;
  if (rgba.length !== 4 * n)
    throw new Error(`RGBA data holds ${rgba.length} bytes, expected ${width}×${height}×4`);
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    data[3 * i] = rgba[4 * i]!;
    data[3 * i + 1] = rgba[4 * i + 1]!;
    data[3 * i + 2] = rgba[4 * i + 2]!;
  }
  return { width, height, data };
}
