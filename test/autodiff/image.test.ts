// Finite-difference checks of the image and normalization rules: Resize (whose gradient is built
// from src/graph/interp.ts matrices, so a pass also means those matrices equal ORT's forward),
// Conv, ConvTranspose, BatchNormalization (inference mode) and LayerNormalization.
// Resize, Conv and ConvTranspose run in float32 (ORT CPU has no double kernels for them); they are
// linear in the checked input, so finite differences are exact up to float32 rounding.

import { test } from 'node:test';
import * as op from '../../src/graph/ops.js';
import type { ResizeCoord } from '../../src/graph/ops.js';
import { LINEAR_F32, fmt, gradcheck } from '../helpers/gradcheck.js';

const RESIZES: { x: number[]; scale: number; coord: ResizeCoord }[] = [
  { x: [2, 2, 3, 4], scale: 2, coord: 'align_corners' },
  { x: [2, 2, 3, 4], scale: 2, coord: 'half_pixel' },
  { x: [1, 2, 3, 2], scale: 2, coord: 'asymmetric' },
  { x: [1, 2, 3, 4], scale: 4, coord: 'half_pixel' },
  { x: [1, 3, 4, 3], scale: 4, coord: 'align_corners' },
  { x: [1, 1, 2, 3], scale: 16, coord: 'half_pixel' },
];
for (const r of RESIZES) {
  test(`Resize linear ${fmt(r.x)} ×${r.scale} ${r.coord} (float32: no double Resize on ORT CPU)`, async () => {
    await gradcheck({
      dtype: 'float32',
      ...LINEAR_F32,
      inputs: [{ name: 'x', shape: r.x }],
      build: ({ x }) => op.resize(x!, r.scale, r.coord),
    });
  });
}

const CONVS: { name: string; x: number[]; w: number[]; bias: boolean; pads?: number[] }[] = [
  { name: '3×3 pad 1 with bias, batch 2', x: [2, 3, 5, 5], w: [4, 3, 3, 3], bias: true, pads: [1, 1, 1, 1] },
  { name: '3×3 no padding, no bias', x: [2, 2, 5, 4], w: [3, 2, 3, 3], bias: false },
  {
    name: '3×2 kernel, asymmetric pads [0,1,1,0]',
    x: [1, 2, 4, 5],
    w: [2, 2, 3, 2],
    bias: true,
    pads: [0, 1, 1, 0],
  },
  { name: '1×1 kernel', x: [2, 3, 3, 3], w: [5, 3, 1, 1], bias: true },
];
for (const c of CONVS) {
  test(`Conv ${c.name}: x ${fmt(c.x)} w ${fmt(c.w)} (float32: no double Conv on ORT CPU)`, async () => {
    await gradcheck({
      dtype: 'float32',
      ...LINEAR_F32,
      inputs: [
        { name: 'x', shape: c.x },
        { name: 'w', shape: c.w },
        ...(c.bias ? [{ name: 'b', shape: [c.w[0]!] }] : []),
      ],
      build: ({ x, w, b }) => op.conv(x!, w!, b ?? null, c.pads ? { pads: c.pads } : {}),
    });
  });
}

for (const pads of [
  [1, 1, 1, 1],
  [0, 0, 0, 0],
]) {
  test(`ConvTranspose input gradient, x [2,4,4,4], w [4,3,3,3], pads ${fmt(pads)} (float32: no double ConvTranspose)`, async () => {
    await gradcheck({
      dtype: 'float32',
      ...LINEAR_F32,
      inputs: [
        { name: 'x', shape: [2, 4, 4, 4] },
        { name: 'w', shape: [4, 3, 3, 3], wrt: false },
      ],
      build: ({ x, w }) => op.convTranspose(x!, w!, pads),
    });
  });
}

for (const epsilon of [1e-5, 0.5]) {
  test(`BatchNormalization inference x [2,3,4,4], grads for x/scale/bias, epsilon ${epsilon} (float64)`, async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: [
        { name: 'x', shape: [2, 3, 4, 4] },
        { name: 'scale', shape: [3] },
        { name: 'bias', shape: [3] },
        { name: 'mean', shape: [3], wrt: false },
        { name: 'var', shape: [3], init: 'positive', wrt: false },
      ],
      build: ({ x, scale, bias, mean, var: v }) =>
        op.batchNormInference(x!, scale!, bias!, mean!, v!, epsilon),
    });
  });
}

test('BatchNormalization inference on [N,C,L] and [N,C] inputs (float64)', async () => {
  for (const shape of [
    [2, 3, 5],
    [4, 3],
  ]) {
    await gradcheck({
      dtype: 'float64',
      inputs: [
        { name: 'x', shape },
        { name: 'scale', shape: [3] },
        { name: 'bias', shape: [3] },
        { name: 'mean', shape: [3], wrt: false },
        { name: 'var', shape: [3], init: 'positive', wrt: false },
      ],
      build: ({ x, scale, bias, mean, var: v }) => op.batchNormInference(x!, scale!, bias!, mean!, v!, 0.1),
    });
  }
});

test('BatchNormalization inference, grads for the running mean and variance too (float64)', async () => {
  // Not needed for training (they are buffers), but asked for they must be right, not silently zero.
  await gradcheck({
    dtype: 'float64',
    inputs: [
      { name: 'x', shape: [2, 3, 2, 2] },
      { name: 'scale', shape: [3], wrt: false },
      { name: 'bias', shape: [3], wrt: false },
      { name: 'mean', shape: [3] },
      { name: 'var', shape: [3], init: 'positive' },
    ],
    build: ({ x, scale, bias, mean, var: v }) => op.batchNormInference(x!, scale!, bias!, mean!, v!, 0.1),
  });
});

for (const epsilon of [1e-6, 0.5]) {
  test(`LayerNormalization x [2,3,5] over the last axis, grads for x/weight/bias, epsilon ${epsilon} (float64)`, async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: [
        { name: 'x', shape: [2, 3, 5] },
        { name: 'w', shape: [5] },
        { name: 'b', shape: [5] },
      ],
      build: ({ x, w, b }) => op.layerNorm(x!, w!, b!, epsilon),
    });
  });
}

test('LayerNormalization [B,4] with a symbolic batch (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [
      { name: 'x', shape: [3, 4], declared: ['B', 4] },
      { name: 'w', shape: [4] },
      { name: 'b', shape: [4] },
    ],
    build: ({ x, w, b }) => op.layerNorm(x!, w!, b!),
  });
});
