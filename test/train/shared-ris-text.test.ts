// Text encoding through the one pipeline (src/data/text.ts): a model's `textFraming` decides the
// vocabulary a run trained from scratch builds (ReSTR: word ids padded 0, unchanged; Shared-RIS:
// [CLS] words [EOT] padded with <pad> = 1, the id its key mask reads), the checkpoint's `vocab`
// metadata round-trips, and a Shared-RIS checkpoint trained from scratch is read by eval and
// segment with exactly the token ids training fed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evalCommand } from '../../src/cli/eval.js';
import { segmentCommand } from '../../src/cli/segment.js';
import { loadRefer } from '../../src/data/refer.js';
import { BEIT3_TOKENS, sentencePieceEncoder } from '../../src/data/sentencepiece.js';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import {
  BEIT3_WORDS_FORMAT,
  beit3WordEncoder,
  buildTextEncoder,
  textEncoderFor,
  textEncoderFromCheckpoint,
  vocabFraming,
  vocabTableSize,
} from '../../src/data/text.js';
import { Vocabulary } from '../../src/data/tokenizer.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import { resolveConfig } from '../../src/models/registry.js';
import type { SharedRisConfig } from '../../src/models/shared-ris/config.js';
import { train } from '../../src/train/train.js';
import { runCli, testTrainOptions } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'refseg-srtext-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const ids = (a: BigInt64Array) => [...a].map(Number);
const SENTENCES = ['the red circle on the left', 'Blue square, top right', 'the red square'];

test('ReSTR: buildTextEncoder is the word vocabulary of spec/restr.md §5, unchanged', () => {
  const { def, config } = resolveConfig('restr-tiny', []);
  const built = buildTextEncoder(def, config, SENTENCES);
  const vocab = Vocabulary.build(SENTENCES);
  assert.equal(built.vocabSize, vocab.size);
  assert.deepEqual(built.encoder.toJSON(), vocab.toJSON());
  for (const s of [...SENTENCES, '', 'unknown words here'])
    assert.deepEqual(ids(built.encoder.encode(s)), [...vocab.encode(s, def.maxTokens(config))], s);
  assert.equal(vocabFraming(built.encoder.toJSON()), 'words');
});

test('Shared-RIS: buildTextEncoder frames words as [CLS] … [EOT] padded with 1, ids from 4, and round-trips', () => {
  const { def, config } = resolveConfig('shared-ris-tiny', []);
  const T = def.maxTokens(config);
  assert.equal(T, 22);
  const built = buildTextEncoder(def, config, SENTENCES);
  const vocab = Vocabulary.build(SENTENCES); // <pad> <unk> the red square circle on left blue top right
  assert.equal(built.vocabSize, vocab.size + 2);
  const json = built.encoder.toJSON() as { format: string; words: string[] };
  assert.equal(json.format, BEIT3_WORDS_FORMAT);
  assert.deepEqual(json.words.slice(0, 4), ['<s>', '<pad>', '</s>', '<unk>']);
  assert.equal(json.words.length, built.vocabSize);
  assert.equal(vocabTableSize(json), built.vocabSize);

  const the = json.words.indexOf('the');
  const red = json.words.indexOf('red');
  const square = json.words.indexOf('square');
  assert.ok(the >= 4 && red >= 4 && square >= 4);
  const pad = (a: number[]) => [...a, ...Array<number>(T - a.length).fill(BEIT3_TOKENS.pad)];
  assert.deepEqual(ids(built.encoder.encode('The RED square')), pad([0, the, red, square, 2]));
  assert.deepEqual(
    ids(built.encoder.encode('the purple square')),
    pad([0, the, 3, square, 2]),
    'unknown word → 3',
  );
  assert.deepEqual(ids(built.encoder.encode('')), pad([0, 2]), 'empty: [CLS] [EOT]');
  const long = ids(built.encoder.encode(Array(30).fill('red').join(' ')));
  assert.deepEqual(long, [0, ...Array<number>(T - 2).fill(red), 2], 'truncated to T − 2 words');

  // the checkpoint metadata, through JSON, gives the same encoder
  const back = textEncoderFromCheckpoint(JSON.parse(JSON.stringify(json)), T, 'ck');
  for (const s of [...SENTENCES, '', 'the purple square', 'café über'])
    assert.deepEqual(ids(back.encode(s)), ids(built.encoder.encode(s)), s);
  assert.deepEqual(back.toJSON(), json);
  assert.throws(
    () => textEncoderFromCheckpoint({ format: BEIT3_WORDS_FORMAT, words: ['<pad>', '<unk>', 'a'] }, T, 'ck'),
    /ck: .*ids 0–3/,
  );
  assert.throws(() => beit3WordEncoder(vocab, 2), /length 2/);
});

