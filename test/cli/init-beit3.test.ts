// `refseg init --beit3 FILE.pth --spm beit3.spm` (src/cli/model-commands.ts): a Shared-RIS checkpoint
// whose encoder is the BEiT-3 checkpoint's (the tiny torch.save fixture of
// scripts/make-beit3-fixture.py, with a config matched to it by --set), FPN and decoder from the
// seed, and the SentencePiece model stored as the vocabulary, so that training (--init) and
// inference encode [CLS] pieces [EOT] with BEiT-3's ids. The fixture's text table has 30 rows,
// fewer than the SentencePiece fixtures' ids: init refuses that pairing; the happy path uses a
// 24-piece SentencePiece model written here.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, testTrainOptions } from '../helpers/cli.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelCommands } from '../../src/cli/model-commands.js';
import { base64Encode } from '../../src/data/sentencepiece.js';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import { textEncoderFor } from '../../src/data/text.js';
import { initModel } from '../../src/models/build.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import type { SharedRisConfig } from '../../src/models/shared-ris/config.js';
import { loadBeit3Checkpoint } from '../../src/models/shared-ris/import.js';
import { train } from '../../src/train/train.js';

const fixture = (f: string) => fileURLToPath(new URL(`../../../test/fixtures/${f}`, import.meta.url));
const BEIT3 = fixture('beit3/tiny_beit3.pth');
const dir = mkdtempSync(join(tmpdir(), 'refseg-init-beit3-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** shared-ris-tiny shaped like the fixture's BEiT-3: 32×32, patch 8, width 16, 2 layers, FFN 24, 30 ids, 12 positions. */
const TINY = [
  'imageSize=32',
  'patchSize=8',
  'maxTokens=6',
  'encoder.dim=16',
  'encoder.depth=2',
  'encoder.heads=2',
  'encoder.mlpDim=24',
  'encoder.vocabSize=30',
  'encoder.maxPositions=12',
  'fpn.dim=8',
  'fpn.heads=2',
  'fpn.stages=[1,2]',
  'decoder.heads=2',
  'decoder.mlpDim=16',
].flatMap((s) => ['--set', s]);

const init = (t: TestContext, ...argv: string[]) => runCli(t, modelCommands.init!, argv);

// A minimal sentencepiece ModelProto: pieces (field 1: piece, score, type) and an identity
// normalizer (field 3, no character map; add_dummy_prefix, whitespace handling by default).
function protoBytes(...parts: (number | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') {
      let v = p;
      while (v > 0x7f) {
        out.push((v & 0x7f) | 0x80);
        v >>>= 7;
      }
      out.push(v);
    } else out.push(...p);
  }
  return Uint8Array.from(out);
}
const field = (n: number, body: Uint8Array) => protoBytes((n << 3) | 2, body.length, body);
const utf8 = (s: string) => new globalThis.TextEncoder().encode(s);
function piece(text: string, score: number, type: number): Uint8Array {
  const f = new Uint8Array(new Float32Array([score]).buffer);
  return field(1, protoBytes(field(1, utf8(text)), (2 << 3) | 5, f, 3 << 3, type));
}
const NORMAL = [
  '▁the',
  '▁red',
  '▁dog',
  '▁left',
  '▁on',
  '▁cat',
  '▁',
  'e',
  't',
  'h',
  'r',
  'd',
  'o',
  'g',
  'l',
  'f',
  'n',
  'c',
  'a',
  's',
  'i',
];
const tinySpm = (): Uint8Array =>
  protoBytes(
    piece('<unk>', 0, 2),
    piece('<s>', 0, 3),
    piece('</s>', 0, 3),
    ...NORMAL.map((p, i) => piece(p, -1 - i * 0.5, 1)),
    field(3, field(1, utf8('identity'))),
  );

/** `init` arguments for a Shared-RIS checkpoint from the fixture BEiT-3 and the SentencePiece model `spm`. */
const beit3Args = (sets: readonly string[], spm: string, seed: string, out: string) => [
  '--config',
  'shared-ris-tiny',
  ...sets,
  '--beit3',
  BEIT3,
  '--spm',
  spm,
  '--seed',
  seed,
  '--out',
  out,
];

test('init --beit3 --spm: the encoder is the BEiT-3 checkpoint, the SentencePiece model is the vocabulary; train --init reads it', async (t) => {
  const spm = join(dir, 'tiny.spm');
  writeFileSync(spm, tinySpm());
  const out = join(dir, 'sr.safetensors');
  const r = await init(t, ...beit3Args(TINY, spm, '4', out));
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /^vocabulary: SentencePiece model tiny\.spm, 24 pieces \(BEiT-3 ids, \[CLS\] … \[EOT\], padding 1\)$/m,
  );
  assert.match(
    r.out,
    /^encoder: 86 tensors from .*tiny_beit3\.pth; not imported: beit3\.vision_embed\.mask_token, .*logit_scale$/m,
  );
  assert.match(r.out, /^wrote .*sr\.safetensors: shared-ris, /m);

  const ck = loadModelCheckpoint(out);
  const c = ck.config as SharedRisConfig;
  assert.equal(ck.def.kind, 'shared-ris');
  assert.equal(c.encoder.vocabSize, 30);
  const imported = loadBeit3Checkpoint(BEIT3, c);
  for (const [k, v] of imported.params) assert.deepEqual(ck.params.get(k), v, k);
  const random = initModel(ck.def, c, 4);
  for (const [k, v] of ck.params)
    if (!k.startsWith('beit3.')) assert.deepEqual(v, random.get(k), `${k}: seeded init`);
  assert.deepEqual(ck.vocab, { kind: 'sentencepiece', model: base64Encode(readFileSync(spm)) });

  // what train --init (and eval, segment) encode: [CLS] ▁the ▁red ▁dog [EOT] with fairseq ids (spm id + 1)
  const enc = textEncoderFor(ck.def, c, ck.vocab, out);
  assert.deepEqual([...enc.encode('the red dog')].map(Number), [0, 4, 5, 6, 2, 1]);
  assert.deepEqual(
    [...enc.encode('a cat on the left')].map(Number),
    [0, 10, 22, 9, 8, 2],
    '▁ a ▁cat ▁on, truncated to T − 2 pieces',
  );

  // train --init: the SentencePiece vocabulary is kept through training
  const data = join(dir, 'data');
  await writeSynthDataset({ flavor: 'synth-refcoco', out: data, images: 8, size: 64, seed: 0 });
  const run = join(dir, 'run');
  const tr = await train(
    // --init's checkpoint brings the model and its config: no preset
    testTrainOptions({ config: '', init: out, data, out: run }),
  );
  assert.equal(tr.steps, 2);
  assert.ok(Number.isFinite(tr.lastLoss));
  assert.deepEqual(loadModelCheckpoint(join(run, 'last.safetensors')).vocab, ck.vocab);
});

