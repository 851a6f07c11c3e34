// safetensors: reading Python-written files, byte-identical writing, round trips, and refusal of
// every malformed header reliability.md lists.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  MAX_HEADER_BYTES,
  loadSafetensors,
  readSafetensors,
  saveSafetensorsAtomic,
  writeSafetensors,
} from '../../src/io/safetensors.js';
import type { IoTensor } from '../../src/io/tensor.js';
import { assertRefused, assertTensor, expectedJson, fixture, fixturePath } from './helpers.js';

/** A file with the given header object (or raw header text) and data buffer. */
function craft(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const buf = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + buf.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(buf, 8 + h.length);
  return out;
}

test('reads every dtype written by Python, BF16 widened to float32, with metadata', () => {
  const { tensors, metadata } = readSafetensors(fixture('dtypes.safetensors'), {
    source: 'dtypes.safetensors',
  });
  const exp = expectedJson('dtypes.expected.json');
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(exp).sort());
  for (const name of Object.keys(exp)) assertTensor(tensors.get(name), exp[name], name);
  assert.equal(Object.getPrototypeOf(metadata), null);
  assert.ok(Object.hasOwn(metadata, '__proto__'), '__proto__ is an ordinary metadata key');
  assert.equal(metadata['__proto__'], 'x');
  assert.equal(metadata.config, '{"a":1}');
});

test('reads the timm ViT toy checkpoint (same values as the .pth)', () => {
  const { tensors, metadata } = loadSafetensors(fixturePath('vit_tiny.safetensors'));
  const exp = expectedJson('vit_tiny.expected.json');
  assert.equal(tensors.size, Object.keys(exp).length);
  for (const name of Object.keys(exp)) assertTensor(tensors.get(name), exp[name], name);
  assert.deepEqual({ ...metadata }, { format: 'pt', note: 'timm vit toy' });
});

test('writes byte-identical files to the reference layout, float32 and float16', () => {
  const file = fixture('vit_tiny.safetensors');
  const { tensors, metadata } = readSafetensors(file);
  // Insertion order must not matter: reverse it.
  const reversed = new Map([...tensors].reverse());
  assert.deepEqual(writeSafetensors(reversed, metadata), file);
  assert.deepEqual(
    writeSafetensors(reversed, metadata, { dtype: 'float16' }),
    fixture('vit_tiny_f16.safetensors'),
  );
});

