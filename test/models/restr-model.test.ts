// ReSTR forward in ONNX Runtime on a micro config: every fusion variant, shared or not, decoder on
// and off, with a symbolic batch and a static one; padding words have no influence anywhere;
// stochastic depth is wired per block application; the model trains with the training step.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { toModelProto } from '../../src/graph/onnx.js';
import { interpMatrix } from '../../src/graph/interp.js';
import { Scope } from '../../src/nn/params.js';
import { buildInference, initModel } from '../../src/models/build.js';
import { restrModel } from '../../src/models/restr/model.js';
import type { RestrConfig } from '../../src/models/restr/config.js';
import type { TrainInputs } from '../../src/models/model.js';
import { buildTrainStep } from '../../src/train/step.js';
import { StepRunner } from '../../src/train/runner.js';
import type { HostTensor } from '../../src/runtime/session.js';
import { maxAbs, maxAbsDiff, microConfig, pick, runOnnx, sampleInputs } from './restr-helpers.js';

const VARIANTS = [
  { variant: 'cme', share: false },
  { variant: 'cme', share: true },
  { variant: 'ime', share: false },
  { variant: 'ime', share: true },
  { variant: 'vme', share: false },
  { variant: 'vme', share: true },
] as const;

function inferenceModel(
  c: RestrConfig,
  batch: number | string,
  params: Map<string, Float32Array>,
): Uint8Array {
  const b = buildInference(restrModel, c, batch);
  return toModelProto(b.graph, { outputs: b.outputs, paramValues: params });
}

for (const { variant, share } of VARIANTS) {
  for (const decoder of [true, false]) {
    const name = `${variant}${share ? ' shared' : ''}, decoder ${decoder ? 'on' : 'off'}`;
    test(`runs in ORT (${name}): symbolic batch = static batch = one sample at a time`, async () => {
      const c = microConfig({ fusion: { variant, share, depth: 4 }, decoder });
      const params = initModel(restrModel, c, 11);
      const x = sampleInputs(c, [4, 1]);
      const sym = await runOnnx(inferenceModel(c, 'B', params), x);
      assert.deepEqual(sym.mask_logits!.shape, [2, 1, 32, 32]);
      assert.deepEqual(sym.patch_logits!.shape, [2, 16]);
      assert.ok((sym.mask_logits!.data as Float32Array).every(Number.isFinite));
      const stat = await runOnnx(inferenceModel(c, 2, params), x);
      const symLogits = sym.mask_logits!.data as Float32Array;
      assert.ok(
        maxAbsDiff(stat.mask_logits!.data as Float32Array, symLogits) <= 1e-6 * Math.max(1, maxAbs(symLogits)),
      );
      for (const b of [0, 1]) {
        const one = await runOnnx(inferenceModel(c, 'B', params), {
          image: pick(x.image, b),
          words: pick(x.words, b),
        });
        for (const k of ['mask_logits', 'patch_logits']) {
          const all = pick(sym[k]!, b).data as Float32Array;
          assert.ok(
            maxAbsDiff(one[k]!.data as Float32Array, all) <= 1e-5 * Math.max(1, maxAbs(all)),
            `${k} of sample ${b} depends on the batch`,
          );
        }
      }
    });
  }
}

test('padding words (id 0) have no influence: language encoder, VL and LS all mask them as keys', async () => {
  for (const variant of ['cme', 'ime', 'vme'] as const) {
    const c = microConfig({ fusion: { variant, depth: 2 } });
    const params = initModel(restrModel, c, 5);
    const x = sampleInputs(c, [3, 5]);
    const base = await runOnnx(inferenceModel(c, 'B', params), x);
    const scramble = (row: number) => {
      const p = new Map(params);
      const w = Float32Array.from(p.get('language.embed.weight')!);
      for (let j = 0; j < c.language.wordDim; j++)
        w[row * c.language.wordDim + j] = 3 * Math.sin(7 * j + row);
      p.set('language.embed.weight', w);
      return p;
    };
    const padChanged = await runOnnx(inferenceModel(c, 'B', scramble(0)), x);
    const firstWord = Number((x.words.data as BigInt64Array)[0]);
    const wordChanged = await runOnnx(inferenceModel(c, 'B', scramble(firstWord)), x);
    for (const k of ['mask_logits', 'patch_logits']) {
      const d = maxAbsDiff(padChanged[k]!.data as Float32Array, base[k]!.data as Float32Array);
      assert.ok(
        d <= 1e-6 * Math.max(1, maxAbs(base[k]!.data as Float32Array)),
        `${variant}: padding changed ${k} by ${d}`,
      );
    }
    // …while a real word does change the patch logits (the check above is not vacuous)
    assert.ok(
      maxAbsDiff(wordChanged.patch_logits!.data as Float32Array, base.patch_logits!.data as Float32Array) >
        1e-4,
      variant,
    );
  }
});

