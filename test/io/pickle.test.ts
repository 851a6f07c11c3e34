// Pickle reader: refer-style Python 2 pickles at protocols 0 and 2, Python 3 protocols 4 and 5,
// refusal of everything that names or calls code, structural checks, declared lengths, and
// nesting far deeper than the JS stack.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTuple, toPlain, unpickle, type GlobalImpl } from '../../src/io/pickle.js';
import { assertRefused, expectedJson, fixture, tagged } from './helpers.js';

const P = (s: string | number[]): Uint8Array =>
  typeof s === 'string' ? Uint8Array.from(Buffer.from(s, 'latin1')) : Uint8Array.from(s);

for (const proto of [0, 2]) {
  test(`refs pickle written Python-2 style at protocol ${proto} decodes exactly`, () => {
    const v = unpickle(fixture(`refs_p${proto}.p`), { source: `refs_p${proto}.p` });
    assert.deepEqual(tagged(v), expectedJson('refs.expected.json'));
    const refs = v as Map<unknown, unknown>[];
    // Python 2 str is latin-1: UTF-8 bytes come back one char per byte, recoverable exactly.
    const raw = (refs[0]!.get('sentences') as Map<string, unknown>[])[1]!.get('raw') as string;
    assert.ok(raw.startsWith('caf\u00c3\u00a9 '));
    assert.equal(Buffer.from(raw, 'latin1').toString('utf8').slice(0, 4), 'café');
    // The memo makes a shared object shared again.
    const second = refs[1]!;
    assert.equal(
      second.get('tokens_again'),
      (second.get('sentences') as Map<string, unknown>[])[1]!.get('tokens'),
    );
    // Keys that are special in JS objects are ordinary keys.
    assert.equal(refs[2]!.get('__proto__'), 'not a prototype');
    assert.equal(refs[2]!.get(7), 'int key');
  });
}

for (const proto of [4, 5]) {
  test(`Python 3 protocol ${proto} pickle (bytes, sets, frozenset, FRAME, MEMOIZE) decodes exactly`, () => {
    const v = unpickle(fixture(`misc_p${proto}.p`)) as Map<string, unknown>;
    assert.deepEqual(tagged(v), expectedJson(`misc_p${proto}.expected.json`));
    const shared = v.get('shared') as unknown[];
    assert.equal(shared[0], shared[1]);
    assert.ok(isTuple(v.get('tuple')));
  });
}

test('toPlain gives null-prototype objects where __proto__ is an own key, and no pollution', () => {
  const v = unpickle(fixture('refs_p2.p'));
  const plain = toPlain(v) as Record<string, unknown>[];
  const odd = plain[2]!;
  assert.equal(Object.getPrototypeOf(odd), null);
  assert.ok(Object.hasOwn(odd, '__proto__'));
  assert.equal(odd['__proto__'], 'not a prototype');
  assert.equal(({} as Record<string, unknown>)['not'], undefined);
  assert.deepEqual((plain[0] as any).sentences[0].tokens, ['the', 'lady', 'with', 'the', 'blue', 'shirt']);
  assert.equal(odd['7'], 'int key');
});

