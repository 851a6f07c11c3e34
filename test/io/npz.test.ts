// NumPy .npy/.npz: every accepted dtype, Fortran order, big-endian, NPY 1.0/2.0/3.0 headers,
// and refusal of object arrays and malformed headers (which are parsed, never evaluated).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNpz, readNpy, readNpz } from '../../src/io/npz.js';
import { assertRefused, assertTensor, expectedJson, fixture, fixturePath, makeZip } from './helpers.js';

/** An NPY 1.0 file with the given header text and data bytes. */
function npy(header: string, data: Uint8Array | number = 0, version = 1): Uint8Array {
  const h = Buffer.from(header, version === 3 ? 'utf8' : 'latin1');
  const lenBytes = version === 1 ? 2 : 4;
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + lenBytes + h.length + body.length);
  out.set([0x93, ...Buffer.from('NUMPY'), version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  out.set(h, 8 + lenBytes);
  out.set(body, 8 + lenBytes + h.length);
  return out;
}

for (const f of ['arrays.npz', 'arrays_compressed.npz']) {
  test(`${f}: every dtype, Fortran order copied to C order, big-endian swapped, 0-d`, () => {
    const arrays = readNpz(fixture(f), { source: f });
    const exp = expectedJson('arrays.expected.json');
    assert.deepEqual([...arrays.keys()], Object.keys(exp));
    for (const name of Object.keys(exp)) assertTensor(arrays.get(name), exp[name], name);
  });
}

test('NPY format versions 1.0, 2.0 and 3.0', () => {
  const arrays = loadNpz(fixturePath('npy_versions.npz'));
  const exp = expectedJson('npy_versions.expected.json');
  for (const name of ['v1', 'v2', 'v3']) assertTensor(arrays.get(name), exp[name], name);
  const v3 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'ünï': 1}", 4, 3);
  assertRefused(() => readNpy(v3), /header keys are \{descr,fortran_order,shape,ünï\}/);
});

test('refuses object arrays, unsupported dtypes and malformed headers', () => {
  assertRefused(
    () => readNpz(fixture('object_array.npz'), { source: 'o.npz' }),
    /^o\.npz:obj\.npy: offset 10: object arrays \(pickled Python objects\) are refused/,
  );
  const ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  assert.deepEqual([...readNpy(npy(ok, new Uint8Array(new Float32Array([1, 2]).buffer))).data], [1, 2]);
  const S = { source: 'a.npy' };
  assertRefused(() => readNpy(new Uint8Array(5), S), /^a\.npy: offset 0: not an NPY file/);
  assertRefused(() => readNpy(npy(ok, 8, 4), S), /unsupported NPY format version 4\.0/);
  assertRefused(() => readNpy(npy(ok, 4), S), /<f4 \[2\] needs 8 data bytes, found 4/);
  assertRefused(() => readNpy(npy(ok, 12), S), /needs 8 data bytes, found 12/);
  const past = npy(ok, 8);
  new DataView(past.buffer).setUint16(8, 60000, true);
  assertRefused(() => readNpy(past, S), /header length 60000 exceeds the \d+ bytes present/);
  for (const [header, why] of [
    ["{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 'unsupported dtype "<c8"'],
    ["{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", 'unsupported dtype "|f4"'],
    ["{'descr': 'f4', 'fortran_order': False, 'shape': (2,), }", 'unsupported dtype "f4"'],
    ["{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 'object arrays'],
    ["{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 'structured dtypes'],
    ["{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 'fortran_order is not True or False'],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 'dim -2 is not a non-negative integer'],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': 2, }", 'shape is not a tuple'],
    ["{'descr': '<f4', 'fortran_order': False}", 'header keys are'],
    ["{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 'given twice'],
    [
      "{'descr': __import__('os').system('echo pwned'), 'fortran_order': False, 'shape': (2,), }",
      'unexpected "__import__"',
    ],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 'text after the dict'],
    ["{'descr': '<f4\\x00', 'fortran_order': False, 'shape': (2,), }", 'escapes'],
    ["{'descr': '<f4", 'unterminated string'],
  ] as const) {
    assertRefused(() => readNpy(npy(header, 8), S), new RegExp(why.replace(/[()[\]|.]/g, '\\$&')));
  }
  // Python 2 numpy wrote shapes with long suffixes.
  assert.deepEqual(
    readNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", 8)).shape,
    [1, 2],
  );
  assertRefused(
    () => readNpz(makeZip([{ name: 'notes.txt', data: 'hi' }]), { source: 'n.npz' }),
    /^n\.npz: entry "notes\.txt" is not a \.npy array/,
  );
});
