// SentencePiece unigram encoding (src/data/sentencepiece.ts) against the reference implementation:
// two models trained by Python's sentencepiece (scripts/make-spm-fixture.py) — one like beit3.spm
// (nmt_nfkc character map, no byte fallback, rare characters <unk>), one with identity
// normalization, byte fallback and user-defined symbols — and the ids and pieces Python's encoder
// gives for 52 sentences must be ours exactly, as must the BEiT-3 framing (fairseq ids, [CLS] … [EOT],
// <pad> = 1, T = 22). Also: the model file's fields, the checkpoint `vocab` hook, malformed files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  BEIT3_TOKENS,
  PieceType,
  SentencePiece,
  SentencePieceError,
  beit3Ids,
  parseModelProto,
  sentencePieceEncoder,
  toFairseqId,
} from '../../src/data/sentencepiece.js';
import { textEncoderFromCheckpoint } from '../../src/data/text.js';

const dir = (f: string) => fileURLToPath(new URL(`../../../test/fixtures/spm/${f}`, import.meta.url));

interface Case {
  text: string;
  ids: number[];
  pieces: string[];
  beit3: number[];
}
interface Expected {
  T: number;
  models: Record<string, { file: string; size: number; cases: Case[] }>;
}
const expected = JSON.parse(readFileSync(dir('expected.json'), 'utf8')) as Expected;
const modelBytes = (name: string) => new Uint8Array(readFileSync(dir(expected.models[name]!.file)));

for (const name of ['nfkc', 'bytes']) {
  test(`${name}.model: ids and pieces equal Python sentencepiece's for every sentence`, () => {
    const m = expected.models[name]!;
    const sp = SentencePiece.fromBytes(modelBytes(name), m.file);
    assert.equal(sp.size, m.size);
    const bad: string[] = [];
    for (const c of m.cases) {
      const got = sp.encodePieces(c.text);
      const ids = got.map((p) => p.id);
      const pieces = got.map((p) => p.piece);
      if (
        JSON.stringify(ids) !== JSON.stringify(c.ids) ||
        JSON.stringify(pieces) !== JSON.stringify(c.pieces)
      )
        bad.push(
          `${JSON.stringify(c.text)}: ours ${JSON.stringify(pieces)} ${JSON.stringify(ids)}, python ${JSON.stringify(c.pieces)} ${JSON.stringify(c.ids)}`,
        );
    }
    assert.deepEqual(bad, [], `${bad.length} of ${m.cases.length} sentences differ`);
  });

  test(`${name}.model: BEiT-3 framing [CLS] ids[:T-2] [EOT] <pad>… equals XLMRobertaTokenizer's ids`, () => {
    const m = expected.models[name]!;
    const sp = SentencePiece.fromBytes(modelBytes(name));
    const enc = sentencePieceEncoder(modelBytes(name), expected.T);
    assert.equal(enc.length, expected.T);
    for (const c of m.cases) {
      assert.deepEqual(beit3Ids(sp, c.text, expected.T), c.beit3, JSON.stringify(c.text));
      assert.deepEqual([...enc.encode(c.text)].map(Number), c.beit3, JSON.stringify(c.text));
    }
  });
}

test('the fixture exercises what it claims: unknowns, merged unknown runs, byte pieces, user symbols, truncation', () => {
  const cases = (n: string) => expected.models[n]!.cases;
  const byText = (n: string, t: string) => cases(n).find((c) => c.text === t)!;
  assert.ok(
    cases('nfkc').some((c) => c.ids.includes(0)),
    'nfkc: some <unk>',
  );
  assert.deepEqual(
    byText('nfkc', '東京の犬').pieces,
    ['▁', '東京の犬'],
    'a run of unknown characters is one piece',
  );
  assert.ok(
    cases('bytes').some((c) => c.pieces.includes('<0xF0>')),
    'bytes: emoji as byte pieces',
  );
  assert.deepEqual(byText('bytes', 'left-most').pieces, ['▁', 'left-most']);
  assert.deepEqual(byText('nfkc', '').ids, []);
  assert.deepEqual(byText('nfkc', '').beit3.slice(0, 3), [0, 2, 1]);
  const long = cases('nfkc').filter((c) => c.ids.length > expected.T - 2);
  assert.ok(long.length >= 2, 'some sentences are truncated');
  for (const c of long) assert.equal(c.beit3.at(-1), BEIT3_TOKENS.eot);
});