test('round-trips every dtype, awkward names, scalars and empty tensors; keeps every tensor aligned', () => {
  const tensors = new Map<string, IoTensor>([
    ['10', { dtype: 'float32', shape: [2], data: Float32Array.from([1.5, -0]) }],
    ['2', { dtype: 'float16', shape: [3], data: Uint16Array.from([0x3c00, 0x7c00, 0x0001]) }],
    ['__proto__', { dtype: 'uint8', shape: [3], data: Uint8Array.from([1, 2, 3]) }],
    ['été/ünï', { dtype: 'int64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 62n + 1n]) }],
    ['i32', { dtype: 'int32', shape: [1, 1], data: Int32Array.from([-7]) }],
    ['f64', { dtype: 'float64', shape: [], data: Float64Array.from([Math.PI]) }],
    ['bool', { dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0]) }],
    ['empty', { dtype: 'float32', shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const meta = { config: JSON.stringify({ depth: 12 }), format: 'refseg.restr/1' };
  const bytes = writeSafetensors(tensors, meta);
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(hlen % 8, 0, 'header padded to a multiple of 8');
  const headerText = Buffer.from(bytes.subarray(8, 8 + hlen)).toString('utf8');
  assert.match(headerText, /^\{"__metadata__":\{"config":.*\} *$/);
  const header = JSON.parse(headerText);
  for (const [name, t] of tensors) {
    const itemsize = t.data.BYTES_PER_ELEMENT;
    assert.equal((8 + hlen + header[name].data_offsets[0]) % itemsize, 0, `${name} aligned in the file`);
  }
  const back = readSafetensors(bytes);
  assert.deepEqual([...back.tensors.keys()].sort(), [...tensors.keys()].sort());
  for (const [name, t] of tensors) {
    const r = back.tensors.get(name)!;
    assert.equal(r.dtype, t.dtype, name);
    assert.deepEqual(r.shape, t.shape, name);
    assert.deepEqual(r.data, t.data, name);
  }
  assert.deepEqual({ ...back.metadata }, meta);
  // Deterministic: same input, same bytes.
  assert.deepEqual(writeSafetensors(new Map([...tensors].reverse()), meta), bytes);
});

test('float conversion on write: float16 for shipping, float32 from float64/float16; ints untouched', () => {
  const tensors = {
    w: { dtype: 'float32', shape: [3], data: Float32Array.from([0.1, 1, 65519]) } as IoTensor,
    d: { dtype: 'float64', shape: [1], data: Float64Array.from([1 / 3]) } as IoTensor,
    ids: { dtype: 'int64', shape: [1], data: BigInt64Array.from([5n]) } as IoTensor,
  };
  const half = readSafetensors(writeSafetensors(tensors, {}, { dtype: 'float16' })).tensors;
  assert.equal(half.get('w')!.dtype, 'float16');
  assert.deepEqual([...half.get('w')!.data], [0x2e66, 0x3c00, 0x7bff]);
  assert.equal(half.get('d')!.dtype, 'float16');
  assert.equal(half.get('ids')!.dtype, 'int64');
  const single = readSafetensors(
    writeSafetensors(
      { ...tensors, h: { dtype: 'float16', shape: [1], data: Uint16Array.from([0x3555]) } },
      {},
      { dtype: 'float32' },
    ),
  ).tensors;
  assert.equal(single.get('d')!.dtype, 'float32');
  assert.equal(single.get('d')!.data[0], Math.fround(1 / 3));
  assert.equal(single.get('h')!.data[0], 0.333251953125);
});

test('rejectNonFinite refuses NaN/Inf, including a float32 weight that overflows float16', () => {
  const big = { w: { dtype: 'float32', shape: [2], data: Float32Array.from([1, 70000]) } as IoTensor };
  assert.doesNotThrow(() => writeSafetensors(big, {}, { rejectNonFinite: true }));
  assert.throws(
    () => writeSafetensors(big, {}, { dtype: 'float16', rejectNonFinite: true }),
    /"w" has a non-finite value at index 1/,
  );
  const nan = { b: { dtype: 'float32', shape: [1], data: Float32Array.from([NaN]) } as IoTensor };
  assert.throws(
    () => writeSafetensors(nan, {}, { rejectNonFinite: true }),
    /"b" has a non-finite value at index 0/,
  );
});

test('writer refuses inconsistent tensors', () => {
  assert.throws(
    () => writeSafetensors({ a: { dtype: 'float32', shape: [3], data: new Float32Array(2) } }),
    /"a" has 2 values for shape \[3\]/,
  );
  assert.throws(
    () => writeSafetensors({ a: { dtype: 'float32', shape: [1], data: new Int32Array(1) } }),
    /"a" is float32 but its data is a Int32Array/,
  );
  assert.throws(
    () => writeSafetensors({ __metadata__: { dtype: 'uint8', shape: [0], data: new Uint8Array(0) } }),
    /__metadata__/,
  );
  assert.throws(() => writeSafetensors({}, { k: 1 as unknown as string }), /metadata "k" is not a string/);
});

test('saveSafetensorsAtomic writes a loadable file and leaves no temp file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refseg-st-'));
  try {
    const p = path.join(dir, 'ckpt.safetensors');
    const t = { x: { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) } as IoTensor };
    await saveSafetensorsAtomic(p, t, { format: 'refseg.restr/1' });
    await saveSafetensorsAtomic(p, { x: { dtype: 'float32', shape: [1], data: Float32Array.from([3]) } });
    assert.deepEqual(fs.readdirSync(dir), ['ckpt.safetensors']);
    const back = loadSafetensors(p);
    assert.deepEqual([...back.tensors.get('x')!.data], [3]);
    assert.deepEqual({ ...back.metadata }, {});
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('hostile files: header and offset checks name the file and the tensor', () => {
  const S = { source: 'ckpt.safetensors' };
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  assert.doesNotThrow(() => readSafetensors(craft(ok, 8)));

  assertRefused(
    () => readSafetensors(fixture('past_end.safetensors'), { source: 'past_end.safetensors' }),
    /^past_end\.safetensors: offset \d+: tensor "w": data_offsets \[0, 4000\] past the end of the 16-byte buffer/,
  );
  assertRefused(
    () => readSafetensors(new Uint8Array(5), S),
    /^ckpt\.safetensors: file is 5 bytes, too short/,
  );
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
  assertRefused(() => readSafetensors(huge, S), /header length 104857601 exceeds the 104857600-byte limit/);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
  assertRefused(() => readSafetensors(huge, S), /exceeds the 104857600-byte limit/);
  new DataView(huge.buffer).setBigUint64(0, 9n, true);
  assertRefused(() => readSafetensors(huge, S), /header length 9 exceeds the 8 bytes after the length field/);
  assertRefused(() => readSafetensors(craft('[1,2]'), S), /header does not start with '\{'/);
  assertRefused(() => readSafetensors(craft('{"w": '), S), /header is not valid JSON/);
  assertRefused(
    () => readSafetensors(craft(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1')), S),
    /header is not valid UTF-8|not valid JSON/,
  );
  const invalidUtf8 = craft('{}');
  invalidUtf8[9] = 0xff;
  assertRefused(() => readSafetensors(invalidUtf8, S), /not valid UTF-8/);
  // JSON.parse keeps the last duplicate silently; we refuse.
  assertRefused(
    () =>
      readSafetensors(
        craft(
          '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
          4,
        ),
        S,
      ),
    /the key "w" twice/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8), S),
    /tensor "w": unknown dtype "C64"/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: '__proto__', shape: [1], data_offsets: [0, 8] } }, 8), S),
    /unknown dtype "__proto__"/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8), S),
    /tensor "w": dim -2 is not a non-negative integer/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, 8), S),
    /dim 1.5/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } }, 8), S),
    /shape is not an array/,
  );
  assertRefused(
    () =>
      readSafetensors(craft({ w: { dtype: 'F32', shape: [2 ** 20, 2 ** 20], data_offsets: [0, 8] } }, 8), S),
    /hold 8 bytes but F32 \[1048576,1048576\] needs 4398046511104/,
  );
  assertRefused(
    () =>
      readSafetensors(craft({ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8), S),
    /too many elements/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), S),
    /hold 8 bytes but F32 \[3\] needs 12/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8), S),
    /end before begin/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8, 9] } }, 8), S),
    /is not \[begin, end\]/,
  );
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, 8), S),
    /is not \[begin, end\]/,
  );
  assertRefused(() => readSafetensors(craft({ w: 5 }, 0), S), /tensor "w": entry is not an object/);
  // Gaps, overlaps and undescribed trailing bytes.
  assertRefused(
    () => readSafetensors(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), S),
    /tensor "w": data_offsets \[4, 8\] leave a gap after offset 0/,
  );
  assertRefused(
    () =>
      readSafetensors(
        craft(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
          },
          8,
        ),
        S,
      ),
    /tensor "b": data_offsets \[4, 8\] overlap the previous tensor/,
  );
  assertRefused(() => readSafetensors(craft(ok, 12), S), /4 bytes after the last tensor are not described/);
  // Metadata must be strings.
  assertRefused(
    () => readSafetensors(craft({ __metadata__: { a: 1 } }), S),
    /__metadata__\["a"\] is not a string/,
  );
  assertRefused(() => readSafetensors(craft({ __metadata__: [] }), S), /__metadata__ is not an object/);
});

test('offsets in the header may come in any order; tensors are keyed by name', () => {
  const hdr = {
    b: { dtype: 'U8', shape: [1], data_offsets: [1, 2] },
    a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
  };
  const { tensors } = readSafetensors(craft(hdr, Uint8Array.from([7, 9])));
  assert.deepEqual([...tensors.get('a')!.data], [7]);
  assert.deepEqual([...tensors.get('b')!.data], [9]);
});
