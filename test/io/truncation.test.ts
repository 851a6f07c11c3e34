// Every reader, fed a small valid file cut at EVERY byte offset, throws a FormatError from one of
// its checks (no RangeError, no hang, no partial result); fed the file with any single byte
// flipped, it either succeeds or throws such a FormatError.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensors } from '../../src/io/safetensors.js';
import { unpickle } from '../../src/io/pickle.js';
import { readTorch } from '../../src/io/torch.js';
import { readNpy, readNpz } from '../../src/io/npz.js';
import { readZip } from '../../src/io/zip.js';
import { assertCleanOutcome, assertRefused, fixture, makeZip } from './helpers.js';

const torchAllowed = (bytes: Uint8Array) => readTorch(bytes, { key: 'model' });
/** Reads every entry, as a consumer would. */
const zipAll = (bytes: Uint8Array) => {
  const z = readZip(bytes);
  for (const n of z.names()) z.read(n);
};

const cases: [string, string, (b: Uint8Array) => unknown][] = [
  ['safetensors', 'dtypes.safetensors', (b) => readSafetensors(b)],
  ['pickle protocol 0', 'refs_p0.p', (b) => unpickle(b)],
  ['pickle protocol 2', 'refs_p2.p', (b) => unpickle(b)],
  ['pickle protocol 5', 'misc_p5.p', (b) => unpickle(b)],
  ['torch .pth', 'torch_views.pth', torchAllowed],
  ['npz stored', 'arrays.npz', (b) => readNpz(b)],
  ['npz deflated', 'arrays_compressed.npz', (b) => readNpz(b)],
  ['zip', 'npy_versions.npz', zipAll],
];

for (const [label, file, read] of cases) {
  test(`${label} (${file}): truncated at every offset → clean FormatError`, () => {
    const bytes = fixture(file);
    assert.doesNotThrow(() => read(bytes));
    for (let n = 0; n < bytes.length; n++) {
      assertRefused(() => read(bytes.slice(0, n)));
    }
  });

  test(`${label} (${file}): any single byte flipped → result or clean FormatError`, () => {
    const bytes = fixture(file);
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0xff, 0x01]) {
        const b = bytes.slice();
        b[i] ^= mask;
        assertCleanOutcome(() => read(b), `byte ${i} ^ ${mask}`);
      }
    }
  });
}

test('the pickle inside a .pth and the .npy inside an .npz, truncated at every offset', () => {
  const z = readZip(fixture('torch_views.pth'));
  const pkl = z.read('torch_views/data.pkl');
  const others = z
    .names()
    .filter((n) => n !== 'torch_views/data.pkl')
    .map((name) => ({ name, data: z.read(name) }));
  const rebuilt = (p: Uint8Array) => makeZip([{ name: 'torch_views/data.pkl', data: p }, ...others]);
  assert.equal(readTorch(rebuilt(pkl), { key: 'model' }).size, 14);
  for (let n = 0; n < pkl.length; n++)
    assertRefused(() => readTorch(rebuilt(pkl.slice(0, n)), { key: 'model' }));
  for (let i = 0; i < pkl.length; i++) {
    const b = pkl.slice();
    b[i] ^= 0xff;
    assertCleanOutcome(() => readTorch(rebuilt(b), { key: 'model' }), `data.pkl byte ${i}`);
  }
  const npy = readZip(fixture('arrays.npz')).read('fortran3d.npy');
  assert.equal(readNpy(npy).shape.length, 3);
  for (let n = 0; n < npy.length; n++) assertRefused(() => readNpy(npy.slice(0, n)));
});