test('textEncoderFor checks the vocabulary against the model: framing and table size', () => {
  const restr = resolveConfig('restr-tiny', []);
  const sr = resolveConfig('shared-ris-tiny', []);
  const words = Vocabulary.build(SENTENCES).toJSON();
  const framed = buildTextEncoder(sr.def, sr.config, SENTENCES).encoder.toJSON();
  const spm = sentencePieceEncoder(
    new Uint8Array(readFileSync(new URL('../../../test/fixtures/spm/nfkc.model', import.meta.url))),
    22,
  ).toJSON();
  assert.equal(vocabTableSize(spm), 171 + 1, 'fairseq ids reach 171 pieces − 1 + 1');
  assert.doesNotThrow(() => textEncoderFor(restr.def, restr.config, words, 'ck'));
  assert.doesNotThrow(() => textEncoderFor(sr.def, sr.config, framed, 'ck'));
  assert.doesNotThrow(() => textEncoderFor(sr.def, sr.config, spm, 'ck'));
  assert.throws(
    () => textEncoderFor(restr.def, restr.config, spm, 'ck'),
    /restr reads word ids padded with 0/,
  );
  assert.throws(() => textEncoderFor(restr.def, restr.config, framed, 'ck'), /restr reads word ids/);
  assert.throws(
    () => textEncoderFor(sr.def, sr.config, words, 'ck'),
    /shared-ris reads \[CLS\] … \[EOT\] ids padded with 1/,
  );
  const small = resolveConfig('shared-ris-tiny', ['encoder.vocabSize=100']);
  assert.throws(
    () => textEncoderFor(small.def, small.config, spm, 'ck'),
    /needs 172 embedding rows, but encoder.vocabSize is 100/,
  );
});

// ---------------------------------------------------------------- train from scratch, eval, segment

test('Shared-RIS from scratch: train, then eval and segment read the checkpoint with the ids training fed', async (t) => {
  const data = join(root, 'data');
  await writeSynthDataset({ flavor: 'synth-refcoco', out: data, images: 16, size: 64, seed: 2 });
  const out = join(root, 'run');
  const o = testTrainOptions({
    config: 'shared-ris-tiny',
    sets: [
      'imageSize=64',
      'encoder.depth=1',
      'encoder.dim=32',
      'encoder.mlpDim=64',
      'fpn.dim=16',
      'fpn.stages=[1]',
      'decoder.mlpDim=32',
    ],
    data,
    out,
    steps: 3,
    lr: 1e-3,
    schedule: 'poly',
    clipNorm: 1,
    seed: 1,
    evalEvery: 3,
    evalLimit: 4,
  });
  const r = await train(o);
  assert.equal(r.steps, 3);
  assert.ok(Number.isFinite(r.lastLoss));

  // what training built: the word vocabulary of the train split in Shared-RIS's framing
  const trainSet = await loadRefer({ root: data, dataset: 'synth-refcoco', split: 'train' });
  const valSet = await loadRefer({ root: data, dataset: 'synth-refcoco', split: 'val' });
  const { def, config } = resolveConfig(o.config, o.sets);
  const built = buildTextEncoder(
    def,
    config,
    trainSet.samples.map((s) => s.sentence),
  );

  for (const file of ['best.safetensors', 'last.safetensors']) {
    const ck = loadModelCheckpoint(join(out, file));
    const c = ck.config as SharedRisConfig;
    assert.equal(ck.def.kind, 'shared-ris');
    assert.deepEqual(ck.vocab, built.encoder.toJSON(), `${file}: the vocabulary training used`);
    assert.equal(c.encoder.vocabSize, built.vocabSize, `${file}: the text table fits the vocabulary`);
    // eval (src/cli/eval.ts) and segment/serve (src/infer/segmenter.ts) read text with this function
    const read = textEncoderFromCheckpoint(ck.vocab, ck.def.maxTokens(ck.config), file);
    for (const s of [...trainSet.samples, ...valSet.samples].map((x) => x.sentence)) {
      const a = ids(read.encode(s));
      assert.deepEqual(a, ids(built.encoder.encode(s)), s);
      assert.equal(a.length, c.maxTokens);
      assert.equal(a[0], BEIT3_TOKENS.cls, s);
      const eot = a.indexOf(BEIT3_TOKENS.eot);
      assert.ok(eot >= 2, s);
      assert.ok(
        a.slice(1, eot).every((id) => id >= 3 && id < c.encoder.vocabSize),
        s,
      );
      assert.ok(
        a.slice(eot + 1).every((id) => id === BEIT3_TOKENS.pad),
        s,
      );
    }
  }

  // the run state carries the same vocabulary: a resume reads the same ids
  const more = await train({ ...o, resume: true, config: '', steps: 4, evalEvery: 0 });
  assert.equal(more.steps, 4);
  assert.deepEqual(loadModelCheckpoint(join(out, 'last.safetensors')).vocab, built.encoder.toJSON());

  // eval and segment run on the checkpoint
  const best = join(out, 'best.safetensors');
  const ev = await runCli(t, evalCommand, [
    '--checkpoint',
    best,
    '--data',
    data,
    '--dataset',
    'synth-refcoco',
    '--threads',
    '1',
    '--json',
    '--out',
    join(root, 'eval'),
  ]);
  assert.equal(ev.code, 0, ev.err);
  const report = JSON.parse(readFileSync(join(root, 'eval.json'), 'utf8')) as {
    model: string;
    count: number;
    oIoU: number;
    threshold: number;
  };
  assert.equal(report.count, valSet.samples.length);
  assert.equal(report.threshold, 0.35);
  assert.ok(report.oIoU >= 0 && report.oIoU <= 1);

  const image = valSet.samples[0]!.file;
  const seg = await runCli(t, segmentCommand, [
    '--checkpoint',
    best,
    '--image',
    image,
    '--text',
    valSet.samples[0]!.sentence,
    '--out',
    join(root, 'mask.png'),
    '--threads',
    '1',
    '--json',
  ]);
  assert.equal(seg.code, 0, seg.err);
});
