// Finite-difference checks of the elementwise gradient rules (src/autodiff/rules.ts): Identity,
// Cast, the broadcasting binary ops over a matrix of shape pairs (static and symbolic), the unary
// ops, Where and Softmax. float64 wherever ORT CPU has a double kernel; float32 (named in the test)
// for Erf, LeakyRelu and Gelu, which it has only in float32.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Shape, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { gradients } from '../../src/autodiff/grad.js';
import { type Init, evaluate, f64, fmt, grid, gradcheck } from '../helpers/gradcheck.js';

test('Identity (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [2, 3] }],
    build: ({ x }) => op.identity(x!),
  });
});

test('Cast float32→float64 (float32 input; x² in float64 makes central differences exact: float64 tolerance)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [2, 3], dtype: 'float32' }],
    build: ({ x }) => op.mul(op.cast(x!, 'float64'), op.cast(x!, 'float64')),
    eps: 1e-3,
  });
});

test('Cast float64→float32 (float32 output: float32 step and tolerance)', async () => {
  await gradcheck({
    dtype: 'float32',
    inputs: [{ name: 'x', shape: [2, 3], dtype: 'float64' }],
    build: ({ x }) => op.cast(op.exp(x!), 'float32'),
  });
});

// ---------- binary ops × broadcast shape pairs ----------

interface Pair {
  a: readonly number[];
  b: readonly number[];
  da?: Shape; // declared (symbolic) shapes
  db?: Shape;
}
const PAIRS: Pair[] = [
  { a: [2, 3], b: [2, 3] },
  { a: [2, 3], b: [3] },
  { a: [3], b: [2, 3] },
  { a: [2, 1, 4], b: [3, 1] },
  { a: [], b: [2, 3] },
  { a: [2, 3], b: [] },
  { a: [1], b: [2, 3] },
  { a: [2, 3], b: [1, 1] },
  { a: [2, 3], b: [3], da: ['B', 3] },
  { a: [2, 1, 4], b: [3, 1], da: ['B', 1, 4] },
  { a: [2, 3], b: [2, 1], da: ['B', 'T'], db: ['B', 1] },
];

const BINARY: { name: string; f: (a: Tensor, b: Tensor) => Tensor; a: Init; b: Init }[] = [
  { name: 'Add', f: op.add, a: 'normal', b: 'normal' },
  { name: 'Sub', f: op.sub, a: 'normal', b: 'normal' },
  { name: 'Mul', f: op.mul, a: 'normal', b: 'normal' },
  { name: 'Div', f: op.div, a: 'normal', b: 'awayFromZero' },
  // base > 0 so that d/db = a^b log a exists
  { name: 'Pow', f: op.pow, a: 'positive', b: 'uniform' },
  // two interleaved grids: no a_i ever ties with a b_j it is compared with
  { name: 'Max', f: op.max, a: grid(0), b: grid(0.15) },
  { name: 'Min', f: op.min, a: grid(0), b: grid(0.15) },
];

for (const bin of BINARY) {
  for (const p of PAIRS) {
    const shapes = `${fmt(p.da ?? p.a)}×${fmt(p.db ?? p.b)}`;
    test(`${bin.name} ${shapes} (float64)`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: [
          { name: 'a', shape: p.a, declared: p.da, init: bin.a },
          { name: 'b', shape: p.b, declared: p.db, init: bin.b },
        ],
        build: ({ a, b }) => bin.f(a!, b!),
      });
    });
  }
}

test('Pow with a constant exponent (x² − x^−1.5, float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [2, 3], init: 'positive' }],
    build: ({ x }) => op.sub(op.pow(x!, 2), op.pow(x!, -1.5)),
  });
});

test('Max selects per element: gradient flows to the larger operand only (float64)', async () => {
  const r = await gradcheck({
    dtype: 'float64',
    inputs: [
      { name: 'a', shape: [4], init: [1, -1, 2, -2] },
      { name: 'b', shape: [4], init: [0, 0, 0, 0] },
    ],
    build: ({ a, b }) => op.max(a!, b!),
  });
  // a wins at 0 and 2, b at 1 and 3: the loser's gradient is exactly zero
  const [ga, gb] = [r.analytic.a!, r.analytic.b!];
  assert.deepEqual([ga[1], ga[3], gb[0], gb[2]], [0, 0, 0, 0]);
});

