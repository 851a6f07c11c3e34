// Finite-difference checks of ReduceSum, ReduceMean and ReduceMax (float64) over several axis sets,
// keepdims 0 and 1, and a symbolic batch. ReduceMax inputs have no ties (its derivative is undefined
// there); the tie-sharing convention is checked directly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { gradients } from '../../src/autodiff/grad.js';
import * as op from '../../src/graph/ops.js';
import { type Init, evaluate, f64, fmt, gradcheck } from '../helpers/gradcheck.js';

const REDUCES: {
  name: string;
  f: (x: Tensor, axes: readonly number[], keep: boolean) => Tensor;
  init: Init;
}[] = [
  { name: 'ReduceSum', f: op.reduceSum, init: 'normal' },
  { name: 'ReduceMean', f: op.reduceMean, init: 'normal' },
  { name: 'ReduceMax', f: op.reduceMax, init: 'distinct' },
];
const AXES: number[][] = [[1], [0, 2], [-1], [0, 1, 2]];

for (const r of REDUCES) {
  for (const axes of AXES) {
    for (const keep of [true, false]) {
      test(`${r.name} [2,3,4] axes ${fmt(axes)} keepdims=${keep ? 1 : 0} (float64)`, async () => {
        await gradcheck({
          dtype: 'float64',
          inputs: [{ name: 'x', shape: [2, 3, 4], init: r.init }],
          build: ({ x }) => r.f(x!, axes, keep),
        });
      });
    }
  }
  test(`${r.name} [B,3,4] axes [2] keepdims=0, symbolic batch (float64)`, async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['B', 3, 4], init: r.init }],
      build: ({ x }) => r.f(x!, [2], false),
    });
  });
}

test('ReduceSum over a symbolic axis [B,3] axes [0] (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [2, 3], declared: ['B', 3] }],
    build: ({ x }) => op.reduceSum(x!, [0], false),
  });
});

test('ReduceMax shares the gradient equally between tied maxima (float64)', async () => {
  const g = new Graph();
  const x = g.input('x', 'float64', [2, 3]);
  const [dx] = gradients(op.reduceSum(op.reduceMax(x, [1], false), [0], false), [x]);
  // row 0: unique max; row 1: two-way tie
  const [out] = await evaluate(g, [g.named(dx!, 'dx')], { x: f64([2, 3], [1, 5, 2, 3, 0, 3]) });
  assert.deepEqual(Array.from(out!.data as Float64Array), [0, 1, 0, 0.5, 0, 0.5]);
});
