// Shared-RIS forward in ONNX Runtime on a micro config: symbolic batch = static batch = one sample at
// a time; padding tokens have no influence anywhere (encoder, FPN, decoder); BatchNorm uses batch
// statistics in training (running stats untouched by the loss, updated with momentum 0.1) and running
// statistics in inference; stochastic depth is wired per layer; the loss is Eq. 12; the training
// step overfits one batch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { toModelProto } from '../../src/graph/onnx.js';
import { Scope } from '../../src/nn/params.js';
import { buildInference, initModel, parameterSpecs } from '../../src/models/build.js';
import { sharedRisModel } from '../../src/models/shared-ris/model.js';
import type { SharedRisConfig } from '../../src/models/shared-ris/config.js';
import type { TrainInputs } from '../../src/models/model.js';
import { buildTrainStep } from '../../src/train/step.js';
import { StepRunner } from '../../src/train/runner.js';
import type { HostTensor } from '../../src/runtime/session.js';
import { maxAbs, maxAbsDiff, pick, runOnnx } from './restr-helpers.js';
import { livelyParams, microConfig, sampleInputs } from './shared-ris-helpers.js';

/** Parameters (and buffers) as graph feeds. */
function weightFeeds(params: Map<string, Float32Array>): Record<string, HostTensor> {
  const c = microConfig();
  const shapes = new Map(parameterSpecs(sharedRisModel, c).map((s) => [s.name, s.shape]));
  return Object.fromEntries(
    [...params].map(([k, v]) => [k, { dtype: 'float32', shape: shapes.get(k)!, data: v }]),
  );
}

function inferenceModel(
  c: SharedRisConfig,
  batch: number | string,
  params: Map<string, Float32Array>,
): Uint8Array {
  const b = buildInference(sharedRisModel, c, batch);
  return toModelProto(b.graph, { outputs: b.outputs, paramValues: params });
}

test('runs in ORT: symbolic batch = static batch = one sample at a time; the token input is `text`', async () => {
  const c = microConfig();
  const params = livelyParams(c, 11);
  const x = sampleInputs(c, [4, 1]);
  const b = buildInference(sharedRisModel, c, 'B');
  assert.deepEqual(
    b.inputs.map((t) => [t.name, t.dtype, t.shape]),
    [
      ['image', 'float32', ['B', 3, 32, 32]],
      ['text', 'int64', ['B', 6]],
    ],
  );
  assert.deepEqual(
    b.outputs.map((t) => t.name),
    ['mask_logits'],
  );
  const sym = await runOnnx(inferenceModel(c, 'B', params), x);
  assert.deepEqual(sym.mask_logits!.shape, [2, 1, 32, 32]);
  const all = sym.mask_logits!.data as Float32Array;
  assert.ok(all.every(Number.isFinite));
  assert.ok(maxAbs(all) > 1e-3, 'logits are not all zero');
  const stat = await runOnnx(inferenceModel(c, 2, params), x);
  assert.ok(maxAbsDiff(stat.mask_logits!.data as Float32Array, all) <= 1e-6 * Math.max(1, maxAbs(all)));
  for (const k of [0, 1]) {
    const one = await runOnnx(inferenceModel(c, 'B', params), {
      image: pick(x.image, k),
      text: pick(x.text, k),
    });
    const want = pick(sym.mask_logits!, k).data as Float32Array;
    assert.ok(
      maxAbsDiff(one.mask_logits!.data as Float32Array, want) <= 1e-5 * Math.max(1, maxAbs(want)),
      `sample ${k} depends on the batch (inference BatchNorm must use running statistics)`,
    );
  }
});