test('hostile fixtures: every way to reach code is refused, naming the opcode, offset and global', () => {
  assertRefused(
    () => unpickle(fixture('evil_global_reduce_p2.p'), { source: 'refs(unc).p' }),
    /^refs\(unc\)\.p: offset \d+: GLOBAL: posix\.system refused/,
  );
  assertRefused(
    () => unpickle(fixture('evil_stack_global_p4.p'), { source: 'x.p' }),
    /^x\.p: offset \d+: STACK_GLOBAL: posix\.system refused/,
  );
  assertRefused(
    () => unpickle(fixture('evil_inst_p0.p'), { source: 'x.p' }),
    /^x\.p: offset 15: INST: os\.system refused/,
  );
  assertRefused(
    () => unpickle(fixture('evil_reduce_p2.p'), { source: 'x.p' }),
    /^x\.p: offset 6: REDUCE: refused/,
  );
  // Opcodes refused outright, wherever they appear.
  assertRefused(() => unpickle(P('(o.')), /offset 1: OBJ: refused/);
  assertRefused(() => unpickle(P([0x80, 4, 0x29, 0x7d, 0x92, 0x2e])), /offset 4: NEWOBJ_EX: refused/);
  assertRefused(() => unpickle(P([0x80, 2, 0x82, 1, 0x2e])), /offset 2: EXT1: refused/);
  assertRefused(() => unpickle(P([0x80, 2, 0x83, 1, 0, 0x2e])), /EXT2: refused/);
  assertRefused(() => unpickle(P([0x80, 2, 0x84, 1, 0, 0, 0, 0x2e])), /EXT4: refused/);
  assertRefused(() => unpickle(P([0x80, 2, 0x4e, 0x29, 0x81, 0x2e])), /offset 4: NEWOBJ: refused/);
  assertRefused(() => unpickle(P([0x80, 2, 0x7d, 0x7d, 0x62, 0x2e])), /offset 4: BUILD: refused/);
  assertRefused(() => unpickle(P([0x80, 5, 0x97, 0x2e])), /NEXT_BUFFER: refused/);
  assertRefused(() => unpickle(P('Pfoo\n.')), /PERSID: refused: this file may not reference persistent/);
  assertRefused(() => unpickle(P([0x80, 2, 0x4e, 0x51, 0x2e])), /BINPERSID: refused/);
  assertRefused(() => unpickle(P([0x80, 6, 0x4e, 0x2e])), /PROTO: unsupported protocol 6/);
  assertRefused(() => unpickle(P([0x80, 2, 0xff])), /opcode 0xff: unknown opcode/);
});

test('an allow-list admits exactly its callables, and still refuses the rest', () => {
  const calls: unknown[] = [];
  const point: GlobalImpl = {
    call: (args) => (calls.push(args), { x: args[0], y: args[1] }),
    build: (obj, state) => Object.assign(obj as object, { state }),
  };
  const globals = {
    'geo.Point': point,
    'geo.Marker': {} as GlobalImpl,
    'geo.Box': { newobj: (a: readonly unknown[]) => ({ box: a }) },
  };
  // GLOBAL geo Point; (1, 2) REDUCE; {} BUILD
  const ok = unpickle(P('cgeo\nPoint\n(K\x01K\x02tR}b.'), { globals });
  assert.deepEqual(ok, { x: 1, y: 2, state: new Map() });
  assert.equal(calls.length, 1);
  assert.deepEqual(unpickle(P('\x80\x04\x8c\x03geo\x8c\x03Box\x93K\x05\x85\x81.'), { globals }), {
    box: [5],
  });
  assertRefused(
    () => unpickle(P('cgeo\nLine\n.'), { globals }),
    /GLOBAL: geo\.Line refused: not among the allowed globals \(geo\.Point, geo\.Marker, geo\.Box\)/,
  );
  assertRefused(() => unpickle(P('cbuiltins\nconstructor\n.'), { globals }), /builtins\.constructor refused/);
  assertRefused(
    () => unpickle(P('cgeo\nMarker\n)R.'), { globals }),
    /REDUCE: refused: global geo\.Marker is not an allowed callable/,
  );
  assertRefused(
    () => unpickle(P(']q\x00)R.'), { globals }),
    /REDUCE: refused: list is not an allowed callable/,
  );
  assertRefused(
    () => unpickle(P('cgeo\nPoint\n]R.'), { globals }),
    /arguments of geo\.Point are a list, not a tuple/,
  );
  assertRefused(
    () =>
      unpickle(P('cgeo\nPoint\n)R.'.replace(')', '(K\x01t')), {
        globals: {
          'geo.Point': {
            call: () => {
              throw new Error('bad args');
            },
          },
        },
      }),
    /REDUCE: geo\.Point: bad args/,
  );
  assertRefused(
    () => unpickle(P(']}b.'), { globals }),
    /BUILD: refused: list was not made by an allowed global/,
  );
  // Names match exactly: no trimming, no case folding.
  assertRefused(() => unpickle(P('cgeo\nPoint \n.'), { globals }), /geo\.Point  refused/);
  assertRefused(() => unpickle(P('cGeo\nPoint\n.'), { globals }), /Geo\.Point refused/);
});

