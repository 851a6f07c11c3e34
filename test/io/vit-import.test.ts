// Pretrained ViT import (src/models/vit-import.ts) on one tiny timm ViT written three ways by
// scripts/make-vit-fixtures.py (torch.save {'model': sd}, safetensors, Google's augreg .npz) plus the
// older plain and float16 timm fixtures of test/fixtures/io: every format gives the same timm
// tensors and the same vision.* parameters; pos_embed loses its class row and is resampled to other
// grids exactly as torch's F.interpolate(bicubic, align_corners=False); mismatches are refused with
// messages that name the tensor and the config field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { f16ArrayToF32 } from '../../src/io/float16.js';
import { loadNpz } from '../../src/io/npz.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import type { IoTensor } from '../../src/io/tensor.js';
import type { RestrConfig } from '../../src/models/restr/config.js';
import {
  VitImportError,
  googleToTimm,
  importVit,
  loadVitForRestr,
  readVitCheckpoint,
} from '../../src/models/vit-import.js';
import { readFixture } from '../helpers/fixture.js';
import { maxAbsDiff, microConfig } from '../models/restr-helpers.js';
import { fixturePath as ioFixture } from './helpers.js';

const vitFixture = (f: string): string =>
  fileURLToPath(new URL(`../../../test/fixtures/vit/${f}`, import.meta.url));

const FILES = ['vit_tiny_timm.pth', 'vit_tiny_timm.safetensors', 'vit_tiny_augreg.npz'] as const;

/** The fixture's ViT: patch 16, width 8, 2 heads, depth 2, MLP 32; `imageSize` sets the grid (64 → 4×4). */
const vitConfig = (imageSize = 64, vision: Partial<RestrConfig['vision']> = {}): RestrConfig =>
  microConfig({
    imageSize,
    patchSize: 16,
    vision: { dim: 8, depth: 2, heads: 2, mlpDim: 32, ...vision },
    fusion: { dim: 8 },
  });

const f32 = (t: IoTensor): Float32Array =>
  t.dtype === 'float16' ? f16ArrayToF32(t.data as Uint16Array) : (t.data as Float32Array);

