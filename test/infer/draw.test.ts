// Drawing helpers (src/infer/draw.ts) and post-processing (src/infer/postprocess.ts): the overlay
// leaves background pixels alone, tints the object and outlines its border; the heatmap puts each
// patch's probability on the pixels that patch covers, letterbox padding accounted for; viridis
// runs from dark purple to yellow; post-processing undoes the letterbox at the original size.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { letterboxGeometry } from '../../src/data/image.js';
import {
  heatmapOverlay,
  maskOutline,
  overlayMask,
  patchProbabilityAtPixels,
  rgbToRgba,
  rgbaToRgb,
  viridis,
} from '../../src/infer/draw.js';
import {
  maskFromProbability,
  patchProbabilityFromLogits,
  probabilityFromLogits,
  sigmoid,
} from '../../src/infer/postprocess.js';

const gray = (w: number, h: number, v = 100) => ({
  width: w,
  height: h,
  data: new Uint8Array(w * h * 3).fill(v),
});

/** A w×h mask with the rectangle [x0,x1)×[y0,y1) set. */
function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number) {
  const data = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 1;
  return { width: w, height: h, data };
}

test('maskOutline: the mask pixels within r of the background or the image border', () => {
  const m = rect(10, 8, 2, 2, 7, 6); // 5×4 block
  const o1 = maskOutline(m, 1);
  const set = (o: Uint8Array) => [...o].reduce((a, v) => a + v, 0);
  assert.equal(set(o1), 5 * 4 - 3 * 2); // everything but the 3×2 interior
  assert.equal(o1[2 * 10 + 2], 1);
  assert.equal(o1[3 * 10 + 3], 0);
  assert.equal(set(maskOutline(m, 2)), 20); // no pixel of a 4-high block is 2 away from its edge
  assert.equal(set(maskOutline(m, 0)), 0);
  // A full mask has its outline on the image border.
  const full = maskOutline(rect(4, 4, 0, 0, 4, 4), 1);
  assert.deepEqual([...full], [1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
});

test('overlayMask: background untouched, interior tinted by alpha, outline in the solid colour', () => {
  const img = gray(10, 8);
  const out = overlayMask(img, rect(10, 8, 2, 2, 7, 6), { color: [200, 0, 50], alpha: 0.5, outline: 1 });
  const px = (x: number, y: number) => [...out.data.subarray(3 * (y * 10 + x), 3 * (y * 10 + x) + 3)];
  assert.deepEqual(px(0, 0), [100, 100, 100]);
  assert.deepEqual(px(2, 2), [200, 0, 50]);
  assert.deepEqual(px(3, 3), [150, 50, 75]);
  assert.deepEqual([...img.data.subarray(0, 3)], [100, 100, 100], 'the input is not modified');
  assert.throws(() => overlayMask(gray(9, 8), rect(10, 8, 0, 0, 1, 1)), /mask is 10×8, the image is 9×8/);
});

test('heatmap: each pixel shows the patch under it, padding included in the patch grid', () => {
  // 40×20 image → 32 px letterbox: 32×16 at padY 8, so the image covers rows 8..24 of the canvas.
  const box = letterboxGeometry(40, 20, 32);
  assert.deepEqual([box.padX, box.padY, box.newW, box.newH], [0, 8, 32, 16]);
  // 2×2 grid of 16 px patches: the image straddles the top and bottom rows of patches equally.
  const patch = { grid: 2, data: Float32Array.of(0.1, 0.2, 0.3, 0.4) };
  const p = patchProbabilityAtPixels(patch, box, 40, 20);
  const at = (x: number, y: number) => p[y * 40 + x]!;
  assert.ok(Math.abs(at(0, 0) - 0.1) < 1e-7 && Math.abs(at(39, 0) - 0.2) < 1e-7);
  assert.ok(Math.abs(at(0, 19) - 0.3) < 1e-7 && Math.abs(at(39, 19) - 0.4) < 1e-7);
  assert.ok(Math.abs(at(19, 9) - 0.1) < 1e-7 && Math.abs(at(20, 10) - 0.4) < 1e-7);
  const out = heatmapOverlay(gray(40, 20, 0), patch, box, { alpha: 1 });
  assert.deepEqual([...out.data.subarray(0, 3)], [...viridis(0.1)]);
  assert.deepEqual([...out.data.subarray(3 * (19 * 40 + 39))], [...viridis(0.4)]);
});

test('viridis: dark purple → yellow, clamped, monotone in brightness', () => {
  assert.deepEqual(viridis(0), [68, 1, 84]);
  assert.deepEqual(viridis(1), [253, 231, 37]);
  assert.deepEqual(viridis(-3), viridis(0));
  assert.deepEqual(viridis(Number.NaN), viridis(0));
  const lum = (c: readonly number[]) => 0.2126 * c[0]! + 0.7152 * c[1]! + 0.0722 * c[2]!;
  for (let t = 0; t < 1; t += 0.05) assert.ok(lum(viridis(t + 0.05)) > lum(viridis(t)), `t=${t}`);
});

test('rgb ↔ rgba for canvas ImageData', () => {
  const img = { width: 2, height: 1, data: Uint8Array.of(1, 2, 3, 4, 5, 6) };
  const rgba = rgbToRgba(img);
  assert.deepEqual([...rgba], [1, 2, 3, 255, 4, 5, 6, 255]);
  assert.deepEqual(rgbaToRgb(rgba, 2, 1), img);
});

test('post-processing: sigmoid, crop the letterbox and resize to the original, threshold ≥', () => {
  assert.deepEqual([...sigmoid([0])], [0.5]);
  // A 4×4 canvas holding a 4×2 image at padY 1: logits +9 on the image rows, -9 on the padding.
  const box = letterboxGeometry(8, 4, 4);
  assert.deepEqual([box.padY, box.newH], [1, 2]);
  const logits = Float32Array.from({ length: 16 }, (_, i) => (i >= 4 && i < 12 ? 9 : -9));
  const prob = probabilityFromLogits(logits, box, 8, 4);
  assert.equal(prob.length, 32);
  assert.ok(
    prob.every((p) => p > 0.99),
    'the padding rows must not leak into the image',
  );
  const { mask, area, score } = maskFromProbability(Float32Array.of(0.2, 0.5, 0.9, 0.49), 2, 2, 0.5);
  assert.deepEqual([...mask.data], [0, 1, 1, 0]);
  assert.equal(area, 2);
  assert.ok(Math.abs(score - 0.7) < 1e-7);
  assert.equal(maskFromProbability(Float32Array.of(0.1), 1, 1, 0.5).score, 0);
  assert.equal(patchProbabilityFromLogits(new Float32Array(9)).grid, 3);
  assert.throws(() => patchProbabilityFromLogits(new Float32Array(8)), /not a square grid/);
});