test('structure checks: SETITEM on non-dicts, APPEND on non-lists, unhashable keys, marks', () => {
  assertRefused(
    () => unpickle(P([0x80, 2, 0x5d, 0x4b, 1, 0x4b, 2, 0x73, 0x2e])),
    /offset 7: SETITEM: target is a list, not a dict/,
  );
  assertRefused(
    () => unpickle(P([0x80, 2, 0x5d, 0x28, 0x4b, 1, 0x4b, 2, 0x75, 0x2e])),
    /SETITEMS: target is a list, not a dict/,
  );
  assertRefused(
    () => unpickle(P([0x80, 2, 0x7d, 0x4b, 1, 0x61, 0x2e])),
    /APPEND: target is a dict, not a list/,
  );
  assertRefused(
    () => unpickle(P([0x80, 2, 0x29, 0x4b, 1, 0x61, 0x2e])),
    /APPEND: target is a tuple, not a list/,
  );
  assertRefused(
    () => unpickle(P([0x80, 2, 0x4e, 0x28, 0x4b, 1, 0x65, 0x2e])),
    /APPENDS: target is a None, not a list/,
  );
  assertRefused(
    () => unpickle(P([0x80, 4, 0x28, 0x4b, 1, 0x91, 0x28, 0x4b, 2, 0x90, 0x2e])),
    /ADDITEMS: target is a frozenset, not a set/,
  );
  assertRefused(
    () => unpickle(P([0x80, 2, 0x7d, 0x5d, 0x4b, 1, 0x73, 0x2e])),
    /SETITEM: unhashable list used as a dict key/,
  );
  assertRefused(() => unpickle(P([0x80, 2, 0x28, 0x4b, 1, 0x64, 0x2e])), /DICT: odd number of items/);
  assertRefused(() => unpickle(P([0x80, 2, 0x74, 0x2e])), /TUPLE: no MARK on the stack/);
  assertRefused(() => unpickle(P([0x80, 2, 0x2e])), /offset 2: STOP: stack underflow/);
  assertRefused(() => unpickle(P([0x80, 2, 0x4b, 1, 0x28, 0x85, 0x2e])), /TUPLE1: stack underflow/); // cannot pop below a mark
  assertRefused(() => unpickle(P([0x80, 2, 0x68, 3, 0x2e])), /BINGET: memo key 3 was never stored/);
  assertRefused(() => unpickle(P([0x80, 2, 0x4e])), /offset 3: end of data: data ends before STOP/);
  assertRefused(() => unpickle(P('I12x\n.')), /INT: "12x" is not an integer/);
  assertRefused(() => unpickle(P('F0x10\n.')), /FLOAT: "0x10" is not a float/);
  assertRefused(() => unpickle(P('Sabc\n.')), /STRING: argument must be quoted/);
  assertRefused(() => unpickle(P("S'a\\x4'\n.")), /invalid \\x escape/);
  assertRefused(() => unpickle(P('V\\u12\n.')), /truncated \\uXXXX escape/);
  assertRefused(
    () => unpickle(P([0x80, 3, 0x58, 2, 0, 0, 0, 0xc3, 0x28, 0x2e])),
    /BINUNICODE: string is not valid UTF-8/,
  );
  assertRefused(() => unpickle(P('I1')), /INT: argument line has no terminating newline/);
});

