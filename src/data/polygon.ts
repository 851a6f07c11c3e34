// COCO polygon segmentation → mask, with pycocotools semantics (cocoapi/common/maskApi.c rleFrPoly,
// then the union of the parts as maskUtils.merge does), so masks decoded from refer-layout polygons
// match the ones every published number was computed with, boundary pixels included.
//
// rleFrPoly upsamples the outline ×5, walks it densely, keeps the points where it crosses a pixel
// column's center, and turns those crossings into column-major runs. It is ported line by line; the
// C casts `(int)(v + .5)` truncate toward zero, hence Math.trunc.

import { decodeCounts, type Mask } from './rle.js';

/** One polygon [x1, y1, x2, y2, ...] → its column-major RLE counts (pycocotools rleFrPoly). */
export function polygonCounts(xy: readonly number[], h: number, w: number): number[] {
  const scale = 5;
  const k = Math.floor(xy.length / 2);
  if (k === 0) return [h * w];
  const x = new Array<number>(k + 1);
  const y = new Array<number>(k + 1);
  for (let j = 0; j < k; j++) x[j] = Math.trunc(scale * xy[2 * j]! + 0.5);
  for (let j = 0; j < k; j++) y[j] = Math.trunc(scale * xy[2 * j + 1]! + 0.5);
  x[k] = x[0]!;
  y[k] = y[0]!;
  // Dense boundary points (u, v) in the upsampled grid, one edge after another.
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j]!;
    let xe = x[j + 1]!;
    let ys = y[j]!;
    let ye = y[j + 1]!;
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      [xs, xe] = [xe, xs];
      [ys, ye] = [ye, ys];
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // Points where the boundary crosses a pixel column's center, downsampled back to pixels.
  const a: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j]! < u[j - 1]! ? u[j]! : u[j]! - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j]! < v[j - 1]! ? v[j]! : v[j - 1]!;
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    a.push(xd * h + yd);
  }
  // Sorted crossing positions → run lengths; zero-length runs are folded into their neighbours.
  a.push(h * w);
  a.sort((p, q) => p - q);
  let prev = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j]!;
    a[j] = t - prev;
    prev = t;
  }
  const b: number[] = [a[0]!];
  for (let j = 1; j < a.length;) {
    if (a[j]! > 0) b.push(a[j++]!);
    else {
      j++;
      if (j < a.length) b[b.length - 1]! += a[j++]!;
    }
  }
  return b;
}

/** The union of polygons (a COCO polygon segmentation) as a row-major mask of h×w. */
export function polygonsToMask(polygons: readonly (readonly number[])[], h: number, w: number): Mask {
  const out: Mask = { height: h, width: w, data: new Uint8Array(h * w) };
  for (const p of polygons) {
    const m = decodeCounts(polygonCounts(p, h, w), h, w);
    for (let i = 0; i < out.data.length; i++) out.data[i]! |= m.data[i]!;
  }
  return out;
}
