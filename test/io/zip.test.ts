// Zip reader: stored, deflated and ZIP64 archives; refusal of path tricks, duplicates, sizes and
// offsets past the file, overlapping entries, corrupt or oversized deflate data and bad CRCs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { ZipReader, crc32, readZip } from '../../src/io/zip.js';
import { assertRefused, fixture, localHeader, makeZip } from './helpers.js';

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test('reads stored and deflated entries written by Python zipfile (npz fixtures)', () => {
  for (const f of ['arrays.npz', 'arrays_compressed.npz']) {
    const z = readZip(fixture(f), { source: f });
    assert.deepEqual(z.names().slice(0, 3), ['f32.npy', 'f64.npy', 'i64.npy']);
    assert.equal(z.entries.get('f32.npy')!.method, f === 'arrays.npz' ? 0 : 8);
    assert.equal(text(z.read('f32.npy').subarray(1, 6)), 'NUMPY');
  }
});

test('reads torch.save archives, whose local headers are padded (data offset from the local header)', () => {
  const z = readZip(fixture('vit_tiny.pth'));
  const pkl = z.entries.get('vit_tiny/data.pkl')!;
  assert.ok(z.names().includes('vit_tiny/data/0'));
  const e = z.entries.get('vit_tiny/data/0')!;
  assert.equal(e.dataOffset % 64, 0, 'torch aligns storages to 64 bytes');
  assert.ok(pkl.dataOffset >= pkl.localHeaderOffset + 30 + 'vit_tiny/data.pkl'.length);
  assert.equal(z.read('vit_tiny/data.pkl')[0], 0x80);
});

test('ZIP64 end records and extra fields; comments; empty entries', () => {
  const specs = [
    { name: 'a.txt', data: 'hello' },
    { name: 'dir/b.bin', data: 'x'.repeat(1000), method: 8 as const },
    { name: 'empty', data: '' },
    { name: 'empty-deflated', data: '', method: 8 as const },
  ];
  for (const zip64 of [false, true]) {
    const z = readZip(makeZip(specs, { zip64, comment: 'PK\x05\x06 fake end record in the comment' }));
    assert.deepEqual(z.names(), ['a.txt', 'dir/b.bin', 'empty', 'empty-deflated']);
    assert.equal(text(z.read('a.txt')), 'hello');
    assert.equal(text(z.read('dir/b.bin')), 'x'.repeat(1000));
    assert.equal(z.read('empty').length, 0);
    assert.equal(z.read('empty-deflated').length, 0);
  }
});

test('refuses path tricks and duplicates (fixtures written by Python zipfile)', () => {
  assertRefused(
    () => readZip(fixture('evil_dotdot.zip'), { source: 'evil.zip' }),
    /^evil\.zip: offset \d+: zip: refusing entry "\.\.\/evil": '\.\.' component in name/,
  );
  assertRefused(() => readZip(fixture('evil_absolute.zip')), /refusing entry "\/etc\/evil": absolute name/);
  assertRefused(() => readZip(fixture('evil_dup.zip')), /refusing duplicate entry name "data\.pkl"/);
  for (const [name, why] of [
    ['..', "'..' component"],
    ['a/..', "'..' component"],
    ['C:/x', 'drive-letter'],
    ['a\\..\\b', 'backslash'],
    ['', 'empty name'],
    ['a\0b', 'NUL'],
  ] as const) {
    assertRefused(() => readZip(makeZip([{ name, data: 'x' }])), new RegExp(why.replace(/\./g, '\\.')));
  }
  // '..' inside a component is just a name.
  assert.deepEqual(readZip(makeZip([{ name: 'a..b/c..', data: 'x' }])).names(), ['a..b/c..']);
});