test('every declared length is checked against the bytes present before allocating', () => {
  const big = (op: number, lenBytes: number[]) => P([0x80, 4, op, ...lenBytes, 0x61, 0x62, 0x2e]);
  assertRefused(
    () => unpickle(big(0x58, [0xff, 0xff, 0xff, 0xff])),
    /offset 2: BINUNICODE: declares 4294967295 bytes at offset 7 but only 3 remain/,
  );
  assertRefused(() => unpickle(big(0x42, [0xff, 0xff, 0xff, 0x7f])), /BINBYTES: declares 2147483647 bytes/);
  assertRefused(
    () => unpickle(big(0x8e, [0, 0, 0, 0, 0, 0, 0, 0x80])),
    /BINBYTES8: declared length 9223372036854775808 is past the data/,
  );
  assertRefused(
    () => unpickle(big(0x8d, [0, 0, 0, 0, 1, 0, 0, 0])),
    /BINUNICODE8: declares 4294967296 bytes/,
  );
  assertRefused(
    () => unpickle(big(0x96, [5, 0, 0, 0, 0, 0, 0, 0])),
    /BYTEARRAY8: declares 5 bytes at offset 11 but only 3 remain/,
  );
  assertRefused(() => unpickle(big(0x54, [0xff, 0xff, 0xff, 0xff])), /BINSTRING: negative length -1/);
  assertRefused(() => unpickle(big(0x55, [200])), /SHORT_BINSTRING: declares 200 bytes/);
  assertRefused(
    () => unpickle(big(0x8b, [0xff, 0xff, 0xff, 0x7f])),
    /LONG4: integer of 2147483647 bytes exceeds the 4096-byte limit/,
  );
  assertRefused(() => unpickle(big(0x8a, [200])), /LONG1: declares 200 bytes/);
  assertRefused(() => unpickle(big(0x95, [0, 0, 0, 0, 0, 1, 0, 0])), /FRAME: declares 1099511627776 bytes/);
  assertRefused(
    () => unpickle(P('L' + '9'.repeat(20000) + 'L\n.')),
    /LONG: integer of 20000 digits exceeds the limit/,
  );
});

test('integers, floats and Python 2 strings decode as Python does', () => {
  assert.equal(unpickle(P('I01\n.')), true); // protocol 0 booleans
  assert.equal(unpickle(P('I00\n.')), false);
  assert.equal(unpickle(P('I-42\n.')), -42);
  assert.equal(unpickle(P('I123456789012345678901\n.')), 123456789012345678901n);
  assert.equal(unpickle(P('L-9007199254740991L\n.')), -9007199254740991);
  assert.equal(unpickle(P('L9007199254740992L\n.')), 9007199254740992n);
  assert.equal(unpickle(P([0x8a, 0, 0x2e])), 0);
  assert.equal(unpickle(P([0x8a, 1, 0xff, 0x2e])), -1);
  assert.equal(unpickle(P([0x8a, 2, 0x00, 0x80, 0x2e])), -32768);
  assert.equal(unpickle(P([0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0x2e])), 2n ** 63n);
  assert.equal(unpickle(P([0x4a, 0xff, 0xff, 0xff, 0xff, 0x2e])), -1);
  assert.equal(unpickle(P([0x4d, 0xff, 0xff, 0x2e])), 65535);
  assert.equal(unpickle(P('F-1.5e-300\n.')), -1.5e-300);
  assert.ok(Object.is(unpickle(P('F-0.0\n.')), -0));
  assert.equal(unpickle(P('Finf\n.')), Infinity);
  assert.ok(Number.isNaN(unpickle(P('Fnan\n.'))));
  assert.equal(unpickle(P([0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x2e])), 1.5);
  // Python 2 repr escapes: \\ \' \" \t \n \xNN octal, line continuation, unknown escapes kept.
  assert.equal(unpickle(P("S'a\\\\b\\'c\\\"d\\te\\nf\\x41\\101\\7\\q'\n.")), 'a\\b\'c"d\te\nfAA\x07\\q');
  assert.equal(unpickle(P('S"it\'s"\n.')), "it's");
  assert.equal(unpickle(P([0x55, 2, 0xe9, 0xff, 0x2e])), '\u00e9\u00ff'); // latin-1, one char per byte
  assert.equal(unpickle(P([0x54, 3, 0, 0, 0, 0x61, 0x00, 0x62, 0x2e])), 'a\0b');
  // raw-unicode-escape: only an odd run of backslashes before u starts an escape.
  assert.equal(
    unpickle(P('V\\u2603 \\U0001F600 \\\\u0041 \\\\\\u0041 caf\xe9\n.')),
    '\u2603 \u{1F600} \\\\u0041 \\\\A caf\u00e9',
  );
  // Python writes lone surrogates with 'surrogatepass'.
  assert.equal(unpickle(P([0x8c, 3, 0xed, 0xa0, 0x80, 0x2e])), '\ud800');
});