test('padding tokens (id 1) have no influence: encoder, FPN and decoder all mask them as keys', async () => {
  const c = microConfig();
  const params = livelyParams(c, 5);
  const x = sampleInputs(c, [2, 3]);
  const base = await runOnnx(inferenceModel(c, 'B', params), x);
  const withRow = (row: number) => {
    const p = new Map(params);
    const w = Float32Array.from(p.get('beit3.text_embed.weight')!);
    for (let j = 0; j < c.encoder.dim; j++) w[row * c.encoder.dim + j] = 3 * Math.sin(7 * j + row);
    p.set('beit3.text_embed.weight', w);
    return p;
  };
  // the <pad> row of the table, and the text positions only padding reads
  const padChanged = withRow(1);
  const posB = Float32Array.from(params.get('beit3.encoder.embed_positions.B.weight')!);
  for (let j = 0; j < c.encoder.dim; j++) posB[(2 + 5) * c.encoder.dim + j] += 5; // position 5 is padding in both samples
  padChanged.set('beit3.encoder.embed_positions.B.weight', posB);
  const out = await runOnnx(inferenceModel(c, 'B', padChanged), x);
  const d = maxAbsDiff(out.mask_logits!.data as Float32Array, base.mask_logits!.data as Float32Array);
  assert.ok(
    d <= 1e-5 * Math.max(1, maxAbs(base.mask_logits!.data as Float32Array)),
    `padding changed the logits by ${d}`,
  );
  // …while a real word does change them (the check above is not vacuous)
  const word = Number((x.text.data as BigInt64Array)[1]);
  const wordChanged = await runOnnx(inferenceModel(c, 'B', withRow(word)), x);
  assert.ok(
    maxAbsDiff(wordChanged.mask_logits!.data as Float32Array, base.mask_logits!.data as Float32Array) > 1e-4,
  );
});

/** The drop-path keys the forward looks up (a Map that records `get`). */
function lookedUp(c: SharedRisConfig): string[] {
  const keys: string[] = [];
  const rec = new (class extends Map<string, { attn: Tensor; mlp: Tensor }> {
    override get(k: string) {
      keys.push(k);
      return undefined;
    }
  })();
  const g = new Graph('t');
  const s = Scope.root(g);
  const S = c.imageSize;
  sharedRisModel.forward(
    s,
    c,
    { image: g.input('image', 'float32', [1, 3, S, S]), tokens: g.input('text', 'int64', [1, c.maxTokens]) },
    { mask: g.input('mask', 'float32', [1, 1, S, S]), extra: {}, dropPath: rec },
  );
  return keys;
}

test('stochastic depth: one scale pair per BEiT-3 layer, rates np.linspace(0, 0.1, L) as torchscale', () => {
  const c = microConfig({ encoder: { depth: 3, dropPath: 0.1 }, fpn: { stages: [1, 3] } });
  assert.deepEqual(lookedUp(c), [
    'beit3.encoder.layers.0',
    'beit3.encoder.layers.1',
    'beit3.encoder.layers.2',
  ]);
  const blocks = sharedRisModel.dropPathBlocks(c);
  assert.deepEqual(
    blocks.map((b) => b.name),
    ['beit3.encoder.layers.1', 'beit3.encoder.layers.2'],
  );
  assert.ok(Math.abs(blocks[0]!.rate - 0.05) < 1e-12 && Math.abs(blocks[1]!.rate - 0.1) < 1e-12);
  assert.deepEqual(sharedRisModel.dropPathBlocks(microConfig({ encoder: { dropPath: 0 } })), []);
});