test('decoder off: mask_logits are the patch logits upsampled bilinearly (half_pixel) ×P', async () => {
  const c = microConfig({ decoder: false, imageSize: 24, patchSize: 6 });
  const out = await runOnnx(inferenceModel(c, 'B', initModel(restrModel, c, 2)), sampleInputs(c, [2, 6]));
  const [G, S] = [4, 24];
  const A = interpMatrix(G, S, 'half_pixel'); // [S, G]
  for (let b = 0; b < 2; b++) {
    const p = (out.patch_logits!.data as Float32Array).subarray(b * G * G, (b + 1) * G * G);
    const want = new Float32Array(S * S);
    for (let i = 0; i < S; i++)
      for (let j = 0; j < S; j++) {
        let v = 0;
        for (let u = 0; u < G; u++)
          for (let w = 0; w < G; w++) v += A[i * G + u]! * p[u * G + w]! * A[j * G + w]!;
        want[i * S + j] = v;
      }
    assert.ok(
      maxAbsDiff((out.mask_logits!.data as Float32Array).subarray(b * S * S, (b + 1) * S * S), want) <= 1e-5,
    );
  }
});

/** The drop-path keys the forward looks up (a Map that records `get`). */
function lookedUp(c: RestrConfig): { keys: string[]; graph: Graph } {
  const keys: string[] = [];
  const rec = new (class extends Map<string, { attn: Tensor; mlp: Tensor }> {
    override get(k: string) {
      keys.push(k);
      return undefined;
    }
  })();
  const g = new Graph('t');
  const s = Scope.root(g);
  const x = {
    image: g.input('image', 'float32', [1, 3, c.imageSize, c.imageSize]),
    tokens: g.input('words', 'int64', [1, c.language.maxWords]),
  };
  restrModel.forward(s, c, x, {
    mask: g.input('mask', 'float32', [1, 1, c.imageSize, c.imageSize]),
    extra: {},
    dropPath: rec,
  });
  return { keys, graph: g };
}

test('stochastic depth: one scale pair per block application, rates rising linearly as timm', () => {
  const c = microConfig({
    vision: { depth: 3, dropPath: 0.2 },
    language: { dropPath: 0 },
    fusion: { variant: 'cme', depth: 4, share: true, dropPath: 0.3 },
  });
  const { keys } = lookedUp(c);
  assert.deepEqual(keys, [
    'vision.blocks.0',
    'vision.blocks.1',
    'vision.blocks.2',
    'language.blocks.0',
    'fusion.vl.blocks.0',
    'fusion.vl.blocks.1',
    'fusion.ls.blocks.0',
    'fusion.ls.blocks.1',
  ]);
  const blocks = restrModel.dropPathBlocks(c);
  for (const b of blocks) assert.ok(keys.includes(b.name), `${b.name} is never looked up`);
  const rates = Object.fromEntries(blocks.map((b) => [b.name, b.rate]));
  assert.deepEqual(Object.keys(rates), [
    'vision.blocks.1',
    'vision.blocks.2',
    'fusion.vl.blocks.1',
    'fusion.ls.blocks.0',
    'fusion.ls.blocks.1',
  ]);
  assert.ok(
    Math.abs(rates['vision.blocks.1']! - 0.1) < 1e-12 && Math.abs(rates['vision.blocks.2']! - 0.2) < 1e-12,
  );
  assert.ok(
    Math.abs(rates['fusion.vl.blocks.1']! - 0.1) < 1e-12 &&
      Math.abs(rates['fusion.ls.blocks.1']! - 0.3) < 1e-12,
  );
});

