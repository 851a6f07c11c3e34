// Finite-difference checks of the data-movement gradient rules (float64; ORT CPU moves doubles for
// all of them): Reshape, Transpose, Concat, Split, Slice, Pad, Gather, ScatterND(add), GatherND,
// Expand, Unsqueeze, Squeeze. Index inputs repeat indices on purpose: their gradients must add up.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, ShapeError } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { gradients } from '../../src/autodiff/grad.js';
import { fmt, gradcheck } from '../helpers/gradcheck.js';

const D = 'float64' as const;

for (const target of [[4, 6], [6, -1], [0, 12], [24]]) {
  test(`Reshape [2,3,4]→${fmt(target)} (float64)`, async () => {
    // the Mul makes the gradient position-dependent, so a reshape gradient in the wrong order fails
    await gradcheck({
      dtype: D,
      inputs: [{ name: 'x', shape: [2, 3, 4] }],
      build: ({ x }) => op.mul(op.reshape(x!, target), op.reshape(x!, target)),
    });
  });
}

test('Reshape [B,3,4]→[0,12] with a symbolic batch (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['B', 3, 4] }],
    build: ({ x }) => op.reshape(x!, [0, 12]),
  });
});

for (const perm of [
  [2, 0, 1],
  [1, 0, 2],
  [0, 2, 1],
]) {
  test(`Transpose [2,3,4] perm ${fmt(perm)} (float64)`, async () => {
    await gradcheck({
      dtype: D,
      inputs: [{ name: 'x', shape: [2, 3, 4] }],
      build: ({ x }) => op.transpose(x!, perm),
    });
  });
}

test('Concat of three inputs along axis 1 (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'a', shape: [2, 1, 3] },
      { name: 'b', shape: [2, 2, 3] },
      { name: 'c', shape: [2, 3, 3] },
    ],
    build: ({ a, b, c }) => op.concat([a!, b!, c!], 1),
  });
});

test('Concat along axis -1 with a non-wrt input and a repeated input (float64)', async () => {
  const r = await gradcheck({
    dtype: D,
    inputs: [
      { name: 'a', shape: [2, 2] },
      { name: 'k', shape: [2, 3], wrt: false },
    ],
    build: ({ a, k }) => op.concat([a!, k!, a!], -1),
  });
  assert.deepEqual(Object.keys(r.grads), ['a']);
});

test('Split [2,5] into [2,3] along axis 1, both outputs used (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [{ name: 'x', shape: [2, 5] }],
    build: ({ x }) => op.split(x!, [2, 3], 1),
  });
});

test('Split [6,2] into [1,2,3] along axis 0, only the middle output used (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [{ name: 'x', shape: [6, 2] }],
    build: ({ x }) => op.split(x!, [1, 2, 3], 0)[1]!,
  });
});

test('Split [2,7] into [2,2,3] along axis 1, outputs 0 and 2 used (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [{ name: 'x', shape: [2, 7] }],
    build: ({ x }) => {
      const [p, , q] = op.split(x!, [2, 2, 3], 1);
      return [p!, q!];
    },
  });
});

const SLICES: { x: number[]; axes: number[]; starts: number[]; ends: number[]; steps?: number[] }[] = [
  { x: [4, 5], axes: [0, 1], starts: [1, -3], ends: [3, 100] },
  { x: [2, 3, 4], axes: [2], starts: [1], ends: [3] },
  { x: [2, 3, 4], axes: [-2, 0], starts: [0, 1], ends: [-1, 2], steps: [1, 1] },
];
for (const s of SLICES) {
  test(`Slice ${fmt(s.x)} axes ${fmt(s.axes)} starts ${fmt(s.starts)} ends ${fmt(s.ends)}${s.steps ? ' steps given' : ''} (float64)`, async () => {
    await gradcheck({
      dtype: D,
      inputs: [{ name: 'x', shape: s.x }],
      build: ({ x }) => op.slice(x!, s.axes, s.starts, s.ends, s.steps),
    });
  });
}

test('Slice with step 2: the gradient rule refuses with a ShapeError rather than emit a wrong gradient', () => {
  const g = new Graph();
  const x = g.input('x', D, [6]);
  const y = op.slice(x, [0], [0], [6], [2]);
  assert.throws(
    () => gradients(op.reduceSum(y, [0], false), [x]),
    (e: unknown) => e instanceof ShapeError && /step 1/.test(e.message),
  );
});

for (const pads of [
  [1, 0, 2, 1],
  [0, 0, 0, 0],
]) {
  test(`Pad [2,3] pads ${fmt(pads)} (float64)`, async () => {
    await gradcheck({ dtype: D, inputs: [{ name: 'x', shape: [2, 3] }], build: ({ x }) => op.pad(x!, pads) });
  });
}
test('Pad [2,3,4] pads [0,1,2,1,0,3] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [{ name: 'x', shape: [2, 3, 4] }],
    build: ({ x }) => op.pad(x!, [0, 1, 2, 1, 0, 3]),
  });
});

// ---------- Gather, ScatterND, GatherND ----------

