// MATLAB Level-5 MAT-files (src/io/mat.ts) against files written by scipy.io.savemat and a
// big-endian file built by scripts/make-referit-fixtures.py, with the values scipy.io.loadmat reads
// from them (test/fixtures/referit/formats/*.expected.json); then truncated, corrupted and
// hand-crafted hostile files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { matNumeric, readMat, type MatFile, type MatValue } from '../../src/io/mat.js';
import { assertCleanOutcome, assertRefused } from './helpers.js';

const fixturePath = (name: string): string =>
  fileURLToPath(new URL(`../../../test/fixtures/referit/${name}`, import.meta.url));
const fixture = (name: string): Uint8Array => new Uint8Array(fs.readFileSync(fixturePath(name)));
const expected = (name: string): any => JSON.parse(fs.readFileSync(fixturePath(name), 'utf8'));

const NUMPY_DTYPE: Record<string, string> = { double: 'float64', single: 'float32' };

/** A value in the encoding of the fixture script's enc() (what scipy.io.loadmat returns). */
function enc(v: MatValue): unknown {
  switch (v.kind) {
    case 'numeric': {
      const big = v.className === 'int64' || v.className === 'uint64';
      const out: Record<string, unknown> = {
        kind: 'numeric',
        dtype: v.logical ? 'bool' : (NUMPY_DTYPE[v.className] ?? v.className),
        dims: v.dims,
        values: Array.from(v.data as ArrayLike<number | bigint>, (x) => (big ? String(x) : Number(x))),
      };
      if (v.imag) out.imag = Array.from(v.imag as ArrayLike<number>, Number);
      return out;
    }
    case 'char':
      return { kind: 'char', dims: v.dims, rows: v.rows };
    case 'cell':
      return { kind: 'cell', dims: v.dims, cells: v.cells.map(enc) };
    case 'struct':
      return {
        kind: 'struct',
        dims: v.dims,
        fields: v.fields,
        elements: v.elements.map((e) => Object.fromEntries([...e].map(([k, x]) => [k, enc(x)]))),
      };
    case 'unsupported':
      return { kind: 'unsupported', className: v.className };
  }
}

const encAll = (f: MatFile): Record<string, unknown> =>
  Object.fromEntries([...f.variables].map(([k, v]) => [k, enc(v)]));

test('scipy.io.savemat files, uncompressed and compressed, read as scipy.io.loadmat reads them', () => {
  const want = expected('formats/classes.expected.json');
  for (const file of ['formats/classes.mat', 'formats/classes_z.mat']) {
    const mat = readMat(fixture(file), { source: file });
    assert.equal(mat.endian, 'little');
    assert.match(mat.header, /^MATLAB 5\.0 MAT-file/);
    assert.deepEqual(encAll(mat), want, file);
  }
});

test('a big-endian file with narrowed storage types, small data elements and UTF-16 chars', () => {
  const mat = readMat(fixture('formats/big_endian.mat'));
  assert.equal(mat.endian, 'big');
  assert.deepEqual(encAll(mat), expected('formats/big_endian.expected.json'));
  const cube = mat.variables.get('cube');
  assert.ok(cube?.kind === 'numeric' && cube.data instanceof Int16Array, 'int16 class from miINT8 storage');
});

test('column-major data come back row-major', () => {
  // classes.mat's u8 is np.arange(12).reshape(3, 4): row-major 0..11 whatever MATLAB's order.
  const u8 = matNumeric(readMat(fixture('formats/classes.mat')), 'u8', 'classes.mat');
  assert.deepEqual(u8.dims, [3, 4]);
  assert.deepEqual([...u8.data], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.throws(
    () => matNumeric(readMat(fixture('formats/classes.mat')), 'nope', 'x.mat'),
    /no variable "nope"/,
  );
  assert.throws(
    () => matNumeric(readMat(fixture('formats/classes.mat')), 'st', 'x.mat'),
    /is struct, expected a numeric/,
  );
});

// ---- truncated and corrupted files ---------------------------------------------------------------

const MASKS = ['1001_1.mat', '1001_2.mat', '1002_1.mat', '2040_1.mat', '2040_3.mat'].map(
  (f) => `referit/mask/${f}`,
);
const segimg = (b: Uint8Array) => matNumeric(readMat(b, { source: 'mask.mat' }), 'segimg_t', 'mask.mat');

test('ReferIt masks (compressed, uncompressed, big-endian) truncated at every offset → clean FormatError', () => {
  for (const file of MASKS) {
    const bytes = fixture(file);
    const full = segimg(bytes);
    // A cut exactly between two variables is a valid, shorter file: it still holds segimg_t when
    // the cut comes after it (1002_1 and 2040_1 have variables after segimg_t).
    const names = [...readMat(bytes).variables.keys()];
    const after = names.length - 1 - names.indexOf('segimg_t');
    let whole = 0;
    for (let n = 0; n < bytes.length; n++) {
      let got: ReturnType<typeof segimg> | undefined;
      assertCleanOutcome(() => (got = segimg(bytes.slice(0, n))), `${file} cut at ${n}`);
      if (got) {
        assert.deepEqual(got, full, `${file} cut at ${n}`);
        whole++;
      }
    }
    assert.equal(whole, after, `${file}: clean cuts after segimg_t`);
  }
});

test('a multi-variable file truncated at every offset: an error, or (at a variable boundary) fewer variables', () => {
  for (const file of ['formats/classes.mat', 'formats/classes_z.mat', 'formats/big_endian.mat']) {
    const bytes = fixture(file);
    const all = [...readMat(bytes).variables.keys()];
    let partial = 0;
    for (let n = 0; n < bytes.length; n++) {
      let got: MatFile | undefined;
      assertCleanOutcome(() => (got = readMat(bytes.slice(0, n))), `${file} cut at ${n}`);
      if (got) {
        const names = [...got.variables.keys()];
        assert.deepEqual(names, all.slice(0, names.length), `${file} cut at ${n}`);
        assert.ok(names.length < all.length);
        partial++;
      }
    }
    assert.equal(partial, all.length, `${file}: one clean cut per variable boundary`);
  }
});

test('any single byte flipped → a result or a clean FormatError', () => {
  for (const file of [...MASKS, 'formats/classes_z.mat', 'formats/big_endian.mat']) {
    const bytes = fixture(file);
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0xff, 0x01, 0x80]) {
        const b = bytes.slice();
        b[i]! ^= mask;
        assertCleanOutcome(() => readMat(b), `${file} byte ${i} ^ ${mask}`);
      }
    }
  }
});