test('init --beit3: a SentencePiece model whose ids overflow the text table, a shape mismatch and usage errors are refused', async (t) => {
  // the SentencePiece fixture (400 pieces) does not fit the fixture BEiT-3's 30-row text table
  await assert.rejects(
    init(t, ...beit3Args(TINY, fixture('spm/bytes.model'), '0', join(dir, 'x.safetensors'))),
    /--spm '.*bytes\.model': its 400 pieces give BEiT-3 ids up to 400, but the text table has 30 rows/,
  );
  const spm = join(dir, 'tiny2.spm');
  writeFileSync(spm, tinySpm());
  // the preset's 1000-row text table is not the checkpoint's
  const wide = TINY.map((s) => (s === 'encoder.vocabSize=30' ? 'encoder.vocabSize=1000' : s));
  await assert.rejects(
    init(t, ...beit3Args(wide, spm, '0', join(dir, 'y.safetensors'))),
    /beit3\.text_embed\.weight' is \[30,16\], the config needs \[1000,16\] \(set encoder\.vocabSize/,
  );
  const usage = async (re: RegExp, ...argv: string[]) => {
    const r = await init(t, ...argv, '--seed', '0', '--out', join(dir, 'z.safetensors'));
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, re);
  };
  await usage(/--beit3 needs --spm/, '--config', 'shared-ris-tiny', '--beit3', BEIT3);
  await usage(
    /--beit3 and --spm initialize Shared-RIS; the config is a restr model/,
    '--config',
    'restr-tiny',
    '--spm',
    spm,
  );
  await usage(
    /--spm is the vocabulary/,
    '--config',
    'shared-ris-tiny',
    '--spm',
    spm,
    '--data',
    dir,
    '--dataset',
    'synth-refcoco',
  );
  await usage(
    /--beit3 fixes the vocabulary size/,
    '--config',
    'shared-ris-tiny',
    '--beit3',
    BEIT3,
    '--spm',
    spm,
    '--vocab-size',
    '30',
  );
});

test('init --spm alone sizes the text table to the SentencePiece ids; --data on Shared-RIS stores the framed word vocabulary', async (t) => {
  const spm = join(dir, 'tiny3.spm');
  writeFileSync(spm, tinySpm());
  const a = join(dir, 'spm-only.safetensors');
  const r = await init(t, '--config', 'shared-ris-tiny', '--spm', spm, '--seed', '1', '--out', a);
  assert.equal(r.code, 0, r.err);
  assert.equal(
    (loadModelCheckpoint(a).config as SharedRisConfig).encoder.vocabSize,
    25,
    '24 pieces → ids up to 24',
  );

  const data = join(dir, 'data2');
  await writeSynthDataset({ flavor: 'synth-refcoco', out: data, images: 8, size: 64, seed: 0 });
  const b = join(dir, 'words.safetensors');
  const w = await init(
    t,
    '--config',
    'shared-ris-tiny',
    '--data',
    data,
    '--dataset',
    'synth-refcoco',
    '--seed',
    '1',
    '--out',
    b,
  );
  assert.equal(w.code, 0, w.err);
  assert.match(
    w.out,
    /^vocabulary: \d+ ids \(shared-ris framing: 4 specials and \d+ words\) from \d+ expressions of synth-refcoco/m,
  );
  const ck = loadModelCheckpoint(b);
  const enc = textEncoderFor(ck.def, ck.config, ck.vocab, b);
  const first = [...enc.encode('the')].map(Number);
  assert.equal(first[0], 0);
  assert.equal(first[2], 2);
  assert.equal(first[21], 1);
});