test('Max and Min at a tie: the whole gradient goes to one operand, not to both (float64)', async () => {
  const g = new Graph();
  const a = g.input('a', 'float64', [2]);
  const b = g.input('b', 'float64', [2]);
  const loss = op.reduceSum(op.add(op.max(a, b), op.min(a, b)), [0], false);
  const [da, db] = gradients(loss, [a, b]);
  const out = await evaluate(g, [g.named(da!, 'da'), g.named(db!, 'db')], {
    a: f64([2], [1, 2]),
    b: f64([2], [1, 2]),
  });
  const [ga, gb] = out.map((t) => Array.from(t.data as Float64Array));
  assert.deepEqual(
    ga!.map((v, i) => v + gb![i]!),
    [2, 2],
  ); // d(max + min) = 1 + 1 per element
});

// ---------- unary ops ----------

const UNARY: {
  name: string;
  f: (x: Tensor) => Tensor;
  init: Init;
  dtype: 'float32' | 'float64';
  why?: string;
}[] = [
  { name: 'Neg', f: op.neg, init: 'normal', dtype: 'float64' },
  { name: 'Abs', f: op.abs, init: 'awayFromZero', dtype: 'float64' },
  { name: 'Sqrt', f: op.sqrt, init: 'positive', dtype: 'float64' },
  { name: 'Reciprocal', f: op.reciprocal, init: 'awayFromZero', dtype: 'float64' },
  { name: 'Exp', f: op.exp, init: 'normal', dtype: 'float64' },
  { name: 'Log', f: op.log, init: 'positive', dtype: 'float64' },
  { name: 'Tanh', f: op.tanh, init: 'normal', dtype: 'float64' },
  { name: 'Sigmoid', f: op.sigmoid, init: 'normal', dtype: 'float64' },
  { name: 'Relu', f: op.relu, init: 'awayFromZero', dtype: 'float64' },
  { name: 'Erf', f: op.erf, init: 'normal', dtype: 'float32', why: 'no double Erf on ORT CPU' },
  {
    name: 'LeakyRelu α=0.01',
    f: (x) => op.leakyRelu(x),
    init: 'awayFromZero',
    dtype: 'float32',
    why: 'no double LeakyRelu',
  },
  {
    name: 'LeakyRelu α=0.2',
    f: (x) => op.leakyRelu(x, 0.2),
    init: 'awayFromZero',
    dtype: 'float32',
    why: 'no double LeakyRelu',
  },
  {
    name: 'Gelu',
    f: (x) => op.gelu(x),
    init: 'normal',
    dtype: 'float32',
    why: 'ORT CPU Gelu runs Erf, float32 only',
  },
];

for (const u of UNARY) {
  test(`${u.name} [3,4] (${u.dtype}${u.why ? `: ${u.why}` : ''})`, async () => {
    await gradcheck({
      dtype: u.dtype,
      inputs: [{ name: 'x', shape: [3, 4], init: u.init }],
      build: ({ x }) => u.f(x!),
    });
  });
}

test('Relu and Exp over a symbolic batch [B,3] (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [2, 3], declared: ['B', 3], init: 'awayFromZero' }],
    build: ({ x }) => op.mul(op.relu(x!), op.exp(x!)),
  });
});

// ---------- Where, Softmax ----------

test('Where: bool condition [2,1,3], a [2,4,3], b [3] broadcast (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [
      { name: 'cond', shape: [2, 1, 3], dtype: 'bool', init: [1, 0, 1, 0, 0, 1] },
      { name: 'a', shape: [2, 4, 3] },
      { name: 'b', shape: [3] },
    ],
    build: ({ cond, a, b }) => op.where(cond!, a!, b!),
  });
});

test('Where with a condition computed from a wrt input (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [3, 4], init: 'awayFromZero' }],
    build: ({ x }) => op.where(op.greater(x!, 0), op.exp(x!), op.mul(x!, x!)),
  });
});

for (const axis of [-1, 0, 1]) {
  test(`Softmax [2,3,4] axis ${axis} (float64)`, async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: [{ name: 'x', shape: [2, 3, 4] }],
      build: ({ x }) => op.softmax(x!, axis),
    });
  });
}

test('Softmax [B,3,4] axis -1 with a symbolic batch (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['B', 3, 4] }],
    build: ({ x }) => op.softmax(x!, -1),
  });
});