test('memo and stack semantics: PUT/GET text forms, MEMOIZE numbering, DUP, POP, POP_MARK', () => {
  assert.deepEqual(
    unpickle(P('(lp0\nI1\nag0\na.')) as unknown[],
    (() => {
      const l: unknown[] = [1];
      l.push(l);
      return l;
    })(),
  );
  const rec = unpickle(P('(lp0\ng0\na.')) as unknown[];
  assert.equal(rec[0], rec, 'a list that contains itself (recursive structure) is rebuilt, not looped on');
  assert.equal(toPlain(rec) instanceof Array, true);
  assert.deepEqual(
    unpickle(P([0x80, 4, 0x4b, 7, 0x94, 0x4b, 8, 0x94, 0x68, 1, 0x68, 0, 0x86, 0x2e])),
    [8, 7],
  );
  assert.deepEqual(unpickle(P([0x80, 2, 0x4b, 1, 0x32, 0x86, 0x2e])), [1, 1]);
  assert.equal(unpickle(P([0x80, 2, 0x4b, 1, 0x4b, 2, 0x30, 0x2e])), 1);
  assert.equal(unpickle(P([0x80, 2, 0x4b, 1, 0x28, 0x4b, 2, 0x4b, 3, 0x31, 0x2e])), 1);
  assert.equal(
    unpickle(P([0x80, 2, 0x4b, 1, 0x28, 0x30, 0x2e])),
    1,
    'POP on an empty frame discards the mark',
  );
});

test('caps: stack and memo sizes', () => {
  assertRefused(
    () => unpickle(P([0x80, 2, ...new Array(20).fill(0x4e), 0x2e]), { maxStack: 10 }),
    /stack exceeds 10 entries/,
  );
  assertRefused(
    () => unpickle(P([0x80, 2, ...new Array(20).fill(0x28), 0x2e]), { maxStack: 10 }),
    /MARK: stack exceeds 10 entries/,
  );
  assertRefused(
    () => unpickle(P([0x80, 4, 0x4e, 0x94, 0x94, 0x94, 0x2e]), { maxMemo: 2 }),
    /MEMOIZE: memo exceeds 2 entries/,
  );
});

test('nesting 100000 levels deep (far past the JS call stack) neither overflows nor takes long', () => {
  const depth = 100_000; // recursion would overflow at ~10^4 frames; deeper only measures the GC
  // EMPTY_LIST × depth, then APPEND × (depth − 1): [[[[...]]]]
  const bytes = new Uint8Array(2 + depth + depth - 1 + 1);
  bytes.set([0x80, 2]);
  bytes.fill(0x5d, 2, 2 + depth);
  bytes.fill(0x61, 2 + depth, 2 + 2 * depth - 1);
  bytes[bytes.length - 1] = 0x2e;
  const t0 = performance.now();
  let v = unpickle(bytes) as unknown[];
  let plain = toPlain(v) as unknown[];
  let n = 1;
  while (v.length > 0) {
    v = v[0] as unknown[];
    plain = plain[0] as unknown[];
    n++;
  }
  assert.equal(n, depth);
  assert.deepEqual(plain, []);
  // Nested MARKs: ( × depth then LIST × depth.
  const marks = new Uint8Array(2 * depth + 1).fill(0x28, 0, depth).fill(0x6c, depth, 2 * depth);
  marks[2 * depth] = 0x2e;
  assert.ok(Array.isArray(unpickle(marks)));
  assert.ok(performance.now() - t0 < 5000);
});
