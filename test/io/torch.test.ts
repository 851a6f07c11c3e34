// PyTorch .pth (torch.save zip format): the timm ViT toy, views/dtypes/parameters, key following,
// and crafted checkpoints whose storages, views or globals are wrong.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TorchTensor, loadTorch, readTorch, readTorchObject } from '../../src/io/torch.js';
import {
  assertRefused,
  assertTensor,
  expectedJson,
  f32bytes,
  fixture,
  fixturePath,
  makeZip,
  torchPickle,
  pk,
  type TensorSpec,
} from './helpers.js';

test('timm ViT toy state_dict: names in file order, every value exact', () => {
  const sd = loadTorch(fixturePath('vit_tiny.pth'));
  const exp = expectedJson('vit_tiny.expected.json');
  assert.deepEqual([...sd.keys()], Object.keys(exp));
  for (const name of Object.keys(exp)) assertTensor(sd.get(name), exp[name], name);
});

test('views, offsets, shared storage, every storage type, Parameter, 0-d and empty tensors', () => {
  const sd = readTorch(fixture('torch_views.pth'), { key: 'model' });
  const exp = expectedJson('torch_views.expected.json');
  assert.deepEqual([...sd.keys()], Object.keys(exp));
  for (const name of Object.keys(exp)) assertTensor(sd.get(name), exp[name], name);
  // Copies, not views of one storage: changing one tensor must not change another.
  (sd.get('base')!.data as Float32Array)[0] = 99;
  assert.equal(sd.get('transposed')!.data[0], 0);
});

test('key following: explains what the top level holds', () => {
  assertRefused(
    () => readTorch(fixture('torch_views.pth'), { source: 'ck.pth' }),
    /^ck\.pth: entry "model" is a dict, not a tensor; pass key \(one of "model"\)/,
  );
  assertRefused(
    () => readTorch(fixture('torch_views.pth'), { key: 'state_dict' }),
    /top level has no key "state_dict" \(it holds: model, epoch, note\)/,
  );
  assertRefused(() => readTorch(fixture('vit_tiny.pth'), { key: 'model' }), /no key "model"/);
  const top = readTorchObject(fixture('torch_views.pth')) as Map<string, unknown>;
  assert.equal(top.get('epoch'), 3);
  assert.equal(top.get('note'), 'views');
  assert.ok((top.get('model') as Map<string, unknown>).get('base') instanceof TorchTensor);
});

/** A checkpoint zip from a data.pkl and storages, laid out as torch.save does. */
function checkpoint(
  pkl: Uint8Array,
  storages: Record<string, Uint8Array>,
  extra: Record<string, string> = {},
): Uint8Array {
  return makeZip([
    { name: 'archive/data.pkl', data: pkl },
    ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })),
    ...Object.entries(extra).map(([name, data]) => ({ name: `archive/${name}`, data })),
    { name: 'archive/version', data: '3\n' },
  ]);
}

const one = (t: Partial<TensorSpec> = {}): TensorSpec => ({
  name: 'w',
  key: '0',
  numel: 4,
  size: [2, 2],
  stride: [2, 1],
  ...t,
});

test('crafted checkpoints: the tensor rebuild reads what the spec says', () => {
  const sd = readTorch(
    checkpoint(
      torchPickle([
        one({ size: [2, 2], stride: [1, 2] }),
        one({ name: 'v', offset: 1, size: [3], stride: [1] }),
      ]),
      { '0': f32bytes([1, 2, 3, 4]) },
    ),
  );
  assert.deepEqual([...sd.get('w')!.data], [1, 3, 2, 4]);
  assert.deepEqual([...sd.get('v')!.data], [2, 3, 4]);
  // Zero strides broadcast one element (expand()).
  assert.deepEqual(
    [
      ...readTorch(
        checkpoint(torchPickle([one({ size: [3], stride: [0] })]), { '0': f32bytes([7, 0, 0, 0]) }),
      ).get('w')!.data,
    ],
    [7, 7, 7],
  );
  // byteorder 'big' (torch 2.x on big-endian machines) is byte-swapped.
  const be = new Uint8Array(16);
  const dv = new DataView(be.buffer);
  [1.5, -2, 3, 4].forEach((v, i) => dv.setFloat32(4 * i, v, false));
  const big = readTorch(checkpoint(torchPickle([one()]), { '0': be }, { byteorder: 'big' }));
  assert.deepEqual([...big.get('w')!.data], [1.5, -2, 3, 4]);
  assert.doesNotThrow(() =>
    readTorch(checkpoint(torchPickle([one()]), { '0': f32bytes([1, 2, 3, 4]) }, { byteorder: 'little' })),
  );
});

