// The reverse-mode driver (src/autodiff/grad.ts) and the rule table as a whole: fan-out accumulation,
// only needed gradients emitted (counted in the emitted nodes), 'nondiff' ops stopping the gradient,
// zeros for unreachable wrt tensors, and the table being total over OP_TYPES at run time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Node, ShapeError, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { OP_TYPES } from '../../src/graph/ops.js';
import { gradients } from '../../src/autodiff/grad.js';
import { RULES } from '../../src/autodiff/rules.js';
import { evaluate, f64, gradcheck } from '../helpers/gradcheck.js';

/** Nodes emitted by the rule of the forward node with op type `opType` (the driver scopes them `grad/<Op>_<i>`). */
const fromRule = (nodes: readonly Node[], opType: string): Node[] =>
  nodes.filter((n) => n.outputs[0]!.name.startsWith(`grad/${opType}_`));
const count = (nodes: readonly Node[], opType: string): number => nodes.filter((n) => n.op === opType).length;

/** Traces `build`, then returns the nodes `gradients(loss, wrt)` appends. */
function emitted(
  wrtNames: readonly string[],
  build: (g: Graph) => { loss: Tensor; ts: Record<string, Tensor> },
): Node[] {
  const g = new Graph();
  const { loss, ts } = build(g);
  const before = g.nodes.length;
  gradients(
    loss,
    wrtNames.map((n) => ts[n]!),
  );
  return g.nodes.slice(before);
}

test('fan-out: x used three times (x·x + exp(x)) accumulates all three contributions (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [2, 3] }],
    build: ({ x }) => op.add(op.mul(x!, x!), op.exp(x!)),
  });
});

test('fan-out with broadcasting: b [3] used by a [2,3] + b, b·b and b·a, each unbroadcast then summed (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [
      { name: 'a', shape: [2, 3] },
      { name: 'b', shape: [3] },
    ],
    build: ({ a, b }) => [op.add(a!, b!), op.mul(b!, b!), op.mul(b!, a!)],
  });
});

test('a wrt tensor the loss does not depend on gets exact zeros of its shape (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [
      { name: 'x', shape: [2, 3] },
      { name: 'unused', shape: [4, 1] },
      { name: 'sym', shape: [2, 5], declared: ['B', 5] },
    ],
    build: ({ x }) => op.tanh(x!),
    expectZero: ['unused', 'sym'],
  });
});

test('an unreachable wrt tensor costs one Expand (its zeros), no backward computation', () => {
  const build = (g: Graph) => {
    const x = g.input('x', 'float32', [2, 3]);
    const u = g.input('u', 'float32', [4]);
    return { loss: op.reduceSum(op.exp(x), [0, 1], false), ts: { x, u } };
  };
  const withU = emitted(['x', 'u'], build);
  const withoutU = emitted(['x'], build);
  assert.equal(withU.length - withoutU.length, 1);
  assert.equal(withU.at(-1)!.op, 'Expand');
});

test('a path from a non-wrt input emits no backward nodes for it', () => {
  // loss = sum(exp(x) @ w): with wrt [w] only, neither dx = dy wᵀ nor the Exp rule may be emitted
  const build = (g: Graph) => {
    const x = g.input('x', 'float32', [2, 3]);
    const w = g.input('w', 'float32', [3, 4]);
    return { loss: op.reduceSum(op.matmul(op.exp(x), w), [0, 1], false), ts: { x, w } };
  };
  const onlyW = emitted(['w'], build);
  assert.equal(fromRule(onlyW, 'Exp').length, 0);
  assert.equal(count(fromRule(onlyW, 'MatMul'), 'MatMul'), 1);
  const both = emitted(['x', 'w'], build);
  assert.equal(count(fromRule(both, 'MatMul'), 'MatMul'), 2);
  assert.ok(fromRule(both, 'Exp').length > 0);
});

