import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';

test('matmul shape mismatch names the op and the shapes', () => {
  const g = new Graph();
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4, 5]);
  assert.throws(() => op.matmul(a, b), /MatMul: inner dims differ \(3 vs 4\).*\[2,3\].*\[4,5\]/);
});