const reference = () => loadSafetensors(vitFixture('vit_tiny_timm.safetensors')).tensors;

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VitImportError, `expected VitImportError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

test('the three formats hold the same timm tensors (npz converted as timm _load_weights does)', () => {
  const ref = reference();
  const formats: Record<string, string> = {};
  for (const f of FILES) {
    const s = readVitCheckpoint(vitFixture(f));
    formats[f] = s.format + (s.note ? ` (${s.note})` : '');
    assert.deepEqual([...s.tensors.keys()].sort(), [...ref.keys()].sort(), f);
    for (const [k, t] of ref) {
      const u = s.tensors.get(k)!;
      assert.deepEqual(u.shape, t.shape, `${f} ${k}`);
      assert.deepEqual(f32(u), f32(t), `${f} ${k}`); // transposes and concatenations are exact
    }
  }
  assert.deepEqual(formats, {
    'vit_tiny_timm.pth': "torch (state dict under key 'model')",
    'vit_tiny_timm.safetensors': 'safetensors',
    'vit_tiny_augreg.npz': 'npz',
  });
});

test('same grid: vision.* are the checkpoint tensors by name, class token and its position dropped, head ignored', () => {
  const ref = reference();
  const c = vitConfig(64);
  const results = FILES.map((f) => loadVitForRestr(vitFixture(f), c));
  for (const r of results) {
    assert.equal(r.resampled, undefined);
    assert.equal(r.prefixTokens, 1);
    assert.deepEqual(r.skipped.sort(), ['cls_token', 'head.bias', 'head.weight']);
    assert.equal(r.params.size, 4 + 2 * 12 + 2 - 1); // patch w/b, pos, blocks × 12, norm w/b
    for (const [k, v] of r.params) {
      const t = ref.get(k.slice('vision.'.length))!;
      const want = k === 'vision.pos_embed' ? f32(t).subarray(8) : f32(t);
      assert.deepEqual(v, want, k);
    }
    assert.deepEqual([...r.params.keys()], [...results[0]!.params.keys()]);
  }
});

test('pos_embed resampled 4×4 → 6×6, 3×3, 9×9 matches torch F.interpolate(bicubic) within 1e-5', (t) => {
  const expected = readFixture(vitFixture('vit_tiny_expected.safetensors'));
  for (const G of [6, 3, 9]) {
    const want = expected.get(`pos_grid_${G}`, [1, G * G, 8]).data;
    for (const f of FILES) {
      const r = loadVitForRestr(vitFixture(f), vitConfig(16 * G));
      assert.deepEqual(r.resampled, { from: 4, to: G });
      const got = r.params.get('vision.pos_embed')!;
      assert.equal(got.length, G * G * 8);
      const diff = maxAbsDiff(got, want);
      assert.ok(diff <= 1e-5, `${f} → ${G}×${G}: max |diff| ${diff}`);
      if (f === FILES[0]) t.diagnostic(`4×4 → ${G}×${G}: max |ours − torch| = ${diff.toExponential(2)}`);
    }
  }
});

test('plain timm state dict (io/vit_tiny.pth, patch 4, 2×2 grid) and float16 safetensors are imported too', () => {
  const c = microConfig({
    imageSize: 8,
    patchSize: 4,
    vision: { dim: 8, depth: 1, heads: 2, mlpDim: 16 },
    fusion: { dim: 8 },
  });
  const plain = loadVitForRestr(ioFixture('vit_tiny.pth'), c);
  assert.equal(plain.format, 'torch');
  assert.equal(plain.note, undefined);
  const half = loadVitForRestr(ioFixture('vit_tiny_f16.safetensors'), c);
  const ref = readVitCheckpoint(ioFixture('vit_tiny_f16.safetensors')).tensors;
  for (const [k, v] of half.params) {
    const t = ref.get(k.slice('vision.'.length))!;
    assert.equal(t.dtype, 'float16');
    assert.deepEqual(v, k === 'vision.pos_embed' ? f32(t).subarray(8) : f32(t), k);
    assert.ok(maxAbsDiff(v, plain.params.get(k)!) < 1e-2, k); // the same weights, rounded to half
  }
});

test('no_embed_class checkpoints (square pos_embed beside a class token) keep every row', () => {
  const state = new Map(reference());
  const pos = state.get('pos_embed')!;
  state.set('pos_embed', { dtype: 'float32', shape: [1, 16, 8], data: f32(pos).slice(8) });
  const r = importVit(state, vitConfig(64), 'no-embed-class');
  assert.equal(r.prefixTokens, 0);
  assert.deepEqual(r.params.get('vision.pos_embed'), f32(pos).slice(8));
});

test('mismatches are refused naming the tensor and the config field', () => {
  const ref = reference();
  const withState = (edit: (m: Map<string, IoTensor>) => void) => {
    const m = new Map(ref);
    edit(m);
    return m;
  };
  refused(
    () =>
      loadVitForRestr(
        vitFixture('vit_tiny_timm.pth'),
        microConfig({
          imageSize: 64,
          patchSize: 8,
          vision: { dim: 8, depth: 2, heads: 2, mlpDim: 32 },
          fusion: { dim: 8 },
        }),
      ),
    /vit_tiny_timm\.pth: the checkpoint's patch size is 16×16 \('patch_embed\.proj\.weight' \[8,3,16,16\]\), the config's patchSize is 8/,
  );
  refused(() => importVit(ref, vitConfig(64, { dim: 16, heads: 2 })), /width is 8 .*vision\.dim is 16/);
  refused(
    () => importVit(ref, vitConfig(64, { depth: 3 })),
    /the checkpoint has 2 blocks, the config's vision\.depth is 3/,
  );
  refused(
    () => importVit(ref, vitConfig(64, { mlpDim: 64 })),
    /tensor 'blocks\.0\.mlp\.fc1\.weight' is \[32,8\], the config needs \[64,8\] \(set vision\.mlpDim/,
  );
  refused(
    () =>
      importVit(
        withState((m) => m.delete('blocks.1.norm2.bias')),
        vitConfig(),
      ),
    /tensor 'blocks\.1\.norm2\.bias' \[8\] is missing/,
  );
  refused(
    () =>
      importVit(
        withState((m) => m.delete('patch_embed.proj.weight')),
        vitConfig(),
      ),
    /'patch_embed\.proj\.weight' is missing \(not a timm ViT state dict\?\)/,
  );
  refused(
    () =>
      importVit(
        withState((m) =>
          m.set('blocks.0.ls1.gamma', { dtype: 'float32', shape: [8], data: new Float32Array(8) }),
        ),
        vitConfig(),
      ),
    /unexpected tensor 'blocks\.0\.ls1\.gamma' \[8\] \(not part of a plain ViT/,
  );
  refused(
    () =>
      importVit(
        withState((m) => {
          const d = Float32Array.from(f32(m.get('norm.bias')!));
          d[3] = Number.NaN;
          m.set('norm.bias', { dtype: 'float32', shape: [8], data: d });
        }),
        vitConfig(),
      ),
    /tensor 'norm\.bias' has a non-finite value at index 3/,
  );
  refused(
    () =>
      importVit(
        withState((m) =>
          m.set('pos_embed', { dtype: 'float32', shape: [1, 19, 8], data: new Float32Array(19 * 8) }),
        ),
        vitConfig(),
      ),
    /'pos_embed' has 19 rows: neither 1 prefix token \+ a square grid nor a square grid/,
  );
  refused(
    () =>
      importVit(
        withState((m) => {
          m.delete('norm.weight');
          m.delete('norm.bias');
          m.set('fc_norm.weight', m.get('blocks.0.norm1.weight')!);
        }),
        vitConfig(),
      ),
    /tensor 'norm\.weight' \[8\] is missing \(this checkpoint's final LayerNorm is fc_norm/,
  );
  refused(
    () =>
      importVit(
        withState((m) =>
          m.set('patch_embed.proj.weight', { ...m.get('patch_embed.proj.weight')!, dtype: 'int32' }),
        ),
        vitConfig(),
      ),
    /tensor 'patch_embed\.proj\.weight' is int32, expected a floating-point type/,
  );
});

test('bad npz and non-checkpoint files are refused with the file and the array named', () => {
  const npz = vitFixture('vit_tiny_augreg.npz');
  const w = loadNpz(npz);
  const without = new Map(w);
  without.delete('Transformer/encoderblock_1/MlpBlock_3/Dense_0/bias');
  refused(
    () => googleToTimm(without, npz),
    /vit_tiny_augreg\.npz: array 'Transformer\/encoderblock_1\/MlpBlock_3\/Dense_0\/bias' is missing/,
  );
  const extra = new Map(w).set('Transformer/encoderblock_0/LayerScale_0/scale', w.get('embedding/bias')!);
  refused(
    () => googleToTimm(extra, npz),
    /unexpected array 'Transformer\/encoderblock_0\/LayerScale_0\/scale'/,
  );
  const bv = new Map([...w].map(([k, v]) => [`params/${k}`, v]));
  refused(() => googleToTimm(bv, npz), /big_vision's \.npz layout .* is not supported/);
  refused(
    () => googleToTimm(new Map([['foo', w.get('cls')!]]), 'x.npz'),
    /not a Google ViT \.npz: no 'embedding\/kernel' array \(it holds: foo\)/,
  );
  // Original ViT releases: the model under opt/target/, optimizer state beside it (ignored).
  const orig = new Map([...w].map(([k, v]) => [`opt/target/${k}`, v]));
  orig.set('opt/state/step', { dtype: 'int64', shape: [], data: new BigInt64Array(1) });
  assert.deepEqual([...googleToTimm(orig, npz).keys()], [...googleToTimm(w, npz).keys()]);

  // a pickle that is not a zip (torch < 1.6 format), a text file, a zip of something else
  assert.throws(
    () => readVitCheckpoint(ioFixture('refs_p2.p')),
    /legacy \(pre-1\.6, non-zip\) torch\.save format/,
  );
  assert.throws(
    () => readVitCheckpoint(vitFixture('glove_tiny.txt')),
    /glove_tiny\.txt: not a ViT checkpoint: neither a zip \(torch \.pth, Google \.npz\) nor safetensors/,
  );
  // a training checkpoint: the state dict under 'model' beside other entries, but not a ViT's
  assert.equal(readVitCheckpoint(ioFixture('torch_views.pth')).note, "state dict under key 'model'");
  refused(
    () => loadVitForRestr(ioFixture('torch_views.pth'), vitConfig()),
    /torch_views\.pth: tensor 'patch_embed\.proj\.weight' is missing/,
  );
  // an npz of other arrays
  assert.throws(() => readVitCheckpoint(ioFixture('arrays.npz')), /not a Google ViT \.npz/);
});