// ---- hand-crafted hostile files (little-endian) ---------------------------------------------------

const u32 = (...v: number[]): Uint8Array => new Uint8Array(Uint32Array.from(v).buffer);
const i32 = (...v: number[]): Uint8Array => new Uint8Array(Int32Array.from(v).buffer);
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** A data element (small when ≤ 4 bytes), padded to 8. */
function el(type: number, data: Uint8Array): Uint8Array {
  if (data.length <= 4) return cat(u32(type | (data.length << 16)), data, new Uint8Array(4 - data.length));
  return cat(u32(type, data.length), data, new Uint8Array((8 - (data.length % 8)) % 8));
}
function matrix(name: string, cls: number, dims: number[], ...body: Uint8Array[]): Uint8Array {
  const sub = cat(el(6, u32(cls, 0)), el(5, i32(...dims)), el(1, new TextEncoder().encode(name)), ...body);
  return cat(u32(14, sub.length), sub);
}
function compressed(element: Uint8Array): Uint8Array {
  const z = deflateSync(element);
  return cat(u32(15, z.length), z);
}
function matFile(...elements: Uint8Array[]): Uint8Array {
  const header = new Uint8Array(128).fill(0x20);
  header.set(new TextEncoder().encode('MATLAB 5.0 MAT-file, crafted'), 0);
  header.set([0, 1, 0x49, 0x4d], 124); // version 0x0100 little-endian, 'IM'
  return cat(header, ...elements);
}
const double1 = (name: string, x: number) =>
  matrix(name, 6, [1, 1], el(9, new Uint8Array(Float64Array.of(x).buffer)));

test('crafted files: the writer above is valid', () => {
  const m = readMat(matFile(double1('a', 1.5), compressed(double1('b', -2))));
  assert.deepEqual(encAll(m), {
    a: { kind: 'numeric', dtype: 'float64', dims: [1, 1], values: [1.5] },
    b: { kind: 'numeric', dtype: 'float64', dims: [1, 1], values: [-2] },
  });
});

test('a compressed element that inflates past the limit is refused (zip bomb)', () => {
  const big = matrix('x', 9, [1024, 1024], el(2, new Uint8Array(1024 * 1024)));
  const file = matFile(compressed(big));
  assert.equal(readMat(file).variables.size, 1);
  assertRefused(
    () => readMat(file, { maxInflatedBytes: 100_000, source: 'bomb.mat' }),
    /^bomb\.mat: offset 128: variable 0: .*more than the limit of 100000 bytes/,
  );
  // The limit is over the whole file, not per element.
  const two = matFile(
    compressed(matrix('a', 9, [1, 60_000], el(2, new Uint8Array(60_000)))),
    compressed(matrix('b', 9, [1, 60_000], el(2, new Uint8Array(60_000)))),
  );
  assert.equal(readMat(two, { maxInflatedBytes: 130_000 }).variables.size, 2);
  assertRefused(() => readMat(two, { maxInflatedBytes: 100_000 }), /limit of 100000/);
});

