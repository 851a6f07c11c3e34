// Trace-time shape checks of the op builders (src/graph/ops.ts): a bad call throws a ShapeError whose
// message names the op and the shapes involved, at the line of the model that is wrong.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, ShapeError, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';

/** Asserts `f` throws a ShapeError starting with `${opName}:` and containing every fragment. */
function throwsShape(f: () => unknown, opName: string, ...fragments: string[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected a ShapeError, got ${String(e)}`);
    assert.ok(e.message.startsWith(`${opName}:`), `message should start with '${opName}:': ${e.message}`);
    for (const s of fragments)
      assert.ok(e.message.includes(s), `message should mention '${s}': ${e.message}`);
    return true;
  });
}

const setup = () => {
  const g = new Graph();
  const f = (
    name: string,
    shape: (number | string)[],
    dtype: 'float32' | 'int64' | 'float64' = 'float32',
  ): Tensor => g.input(name, dtype, shape);
  return { g, f };
};

test('MatMul: inner dims and batch dims', () => {
  const { f } = setup();
  throwsShape(
    () => op.matmul(f('a', [2, 3]), f('b', [4, 5])),
    'MatMul',
    'inner dims differ (3 vs 4)',
    '[2,3]',
    '[4,5]',
  );
  throwsShape(
    () => op.matmul(f('c', [2, 3, 4]), f('d', [3, 4, 5])),
    'MatMul',
    'batch dims',
    '[2,3,4]',
    '[3,4,5]',
  );
  throwsShape(() => op.matmul(f('e', [3]), f('h', [3, 4])), 'MatMul', 'rank', '[3]', '[3,4]');
});

test('Add: shapes that do not broadcast, dtypes that differ', () => {
  const { f } = setup();
  throwsShape(
    () => op.add(f('a', [2, 3]), f('b', [4])),
    'Add',
    'do not broadcast',
    '(3 vs 4)',
    '[2,3]',
    '[4]',
  );
  throwsShape(() => op.mul(f('c', ['B', 3]), f('d', ['T', 3])), 'Mul', 'do not broadcast', '[B,3]', '[T,3]');
  throwsShape(
    () => op.add(f('e', [2]), f('h', [2], 'float64')),
    'Add',
    'dtypes differ',
    'float32',
    'float64',
  );
});

test('Reshape: element count, two -1, symbolic dims not carried by 0', () => {
  const { f } = setup();
  throwsShape(() => op.reshape(f('a', [2, 3]), [4, 2]), 'Reshape', '[4,2]', '[2,3]', '8', '6');
  throwsShape(() => op.reshape(f('b', [2, 3]), [-1, -1]), 'Reshape', 'more than one -1', '[2,3]');
  throwsShape(() => op.reshape(f('c', [2, 3]), [4, -1]), 'Reshape', 'cannot infer -1', '[4,-1]', '[2,3]');
  throwsShape(() => op.reshape(f('d', ['B', 6]), [-1, 3]), 'Reshape', 'symbolic', '[B,6]', '[-1,3]');
});

test('Concat: ranks and non-axis dims must agree', () => {
  const { f } = setup();
  throwsShape(
    () => op.concat([f('a', [2, 3]), f('b', [3, 3])], 1),
    'Concat',
    'dims differ at axis 0',
    '[2,3]',
    '[3,3]',
  );
  throwsShape(
    () => op.concat([f('c', [2, 3]), f('d', [2, 3, 1])], 0),
    'Concat',
    'ranks differ',
    '[2,3]',
    '[2,3,1]',
  );
});

test('Split: sizes must sum to the dim', () => {
  const { f } = setup();
  throwsShape(() => op.split(f('a', [2, 5]), [2, 2], 1), 'Split', 'sizes [2,2]', 'dim 5', '[2,5]');
});

test('Transpose: perm must be a permutation of the rank', () => {
  const { f } = setup();
  throwsShape(() => op.transpose(f('a', [2, 3, 4]), [0, 1]), 'Transpose', 'perm [0,1]', 'rank 3', '[2,3,4]');
  throwsShape(() => op.transpose(f('b', [2, 3]), [1, 1]), 'Transpose', 'perm [1,1]', '[2,3]');
});

test('Gather: indices must be integers', () => {
  const { f } = setup();
  throwsShape(() => op.gather(f('a', [5, 3]), f('i', [2]), 0), 'Gather', 'int64/int32', 'float32', '[2]');
});

test('Conv: input channels must match the weight; bias must be [Co]', () => {
  const { f } = setup();
  throwsShape(
    () => op.conv(f('x', [1, 3, 5, 5]), f('w', [4, 2, 3, 3]), null),
    'Conv',
    'input channels 3',
    '[1,3,5,5]',
    '[4,2,3,3]',
  );
  throwsShape(
    () => op.conv(f('x2', [1, 3, 5, 5]), f('w2', [4, 3, 3, 3]), f('b', [3])),
    'Conv',
    'bias must be [4]',
    '[3]',
  );
  throwsShape(
    () => op.conv(f('x3', [1, 3, 2, 2]), f('w3', [4, 3, 3, 3]), null),
    'Conv',
    'kernel larger',
    '[1,3,2,2]',
  );
});

test('LayerNormalization: weight and bias must match the last dim', () => {
  const { f } = setup();
  throwsShape(
    () => op.layerNorm(f('x', [2, 5]), f('w', [4]), f('b', [5])),
    'LayerNormalization',
    'must be [5]',
    '[2,5]',
    '[4]',
  );
});

test('Gemm: inner dims, and C must broadcast to [M, N] one way', () => {
  const { f } = setup();
  throwsShape(
    () => op.gemm(f('a', [3, 2]), f('b', [3, 4]), null),
    'Gemm',
    'inner dims differ (2 vs 3)',
    '[3,2]',
    '[3,4]',
  );
  throwsShape(() => op.gemm(f('a2', [3, 2]), f('b2', [2, 4]), f('c2', [5])), 'Gemm', '[5]');
  // C may not be larger than the output: ONNX Gemm broadcasts C to [M, N] only
  throwsShape(() => op.gemm(f('a3', [3, 2]), f('b3', [2, 4]), f('c3', [2, 3, 4])), 'Gemm', '[2,3,4]');
  throwsShape(() => op.gemm(f('a4', [1, 2]), f('b4', [2, 4]), f('c4', [3, 4])), 'Gemm', '[3,4]');
  assert.deepEqual(
    op.gemm(f('a5', [2, 3]), f('b5', [4, 2]), f('c5', [1, 4]), { transA: 1, transB: 1 }).shape,
    [3, 4],
  );
});

test('other builders: Where, Squeeze, Pad, Slice, ScatterND, BatchNormalization, Resize, Softmax axis', () => {
  const { f, g } = setup();
  throwsShape(() => op.where(f('c', [2]), f('a', [2]), f('b', [2])), 'Where', 'bool', '[2]');
  throwsShape(() => op.squeeze(f('s', [2, 3]), [1]), 'Squeeze', 'axis 1 has dim 3', '[2,3]');
  throwsShape(() => op.pad(f('p', [2, 3]), [1, 1]), 'Pad', 'pads [1,1]', '[2,3]');
  throwsShape(() => op.slice(f('sl', [4]), [0], [3], [0], [-1]), 'Slice', 'positive steps', '[4]');
  const data = f('d', [4, 3]);
  const idx = g.input('idx', 'int64', [2, 1]);
  throwsShape(
    () => op.scatterND(data, idx, f('u', [2, 4])),
    'ScatterND',
    'updates must have shape [2,3]',
    '[2,4]',
  );
  const c3 = f('c3', [3]);
  throwsShape(
    () => op.batchNormInference(f('x', [1, 4, 2, 2]), c3, c3, c3, c3),
    'BatchNormalization',
    'must be [4]',
    '[3]',
  );
  throwsShape(() => op.resize(f('r', [2, 3]), 2, 'half_pixel'), 'Resize', 'NCHW', '[2,3]');
  assert.throws(
    () => op.softmax(f('sm', [2, 3]), 2),
    (e: unknown) => e instanceof ShapeError && /Softmax: axis 2 out of range for rank 2/.test(e.message),
  );
});
