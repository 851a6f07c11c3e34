// A tiny transformer trains on CPU with the training step (gradient graph + host AdamW): the loss falls, the same seed
// gives the same losses bit for bit, and a non-finite loss leaves the weights untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { Scope } from '../../src/nn/params.js';
import { block, bceWithLogits, layerNorm, linear } from '../../src/nn/layers.js';
import { initParams } from '../../src/nn/init.js';
import { buildTrainStep } from '../../src/train/step.js';
import { StepRunner } from '../../src/train/runner.js';
import type { HostTensor } from '../../src/runtime/session.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const [B, N, D] = [4, 8, 16];

function buildTiny() {
  const g = new Graph('tiny');
  const s = Scope.root(g);
  const x = g.input('x', 'float32', [B, N, D]);
  const y = g.input('y', 'float32', [B, N, 1]);
  const scale = g.input('scale', 'float32', []);
  let h = block(s.sub('blocks.0'), x, { dim: D, heads: 2, mlpDim: 32, eps: 1e-6 });
  h = layerNorm(s.sub('norm'), h, D, 1e-6);
  const logits = op.mul(linear(s.sub('head'), h, D, 1), scale);
  const loss = bceWithLogits(logits, y);
  const step = buildTrainStep({
    registry: s.registry,
    loss,
    adamw: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, clipNorm: 1 },
  });
  return { step, specs: [...s.registry.specs.values()] };
}

function data(seed: number, scale = 1): Record<string, HostTensor> {
  const r = lcg(seed);
  const x = Float32Array.from({ length: B * N * D }, () => r() * 2 - 1);
  // target: is the token's first feature larger than the mean of its row's first features
  const y = new Float32Array(B * N);
  for (let b = 0; b < B; b++) {
    let mean = 0;
    for (let n = 0; n < N; n++) mean += x[(b * N + n) * D]! / N;
    for (let n = 0; n < N; n++) y[b * N + n] = x[(b * N + n) * D]! > mean ? 1 : 0;
  }
  return {
    x: { dtype: 'float32', shape: [B, N, D], data: x },
    y: { dtype: 'float32', shape: [B, N, 1], data: y },
    scale: { dtype: 'float32', shape: [], data: Float32Array.of(scale) },
  };
}

async function train(steps: number): Promise<{ losses: number[]; runner: StepRunner }> {
  const { step, specs } = buildTiny();
  const runner = await StepRunner.create(step, initParams(specs, lcg(7)));
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await runner.step(data(1000 + (i % 8)), 3e-3)).loss);
  return { losses, runner };
}

test('tiny transformer: loss falls and runs are deterministic', async () => {
  const a = await train(60);
  const b = await train(60);
  assert.deepEqual(a.losses, b.losses, 'same seed, same losses');
  const first = a.losses.slice(0, 8).reduce((p, q) => p + q) / 8;
  const last = a.losses.slice(-8).reduce((p, q) => p + q) / 8;
  assert.ok(last < 0.6 * first, `loss should fall: first ${first.toFixed(4)}, last ${last.toFixed(4)}`);
  assert.equal(a.runner.t, 60);
  await a.runner.dispose();
  await b.runner.dispose();
});

test('non-finite loss skips the update and leaves weights and moments unchanged', async () => {
  const { runner } = await train(3);
  const before = structuredClone(runner.state());
  const r = await runner.step(data(1, Number.NaN), 3e-3);
  assert.equal(r.finite, false);
  assert.equal(runner.t, 3);
  const after = runner.state();
  for (const [k, v] of before.params) assert.deepEqual(after.params.get(k), v, `param ${k} changed`);
  for (const [k, v] of before.m) assert.deepEqual(after.m.get(k), v, `moment ${k} changed`);
  const ok = await runner.step(data(1), 3e-3);
  assert.equal(ok.finite, true);
  assert.equal(runner.t, 4);
  await runner.dispose();
});
