// `refseg init --vit --glove --data --dataset` end to end (src/cli/model-commands.ts): a synthetic
// dataset written by `refseg data synth`, a tiny ReSTR config (--set) matching the tiny ViT of
// test/fixtures/vit, each ViT format; the checkpoint carries the train split's vocabulary, the
// imported vision encoder (pos_embed resampled 4×4 → 6×6 as torch does), the GloVe rows, and
// `refseg train --init` trains from it. Usage errors exit 2 naming the flag.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataCommand } from '../../src/cli/data.js';
import { modelCommands } from '../../src/cli/model-commands.js';
import { trainCommand } from '../../src/cli/train.js';
import { loadRefer } from '../../src/data/refer.js';
import { Vocabulary } from '../../src/data/tokenizer.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import type { RestrConfig } from '../../src/models/restr/config.js';
import { readFixture } from '../helpers/fixture.js';
import { maxAbsDiff } from '../models/restr-helpers.js';

const fixture = (f: string) => fileURLToPath(new URL(`../../../test/fixtures/vit/${f}`, import.meta.url));

/** restr-tiny shrunk to the fixture ViT (patch 16, width 8, depth 2, MLP 32) at 96×96 (grid 6). */
const TINY = [
  'imageSize=96',
  'vision.dim=8',
  'vision.heads=2',
  'vision.depth=2',
  'vision.mlpDim=32',
  'language.wordDim=8',
  'language.heads=2',
  'language.mlpDim=32',
  'fusion.dim=8',
  'fusion.heads=2',
  'fusion.mlpDim=32',
].flatMap((s) => ['--set', s]);

const run = (t: TestContext, cmd: { run(argv: string[]): Promise<number> }, ...argv: string[]) =>
  runCli(t, cmd, argv);

