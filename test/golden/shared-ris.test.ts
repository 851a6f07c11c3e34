// Shared-RIS against a plain PyTorch re-implementation of spec/shared-ris.md §1–2
// (scripts/golden/shared_ris.py, torchscale's BEiT-3 code paths): from the same weights, inputs and
// drop-path scales, the traced training forward gives the same mask logits and loss, autodiff gives
// the same gradient for every parameter, the BatchNorm running statistics move as PyTorch's do
// (momentum 0.1, unbiased variance), and the inference graph (running statistics) gives the same
// logits as PyTorch in eval mode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { toModelProto } from '../../src/graph/onnx.js';
import { gradients } from '../../src/autodiff/grad.js';
import { Scope } from '../../src/nn/params.js';
import { type HostTensor, Session } from '../../src/runtime/session.js';
import { buildInference } from '../../src/models/build.js';
import { sharedRisModel } from '../../src/models/shared-ris/model.js';
import type { TrainInputs } from '../../src/models/model.js';
import { readFixture } from '../helpers/fixture.js';

const FIXTURE = fileURLToPath(
  new URL('../../../test/fixtures/golden/shared-ris.safetensors', import.meta.url),
);

/** max|a − b| / max|b| (the measure shared_ris.py reports for float32 vs float64). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-30);
}

const f32 = (shape: readonly number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });

test('golden Shared-RIS: training logits, loss, every gradient, BN running stats and inference logits match PyTorch', async (t) => {
  const fx = readFixture(FIXTURE);
  const c = sharedRisModel.validate(JSON.parse(fx.metadata.config!));
  const image = fx.get('input.image');
  const [B] = image.shape as [number];
  const [S, T] = [c.imageSize, c.maxTokens];

  const g = new Graph('golden-shared-ris');
  const s = Scope.root(g);
  const x = { image: g.input('image', 'float32', [B, 3, S, S]), tokens: g.input('text', 'int64', [B, T]) };
  const dropNames = JSON.parse(fx.metadata.drop_path!) as string[];
  const dropPath = new Map<string, { attn: Tensor; mlp: Tensor }>();
  for (const k of dropNames)
    dropPath.set(k, {
      attn: g.input(`droppath.${k}.attn`, 'float32', [B, 1, 1]),
      mlp: g.input(`droppath.${k}.mlp`, 'float32', [B, 1, 1]),
    });
  const train: TrainInputs = { mask: g.input('mask', 'float32', [B, 1, S, S]), extra: {}, dropPath };
  const out = sharedRisModel.forward(s, c, x, train);
  const loss = sharedRisModel.loss(c, out, train);

  // The PyTorch implementation's parameter and buffer lists (written from spec §3) are exactly ours.
  const specs = [...s.registry.specs.values()];
  const names = specs.filter((p) => !p.buffer).map((p) => p.name);
  const buffers = specs.filter((p) => p.buffer).map((p) => p.name);
  assert.deepEqual([...names].sort(), (JSON.parse(fx.metadata.params!) as string[]).sort());
  assert.deepEqual([...buffers].sort(), (JSON.parse(fx.metadata.buffers!) as string[]).sort());

  const grads = g.scope('backward', () =>
    gradients(
      loss,
      names.map((n) => s.registry.tensors.get(n)!),
    ),
  );
  const outputs = [g.named(out.maskLogits, 'mask_logits'), g.named(loss, 'loss')];
  grads.forEach((d, i) => outputs.push(g.named(d, `grad.${names[i]}`)));
  for (const b of buffers) outputs.push(g.named(out.bufferUpdates!.get(b)!, `running.${b}`));
  const session = await Session.create(toModelProto(g, { outputs }));

  const text: HostTensor = {
    dtype: 'int64',
    shape: [B, T],
    data: BigInt64Array.from(fx.get('input.text', [B, T]).data, (v) => BigInt(v)),
  };
  const weights: Record<string, HostTensor> = {};
  for (const n of names)
    weights[n] = f32(
      s.registry.specs.get(n)!.shape,
      fx.get(`param.${n}`, s.registry.specs.get(n)!.shape).data,
    );
  for (const b of buffers) weights[b] = f32([c.fpn.dim], fx.get(`buffer.${b}`, [c.fpn.dim]).data);
  const feeds: Record<string, HostTensor> = {
    ...weights,
    image: f32(image.shape, image.data),
    text,
    mask: f32([B, 1, S, S], fx.get('input.mask', [B, 1, S, S]).data),
  };
  for (const k of dropNames)
    for (const br of ['attn', 'mlp'])
      feeds[`droppath.${k}.${br}`] = f32([B, 1, 1], fx.get(`droppath.${k}.${br}`, [B, 1, 1]).data);
  const r = await session.run(feeds);
  await session.dispose();

  // inference: the exported graph with the same weights and the running statistics as initializers
  const inf = buildInference(sharedRisModel, c, 'B');
  const values = new Map(Object.entries(weights).map(([k, v]) => [k, v.data as Float32Array]));
  const infSession = await Session.create(
    toModelProto(inf.graph, { outputs: inf.outputs, paramValues: values }),
  );
  const ri = await infSession.run({ image: feeds.image!, text });
  await infSession.dispose();

  const errs: Record<string, number> = {
    mask_logits: relErr(r.mask_logits!.data as Float32Array, fx.get('out.mask_logits', [B, 1, S, S]).data),
    loss: relErr(r.loss!.data as Float32Array, fx.get('loss').data),
    mask_logits_eval: relErr(
      ri.mask_logits!.data as Float32Array,
      fx.get('out.mask_logits_eval', [B, 1, S, S]).data,
    ),
  };
  for (const n of names)
    errs[`grad.${n}`] = relErr(r[`grad.${n}`]!.data as Float32Array, fx.get(`grad.${n}`).data);
  for (const b of buffers)
    errs[`running.${b}`] = relErr(r[`running.${b}`]!.data as Float32Array, fx.get(`running.${b}`).data);
  const worst = Object.entries(errs).sort((a, b) => b[1] - a[1]);
  for (const [k, e] of worst)
    assert.ok(
      e <= 1e-4,
      `${k} differs from PyTorch by ${e.toExponential(2)} (relative), worst: ${JSON.stringify(worst.slice(0, 4))}`,
    );
  // the running statistics did move (the comparison is not of two unchanged buffers)
  for (const b of buffers)
    assert.ok(
      relErr(fx.get(`running.${b}`).data, fx.get(`buffer.${b}`).data) > 1e-3,
      `${b} did not change in PyTorch`,
    );
  const gradWorst = worst.find(([k]) => k.startsWith('grad.'))!;
  const runWorst = worst.find(([k]) => k.startsWith('running.'))!;
  t.diagnostic(
    `golden shared-ris: mask_logits ${errs.mask_logits!.toExponential(1)}, loss ${errs.loss!.toExponential(1)}, eval logits ${errs.mask_logits_eval!.toExponential(1)}, worst gradient ${gradWorst[0]} ${gradWorst[1].toExponential(1)}, worst running stat ${runWorst[1].toExponential(1)}`,
  );
});
