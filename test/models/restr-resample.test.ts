// `refseg resample` (src/models/restr/resample.ts): the resized patch embedding against a
// hand-written ×2 bilinear upsampling, the folded decoder head against a hand matrix product, what
// is kept, that the result is a complete checkpoint of the new config that runs, and the errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelCommands } from '../../src/cli/model-commands.js';
import { initModel } from '../../src/models/build.js';
import {
  decodeModelCheckpoint,
  encodeModelCheckpoint,
  loadModelCheckpoint,
  saveModelCheckpoint,
} from '../../src/models/checkpoint.js';
import { exportModel } from '../../src/models/export.js';
import { restrModel } from '../../src/models/restr/model.js';
import { ResampleError, resampleRestr, shrinkPatchEmbed } from '../../src/models/restr/resample.js';
import { resolveConfig } from '../../src/models/registry.js';
import { Rng } from '../../src/data/random.js';
import { runCli } from '../helpers/cli.js';
import { microConfig, runOnnx, sampleInputs } from './restr-helpers.js';

const resample = modelCommands.resample!;

/** Half-pixel ×2 upsampling of one row by hand: out[2i] = ¾x[i] + ¼x[i-1], out[2i+1] = ¾x[i] + ¼x[i+1], clamped. */
function up2(x: readonly number[]): number[] {
  const n = x.length;
  const at = (i: number) => x[Math.min(Math.max(i, 0), n - 1)]!;
  return Array.from({ length: 2 * n }, (_, o) => {
    const i = o >> 1;
    return 0.75 * at(i) + 0.25 * at(o % 2 ? i + 1 : i - 1);
  });
}

/** A p×p patch upsampled to 2p×2p: rows, then columns (bilinear is separable). */
function up2d(x: number[][]): number[][] {
  const rows = x.map(up2);
  const cols = rows[0]!.map((_, c) => up2(rows.map((r) => r[c]!)));
  return cols[0]!.map((_, r) => cols.map((col) => col[r]!));
}

test('shrinkPatchEmbed: the new token of a patch is the old token of that patch upsampled ×2', () => {
  const r = Rng.from('resample', 1);
  const [D, P, p] = [3, 8, 4];
  const w = Float32Array.from({ length: D * 3 * P * P }, () => r.float(-1, 1));
  const wn = shrinkPatchEmbed(w, P, p);
  assert.equal(wn.length, D * 3 * p * p);
  for (let trial = 0; trial < 3; trial++) {
    const x = Array.from({ length: 3 }, () =>
      Array.from({ length: p }, () => Array.from({ length: p }, () => r.float(-1, 1))),
    );
    const big = x.map(up2d);
    for (let d = 0; d < D; d++) {
      let newToken = 0;
      let oldToken = 0;
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < p; y++)
          for (let xx = 0; xx < p; xx++) newToken += wn[((d * 3 + c) * p + y) * p + xx]! * x[c]![y]![xx]!;
        for (let y = 0; y < P; y++)
          for (let xx = 0; xx < P; xx++) oldToken += w[((d * 3 + c) * P + y) * P + xx]! * big[c]![y]![xx]!;
      }
      assert.ok(Math.abs(newToken - oldToken) < 1e-5, `output ${d}: ${newToken} vs ${oldToken}`);
    }
  }
  // A constant patch keeps its token: each (output, channel) map keeps its sum.
  for (let m = 0; m < D * 3; m++) {
    const sum = (a: Float32Array, n: number) => a.subarray(m * n, (m + 1) * n).reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sum(wn, p * p) - sum(w, P * P)) < 1e-5);
  }
});

