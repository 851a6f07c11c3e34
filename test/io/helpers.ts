// Shared helpers for test/io: fixture access, the tagged JSON encoding of expected values that
// scripts/make-io-fixtures.py writes, a small zip writer for hostile archives, and the assertion
// that an input was refused by a deliberate check (a FormatError that is not a wrapped surprise).

import * as fs from 'node:fs';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { FormatError } from '../../src/io/errors.js';
import { isFrozenSet, isTuple } from '../../src/io/pickle.js';
import { crc32 } from '../../src/io/zip.js';
import type { IoTensor } from '../../src/io/tensor.js';

export const fixturePath = (name: string): string =>
  fileURLToPath(new URL(`../../../test/fixtures/io/${name}`, import.meta.url));

/** Fixture bytes as a plain Uint8Array (and a Buffer would do too: readers normalize). */
export const fixture = (name: string): Uint8Array => new Uint8Array(fs.readFileSync(fixturePath(name)));

export const expectedJson = (name: string): any => JSON.parse(fs.readFileSync(fixturePath(name), 'utf8'));

/** Asserts `fn` throws a FormatError raised by a check (not a wrapped unexpected error). */
export function assertRefused(fn: () => unknown, pattern?: RegExp): FormatError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, 'expected an error, got a result');
  assert.ok(err instanceof FormatError, `expected FormatError, got ${String(err)}`);
  assert.doesNotMatch(err.message, /unexpected error/, 'error escaped the explicit checks');
  if (pattern) assert.match(err.message, pattern);
  return err;
}