test('a needed input of a node does not make its other inputs needed', () => {
  // Gemm with wrt [b]: only dB is emitted, no dA, no dC
  const nodes = emitted(['b'], (g) => {
    const a = g.input('a', 'float32', [3, 2]);
    const b = g.input('b', 'float32', [2, 4]);
    const c = g.input('c', 'float32', [4]);
    return { loss: op.reduceSum(op.gemm(a, b, c, { alpha: 0.5, beta: 2 }), [0, 1], false), ts: { a, b, c } };
  });
  const rule = fromRule(nodes, 'Gemm');
  assert.equal(count(rule, 'Gemm'), 1);
  assert.equal(count(rule, 'Mul'), 0); // dC = beta·dy would be a Mul
});

test("'nondiff' ops stop the gradient: d(x·floor(x))/dx = floor(x), with no rule emitted for Floor (float64)", async () => {
  const r = await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [4], init: [0.3, -0.7, 1.6, -2.2] }],
    build: ({ x }) => op.mul(x!, op.floor(x!)),
  });
  assert.equal(fromRule(r.backwardNodes, 'Floor').length, 0);
  // floor(x) does not count as depending on x, so the rule of x·floor(x) emits d/dx only: one Mul
  const mul = r.graph.nodes.find((n) => n.op === 'Mul' && n.inputs[1]!.producer?.op === 'Floor')!;
  const scoped = r.backwardNodes.filter((n) => n.outputs[0]!.name.startsWith(`grad/Mul_${mul.index}/`));
  assert.equal(count(scoped, 'Mul'), 1);
});

test("a loss reached only through 'nondiff' ops (Floor, Sign, Greater→Cast) has a zero gradient (float64)", async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: [{ name: 'x', shape: [4], init: [0.3, -0.7, 1.6, -2.2] }],
    build: ({ x }) => op.add(op.add(op.floor(x!), op.sign(x!)), op.cast(op.greater(x!, 0), 'float64')),
    expectZero: ['x'],
  });
});

test('the rule table has exactly one entry per OP_TYPES member, each a function or nondiff', () => {
  const keys = Object.keys(RULES).sort();
  assert.deepEqual(keys, [...OP_TYPES].sort());
  for (const t of OP_TYPES) {
    const r = RULES[t];
    assert.ok(typeof r === 'function' || r === 'nondiff', `RULES.${t} is ${String(r)}`);
  }
  // ops whose outputs are piecewise constant or value-independent are exactly the nondiff ones
  const nondiff = OP_TYPES.filter((t) => RULES[t] === 'nondiff').sort();
  assert.deepEqual(nondiff, [
    'And',
    'ConstantOfShape',
    'Equal',
    'Floor',
    'Greater',
    'IsInf',
    'IsNaN',
    'Less',
    'Not',
    'Or',
    'RandomUniformLike',
    'Shape',
    'Sign',
  ]);
});

test('gradients() rejects a non-scalar loss and a non-float loss with a ShapeError', () => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 3]);
  assert.throws(
    () => gradients(op.exp(x), [x]),
    (e: unknown) => e instanceof ShapeError && /not a scalar/.test(e.message),
  );
  const i = g.input('i', 'int64', [1]);
  assert.throws(
    () => gradients(i, [x]),
    (e: unknown) => e instanceof ShapeError && /not floating-point/.test(e.message),
  );
});

test('a seed gradient gives the vector-Jacobian product of a non-scalar output (float64)', async () => {
  const g = new Graph();
  const x = g.input('x', 'float64', [3]);
  const seed = g.input('seed', 'float64', [3]);
  const [dx] = gradients(op.mul(x, x), [x], seed);
  const [out] = await evaluate(g, [g.named(dx!, 'dx')], {
    x: f64([3], [1, 2, 3]),
    seed: f64([3], [1, 10, 100]),
  });
  assert.deepEqual(Array.from(out!.data as Float64Array), [2, 40, 600]);
});
