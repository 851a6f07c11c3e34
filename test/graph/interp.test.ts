// src/graph/interp.ts against ONNX Runtime's Resize (mode linear): Y = A_h · X · A_wᵀ must equal
// ORT's forward, since the Resize gradient and evaluation's mapping back to image size both use A.
// Covers the integer scales of the `resize` builder and, through a raw Resize node with `sizes`,
// the non-integer up- and down-sampling that evaluation needs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import type { ResizeCoord } from '../../src/graph/ops.js';
import { interpMatrix, transposeMatrix } from '../../src/graph/interp.js';
import { Rng, evaluate } from '../helpers/gradcheck.js';

/** Y[n,c] = A_h · X[n,c] · A_wᵀ in float64. */
function reference(
  x: Float32Array,
  [n, c, h, w]: number[],
  oh: number,
  ow: number,
  coord: ResizeCoord,
): Float64Array {
  const ah = interpMatrix(h, oh, coord); // [oh, h]
  const awT = transposeMatrix(interpMatrix(w, ow, coord), ow, w); // [w, ow]
  const y = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let s = 0;
        for (let k = 0; k < h; k++) {
          const a = ah[i * h + k]!;
          if (a === 0) continue;
          for (let l = 0; l < w; l++) s += a * x[p * h * w + k * w + l]! * awT[l * ow + j]!;
        }
        y[p * oh * ow + i * ow + j] = s;
      }
    }
  }
  return y;
}

async function compare(
  shape: number[],
  oh: number,
  ow: number,
  coord: ResizeCoord,
  build: (x: Tensor) => Tensor,
) {
  const g = new Graph();
  const x = g.input('x', 'float32', shape);
  const rng = new Rng(7);
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const [y] = await evaluate(g, [build(x)], { x: { dtype: 'float32', shape, data } });
  assert.deepEqual(y!.shape, [shape[0], shape[1], oh, ow]);
  const want = reference(data, shape, oh, ow, coord);
  const got = y!.data as Float32Array;
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i]! - want[i]!) <= 1e-5 * (1 + Math.abs(want[i]!)),
      `element ${i}: ORT ${got[i]} vs interp.ts ${want[i]}`,
    );
  }
}

for (const [coord, scale, h, w] of [
  ['align_corners', 2, 3, 4],
  ['half_pixel', 2, 3, 4],
  ['asymmetric', 2, 3, 4],
  ['half_pixel', 4, 2, 3],
  ['align_corners', 4, 5, 2],
  ['half_pixel', 16, 2, 3],
  ['align_corners', 16, 3, 2],
  ['half_pixel', 1, 3, 3],
] as const) {
  test(`resize builder ×${scale} ${coord} [1,2,${h},${w}] equals interp.ts matrices`, async () => {
    await compare([1, 2, h, w], h * scale, w * scale, coord, (x) => op.resize(x, scale, coord));
  });
}

/** A Resize node with explicit output `sizes` (any ratio, as evaluation uses to go back to image size). */
function resizeTo(x: Tensor, oh: number, ow: number, coord: ResizeCoord): Tensor {
  const g = x.graph;
  const sizes = op.int64s(g, [x.shape[0] as number, x.shape[1] as number, oh, ow], 'sizes');
  const attrs = { mode: 'linear', coordinate_transformation_mode: coord };
  return g.addNode('Resize', [x, null, null, sizes], attrs, [
    { dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, oh, ow] },
  ])[0]!;
}

for (const [coord, h, w, oh, ow] of [
  ['half_pixel', 4, 6, 7, 9], // non-integer upsampling
  ['align_corners', 4, 6, 7, 9],
  ['half_pixel', 8, 6, 5, 4], // downsampling (no antialias)
  ['align_corners', 8, 6, 5, 4],
  ['half_pixel', 5, 5, 1, 1],
  ['align_corners', 3, 3, 1, 2],
] as const) {
  test(`Resize to sizes [${oh},${ow}] from [${h},${w}] ${coord} equals interp.ts matrices`, async () => {
    await compare([2, 1, h, w], oh, ow, coord, (x) => resizeTo(x, oh, ow, coord));
  });
}