/** Runs `fn`; passes if it returns or throws a checked FormatError; fails on anything else. */
export function assertCleanOutcome(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(
      e instanceof FormatError,
      `${what}: threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
    );
    assert.doesNotMatch(e.message, /unexpected error/, `${what}: ${e.message}`);
  }
}

// ---- the tagged JSON encoding of make-io-fixtures.py's enc() ------------------------------------

/** An unpickled value in the encoding of enc(): tuples, dicts, sets, bytes, big ints are tagged. */
export function tagged(v: unknown): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { $float: 'nan' };
    if (!Number.isFinite(v)) return { $float: v > 0 ? 'inf' : '-inf' };
    return v;
  }
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('hex') };
  if (isTuple(v)) return { $tuple: v.map(tagged) };
  if (Array.isArray(v)) return v.map(tagged);
  if (v instanceof Map) return { $dict: [...v].map(([k, x]) => [tagged(k), tagged(x)]) };
  if (v instanceof Set) return { [isFrozenSet(v) ? '$frozenset' : '$set']: [...v].map(tagged) };
  throw new Error(`untagged value ${String(v)}`);
}

function expectedNumber(v: unknown): number | bigint {
  if (typeof v === 'number') return v;
  const o = v as { $bigint?: string; $float?: string };
  if (o.$bigint !== undefined) return BigInt(o.$bigint);
  if (o.$float !== undefined) return o.$float === 'nan' ? NaN : o.$float === 'inf' ? Infinity : -Infinity;
  throw new Error(`bad expected number ${JSON.stringify(v)}`);
}

/** Asserts `t` has the expected dtype, shape and every value exactly (float16 as bits). */
export function assertTensor(
  t: IoTensor | undefined,
  exp: { dtype: string; shape: number[]; values: unknown[] },
  name: string,
): void {
  assert.ok(t, `missing tensor ${name}`);
  assert.equal(t.dtype, exp.dtype, `${name} dtype`);
  assert.deepEqual([...t.shape], exp.shape, `${name} shape`);
  assert.equal(t.data.length, exp.values.length, `${name} length`);
  for (let i = 0; i < exp.values.length; i++) {
    const want = expectedNumber(exp.values[i]);
    const got = t.data[i]!;
    const ok = typeof got === 'bigint' ? got === BigInt(want) : Object.is(got, Number(want));
    assert.ok(ok, `${name}[${i}]: got ${got}, want ${want}`);
  }
}

// ---- a zip writer for crafted archives ----------------------------------------------------------

export interface ZipSpec {
  name: string;
  data: Uint8Array | string;
  method?: 0 | 8;
  /** Overrides, to forge inconsistent archives. */
  crc?: number;
  size?: number;
  compressedSize?: number;
  localName?: string;
  flags?: number;
  methodField?: number;
  /** Write the central entry pointing at this offset instead of its own local header. */
  localOffset?: number;
  /** Skip writing a local header and data for this entry (used with localOffset). */
  centralOnly?: boolean;
}

const u16 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff];
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const u64 = (v: number): number[] => [...u32(v % 2 ** 32), ...u32(Math.floor(v / 2 ** 32))];

/** Local header bytes for `name` (stored, with the given crc and sizes). */
export function localHeader(
  name: string,
  method: number,
  crc: number,
  csize: number,
  usize: number,
  flags = 0,
): Uint8Array {
  const nb = Buffer.from(name, 'utf8');
  return Uint8Array.from([
    ...u32(0x04034b50),
    ...u16(20),
    ...u16(flags),
    ...u16(method),
    ...u16(0),
    ...u16(0x5021),
    ...u32(crc),
    ...u32(csize),
    ...u32(usize),
    ...u16(nb.length),
    ...u16(0),
    ...nb,
  ]);
}

/** Builds a zip; with `zip64`, sizes and offsets go through ZIP64 extra fields and end records. */
export function makeZip(specs: ZipSpec[], opts: { zip64?: boolean; comment?: string } = {}): Uint8Array {
  const out: number[] = [];
  const central: number[] = [];
  for (const s of specs) {
    const raw = typeof s.data === 'string' ? Buffer.from(s.data) : Buffer.from(s.data);
    const method = s.method ?? 0;
    const body = method === 8 ? deflateRawSync(raw) : raw;
    const crc = s.crc ?? crc32(raw);
    const usize = s.size ?? raw.length;
    const csize = s.compressedSize ?? body.length;
    const flags = s.flags ?? 0x800;
    const mfield = s.methodField ?? method;
    let offset = s.localOffset ?? out.length;
    if (!s.centralOnly) {
      offset = s.localOffset ?? out.length;
      out.push(...localHeader(s.localName ?? s.name, mfield, crc, csize, usize, flags), ...body);
    }
    const nb = Buffer.from(s.name, 'utf8');
    const extra = opts.zip64 ? [...u16(1), ...u16(24), ...u64(usize), ...u64(csize), ...u64(offset)] : [];
    const z = opts.zip64;
    // prettier-ignore
    central.push(
      ...u32(0x02014b50), ...u16(0x031e), ...u16(20), ...u16(flags), ...u16(mfield), ...u16(0), ...u16(0x5021),
      ...u32(crc), ...u32(z ? 0xffffffff : csize), ...u32(z ? 0xffffffff : usize), ...u16(nb.length), ...u16(extra.length),
      ...u16(0), ...u16(0), ...u16(0), ...u32(0), ...u32(z ? 0xffffffff : offset), ...nb, ...extra,
    );
  }
  const cdOffset = out.length;
  out.push(...central);
  const comment = Buffer.from(opts.comment ?? '');
  if (opts.zip64) {
    const recOffset = out.length;
    // prettier-ignore
    out.push(...u32(0x06064b50), ...u64(44), ...u16(45), ...u16(45), ...u32(0), ...u32(0), ...u64(specs.length), ...u64(specs.length), ...u64(central.length), ...u64(cdOffset));
    out.push(...u32(0x07064b50), ...u32(0), ...u64(recOffset), ...u32(1));
    // prettier-ignore
    out.push(...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(0xffff), ...u16(0xffff), ...u32(0xffffffff), ...u32(0xffffffff), ...u16(comment.length), ...comment);
  } else {
    // prettier-ignore
    out.push(...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(specs.length), ...u16(specs.length), ...u32(central.length), ...u32(cdOffset), ...u16(comment.length), ...comment);
  }
  return Uint8Array.from(out);
}

// ---- a pickle writer for crafted torch checkpoints ----------------------------------------------

export const pk = {
  str: (s: string): number[] => {
    const b = Buffer.from(s, 'utf8');
    return [0x58, ...u32(b.length), ...b]; // BINUNICODE
  },
  int: (v: number): number[] => [0x4a, ...u32(v)], // BININT
  global: (module: string, name: string): number[] => [0x63, ...Buffer.from(`${module}\n${name}\n`)],
  tuple: (...items: number[][]): number[] => [0x28, ...items.flat(), 0x74], // MARK ... TUPLE
};

export interface TensorSpec {
  name: string;
  key: string;
  storageType?: string;
  numel: number;
  offset?: number;
  size: number[];
  stride: number[];
}

/** data.pkl bytes for {name: _rebuild_tensor_v2(storage, ...)} as torch.save writes them. */
export function torchPickle(tensors: TensorSpec[]): Uint8Array {
  const out: number[] = [0x80, 0x02, 0x7d, 0x28]; // PROTO 2, EMPTY_DICT, MARK
  for (const t of tensors) {
    out.push(...pk.str(t.name), ...pk.global('torch._utils', '_rebuild_tensor_v2'));
    out.push(0x28); // MARK for the argument tuple
    out.push(
      ...pk.tuple(
        pk.str('storage'),
        pk.global('torch', t.storageType ?? 'FloatStorage'),
        pk.str(t.key),
        pk.str('cpu'),
        pk.int(t.numel),
      ),
    );
    out.push(0x51); // BINPERSID
    out.push(
      ...pk.int(t.offset ?? 0),
      ...pk.tuple(...t.size.map(pk.int)),
      ...pk.tuple(...t.stride.map(pk.int)),
    );
    out.push(0x89, ...pk.global('collections', 'OrderedDict'), 0x29, 0x52); // False, OrderedDict()
    out.push(0x74, 0x52); // TUPLE, REDUCE
  }
  out.push(0x75, 0x2e); // SETITEMS, STOP
  return Uint8Array.from(out);
}

export function f32bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}
