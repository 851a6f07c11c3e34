// Finite-difference checks of the MatMul and Gemm gradient rules (float64: ORT CPU has double
// kernels for both). MatMul covers 2-D, batched and broadcast batch dims, whose gradients the
// driver sums back down; Gemm covers every transA/transB combination, alpha/beta and C broadcast.

import { test } from 'node:test';
import type { Shape } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { fmt, gradcheck } from '../helpers/gradcheck.js';

const MATMULS: { a: readonly number[]; b: readonly number[]; da?: Shape; db?: Shape }[] = [
  { a: [2, 3], b: [3, 4] },
  { a: [2, 2, 3], b: [2, 3, 4] }, // batched
  { a: [2, 1, 3, 4], b: [5, 4, 2] }, // batch dims broadcast both ways → [2,5,3,2]
  { a: [3, 4], b: [2, 4, 5] }, // A broadcast over B's batch
  { a: [2, 3, 4], b: [4, 5] }, // B broadcast over A's batch (a linear layer)
  { a: [2, 2, 3, 4], b: [4, 5] }, // a linear layer over two batch dims
  { a: [1, 3, 4], b: [2, 4, 2] },
  { a: [2, 3, 4], b: [4, 2], da: ['B', 3, 4] }, // symbolic batch
  { a: [2, 3, 4], b: [2, 4, 3], da: ['B', 'N', 4], db: ['B', 4, 'N'] }, // attention-like q·kᵀ
];

for (const m of MATMULS) {
  test(`MatMul ${fmt(m.da ?? m.a)}@${fmt(m.db ?? m.b)} (float64)`, async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: [
        { name: 'a', shape: m.a, declared: m.da },
        { name: 'b', shape: m.b, declared: m.db },
      ],
      build: ({ a, b }) => op.matmul(a!, b!),
    });
  });
}

// Y [M=3, N=4] = alpha·A'·B' + beta·C with K = 2
const [M, K, N] = [3, 2, 4];
const C_SHAPES: (readonly number[] | null)[] = [null, [M, N], [N], [1, N], [M, 1], []];

for (const transA of [0, 1] as const) {
  for (const transB of [0, 1] as const) {
    for (const [alpha, beta] of [
      [1, 1],
      [0.7, -1.3],
    ] as const) {
      for (const c of C_SHAPES) {
        const name = `Gemm transA=${transA} transB=${transB} alpha=${alpha} beta=${beta} C=${c ? fmt(c) : 'none'} (float64)`;
        test(name, async () => {
          await gradcheck({
            dtype: 'float64',
            inputs: [
              { name: 'a', shape: transA ? [K, M] : [M, K] },
              { name: 'b', shape: transB ? [N, K] : [K, N] },
              ...(c ? [{ name: 'c', shape: c }] : []),
            ],
            build: ({ a, b, c: cc }) => op.gemm(a!, b!, cc ?? null, { transA, transB, alpha, beta }),
          });
        });
      }
    }
  }
}
