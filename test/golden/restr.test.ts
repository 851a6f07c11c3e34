// ReSTR against a plain PyTorch re-implementation of spec/restr.md §1–2 (scripts/golden/restr.py):
// from the same weights, inputs and drop-path scales, the traced forward gives the same mask and
// patch logits, the same loss, and autodiff gives the same gradient for every parameter.
// Cases: CME + decoder, IME + weight sharing + decoder, VME (odd depth) without decoder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { toModelProto } from '../../src/graph/onnx.js';
import { gradients } from '../../src/autodiff/grad.js';
import { Scope } from '../../src/nn/params.js';
import { type HostTensor, Session } from '../../src/runtime/session.js';
import { restrModel } from '../../src/models/restr/model.js';
import type { TrainInputs } from '../../src/models/model.js';
import { readFixture } from '../helpers/fixture.js';

const fixturePath = (c: string) =>
  fileURLToPath(new URL(`../../../test/fixtures/golden/restr-${c}.safetensors`, import.meta.url));

/** max|a − b| / max|b| (the measure restr.py reports for float32 vs float64). */
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

for (const name of ['cme', 'ime-share', 'vme-nodec']) {
  test(`golden ReSTR ${name}: logits, loss and every gradient match PyTorch`, async (t) => {
    const fx = readFixture(fixturePath(name));
    const c = restrModel.validate(JSON.parse(fx.metadata.config!));
    const image = fx.get('input.image');
    const [B] = image.shape as [number];
    const S = c.imageSize;
    const L = c.language.maxWords;
    const nv = (S / c.patchSize) ** 2;

    const g = new Graph(`golden-${name}`);
    const s = Scope.root(g);
    const x = { image: g.input('image', 'float32', [B, 3, S, S]), tokens: g.input('words', 'int64', [B, L]) };
    const dropNames = JSON.parse(fx.metadata.drop_path!) as string[];
    const dropPath = new Map<string, { attn: Tensor; mlp: Tensor }>();
    for (const k of dropNames) {
      dropPath.set(k, {
        attn: g.input(`droppath.${k}.attn`, 'float32', [B, 1, 1]),
        mlp: g.input(`droppath.${k}.mlp`, 'float32', [B, 1, 1]),
      });
    }
    const train: TrainInputs = {
      mask: g.input('mask', 'float32', [B, 1, S, S]),
      extra: { patch_labels: g.input('patch_labels', 'float32', [B, nv]) },
      ...(dropNames.length ? { dropPath } : {}),
    };
    const out = restrModel.forward(s, c, x, train);
    const loss = restrModel.loss(c, out, train);

    // The PyTorch implementation's parameter list (written from spec §3) is exactly ours.
    const names = [...s.registry.specs.keys()];
    assert.deepEqual([...names].sort(), (JSON.parse(fx.metadata.params!) as string[]).sort());
    // (A drop-path key the model does not look up would be an unknown input: ORT refuses the feed.)

    const params = names.map((n) => s.registry.tensors.get(n)!);
    const grads = g.scope('backward', () => gradients(loss, params));
    const outputs = [
      g.named(out.maskLogits, 'mask_logits'),
      g.named(out.extra.patch_logits!, 'patch_logits'),
      g.named(loss, 'loss'),
    ];
    grads.forEach((t, i) => outputs.push(g.named(t, `grad.${names[i]}`)));
    const session = await Session.create(toModelProto(g, { outputs }));

    const feeds: Record<string, HostTensor> = {
      image: f32(image.shape, image.data),
      words: {
        dtype: 'int64',
        shape: [B, L],
        data: BigInt64Array.from(fx.get('input.words', [B, L]).data, (v) => BigInt(v)),
      },
      mask: f32([B, 1, S, S], fx.get('input.mask', [B, 1, S, S]).data),
      patch_labels: f32([B, nv], fx.get('input.patch_labels', [B, nv]).data),
    };
    for (const n of names) {
      const p = fx.get(`param.${n}`, s.registry.specs.get(n)!.shape);
      feeds[n] = f32(p.shape, p.data);
    }
    for (const k of dropNames) {
      for (const b of ['attn', 'mlp'])
        feeds[`droppath.${k}.${b}`] = f32([B, 1, 1], fx.get(`droppath.${k}.${b}`, [B, 1, 1]).data);
    }
    const r = await session.run(feeds);
    await session.dispose();

    const errs: Record<string, number> = {};
    errs.mask_logits = relErr(
      r.mask_logits!.data as Float32Array,
      fx.get('out.mask_logits', [B, 1, S, S]).data,
    );
    errs.patch_logits = relErr(
      r.patch_logits!.data as Float32Array,
      fx.get('out.patch_logits', [B, nv]).data,
    );
    errs.loss = relErr(r.loss!.data as Float32Array, fx.get('loss').data);
    for (const n of names)
      errs[`grad.${n}`] = relErr(r[`grad.${n}`]!.data as Float32Array, fx.get(`grad.${n}`).data);
    const worst = Object.entries(errs).sort((a, b) => b[1] - a[1]);
    for (const [k, e] of worst)
      assert.ok(
        e <= 1e-4,
        `${name}: ${k} differs from PyTorch by ${e.toExponential(2)} (relative), worst: ${JSON.stringify(worst.slice(0, 4))}`,
      );
    const gradWorst = worst.find(([k]) => k.startsWith('grad.'))!;
    t.diagnostic(
      `golden restr-${name}: mask_logits ${errs.mask_logits!.toExponential(1)}, patch_logits ${errs.patch_logits!.toExponential(1)}, loss ${errs.loss!.toExponential(1)}, worst gradient ${gradWorst[0]} ${gradWorst[1].toExponential(1)}`,
    );
  });
}