test('crafted checkpoints: storage extents, storage sizes and types are checked', () => {
  const data = { '0': f32bytes([1, 2, 3, 4]) };
  const S = { source: 'ck.pth' };
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ size: [5], stride: [1] })]), data), S),
    /^ck\.pth:archive\/data\.pkl: offset \d+: REDUCE: torch\._utils\._rebuild_tensor_v2: view \(offset 0, size \[5\], stride \[1\]\) reaches element 4 of storage "0" which holds 4/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ offset: 3, size: [2], stride: [1] })]), data)),
    /reaches element 4 of storage "0"/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ size: [2, 2], stride: [3, 1] })]), data)),
    /reaches element 4/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ size: [2], stride: [-1] })]), data)),
    /stride -1 is not a non-negative integer/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ size: [-2], stride: [1] })]), data)),
    /size: dim -2 is not a non-negative integer/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ size: [2], stride: [1, 1] })]), data)),
    /stride has 2 dims, size has 1/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ numel: 10 })]), data)),
    /BINPERSID: storage "0" declares 10 × 4 bytes but archive\/data\/0 holds 16/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ numel: 2 ** 31 - 1 })]), data)),
    /declares 2147483647 × 4 bytes/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ key: '7' })]), data)),
    /storage "7" has no entry archive\/data\/7/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one(), one({ name: 'v', storageType: 'IntStorage' })]), data)),
    /storage "0" is referenced as IntStorage\[4\] and FloatStorage\[4\]/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one({ storageType: 'ComplexFloatStorage' })]), data)),
    /GLOBAL: torch\.ComplexFloatStorage refused: not among the allowed globals/,
  );
  assertRefused(
    () => readTorch(checkpoint(torchPickle([one()]), data, { byteorder: 'middle' })),
    /byteorder entry says "middle"/,
  );
});

test('crafted checkpoints: anything beyond the allow-list is refused', () => {
  const data = { '0': f32bytes([1, 2, 3, 4]) };
  // os.system smuggled into data.pkl.
  const evil = Uint8Array.from([
    0x80,
    2,
    ...pk.global('os', 'system'),
    ...pk.tuple(pk.str('echo pwned')),
    0x52,
    0x2e,
  ]);
  assertRefused(
    () => readTorch(checkpoint(evil, data)),
    /GLOBAL: os\.system refused: not among the allowed globals \(collections\.OrderedDict, torch\._utils\._rebuild_tensor_v2/,
  );
  // An allowed name used in a way it is not allowed: a storage class called.
  const callStorage = Uint8Array.from([0x80, 2, ...pk.global('torch', 'FloatStorage'), 0x29, 0x52, 0x2e]);
  assertRefused(
    () => readTorch(checkpoint(callStorage, data)),
    /REDUCE: refused: global torch\.FloatStorage is not an allowed callable/,
  );
  // A persistent id that is not a storage tuple.
  const badPid = Uint8Array.from([0x80, 2, ...pk.str('storage'), 0x51, 0x2e]);
  assertRefused(
    () => readTorch(checkpoint(badPid, data)),
    /BINPERSID: persistent id is not \('storage', type, key, location, numel\)/,
  );
  // _rebuild_tensor_v2 with something that is not a storage.
  const notStorage = Uint8Array.from([
    0x80,
    2,
    ...pk.global('torch._utils', '_rebuild_tensor_v2'),
    0x28,
    0x4e,
    ...pk.int(0),
    0x29,
    0x29,
    0x89,
    0x4e,
    0x74,
    0x52,
    0x2e,
  ]);
  assertRefused(
    () => readTorch(checkpoint(notStorage, data)),
    /_rebuild_tensor_v2: first argument is not a storage/,
  );
  const badArity = Uint8Array.from([
    0x80,
    2,
    ...pk.global('collections', 'OrderedDict'),
    ...pk.tuple(pk.int(1)),
    0x52,
    0x2e,
  ]);
  assertRefused(
    () => readTorch(checkpoint(badArity, data)),
    /collections\.OrderedDict: expects no arguments/,
  );
});

test('archive-level checks: legacy format, missing or several data.pkl', () => {
  assertRefused(
    () => readTorch(Uint8Array.from([0x80, 2, 0x8a, 0x0a, 0x6c]), { source: 'old.pth' }),
    /^old\.pth: offset 0: legacy \(pre-1\.6, non-zip\) torch\.save format/,
  );
  assertRefused(() => readTorch(Uint8Array.from([1, 2, 3, 4, 5])), /not a zip-format torch checkpoint/);
  assertRefused(
    () => readTorch(makeZip([{ name: 'x/data/0', data: 'abcd' }])),
    /expected one <archive>\/data\.pkl entry, found 0/,
  );
  assertRefused(
    () =>
      readTorch(
        makeZip([
          { name: 'a/data.pkl', data: '.' },
          { name: 'b/data.pkl', data: '.' },
        ]),
      ),
    /found 2/,
  );
  assertRefused(
    () => readTorch(checkpoint(Uint8Array.from([0x80, 2, 0x4b, 1, 0x2e]), {})),
    /expected a dict of tensors, found a number/,
  );
});