test('share: one set of tensors, used by every application', () => {
  const c = microConfig({ fusion: { variant: 'ime', depth: 6, share: true } });
  const { graph } = lookedUp(c);
  const qkv = graph.params
    .filter((p) => /^fusion\.(vl|ls)\.blocks\.\d+\.attn\.qkv\.weight$/.test(p.name))
    .map((p) => p.name);
  assert.deepEqual(qkv.sort(), ['fusion.ls.blocks.0.attn.qkv.weight', 'fusion.vl.blocks.0.attn.qkv.weight']);
  const uses = (name: string) => graph.nodes.filter((n) => n.inputs.some((t) => t?.name === name)).length;
  assert.equal(uses('fusion.vl.blocks.0.attn.qkv.weight'), 3);
  assert.equal(uses('fusion.ls.blocks.0.attn.qkv.weight'), 3);
});

test('trains: the training step (loss Eq. 12, drop path fed) overfits one batch', async () => {
  const c = microConfig({ fusion: { variant: 'cme', share: true, depth: 2 } });
  const B = 2;
  const g = new Graph('restr-train');
  const s = Scope.root(g);
  const x = {
    image: g.input('image', 'float32', [B, 3, 32, 32]),
    tokens: g.input('words', 'int64', [B, c.language.maxWords]),
  };
  const dropPath = new Map(
    restrModel
      .dropPathBlocks(c)
      .map((b) => [
        b.name,
        {
          attn: g.input(`dp.${b.name}.attn`, 'float32', [B, 1, 1]),
          mlp: g.input(`dp.${b.name}.mlp`, 'float32', [B, 1, 1]),
        },
      ]),
  );
  const targets = restrModel.trainTargets(c, B);
  assert.deepEqual(targets, { patch_labels: { dtype: 'float32', shape: [B, 16] } });
  const train: TrainInputs = {
    mask: g.input('mask', 'float32', [B, 1, 32, 32]),
    extra: { patch_labels: g.input('patch_labels', 'float32', [B, 16]) },
    dropPath,
  };
  const loss = restrModel.loss(c, restrModel.forward(s, c, x, train), train);
  const step = buildTrainStep({
    registry: s.registry,
    loss,
    adamw: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 5e-4, clipNorm: 1 },
  });
  const runner = await StepRunner.create(step, initModel(restrModel, c, 3));
  const mask = new Float32Array(B * 32 * 32);
  for (let i = 0; i < 32; i++) for (let j = 0; j < 16; j++) mask[i * 32 + j] = 1; // sample 0: left half
  for (let i = 16; i < 32; i++) for (let j = 0; j < 32; j++) mask[1024 + i * 32 + j] = 1; // sample 1: bottom half
  const labels = Float32Array.from({ length: B * 16 }, (_, k) =>
    k < 16 ? (k % 4 < 2 ? 1 : 0) : k - 16 >= 8 ? 1 : 0,
  );
  const data: Record<string, HostTensor> = {
    ...sampleInputs(c, [3, 5]),
    mask: { dtype: 'float32', shape: [B, 1, 32, 32], data: mask },
    patch_labels: { dtype: 'float32', shape: [B, 16], data: labels },
  };
  for (const b of dropPath.keys())
    for (const k of ['attn', 'mlp'])
      data[`dp.${b}.${k}`] = { dtype: 'float32', shape: [B, 1, 1], data: Float32Array.of(1, 1) };
  const losses: number[] = [];
  for (let i = 0; i < 80; i++) {
    const r = await runner.step(data, 1e-2);
    assert.ok(r.finite);
    losses.push(r.loss);
  }
  await runner.dispose();
  assert.ok(
    losses.at(-1)! < 0.35 * losses[0]!,
    `loss should fall: ${losses[0]!.toFixed(4)} → ${losses.at(-1)!.toFixed(4)}`,
  );
});
