// Checkpoints (spec/restr.md §3) and ONNX export: round trips, errors that name the tensor, the
// exported graph's interface, split export equal to the full graph, and the CLI commands.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { initModel, parameterSpecs } from '../../src/models/build.js';
import {
  decodeModelCheckpoint,
  encodeModelCheckpoint,
  loadModelCheckpoint,
  saveModelCheckpoint,
} from '../../src/models/checkpoint.js';
import { exportModel, splitPaths } from '../../src/models/export.js';
import { restrModel } from '../../src/models/restr/model.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import type { IoTensor } from '../../src/io/tensor.js';
import { modelCommands } from '../../src/cli/model-commands.js';
import { maxAbs, maxAbsDiff, microConfig, pick, runOnnx, sampleInputs } from './restr-helpers.js';
import type { HostTensor } from '../../src/runtime/session.js';

const c = microConfig({ fusion: { variant: 'cme', share: true, depth: 2 } });
const params = initModel(restrModel, c, 42);
const vocab = {
  format: 'refseg.vocab/1',
  words: ['<pad>', '<unk>', ...Array.from({ length: 18 }, (_, i) => `w${i}`)],
};

test('init is deterministic per seed and follows timm (trunc normal 0.02, zero biases, unit LN)', () => {
  const again = initModel(restrModel, c, 42);
  for (const [k, v] of params) assert.deepEqual(again.get(k), v, k);
  assert.notDeepEqual(
    initModel(restrModel, c, 43).get('vision.blocks.0.attn.qkv.weight'),
    params.get('vision.blocks.0.attn.qkv.weight'),
  );
  const w = params.get('vision.blocks.0.mlp.fc1.weight')!;
  const std = Math.sqrt(w.reduce((a, x) => a + x * x, 0) / w.length);
  assert.ok(std > 0.015 && std < 0.025 && maxAbs(w) <= 0.1, `std ${std}`);
  assert.ok(params.get('vision.blocks.0.mlp.fc1.bias')!.every((x) => x === 0));
  assert.ok(params.get('fusion.vl.norm.weight')!.every((x) => x === 1));
});