test('init --vit --glove --data --dataset writes a ready-to-train checkpoint; train --init runs from it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'refseg-init-pretrained-'));
  try {
    const data = join(dir, 'data');
    const synth = await run(
      t,
      dataCommand,
      'synth',
      '--flavor',
      'synth-refcoco',
      '--out',
      data,
      '--images',
      '12',
      '--size',
      '64',
    );
    assert.equal(synth.code, 0, synth.err);

    // What the checkpoint must carry: the train split's vocabulary (as train.ts builds it) and
    // GloVe rows for the words the fixture has in any case.
    const train = await loadRefer({ root: data, dataset: 'synth-refcoco', split: 'train' });
    const vocab = Vocabulary.build(train.samples.map((s) => s.sentence));
    const glove = new Map(
      readFileSync(fixture('glove_tiny.txt'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map((f) => [f.slice(0, -8).join(' '), Float32Array.from(f.slice(-8).map(Number))] as const),
    );
    const words = vocab.words.slice(2);
    const found = words.filter((w) => glove.has(w) || [...glove.keys()].some((k) => k.toLowerCase() === w));
    assert.ok(
      found.length >= 5 && found.length < words.length,
      `fixture covers ${found.length} of ${words.length}`,
    );

    const expected = readFixture(fixture('vit_tiny_expected.safetensors')).get('pos_grid_6', [1, 36, 8]).data;
    const params: Map<string, Float32Array>[] = [];
    for (const f of ['vit_tiny_timm.pth', 'vit_tiny_timm.safetensors', 'vit_tiny_augreg.npz']) {
      const out = join(dir, `${f}.ckpt.safetensors`);
      const r = await run(
        t,
        modelCommands.init!,
        '--config',
        'restr-tiny',
        ...TINY,
        '--vit',
        fixture(f),
        '--glove',
        fixture('glove_tiny.txt'),
        '--data',
        data,
        '--dataset',
        'synth-refcoco',
        '--seed',
        '0',
        '--out',
        out,
      );
      assert.equal(r.code, 0, r.err);
      assert.match(
        r.out,
        new RegExp(
          `^vocabulary: ${vocab.size} words from ${train.samples.length} expressions of synth-refcoco \\(unc\\) train$`,
          'm',
        ),
      );
      assert.match(
        r.out,
        /^vision: 29 tensors from .*; pos_embed resampled 4×4 → 6×6 \(bicubic\); 1 prefix position dropped; not imported: cls_token, head\.weight, head\.bias$/m,
      );
      assert.match(
        r.out,
        new RegExp(
          `^GloVe: ${found.length} of ${words.length} vocabulary words found .* in 15 lines of `,
          'm',
        ),
      );
      assert.match(r.out, /^wrote .*ckpt\.safetensors: restr, /m);

      const ck = loadModelCheckpoint(out);
      const c = ck.config as RestrConfig;
      assert.equal(c.language.vocabSize, vocab.size);
      assert.equal(c.imageSize, 96);
      assert.deepEqual(ck.vocab, vocab.toJSON());
      assert.ok(maxAbsDiff(ck.params.get('vision.pos_embed')!, expected) <= 1e-5);
      const table = ck.params.get('language.embed.weight')!;
      for (const w of ['red', 'circle']) {
        if (!vocab.words.includes(w)) continue;
        const id = vocab.id(w);
        assert.deepEqual(table.subarray(id * 8, id * 8 + 8), glove.get(w), w);
      }
      params.push(ck.params);
    }
    // The three formats give the same checkpoint, tensor for tensor.
    for (const [k, v] of params[0]!) {
      assert.deepEqual(params[1]!.get(k), v, k);
      assert.deepEqual(params[2]!.get(k), v, k);
    }

    const runDir = join(dir, 'run');
    const ckpt = join(dir, 'vit_tiny_augreg.npz.ckpt.safetensors');
    const from = ['--init', ckpt, '--data', data, '--dataset', 'synth-refcoco', '--out', runDir];
    // the checkpoint brings its config: a preset beside it is refused, not silently ignored
    const both = await run(t, trainCommand, ...from, '--config', 'restr-tiny');
    assert.equal(both.code, 2);
    assert.match(both.err, /--init .* brings its own config; drop --config/);
    const tr = await run(
      t,
      trainCommand,
      ...from,
      '--steps',
      '2',
      '--batch',
      '2',
      '--eval-every',
      '0',
      '--quiet',
      '--threads',
      '1',
    );
    assert.equal(tr.code, 0, tr.err);
    assert.match(tr.out, /trained 2 steps/);
    const last = loadModelCheckpoint(join(runDir, 'last.safetensors'));
    assert.deepEqual(last.vocab, vocab.toJSON());
    assert.equal((last.config as RestrConfig).vision.dim, 8);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('init: pretrained-flag usage errors exit 2 naming the flags', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'refseg-init-usage-'));
  try {
    const out = join(dir, 'x.safetensors');
    const vocabFile = join(dir, 'vocab.json');
    writeFileSync(vocabFile, JSON.stringify({ words: ['<pad>', '<unk>', 'red'] }));
    const help = await run(t, modelCommands.init!, '--help');
    for (const flag of [
      '--vit',
      '--glove',
      '--data',
      '--dataset',
      '--split',
      '--split-by',
      'docs/datasets.md',
    ])
      assert.ok(help.out.includes(flag), `init --help lacks ${flag}`);
    const base = ['--config', 'restr-tiny', '--seed', '0', '--out', out];
    const cases: [string[], RegExp][] = [
      [
        ['--glove', fixture('glove_tiny.txt')],
        /--glove needs a vocabulary: --data DIR --dataset NAME, or --vocab vocab\.json/,
      ],
      [['--data', dir], /--data and --dataset go together/],
      [
        ['--data', dir, '--dataset', 'synth-refcoco', '--vocab-size', '9'],
        /give them or --vocab\/--vocab-size, not both/,
      ],
      [['--data', dir, '--dataset', 'coco'], /--dataset 'coco' is not one of refcoco, /],
      [['--split-by', 'umd'], /--split and --split-by need --data and --dataset/],
      [['--split', 'val'], /--split and --split-by need --data and --dataset/],
      [
        ['--config', 'shared-ris-b16', '--vit', fixture('vit_tiny_timm.pth')],
        /--vit and --glove initialize ReSTR; the config is a shared-ris model/,
      ],
    ];
    for (const [argv, re] of cases) {
      const r = await run(t, modelCommands.init!, ...base, ...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, re);
    }
    // --vocab without the refseg.vocab/1 format tag cannot serve GloVe: a clear error, not a usage one
    await assert.rejects(
      run(
        t,
        modelCommands.init!,
        ...base,
        ...TINY,
        '--vocab',
        vocabFile,
        '--glove',
        fixture('glove_tiny.txt'),
      ),
      /vocabulary '.*vocab\.json': vocabulary: format must be "refseg\.vocab\/1"/,
    );
    // a ViT that does not fit the config: the importer's message
    await assert.rejects(
      run(t, modelCommands.init!, ...base, '--vit', fixture('vit_tiny_timm.safetensors')),
      /vit_tiny_timm\.safetensors: the checkpoint's width is 8 .*vision\.dim is 128/,
    );
    assert.ok(!existsSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