test('fairseq / XLM-R ids: <s> 0, <pad> 1, </s> 2, <unk> 3; sentencepiece id i → i + 1, its <unk> (0) → 3', () => {
  assert.deepEqual(BEIT3_TOKENS, { cls: 0, pad: 1, eot: 2, unk: 3 });
  assert.equal(toFairseqId(0), 3);
  assert.equal(toFairseqId(3), 4);
  assert.equal(toFairseqId(170), 171);
});

test('the model file: pieces with scores and types, trainer and normalizer specs', () => {
  const nfkc = parseModelProto(modelBytes('nfkc'));
  assert.deepEqual(
    nfkc.pieces.slice(0, 3).map((p) => [p.piece, p.type]),
    [
      ['<unk>', PieceType.UNKNOWN],
      ['<s>', PieceType.CONTROL],
      ['</s>', PieceType.CONTROL],
    ],
  );
  assert.ok(nfkc.pieces.slice(3).every((p) => p.type === PieceType.NORMAL && p.score <= 0));
  assert.equal(nfkc.normalizer.name, 'nmt_nfkc');
  assert.ok(nfkc.normalizer.precompiledCharsmap.length > 100000);
  assert.deepEqual(
    [nfkc.byteFallback, nfkc.normalizer.addDummyPrefix, nfkc.normalizer.removeExtraWhitespaces],
    [false, true, true],
  );
  const bytes = parseModelProto(modelBytes('bytes'));
  assert.equal(bytes.byteFallback, true);
  assert.equal(bytes.normalizer.name, 'identity');
  assert.equal(bytes.normalizer.precompiledCharsmap.length, 0);
  assert.equal(bytes.pieces.filter((p) => p.type === PieceType.BYTE).length, 256);
  assert.deepEqual(
    bytes.pieces.filter((p) => p.type === PieceType.USER_DEFINED).map((p) => p.piece),
    ['[obj]', 'left-most'],
  );
  // nmt_nfkc: full-width forms and ligatures normalize; spaces collapse and become '▁'
  const sp = new SentencePiece(nfkc);
  assert.equal(sp.normalize('  ＡＢＣ\u3000ﬁsh   x  '), '▁ABC▁fish▁x');
  assert.equal(sp.normalize(' \t '), '');
});

test('checkpoint vocab {kind: "sentencepiece", model: base64} selects the SentencePiece encoder', () => {
  const enc = sentencePieceEncoder(modelBytes('nfkc'), expected.T);
  const json = enc.toJSON() as { kind: string; model: string };
  assert.equal(json.kind, 'sentencepiece');
  const back = textEncoderFromCheckpoint(JSON.parse(JSON.stringify(json)), expected.T, 'ckpt.safetensors');
  const c = expected.models.nfkc!.cases[0]!;
  assert.deepEqual([...back.encode(c.text)].map(Number), c.beit3);
  assert.throws(
    () => textEncoderFromCheckpoint({ kind: 'sentencepiece', model: '' }, 22, 'ckpt.safetensors'),
    /ckpt\.safetensors: vocab\.model must hold/,
  );
});

test('malformed model files are refused with a SentencePieceError naming the source', () => {
  const good = modelBytes('bytes');
  const cases: [string, Uint8Array, RegExp][] = [
    ['truncated', good.subarray(0, 1000), /runs past the end|truncated/],
    [
      'garbage',
      Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff),
      /not a valid sentencepiece model|wire type|no <unk>/,
    ],
    ['empty', new Uint8Array(0), /no <unk>/],
  ];
  for (const [what, bytes, message] of cases)
    assert.throws(
      () => SentencePiece.fromBytes(bytes, `${what}.model`),
      (e: unknown) =>
        e instanceof SentencePieceError && e.message.startsWith(`${what}.model: `) && message.test(e.message),
      what,
    );
  const bpe = parseModelProto(good);
  bpe.modelType = 2;
  assert.throws(() => new SentencePiece(bpe, 'bpe.model'), /only unigram models are supported/);
});