test('checkpoint round trip: config, vocabulary and every tensor; float16 for shipping', async () => {
  const ck = decodeModelCheckpoint(encodeModelCheckpoint(restrModel, c, params, { vocab }));
  assert.equal(ck.def.kind, 'restr');
  assert.deepEqual(ck.config, c);
  assert.deepEqual(ck.vocab, vocab);
  assert.equal(ck.metadata.format, 'refseg.restr/1');
  assert.deepEqual(JSON.parse(ck.metadata.config!), c);
  assert.deepEqual([...ck.params.keys()], [...params.keys()]);
  for (const [k, v] of params) assert.deepEqual(ck.params.get(k), v, k);

  const dir = mkdtempSync(join(tmpdir(), 'refseg-ck-'));
  try {
    const path = join(dir, 'm.safetensors');
    await saveModelCheckpoint(path, restrModel, c, params, { dtype: 'float16' });
    const half = loadModelCheckpoint(path);
    assert.equal(half.vocab, undefined);
    for (const [k, v] of params)
      assert.ok(maxAbsDiff(half.params.get(k)!, v) <= 1e-3 * Math.max(1, maxAbs(v)), k);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const SHAPES = new Map(parameterSpecs(restrModel, c).map((s) => [s.name, [...s.shape]]));

/** A checkpoint file built by hand from `params` after `edit` (tensors) and with metadata `meta`. */
function forged(edit: (t: Map<string, IoTensor>) => void, meta: Record<string, string> = {}): Uint8Array {
  const t = new Map<string, IoTensor>(
    [...params].map(([k, v]) => [k, { dtype: 'float32', shape: SHAPES.get(k)!, data: v }]),
  );
  edit(t);
  return writeSafetensors(t, { format: 'refseg.restr/1', config: JSON.stringify(c), ...meta });
}

test('checkpoint errors name the file and the tensor or field', () => {
  const fails = (bytes: Uint8Array, msg: RegExp) =>
    assert.throws(
      () => decodeModelCheckpoint(bytes, 'bad.safetensors'),
      (e: unknown) => {
        assert.match((e as Error).message, /^bad\.safetensors: /);
        assert.match((e as Error).message, msg);
        return true;
      },
    );
  fails(
    forged((t) => t.delete('fusion.seed')),
    /tensor 'fusion\.seed' \[1,1,16\] is missing/,
  );
  fails(
    forged((t) =>
      t.set('vision.pos_embed', { dtype: 'float32', shape: [1, 15, 24], data: new Float32Array(15 * 24) }),
    ),
    /tensor 'vision\.pos_embed' is \[1,15,24\], the config needs \[1,16,24\]/,
  );
  fails(
    forged((t) =>
      t.set('vision.cls_token', { dtype: 'float32', shape: [1, 1, 24], data: new Float32Array(24) }),
    ),
    /unexpected tensor 'vision\.cls_token'/,
  );
  fails(
    forged((t) => t.set('fusion.seed', { dtype: 'int32', shape: [1, 1, 16], data: new Int32Array(16) })),
    /tensor 'fusion\.seed' is int32, expected a floating-point type/,
  );
  fails(
    forged((t) => {
      const w = Float32Array.from(params.get('decoder.head.weight')!);
      w[2] = Number.NaN;
      t.set('decoder.head.weight', { dtype: 'float32', shape: [1, 4], data: w });
    }),
    /tensor 'decoder\.head\.weight' has a non-finite value at index 2/,
  );
  fails(
    forged(() => {}, { format: 'refseg.unet/1' }),
    /__metadata__\.format: unknown model format 'refseg\.unet\/1'/,
  );
  fails(writeSafetensors(new Map(), {}), /__metadata__\.format is missing/);
  fails(
    forged(() => {}, { config: JSON.stringify({ ...c, vision: { ...c.vision, heads: 5 } }) }),
    /__metadata__\.config: config field 'vision\.heads'/,
  );
  fails(
    forged(() => {}, { config: '{"model":' }),
    /__metadata__\.config is not valid JSON/,
  );
  fails(
    forged(() => {}, { vocab: JSON.stringify({ ...vocab, words: vocab.words.slice(0, 5) }) }),
    /vocab has 5 words, but language\.vocabSize is 20/,
  );
  // a config that implies other shapes than the tensors hold
  fails(
    forged(() => {}, { config: JSON.stringify({ ...c, imageSize: 40 }) }),
    /tensor 'vision\.pos_embed' is \[1,16,24\], the config needs \[1,25,24\]/,
  );
});

test('checkpoint writing refuses missing, unknown and non-finite parameters', async () => {
  const without = new Map(params);
  without.delete('language.embed.weight');
  assert.throws(
    () => encodeModelCheckpoint(restrModel, c, without),
    /no value for parameter 'language\.embed\.weight' \[20,8\]/,
  );
  assert.throws(
    () => encodeModelCheckpoint(restrModel, c, new Map([...params, ['extra.weight', new Float32Array(1)]])),
    /'extra\.weight' is not a parameter/,
  );
  const nan = new Map(params);
  nan.set(
    'fusion.seed',
    Float32Array.from(params.get('fusion.seed')!, (v, i) => (i === 3 ? Infinity : v)),
  );
  assert.throws(() => encodeModelCheckpoint(restrModel, c, nan), /fusion\.seed.*non-finite/);
  const dir = mkdtempSync(join(tmpdir(), 'refseg-ck-'));
  try {
    const path = join(dir, 'm.safetensors');
    await saveModelCheckpoint(path, restrModel, c, params);
    const before = readFileSync(path);
    await assert.rejects(saveModelCheckpoint(path, restrModel, c, nan), /non-finite/);
    assert.deepEqual(readFileSync(path), before, 'a failed save leaves the previous checkpoint intact');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const metadataOf = (bytes: Uint8Array) =>
  Object.fromEntries(onnxProto.onnx.ModelProto.decode(bytes).metadataProps.map((p) => [p.key!, p.value!]));
const ioOf = (bytes: Uint8Array) => {
  const g = onnxProto.onnx.ModelProto.decode(bytes).graph!;
  const dims = (v: onnxProto.onnx.IValueInfoProto) =>
    v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
  return { inputs: g.input!.map((v) => [v.name, dims(v)]), outputs: g.output!.map((v) => [v.name, dims(v)]) };
};

test('export: interface, metadata, and split parts equal to the full graph (one image, many expressions)', async () => {
  const m = exportModel(restrModel, c, params, { parts: 'split', vocab });
  assert.deepEqual(ioOf(m.full), {
    inputs: [
      ['image', ['B', 3, 32, 32]],
      ['words', ['B', 6]],
    ],
    outputs: [
      ['mask_logits', ['B', 1, 32, 32]],
      ['patch_logits', ['B', 16]],
    ],
  });
  assert.deepEqual(ioOf(m.image!), {
    inputs: [['image', ['B', 3, 32, 32]]],
    outputs: [['v', ['B', 16, 16]]],
  });
  assert.deepEqual(ioOf(m.text!).inputs, [
    ['v', ['B', 16, 16]],
    ['words', ['B', 6]],
  ]);
  for (const [part, bytes] of [
    ['full', m.full],
    ['image', m.image!],
    ['text', m.text!],
  ] as const) {
    const md = metadataOf(bytes);
    assert.equal(md.format, 'refseg.restr/1');
    assert.equal(md.part, part);
    assert.deepEqual(JSON.parse(md.config!), c);
    assert.deepEqual(JSON.parse(md.vocab!), vocab);
  }
  // initializers hold only what each part uses
  const inits = (b: Uint8Array) =>
    new Set(onnxProto.onnx.ModelProto.decode(b).graph!.initializer!.map((t) => t.name));
  assert.ok(inits(m.image!).has('vision.pos_embed') && !inits(m.image!).has('language.embed.weight'));
  assert.ok(inits(m.text!).has('language.embed.weight') && !inits(m.text!).has('vision.pos_embed'));

  const x = sampleInputs(c, [2, 5, 6]);
  const full = await runOnnx(m.full, x);
  const v = (await runOnnx(m.image!, { image: x.image })).v!;
  const text = await runOnnx(m.text!, { v, words: x.words });
  for (const k of ['mask_logits', 'patch_logits']) {
    const ref = full[k]!.data as Float32Array;
    assert.ok(maxAbsDiff(text[k]!.data as Float32Array, ref) <= 1e-5 * Math.max(1, maxAbs(ref)), k);
  }
  // image 0 encoded once, three expressions: tile its v
  const v0 = pick(v, 0);
  const tiled: HostTensor = {
    dtype: 'float32',
    shape: [3, 16, 16],
    data: Float32Array.from({ length: 3 * 256 }, (_, i) => (v0.data as Float32Array)[i % 256]!),
  };
  const many = await runOnnx(m.text!, { v: tiled, words: x.words });
  const img0 = {
    dtype: 'float32',
    shape: [3, 3, 32, 32],
    data: Float32Array.from({ length: 3 * 3072 }, (_, i) => (x.image.data as Float32Array)[i % 3072]!),
  } as HostTensor;
  const ref = await runOnnx(m.full, { image: img0, words: x.words });
  assert.ok(
    maxAbsDiff(many.mask_logits!.data as Float32Array, ref.mask_logits!.data as Float32Array) <=
      1e-5 * Math.max(1, maxAbs(ref.mask_logits!.data as Float32Array)),
  );
});

async function cli(name: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { code: await modelCommands[name]!.run(args), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('CLI: init → inspect → export (split) → ORT; usage errors exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'refseg-cli-'));
  try {
    const cfg = join(dir, 'micro.json');
    writeFileSync(cfg, JSON.stringify(c));
    const vocabFile = join(dir, 'vocab.json');
    writeFileSync(vocabFile, JSON.stringify({ ...vocab, words: vocab.words.slice(0, 12) }));
    const ckPath = join(dir, 'm.safetensors');
    const init = await cli('init', [
      '--config',
      cfg,
      '--set',
      'fusion.share=false',
      '--vocab',
      vocabFile,
      '--seed',
      '7',
      '--out',
      ckPath,
    ]);
    assert.equal(init.code, 0, init.err);
    const ck = loadModelCheckpoint(ckPath);
    assert.equal((ck.config as typeof c).language.vocabSize, 12);
    assert.equal((ck.config as typeof c).fusion.share, false);
    assert.equal((ck.vocab as typeof vocab).words.length, 12);

    const insp = await cli('inspect', ['--config', ckPath, '--json']);
    assert.equal(insp.code, 0, insp.err);
    const report = JSON.parse(insp.out) as { total: { params: number }; rows: { name: string }[] };
    assert.equal(
      report.total.params,
      [...ck.params.values()].reduce((a, t) => a + t.length, 0),
    );
    assert.deepEqual(
      report.rows.map((r) => r.name),
      ['vision', 'language', 'fusion', 'fusion encoders', 'decoder'],
    );
    const table = await cli('inspect', ['--config', 'restr-b16', '--image-size', '320']);
    assert.match(table.out, /total .*46\.21G[\s\S]*52\.29G MACs \(ours -11\.6%[^\n]*\n\s+51\.88G in the paper's order \(ours -0\.8%\): the decoder projects before it upsamples/);

    const onnxPath = join(dir, 'm.onnx');
    const exp = await cli('export', ['--checkpoint', ckPath, '--out', onnxPath, '--parts', 'split']);
    assert.equal(exp.code, 0, exp.err);
    const p = splitPaths(onnxPath);
    assert.ok(existsSync(p.image) && existsSync(p.text));
    const out = await runOnnx(readFileSync(onnxPath), sampleInputs(ck.config as typeof c, [3]));
    assert.deepEqual(out.mask_logits!.shape, [1, 1, 32, 32]);

    // A float16 copy of the checkpoint for shipping: same config and vocabulary, weights rounded
    // to half precision (|Δ| ≤ 2^-11 relative), half the bytes.
    const f16Path = join(dir, 'm16.safetensors');
    const conv = await cli('export', ['--checkpoint', ckPath, '--out', f16Path, '--float16']);
    assert.equal(conv.code, 0, conv.err);
    const f16 = loadModelCheckpoint(f16Path);
    assert.deepEqual(f16.config, ck.config);
    assert.deepEqual(f16.vocab, ck.vocab);
    for (const [name, w] of ck.params) {
      const h = f16.params.get(name)!;
      for (let i = 0; i < w.length; i++)
        assert.ok(Math.abs(h[i]! - w[i]!) <= Math.abs(w[i]!) * 2 ** -11 + 1e-7, name);
    }
    assert.ok(readFileSync(f16Path).length < 0.6 * readFileSync(ckPath).length);

    for (const [cmd, args, msg] of [
      [
        'export',
        ['--checkpoint', ckPath, '--out', onnxPath, '--float16'],
        /--float16 needs --out \*\.safetensors/,
      ],
      ['init', ['--config', 'restr-tiny', '--out', join(dir, 'x.safetensors')], /--seed is required/],
      [
        'init',
        ['--config', 'restr-tiny', '--seed=1.5', '--out', join(dir, 'x.safetensors')],
        /--seed must be a non-negative integer/,
      ],
      [
        'export',
        ['--checkpoint', ckPath, '--out', onnxPath, '--parts', 'half'],
        /--parts must be full or split/,
      ],
      ['inspect', ['--config', 'restr-tiny', '--bogus'], /Unknown option '--bogus'/],
    ] as const) {
      const r = await cli(cmd, [...args]);
      assert.equal(r.code, 2, `${cmd} ${args.join(' ')}`);
      assert.match(r.err, msg);
    }
    await assert.rejects(
      cli('inspect', ['--config', 'restr-tiny', '--set', 'vision.heads=5']),
      /config field 'vision\.heads'/,
    );
    assert.ok(!existsSync(join(dir, 'x.safetensors')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