test('resampleRestr: P 8 → 4 keeps the grid-free weights, folds the last decoder block into the head', () => {
  const c = microConfig(); // 32 px, P = 8: 4×4 grid, K = 3 decoder blocks
  const params = initModel(restrModel, c, 3);
  const r = resampleRestr(c, params, { patchSize: 4 });
  assert.equal(r.config.patchSize, 4);
  assert.equal(r.config.imageSize, 32);
  // Every parameter of the new config, nothing else: it encodes as a checkpoint.
  const back = decodeModelCheckpoint(encodeModelCheckpoint(restrModel, r.config, r.params));
  assert.equal(back.params.size, params.size - 1);
  assert.equal(r.params.has('decoder.blocks.2.proj.weight'), false);
  for (const [k, v] of params) {
    if (k === 'vision.patch_embed.proj.weight' || k === 'vision.pos_embed' || k.startsWith('decoder.'))
      continue;
    assert.deepEqual(r.params.get(k), v, k);
  }
  for (const k of ['decoder.blocks.0.proj.weight', 'decoder.blocks.1.proj.weight'])
    assert.deepEqual(r.params.get(k), params.get(k), k);
  assert.equal(r.params.get('vision.pos_embed')!.length, 8 * 8 * c.vision.dim);
  // head' = head · W2: head [1, 4], W2 [4, 8] (2·16 channels halved three times: 32 → 16 → 8 → 4).
  const head = params.get('decoder.head.weight')!;
  const w2 = params.get('decoder.blocks.2.proj.weight')!;
  assert.equal(head.length, 4);
  assert.equal(w2.length, 4 * 8);
  const folded = r.params.get('decoder.head.weight')!;
  assert.equal(folded.length, 8);
  for (let i = 0; i < 8; i++) {
    let s = 0;
    for (let o = 0; o < 4; o++) s += head[o]! * w2[o * 8 + i]!;
    assert.ok(Math.abs(folded[i]! - s) < 1e-6, `head[${i}]`);
  }
  assert.deepEqual(r.changes.length, 3);
});

test('resampleRestr: a new image size resamples only the position table', () => {
  const c = microConfig();
  const params = initModel(restrModel, c, 4);
  const r = resampleRestr(c, params, { imageSize: 48 });
  assert.equal(r.config.imageSize, 48);
  assert.equal(r.params.get('vision.pos_embed')!.length, 6 * 6 * c.vision.dim);
  for (const [k, v] of params) if (k !== 'vision.pos_embed') assert.equal(r.params.get(k), v, k);
  assert.deepEqual(r.changes, ['vision.pos_embed: 4×4 → 6×6 grid (bicubic)']);
});

test('resampleRestr: refuses a coarser or non-power-of-two patch, an invalid result, and no change', () => {
  const c = microConfig();
  const params = initModel(restrModel, c, 5);
  const cases: [Parameters<typeof resampleRestr>[2], RegExp][] = [
    [{ patchSize: 16 }, /patch size 16: only a finer grid/],
    [{ patchSize: 3 }, /patch size 3: only a finer grid/],
    [{ imageSize: 36 }, /resampled config is not valid: .*patchSize/],
    [{ patchSize: 8 }, /nothing to change/],
  ];
  for (const [target, re] of cases)
    assert.throws(
      () => resampleRestr(c, params, target, 'ck.safetensors'),
      (e: unknown) =>
        e instanceof ResampleError && /^ck\.safetensors: /.test(e.message) && re.test(e.message),
      JSON.stringify(target),
    );
});

test('refseg resample: writes a checkpoint of the finer grid that runs; usage errors exit 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'refseg-resample-'));
  try {
    const c = microConfig();
    const src = join(dir, 'p8.safetensors');
    await saveModelCheckpoint(src, restrModel, c, initModel(restrModel, c, 6), { vocab: ['<pad>', '<unk>'] });
    const out = join(dir, 'p4.safetensors');
    const ok = await runCli(t, resample, ['--checkpoint', src, '--patch-size', '4', '--out', out]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /wrote .*p4\.safetensors: 32 px, patch 4 \(8×8 grid\)/);
    const ck = loadModelCheckpoint(out);
    assert.deepEqual(ck.vocab, ['<pad>', '<unk>']);
    const { image, words } = sampleInputs(ck.config as typeof c, [3]);
    const y = await runOnnx(exportModel(ck.def, ck.config, ck.params).full, { image, words });
    assert.deepEqual(y.mask_logits!.shape, [1, 1, 32, 32]);
    assert.ok(y.mask_logits!.data.every((v) => Number.isFinite(v)));

    const none = await runCli(t, resample, ['--checkpoint', src, '--out', out]);
    assert.equal(none.code, 2);
    assert.match(none.err, /give --patch-size, --image-size or both/);
    const noOut = await runCli(t, resample, ['--checkpoint', src, '--patch-size', '4']);
    assert.equal(noOut.code, 2);
    assert.match(noOut.err, /--out is required/);

    const sris = join(dir, 'sris.safetensors');
    const sc = resolveConfig('shared-ris-tiny', []);
    await saveModelCheckpoint(sris, sc.def, sc.config, initModel(sc.def, sc.config, 1));
    const wrong = await runCli(t, resample, ['--checkpoint', sris, '--patch-size', '8', '--out', out]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /shared-ris checkpoint; resample carries ReSTR checkpoints/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