test('Gather axis 0: embedding lookup [5,3] with repeated indices [2,4] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'table', shape: [5, 3] },
      { name: 'idx', shape: [2, 4], dtype: 'int64', init: [0, 2, 2, 4, 1, 0, 2, 3] },
    ],
    build: ({ table, idx }) => op.gather(table!, idx!, 0),
  });
});

test('Gather axis 0 with int32 indices (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'table', shape: [4, 2] },
      { name: 'idx', shape: [3], dtype: 'int32', init: [3, 1, 3] },
    ],
    build: ({ table, idx }) => op.gather(table!, idx!, 0),
  });
});

test('Gather axis 1: x [3,4,2], indices [3] with a repeat (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'x', shape: [3, 4, 2] },
      { name: 'idx', shape: [3], dtype: 'int64', init: [3, 0, 3] },
    ],
    build: ({ x, idx }) => op.gather(x!, idx!, 1),
  });
});

test('Gather axis 2 (a permutation that is not its own inverse): x [2,3,4], indices [3] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'x', shape: [2, 3, 4] },
      { name: 'idx', shape: [3], dtype: 'int64', init: [1, 3, 1] },
    ],
    build: ({ x, idx }) => op.gather(x!, idx!, 2),
  });
});

test('Gather axis 1 with 2-D indices: x [2,4,3], indices [2,2] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'x', shape: [2, 4, 3] },
      { name: 'idx', shape: [2, 2], dtype: 'int64', init: [1, 2, 2, 0] },
    ],
    build: ({ x, idx }) => op.gather(x!, idx!, 1),
  });
});

for (const axis of [0, 1]) {
  test(`Gather axis ${axis} with a scalar index (float64)`, async () => {
    await gradcheck({
      dtype: D,
      inputs: [
        { name: 'x', shape: [3, 4] },
        { name: 'idx', shape: [], dtype: 'int64', init: [2] },
      ],
      build: ({ x, idx }) => op.gather(x!, idx!, axis),
    });
  });
}

test('Gather with negative indices (counted from the end) (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'x', shape: [4, 2] },
      { name: 'idx', shape: [3], dtype: 'int64', init: [-1, 0, 3] },
    ],
    build: ({ x, idx }) => op.gather(x!, idx!, 0),
  });
});

test('ScatterND(add) rows: data [4,3], indices [3,1] with a repeat, updates [3,3] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'data', shape: [4, 3] },
      { name: 'idx', shape: [3, 1], dtype: 'int64', init: [1, 3, 1] },
      { name: 'upd', shape: [3, 3] },
    ],
    build: ({ data, idx, upd }) => op.scatterND(data!, idx!, upd!, 'add'),
  });
});

test('ScatterND(add) elements: data [3,4], indices [3,2], updates [3] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'data', shape: [3, 4] },
      { name: 'idx', shape: [3, 2], dtype: 'int64', init: [0, 1, 2, 3, 0, 1] },
      { name: 'upd', shape: [3] },
    ],
    build: ({ data, idx, upd }) => op.scatterND(data!, idx!, upd!, 'add'),
  });
});

test('GatherND elements: data [3,4], indices [3,2] with a repeat (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'data', shape: [3, 4] },
      { name: 'idx', shape: [3, 2], dtype: 'int64', init: [0, 1, 2, 3, 0, 1] },
    ],
    build: ({ data, idx }) => op.gatherND(data!, idx!),
  });
});

test('GatherND rows: data [3,4], indices [2,1] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [
      { name: 'data', shape: [3, 4] },
      { name: 'idx', shape: [2, 1], dtype: 'int64', init: [2, 2] },
    ],
    build: ({ data, idx }) => op.gatherND(data!, idx!),
  });
});

// ---------- Expand, Unsqueeze, Squeeze ----------

for (const [from, to] of [
  [
    [3, 1],
    [2, 3, 4],
  ],
  [[1], [2, 3]],
  [[], [2, 3]],
  [
    [2, 3],
    [2, 3],
  ],
] as const) {
  test(`Expand ${fmt(from)}→${fmt(to)} (float64)`, async () => {
    await gradcheck({ dtype: D, inputs: [{ name: 'x', shape: from }], build: ({ x }) => op.expand(x!, to) });
  });
}

test('Unsqueeze [2,3] axes [0,3] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [{ name: 'x', shape: [2, 3] }],
    build: ({ x }) => op.mul(op.unsqueeze(x!, [0, 3]), op.unsqueeze(x!, [0, 3])),
  });
});

for (const axes of [[1, 3], [-1]]) {
  test(`Squeeze [2,1,3,1] axes ${fmt(axes)} (float64)`, async () => {
    await gradcheck({
      dtype: D,
      inputs: [{ name: 'x', shape: [2, 1, 3, 1] }],
      build: ({ x }) => op.squeeze(x!, axes),
    });
  });
}

test('Unsqueeze/Squeeze with a symbolic batch [B,3] (float64)', async () => {
  await gradcheck({
    dtype: D,
    inputs: [{ name: 'x', shape: [2, 3], declared: ['B', 3] }],
    build: ({ x }) => op.squeeze(op.exp(op.unsqueeze(x!, [1])), [1]),
  });
});
