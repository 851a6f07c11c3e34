// Word tokenizer and vocabulary (restr.md §5).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAD_ID, UNK_ID, Vocabulary, tokenizeWords } from '../../src/data/tokenizer.js';

test('tokenizeWords: lowercase, split on non-alphanumerics, Unicode letters kept whole', () => {
  assert.deepEqual(tokenizeWords("The man's  LEFT-hand shirt_2, 3rd!"), [
    'the',
    'man',
    's',
    'left',
    'hand',
    'shirt',
    '2',
    '3rd',
  ]);
  assert.deepEqual(tokenizeWords('  ...  '), []);
  // Composed and decomposed "é" are the same word; "café" is not split at the accent.
  assert.deepEqual(tokenizeWords('Cafe\u0301 café'), ['café', 'café']);
});

test('vocabulary order: by count, then code-point order; <pad>=0, <unk>=1; minCount and maxSize', () => {
  const v = Vocabulary.build(['b a c', 'a b', 'a d', 'Zeta zeta'], {});
  // a:3, b:2, zeta:2, c:1, d:1 → ties broken alphabetically.
  assert.deepEqual(v.words, ['<pad>', '<unk>', 'a', 'b', 'zeta', 'c', 'd']);
  const m = Vocabulary.build(['b a c', 'a b', 'a d', 'zeta zeta'], { minCount: 2 });
  assert.deepEqual(m.words, ['<pad>', '<unk>', 'a', 'b', 'zeta']);
  assert.deepEqual(Vocabulary.build(['b a c', 'a b', 'a d'], { maxSize: 1 }).words, ['<pad>', '<unk>', 'a']);
  // Input order does not matter.
  assert.deepEqual(Vocabulary.build(['a d', 'zeta zeta', 'a b', 'b a c']).words, v.words);
});

test('encode: unknown → 1, right-padded with 0, truncated to maxWords (default 20)', () => {
  const v = Vocabulary.build(['red circle on the left']);
  const ids = v.encode('The RED square, left');
  assert.equal(ids.length, 20);
  assert.deepEqual([...ids.subarray(0, 5)], [v.id('the'), v.id('red'), UNK_ID, v.id('left'), PAD_ID]);
  assert.ok([...ids.subarray(4)].every((x) => x === PAD_ID));
  const long = v.encode(Array.from({ length: 25 }, () => 'red').join(' '));
  assert.equal(long.length, 20);
  assert.ok(long.every((x) => x === v.id('red')));
  assert.deepEqual([...v.encode('red circle on', 2)], [v.id('red'), v.id('circle')]);
});

test('vocabulary JSON round trip, and bad JSON refused', () => {
  const v = Vocabulary.build(['x y y', 'z']);
  const back = Vocabulary.fromJSON(JSON.parse(JSON.stringify(v)));
  assert.deepEqual(back.words, v.words);
  assert.deepEqual(back.encode('y z q'), v.encode('y z q'));
  assert.throws(() => Vocabulary.fromJSON({ format: 'other', words: [] }), /format/);
  assert.throws(
    () => Vocabulary.fromJSON({ format: 'refseg.vocab/1', words: ['<unk>', '<pad>'] }),
    /ids 0 and 1/,
  );
  assert.throws(
    () => Vocabulary.fromJSON({ format: 'refseg.vocab/1', words: ['<pad>', '<unk>', 'a', 'a'] }),
    /duplicate/,
  );
});
