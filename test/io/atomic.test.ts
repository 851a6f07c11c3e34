// Atomic writes: the target is either the old file or the new one, never partial; failed writes
// clean up their temp file; concurrent writers never interleave.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from '../../src/io/atomic.js';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'refseg-atomic-'));
}

for (const [label, write] of [
  ['async', writeFileAtomic],
  ['sync', async (p: string, d: Uint8Array | Iterable<Uint8Array>) => writeFileAtomicSync(p, d)],
] as const) {
  test(`${label}: writes, replaces, and leaves only the target in the folder`, async () => {
    const dir = tmpdir();
    try {
      const p = path.join(dir, 'ckpt.bin');
      await write(p, Buffer.from('first'));
      assert.equal(fs.readFileSync(p, 'utf8'), 'first');
      await write(p, [Buffer.from('sec'), Buffer.from('ond'), new Uint8Array(0)]);
      assert.equal(fs.readFileSync(p, 'utf8'), 'second');
      assert.deepEqual(fs.readdirSync(dir), ['ckpt.bin']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${label}: a write that fails midway keeps the old file and removes its temp file`, async () => {
    const dir = tmpdir();
    try {
      const p = path.join(dir, 'ckpt.bin');
      await write(p, Buffer.from('good checkpoint'));
      function* failing(): Generator<Uint8Array> {
        yield Buffer.from('partial new dat');
        throw new Error('disk on fire');
      }
      await assert.rejects(write(p, failing()), /disk on fire/);
      assert.equal(fs.readFileSync(p, 'utf8'), 'good checkpoint');
      assert.deepEqual(fs.readdirSync(dir), ['ckpt.bin']);
      await assert.rejects(write(path.join(dir, 'ckpt.bin', 'x.bin'), Buffer.from('x')), /EEXIST|ENOTDIR/);
      assert.deepEqual(fs.readdirSync(dir), ['ckpt.bin']);
      await write(path.join(dir, 'runs', 'p16', 'x.bin'), Buffer.from('x')); // missing folders are made
      assert.equal(fs.readFileSync(path.join(dir, 'runs', 'p16', 'x.bin'), 'utf8'), 'x');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('concurrent writers: the result is exactly one of the writes', async () => {
  const dir = tmpdir();
  try {
    const p = path.join(dir, 'state.bin');
    const payloads = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024, 65 + i));
    await Promise.all(payloads.map((b) => writeFileAtomic(p, [b.subarray(0, 1000), b.subarray(1000)])));
    const got = fs.readFileSync(p);
    assert.ok(
      payloads.some((b) => b.equals(got)),
      'file is one whole payload',
    );
    assert.deepEqual(fs.readdirSync(dir), ['state.bin']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