test('loss (Eq. 12): 2·BCE + 0.5·Dice with Dice per sample 1 − (2Σpy + 1)/(Σp + Σy + 1), batch mean', async () => {
  const c = microConfig();
  const [B, S] = [2, 4];
  const g = new Graph('loss');
  const z = g.input('z', 'float32', [B, 1, S, S]);
  const y = g.input('y', 'float32', [B, 1, S, S]);
  const loss = sharedRisModel.loss(c, { maskLogits: z, extra: {} }, { mask: y, extra: {} });
  const zs = Float32Array.from({ length: B * S * S }, (_, i) => 3 * Math.sin(1.7 * i));
  const ys = Float32Array.from({ length: B * S * S }, (_, i) => (i % 3 === 0 || i > 25 ? 1 : 0));
  const r = await runOnnx(toModelProto(g, { outputs: [g.named(loss, 'loss')] }), {
    z: { dtype: 'float32', shape: [B, 1, S, S], data: zs },
    y: { dtype: 'float32', shape: [B, 1, S, S], data: ys },
  });
  let bce = 0;
  const dice: number[] = [];
  for (let b = 0; b < B; b++) {
    let [py, ps, yy] = [0, 0, 0];
    for (let i = b * S * S; i < (b + 1) * S * S; i++) {
      const p = 1 / (1 + Math.exp(-zs[i]!));
      bce -= ys[i]! * Math.log(p) + (1 - ys[i]!) * Math.log(1 - p);
      [py, ps, yy] = [py + p * ys[i]!, ps + p, yy + ys[i]!];
    }
    dice.push(1 - (2 * py + 1) / (ps + yy + 1));
  }
  const want = (2 * bce) / (B * S * S) + (0.5 * (dice[0]! + dice[1]!)) / 2;
  const got = (r.loss!.data as Float32Array)[0]!;
  assert.ok(Math.abs(got - want) < 1e-5 * Math.abs(want), `loss ${got}, expected ${want}`);
});

/** The training graph (batch statistics, drop path fed) and its step. */
function trainGraph(c: SharedRisConfig, B: number | string) {
  const g = new Graph('shared-ris-train');
  const s = Scope.root(g);
  const S = c.imageSize;
  const x = {
    image: g.input('image', 'float32', [B, 3, S, S]),
    tokens: g.input('text', 'int64', [B, c.maxTokens]),
  };
  const dropPath = new Map(
    sharedRisModel.dropPathBlocks(c).map((b) => [
      b.name,
      {
        attn: g.input(`dp.${b.name}.attn`, 'float32', [B, 1, 1]),
        mlp: g.input(`dp.${b.name}.mlp`, 'float32', [B, 1, 1]),
      },
    ]),
  );
  const train: TrainInputs = { mask: g.input('mask', 'float32', [B, 1, S, S]), extra: {}, dropPath };
  const out = sharedRisModel.forward(s, c, x, train);
  const loss = sharedRisModel.loss(c, out, train);
  return { s, out, loss, dropPath };
}

test('BatchNorm: batch statistics in training (running stats never reach the loss), running stats in inference', async () => {
  const c = microConfig();
  const { s, out, loss } = trainGraph(c, 2);
  const buffers = [...s.registry.specs.values()].filter((p) => p.buffer).map((p) => p.name);
  assert.deepEqual(buffers, [
    'decoder.convs.0.bn.running_mean',
    'decoder.convs.0.bn.running_var',
    'decoder.convs.1.bn.running_mean',
    'decoder.convs.1.bn.running_var',
  ]);
  assert.deepEqual([...out.bufferUpdates!.keys()].sort(), [...buffers].sort());
  // the loss does not depend on the running statistics: no path from them to it
  const reaches = new Set<Tensor>();
  const visit = (t: Tensor) => {
    if (reaches.has(t)) return;
    reaches.add(t);
    for (const i of t.producer?.inputs ?? []) if (i) visit(i);
  };
  visit(loss);
  for (const b of buffers)
    assert.ok(!reaches.has(s.registry.tensors.get(b)!), `${b} reaches the training loss`);
  // a symbolic batch counts B·H·W at run time: the running-stat updates equal the static graph's
  const x0 = sampleInputs(c, [3, 2]);
  const mask = { dtype: 'float32', shape: [2, 1, 32, 32], data: new Float32Array(2 * 32 * 32) } as const;
  const updates = async (B: number | string) => {
    const t = trainGraph(c, B);
    const g = t.loss.graph;
    const outs = [...t.out.bufferUpdates!].map(([k, v]) => g.named(v, `new.${k}`));
    const feeds: Record<string, HostTensor> = { ...x0, mask, ...weightFeeds(livelyParams(c, 4)) };
    for (const k of t.dropPath.keys())
      for (const br of ['attn', 'mlp'])
        feeds[`dp.${k}.${br}`] = { dtype: 'float32', shape: [2, 1, 1], data: Float32Array.of(1, 1) };
    return runOnnx(toModelProto(g, { outputs: outs }), feeds);
  };
  const [stat, sym] = [await updates(2), await updates('B')];
  for (const k of Object.keys(stat)) {
    const a = stat[k]!.data as Float32Array;
    assert.ok(maxAbsDiff(a, sym[k]!.data as Float32Array) <= 1e-6 * Math.max(1, maxAbs(a)), k);
  }
  // inference reads them: shifting running_mean changes the output
  const params = livelyParams(c, 4);
  const x = sampleInputs(c, [3, 2]);
  const base = await runOnnx(inferenceModel(c, 'B', params), x);
  const shifted = new Map(params).set(
    'decoder.convs.1.bn.running_mean',
    new Float32Array(c.fpn.dim).fill(0.5),
  );
  const moved = await runOnnx(inferenceModel(c, 'B', shifted), x);
  assert.ok(
    maxAbsDiff(moved.mask_logits!.data as Float32Array, base.mask_logits!.data as Float32Array) > 1e-3,
  );
});