test('declared sizes are checked against the bytes present before allocating', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    [
      'huge dims, 4 data bytes',
      matFile(matrix('m', 9, [65535, 65535], el(2, u32(0)))),
      /4294836225 elements of miUINT8 need 4294836225 bytes, found 4/,
    ],
    [
      'negative dim',
      matFile(matrix('m', 9, [-1, 2], el(2, new Uint8Array(2)))),
      /dim -1 is not a non-negative integer/,
    ],
    [
      'dims overflow',
      matFile(matrix('m', 6, [2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1], el(9, new Uint8Array(8)))),
      /too many elements/,
    ],
    [
      'element past the end',
      matFile(cat(u32(14, 1000), new Uint8Array(16))),
      /miMATRIX element of 1000 bytes, only 16 left/,
    ],
    ['cell of 1e9 elements', matFile(matrix('c', 1, [1, 1e9])), /1000000000 sub-arrays cannot fit/],
    [
      'struct of 1e6×2 elements',
      matFile(matrix('s', 2, [1000, 1000], el(5, i32(2)), el(1, new TextEncoder().encode('a\0b\0')))),
      /2000000 sub-arrays cannot fit/,
    ],
    [
      'fieldless struct of 1e9',
      matFile(matrix('s', 2, [1, 1e9], el(5, i32(1)), el(1, new Uint8Array(0)))),
      /struct array of 1000000000 elements with no fields/,
    ],
    [
      'small element claiming 7 bytes',
      matFile(matrix('m', 9, [1, 1], cat(u32(2 | (7 << 16)), u32(0)))),
      /small data element claims 7 bytes/,
    ],
    [
      'double data as miMATRIX',
      matFile(matrix('m', 6, [1, 1], double1('x', 1))),
      /miMATRIX cannot hold double data/,
    ],
    ['unknown class', matFile(matrix('m', 99, [1, 1])), /unknown array class 99/],
    [
      'top-level miDOUBLE',
      matFile(el(9, new Uint8Array(8))),
      /expected miMATRIX or miCOMPRESSED, found miDOUBLE/,
    ],
    [
      'compressed non-matrix',
      matFile(compressed(el(9, new Uint8Array(8)))),
      /expected miMATRIX, found miDOUBLE \(byte 0 of the data inflated/,
    ],
    ['compressed garbage', matFile(cat(u32(15, 8), u32(0xdeadbeef, 0x12345678))), /not a valid zlib stream/],
    ['duplicate variable', matFile(double1('a', 1), double1('a', 2)), /variable "a" appears twice/],
    [
      'duplicate field',
      matFile(
        matrix(
          's',
          2,
          [1, 1],
          el(5, i32(2)),
          el(1, new TextEncoder().encode('a\0a\0')),
          double1('', 1),
          double1('', 2),
        ),
      ),
      /field "a" appears twice/,
    ],
    [
      'invalid UTF-8 chars',
      matFile(matrix('t', 4, [1, 2], el(16, Uint8Array.of(0xc3, 0x28)))),
      /not valid UTF-8/,
    ],
    [
      'char count mismatch',
      matFile(matrix('t', 4, [1, 3], el(16, new TextEncoder().encode('ab')))),
      /2 characters for 3 elements/,
    ],
    [
      'v7.3',
      (() => {
        const b = matFile();
        b.set([0, 2], 124);
        return b;
      })(),
      /v7\.3 files \(HDF5\) are not supported/,
    ],
    ['v4', new Uint8Array(200), /MAT v4/],
    [
      'bad endian indicator',
      (() => {
        const b = matFile();
        b.set([0x41, 0x42], 126);
        return b;
      })(),
      /endian indicator is "AB"/,
    ],
    ['short', new TextEncoder().encode('MATLAB 5.0'), /10 bytes, a Level-5 header alone is 128/],
  ];
  for (const [what, bytes, re] of cases) {
    const e = assertRefused(() => readMat(bytes, { source: 'evil.mat' }), re);
    assert.match(e.message, /^evil\.mat: /, what);
  }
});

test('deep nesting is refused, not a stack overflow', () => {
  let m = double1('', 1);
  for (let i = 0; i < 100; i++) m = matrix(i === 99 ? 'deep' : '', 1, [1, 1], m);
  assertRefused(() => readMat(matFile(m)), /nested deeper than 32/);
  assert.equal(readMat(matFile(m), { maxDepth: 200 }).variables.size, 1);
});

test('sparse and opaque variables are skipped, the others still read; field names stay plain keys', () => {
  const sparse = matrix('sp', 5, [3, 3], el(5, i32(0)), el(5, i32(0, 0, 0, 1)), el(9, new Uint8Array(8)));
  const opaqueSub = cat(
    el(6, u32(17, 0)),
    el(1, new TextEncoder().encode('fh')),
    el(1, new TextEncoder().encode('MCOS')),
  );
  const opaque = cat(u32(14, opaqueSub.length), opaqueSub);
  const proto = matrix(
    's',
    2,
    [1, 1],
    el(5, i32(10)),
    el(1, new TextEncoder().encode('__proto__\0')),
    double1('', 7),
  );
  const m = readMat(matFile(sparse, opaque, proto, double1('after', 3)));
  assert.deepEqual([...m.variables.keys()], ['sp', 'fh', 's', 'after']);
  assert.deepEqual(m.variables.get('sp'), { kind: 'unsupported', className: 'sparse' });
  assert.deepEqual(m.variables.get('fh'), { kind: 'unsupported', className: 'opaque' });
  const s = m.variables.get('s');
  assert.ok(s?.kind === 'struct');
  assert.deepEqual(s.fields, ['__proto__']);
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
  assert.deepEqual(enc(s.elements[0]!.get('__proto__')!), {
    kind: 'numeric',
    dtype: 'float64',
    dims: [1, 1],
    values: [7],
  });
});
