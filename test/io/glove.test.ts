// GloVe text import (src/io/glove.ts) and the word-embedding rows it fills
// (src/models/restr/pretrained.ts): vectors of the requested words only, exact forms before cased
// ones, words with spaces not mistaken for their first part, dimension checks naming the line,
// gzip streamed, zip refused; rows of missing words, <pad> and <unk> keep their random init.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { FormatError } from '../../src/io/errors.js';
import { readGlove } from '../../src/io/glove.js';
import { Vocabulary } from '../../src/data/tokenizer.js';
import { initModel } from '../../src/models/build.js';
import { restrModel } from '../../src/models/restr/model.js';
import { initRestrPretrained } from '../../src/models/restr/pretrained.js';
import { microConfig } from '../models/restr-helpers.js';

const GLOVE = fileURLToPath(new URL('../../../test/fixtures/vit/glove_tiny.txt', import.meta.url));

/** The fixture's vectors as written (word → the float32 of each printed number). */
function fixtureVectors(): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const line of readFileSync(GLOVE, 'utf8').trim().split('\n')) {
    const f = line.split(' ');
    m.set(f.slice(0, f.length - 8).join(' '), Float32Array.from(f.slice(-8).map(Number)));
  }
  return m;
}

async function refused(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

function tempFiles(): { dir: string; file: (name: string, text: string | Uint8Array) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'refseg-glove-'));
  return {
    dir,
    file: (name, text) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    },
  };
}

test('only the requested words; exact form wins over a cased one; spaced words are not their first part', async () => {
  const words = ['red', 'star', 'at', 'green', 'circle', 'nowhere', 'the'];
  const r = await readGlove(GLOVE, words, { dim: 8 });
  const want = fixtureVectors();
  assert.equal(r.dim, 8);
  assert.equal(r.lines, 15);
  assert.deepEqual(r.vectors[0], want.get('red')); // not 'Red', which comes first
  assert.deepEqual(r.vectors[1], want.get('Star')); // only a cased form exists
  assert.equal(r.vectors[2], undefined); // "at name@domain.com" is not "at"
  assert.deepEqual(r.vectors[3], want.get('Green'));
  assert.deepEqual(r.vectors[4], want.get('circle'));
  assert.equal(r.vectors[5], undefined);
  assert.deepEqual(r.vectors[6], want.get('the'));
  assert.equal(r.exact, 3);
  assert.equal(r.cased, 2);
  // the word with spaces can be asked for by its full form
  const spaced = await readGlove(GLOVE, ['. . .']);
  assert.deepEqual(spaced.vectors[0], want.get('. . .'));
});

test('gzip is streamed, CRLF and a word2vec header are accepted, zip is refused', async () => {
  const t = tempFiles();
  try {
    const text = readFileSync(GLOVE);
    const gz = await readGlove(t.file('g.txt.gz', gzipSync(text)), ['circle', 'star']);
    const plain = await readGlove(GLOVE, ['circle', 'star']);
    assert.deepEqual(gz.vectors, plain.vectors);
    const crlf = t.file('crlf.txt', `15 8\r\n${text.toString('utf8').replace(/\n/g, ' \r\n')}`);
    const c = await readGlove(crlf, ['circle', 'star'], { dim: 8 });
    assert.deepEqual(c.vectors, plain.vectors);
    await refused(
      readGlove(t.file('g.zip', Buffer.from('PK\x03\x04rest')), ['a']),
      /g\.zip: offset 0: is a zip archive: unzip it first/,
    );
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

test('dimension and value errors name the file and line', async () => {
  const t = tempFiles();
  try {
    await refused(
      readGlove(GLOVE, ['red'], { dim: 300 }),
      /glove_tiny\.txt: line 1: the vectors are 8-dimensional, 300 are needed \(language\.wordDim/,
    );
    await refused(
      readGlove(t.file('short.txt', 'a 1 2 3\nb 1 2 3\nc 1 2\n'), ['zzz']),
      /short\.txt: line 3: 2 values, expected 3 \(as line 1\); is the file truncated\?/,
    );
    await refused(
      readGlove(t.file('long.txt', 'a 1 2 3\nb 1 2 3 4\n'), ['zzz']),
      /long\.txt: line 2: 4 values, expected 3/,
    );
    await refused(
      readGlove(t.file('nan.txt', 'a 1 2 3\nb 1 x 3\n'), ['b']),
      /nan\.txt: line 2: value 2 of 'b' is "x", not a finite number/,
    );
    await refused(readGlove(t.file('inf.txt', 'a 1 2 Infinity\n'), ['a']), /value 3 of 'a' is "Infinity"/);
    await refused(
      readGlove(t.file('empty.txt', '\n\n'), ['a']),
      /empty\.txt: no word vectors \(empty file\)/,
    );
    await refused(
      readGlove(t.file('words.txt', 'justaword\n'), ['a']),
      /words\.txt: line 1: no vector values/,
    );
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

test('initRestrPretrained: GloVe rows for found words, random init elsewhere, coverage reported', async () => {
  const vocab = Vocabulary.build([
    'the red circle',
    'the red star on the left',
    'a green square at the top',
    'red red',
  ]);
  const c = microConfig({ language: { vocabSize: vocab.size, wordDim: 8 } });
  const r = await initRestrPretrained(c, 3, { glove: GLOVE, vocab });
  const base = initModel(restrModel, c, 3);
  const table = r.params.get('language.embed.weight')!;
  const random = base.get('language.embed.weight')!;
  const want = fixtureVectors();
  const lookup: Record<string, string> = { star: 'Star', green: 'Green' };
  const found = new Set(['the', 'red', 'circle', 'star', 'on', 'left', 'green', 'square']);
  vocab.words.forEach((w, id) => {
    const row = table.subarray(id * 8, id * 8 + 8);
    if (found.has(w)) assert.deepEqual(row, want.get(lookup[w] ?? w), w);
    else assert.deepEqual(row, random.subarray(id * 8, id * 8 + 8), w); // <pad>, <unk>, a, at, top
  });
  for (const [k, v] of base) if (k !== 'language.embed.weight') assert.deepEqual(r.params.get(k), v, k);
  assert.deepEqual(r.glove, {
    words: vocab.size - 2,
    found: 8,
    cased: 2,
    missing: ['a', 'at', 'top'],
    lines: 15,
  });
  assert.match(
    r.report.join('\n'),
    /^GloVe: 8 of 11 vocabulary words found \(72\.7%, 2 through a cased form\) in 15 lines of .*glove_tiny\.txt; missing \(most frequent first\): a, at, top; their rows and <pad>, <unk> keep the random init$/,
  );
  await assert.rejects(initRestrPretrained(c, 3, { glove: GLOVE }), /GloVe import needs a vocabulary/);
  await assert.rejects(
    initRestrPretrained(microConfig({ language: { vocabSize: 50, wordDim: 8 } }), 3, { glove: GLOVE, vocab }),
    /vocabulary has 13 words, language\.vocabSize is 50/,
  );
});