test('trains: the training step (Eq. 12, drop path fed) overfits one batch and updates the BN running stats', async (t) => {
  const c = microConfig();
  const B = 2;
  const S = c.imageSize;
  const { s, out, loss, dropPath } = trainGraph(c, B);
  const step = buildTrainStep({
    registry: s.registry,
    loss,
    adamw: { beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 5e-4, clipNorm: 1 },
    bufferUpdates: out.bufferUpdates!,
  });
  assert.equal(step.buffers.length, 4);
  const init = initModel(sharedRisModel, c, 3);
  const runner = await StepRunner.create(step, init);
  const mask = new Float32Array(B * S * S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S / 2; j++) mask[i * S + j] = 1; // sample 0: left half
  for (let i = S / 2; i < S; i++) for (let j = 0; j < S; j++) mask[S * S + i * S + j] = 1; // sample 1: bottom half
  const data: Record<string, HostTensor> = {
    ...sampleInputs(c, [3, 2]),
    mask: { dtype: 'float32', shape: [B, 1, S, S], data: mask },
  };
  for (const b of dropPath.keys())
    for (const k of ['attn', 'mlp'])
      data[`dp.${b}.${k}`] = { dtype: 'float32', shape: [B, 1, 1], data: Float32Array.of(1, 1) };
  const losses: number[] = [];
  let runningMean: Float32Array | undefined;
  for (let i = 0; i < 20; i++) {
    const r = await runner.step(data, 3e-3);
    assert.ok(r.finite);
    losses.push(r.loss);
    if (i === 0)
      runningMean = Float32Array.from(runner.state().buffers.get('decoder.convs.0.bn.running_mean')!);
  }
  const st = runner.state();
  await runner.dispose();
  // after one step from (0, 1): running_mean = 0.1·batch mean ≠ 0; the variance estimate moves off 1 and stays positive
  assert.ok(maxAbs(runningMean!) > 1e-6, 'running_mean was not updated');
  const rv = st.buffers.get('decoder.convs.1.bn.running_var')!;
  assert.ok(
    rv.every((v) => v > 0 && Number.isFinite(v)) &&
      maxAbsDiff(rv, new Float32Array(rv.length).fill(1)) > 1e-3,
  );
  t.diagnostic(`loss ${losses[0]!.toFixed(4)} → ${losses.at(-1)!.toFixed(4)} in ${losses.length} steps`);
  assert.ok(
    losses.at(-1)! < 0.5 * losses[0]!,
    `loss should fall: ${losses[0]!.toFixed(4)} → ${losses.at(-1)!.toFixed(4)}`,
  );
});