test('refuses sizes and offsets past the file, inconsistent headers, overlaps', () => {
  assertRefused(
    () => readZip(new Uint8Array(10), { source: 'x.zip' }),
    /^x\.zip: zip: file is 10 bytes, too short/,
  );
  assertRefused(() => readZip(new Uint8Array(100)), /no end-of-central-directory record/);
  assertRefused(
    () => readZip(makeZip([{ name: 'a', data: 'abc', compressedSize: 1000, size: 1000 }])),
    /entry "a": data \[\d+, \d+\) runs past the data area/,
  );
  assertRefused(
    () => readZip(makeZip([{ name: 'a', data: 'abc', size: 4 }])),
    /stored entry "a" has compressed size 3 but size 4/,
  );
  assertRefused(
    () => readZip(makeZip([{ name: 'a', data: 'abc', localOffset: 5000, centralOnly: true }])),
    /local header at 5000 is past the data area/,
  );
  assertRefused(
    () => readZip(makeZip([{ name: 'a', data: 'abc', localName: 'b' }])),
    /entry "a": local header names a different file/,
  );
  assertRefused(() => readZip(makeZip([{ name: 'a', data: 'abc', flags: 0x801 }])), /entry "a" is encrypted/);
  assertRefused(
    () => readZip(makeZip([{ name: 'a', data: 'abc', methodField: 12 }])),
    /unsupported compression method 12/,
  );
  // Central directory claims more entries or bytes than exist.
  const z = makeZip([{ name: 'a', data: 'abc' }]);
  const eocd = z.length - 22;
  const many = z.slice();
  many[eocd + 10] = 50;
  assertRefused(() => readZip(many), /50 entries cannot fit/);
  const far = z.slice();
  new DataView(far.buffer).setUint32(eocd + 16, 1e6, true);
  assertRefused(() => readZip(far), /central directory \[1000000, \d+\) runs past its end record/);
  // Entry b's local header lives inside entry a's data: two names for overlapping bytes.
  const inner = Uint8Array.from([
    ...localHeader('b', 0, crc32(Buffer.from('xyz')), 3, 3, 0x800),
    ...Buffer.from('xyz'),
  ]);
  const overlapped = makeZip([
    { name: 'a', data: inner },
    { name: 'b', data: 'xyz', localOffset: 30 + 1, centralOnly: true },
  ]);
  assertRefused(() => readZip(overlapped), /entries "a" and "b" overlap/);
});

test('entry data: CRC-32, corrupt deflate and inflation past the declared size are refused on read', () => {
  const bad = readZip(makeZip([{ name: 'a', data: 'abc', crc: 1234 }]), { source: 'c.zip' });
  assertRefused(() => bad.read('a'), /^c\.zip: offset 0: zip entry "a": CRC-32 mismatch/);
  const corrupt = makeZip([{ name: 'a', data: 'hello hello hello', method: 8 }]);
  corrupt[30 + 1] ^= 0xff; // first deflate byte: block type becomes invalid
  assertRefused(
    () => readZip(corrupt).read('a'),
    /zip entry "a": (deflate data is corrupt|CRC-32 mismatch|holds)/,
  );
  // A bomb: 1 MB of zeros declared as 10 bytes; inflation stops at the declared size.
  const zeros = new Uint8Array(1 << 20);
  const bomb = makeZip([{ name: 'bomb', data: zeros, method: 8, size: 10 }]);
  assert.ok(deflateRawSync(zeros).length < 2000);
  assertRefused(() => readZip(bomb).read('bomb'), /larger than the declared 10 bytes/);
  const short = makeZip([{ name: 'a', data: 'abc', method: 8, size: 10 }]);
  assertRefused(() => readZip(short).read('a'), /holds 3 bytes, the directory declares 10/);
  assertRefused(() => readZip(makeZip([{ name: 'a', data: 'abc' }])).read('nope'), /no entry named "nope"/);
  const limited = ZipReader.open(makeZip([{ name: 'a', data: 'abcdef' }]), { maxEntrySize: 4 });
  assertRefused(() => limited.read('a'), /size 6 exceeds the 4-byte limit/);
});
