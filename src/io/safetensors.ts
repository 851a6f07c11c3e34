// safetensors read/write (Hugging Face format, https://github.com/huggingface/safetensors).
//
// Layout: u64 little-endian header length N, N bytes of JSON header
// `{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`,
// then the byte buffer; offsets are relative to the buffer's start. Validation follows
// reliability.md and the reference implementation's `validate`: header ≤ 100 MB and within the
// file, UTF-8 JSON object starting with '{', unique names, known dtypes, non-negative integer
// shapes, offsets sorted, contiguous from 0 to the end of the buffer, each `numel × itemsize`.
// Writing is deterministic and matches the reference layout: tensors by element size (largest
// first, so every tensor is aligned to its element size for mmap readers) then by name, header
// keys in that order after `__metadata__`, compact JSON padded with spaces to a multiple of 8.
// This file is the checkpoint format of restr.md §3.

import { FormatError, guard } from './errors.js';
import { type ByteSource, isByteSource, memorySource, withFileSource } from './bytes.js';
import { writeFileAtomic } from './atomic.js';
import { toF16Array, f16ArrayToF32 } from './float16.js';
import {
  type DType,
  type IoTensor,
  type TensorData,
  ITEMSIZE,
  bf16BytesToF32,
  bytesOf,
  checkedNumel,
  typedFromBytes,
} from './tensor.js';

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

interface StDtype {
  readonly dtype: DType;
  readonly size: number;
}

/** safetensors dtype → what we return. BF16 has no DType: it is widened to float32 on read. */
const ST_DTYPES: Readonly<Record<string, StDtype>> = Object.assign(Object.create(null) as object, <
  Record<string, StDtype>
>{
  F32: { dtype: 'float32', size: 4 },
  F16: { dtype: 'float16', size: 2 },
  F64: { dtype: 'float64', size: 8 },
  I64: { dtype: 'int64', size: 8 },
  I32: { dtype: 'int32', size: 4 },
  U8: { dtype: 'uint8', size: 1 },
  BOOL: { dtype: 'bool', size: 1 },
  BF16: { dtype: 'float32', size: 2 },
});

const ST_NAME: Readonly<Record<DType, string>> = {
  float32: 'F32',
  float16: 'F16',
  float64: 'F64',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};

export interface SafetensorsFile {
  /** In header order. */
  readonly tensors: Map<string, IoTensor>;
  /** `__metadata__` as a null-prototype record (a key like `__proto__` is just a key). */
  readonly metadata: Record<string, string>;
}

export interface ReadOptions {
  /** Names the bytes in errors (the file path). */
  source?: string;
}

/** Parses a whole safetensors file (bytes in memory, or a ByteSource reading on demand). */
export function readSafetensors(input: Uint8Array | ByteSource, opts: ReadOptions = {}): SafetensorsFile {
  const source = opts.source ?? '<safetensors>';
  const src = isByteSource(input) ? input : memorySource(input);
  return guard(source, 'safetensors', () => parse(src, source));
}

/** Reads a safetensors file from disk; tensors are read one by one, not the whole file at once. */
export function loadSafetensors(path: string): SafetensorsFile {
  return withFileSource(path, (src) => readSafetensors(src, { source: path }));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parse(src: ByteSource, source: string): SafetensorsFile {
  const fail = (msg: string, offset?: number): never => {
    throw new FormatError(source, msg, offset);
  };
  if (src.size < 8) fail(`file is ${src.size} bytes, too short for the 8-byte header length`);
  const lenBytes = src.read(0, 8);
  const n64 = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES))
    fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`, 0);
  const n = Number(n64);
  if (n > src.size - 8)
    fail(`header length ${n} exceeds the ${src.size - 8} bytes after the length field`, 0);
  const dataStart = 8 + n;
  const dataLen = src.size - dataStart;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, n));
  } catch {
    return fail('header is not valid UTF-8', 8);
  }
  if (!text.startsWith('{')) fail(`header does not start with '{'`, 8);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`, 8);
  }
  if (!isPlainObject(header)) return fail('header is not a JSON object', 8);
  const dup = duplicateKey(text);
  if (dup !== undefined) fail(`header has the key ${JSON.stringify(dup)} twice`, 8);

  const metadata = Object.create(null) as Record<string, string>;
  const entries: { name: string; st: StDtype; bf16: boolean; shape: number[]; begin: number; end: number }[] =
    [];
  for (const name of Object.keys(header)) {
    const info = header[name];
    if (name === '__metadata__') {
      if (!isPlainObject(info)) fail('__metadata__ is not an object', 8);
      for (const k of Object.keys(info as object)) {
        const v = (info as Record<string, unknown>)[k];
        if (typeof v !== 'string') fail(`__metadata__[${JSON.stringify(k)}] is not a string`, 8);
        metadata[k] = v as string;
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(info)) return fail(`${where}: entry is not an object`, 8);
    const dt = info['dtype'];
    const st = typeof dt === 'string' ? ST_DTYPES[dt] : undefined;
    if (st === undefined) return fail(`${where}: unknown dtype ${JSON.stringify(dt)}`, 8);
    const shape = info['shape'];
    if (!Array.isArray(shape)) return fail(`${where}: shape is not an array`, 8);
    const count = checkedNumel(shape);
    if (typeof count === 'string') return fail(`${where}: ${count}`, 8);
    const off = info['data_offsets'];
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)
    ) {
      return fail(
        `${where}: data_offsets ${JSON.stringify(off)} is not [begin, end] with non-negative integers`,
        8,
      );
    }
    const [begin, end] = off as [number, number];
    if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before begin`, 8);
    if (end > dataLen) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] past the end of the ${dataLen}-byte buffer`,
        dataStart + begin,
      );
    }
    if (end - begin !== count * st.size) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dt} [${shape.join(',')}] needs ${count * st.size}`,
        dataStart + begin,
      );
    }
    entries.push({ name, st, bf16: dt === 'BF16', shape: shape as number[], begin, end });
  }

  // Offsets must tile [0, dataLen) exactly: no gaps (hidden data), no overlaps (aliasing).
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of byOffset) {
    if (e.begin !== pos) {
      fail(
        `tensor ${JSON.stringify(e.name)}: data_offsets [${e.begin}, ${e.end}] ${e.begin < pos ? 'overlap the previous tensor' : `leave a gap after offset ${pos}`}`,
        dataStart + e.begin,
      );
    }
    pos = e.end;
  }
  if (pos !== dataLen)
    fail(`${dataLen - pos} bytes after the last tensor are not described by the header`, dataStart + pos);

  const tensors = new Map<string, IoTensor>();
  for (const e of entries) {
    const bytes = src.read(dataStart + e.begin, e.end - e.begin);
    const data = e.bf16 ? bf16BytesToF32(bytes) : typedFromBytes(e.st.dtype, bytes);
    tensors.set(e.name, { dtype: e.st.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/**
 * The first object key that occurs twice in one object of `text`, which JSON.parse has already
 * accepted (so tokens are well formed); JSON.parse itself silently keeps the last duplicate,
 * which would let two readers of one file see different tensors.
 */
function duplicateKey(text: string): string | undefined {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push({ keys: new Set(), expectKey: true });
    } else if (c === 0x5b /* [ */) {
      stack.push({ keys: null, expectKey: false });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    }
  }
  return undefined;
}

// ------------------------------------------------------------------------------------------------
// Writing

export interface WriteOptions {
  /** Store every floating tensor as this dtype (restr.md §3: float32, float16 for shipping). */
  dtype?: 'float32' | 'float16';
  /** Refuse tensors with NaN/±Inf (after conversion: a weight past 65504 overflows float16). */
  rejectNonFinite?: boolean;
}

const ARRAY_FOR: Readonly<Record<DType, new (n: number) => TensorData>> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
  uint8: Uint8Array,
};

function convert(name: string, t: IoTensor, target: WriteOptions['dtype']): IoTensor {
  const ctor = ARRAY_FOR[t.dtype];
  if (ctor === undefined)
    throw new Error(`safetensors: tensor ${JSON.stringify(name)} has unknown dtype ${String(t.dtype)}`);
  if (!(t.data instanceof ctor)) {
    throw new Error(
      `safetensors: tensor ${JSON.stringify(name)} is ${t.dtype} but its data is a ${t.data.constructor.name}`,
    );
  }
  const count = checkedNumel(t.shape);
  if (typeof count === 'string') throw new Error(`safetensors: tensor ${JSON.stringify(name)}: ${count}`);
  if (t.data.length !== count) {
    throw new Error(
      `safetensors: tensor ${JSON.stringify(name)} has ${t.data.length} values for shape [${t.shape.join(',')}]`,
    );
  }
  if (
    target === undefined ||
    target === t.dtype ||
    !(t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16')
  ) {
    return t;
  }
  const data =
    target === 'float16'
      ? toF16Array(t.data as Float32Array | Float64Array)
      : t.dtype === 'float16'
        ? f16ArrayToF32(t.data as Uint16Array)
        : Float32Array.from(t.data as Float64Array);
  return { dtype: target, shape: t.shape, data };
}

function firstNonFinite(t: IoTensor): number {
  const d = t.data;
  if (t.dtype === 'float16') return (d as Uint16Array).findIndex((h) => (h & 0x7c00) === 0x7c00);
  if (t.dtype === 'float32' || t.dtype === 'float64')
    return (d as Float32Array).findIndex((x) => !Number.isFinite(x));
  return -1;
}

/** UTF-8 byte order = code point order, as the reference (Rust String) and Python sort names. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The file as a list of chunks (header, then each tensor's bytes) and its total size. */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, IoTensor> | Readonly<Record<string, IoTensor>>,
  metadata: Readonly<Record<string, string>> = {},
  opts: WriteOptions = {},
): { chunks: Uint8Array[]; size: number } {
  const named: [string, IoTensor][] = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const items = named.map(([name, t]): [string, IoTensor] => {
    if (name === '__metadata__') throw new Error('safetensors: a tensor cannot be named __metadata__');
    const c = convert(name, t, opts.dtype);
    if (opts.rejectNonFinite) {
      const i = firstNonFinite(c);
      if (i >= 0)
        throw new Error(`safetensors: tensor ${JSON.stringify(name)} has a non-finite value at index ${i}`);
    }
    return [name, c];
  });
  const seen = new Set<string>();
  for (const [name] of items) {
    if (seen.has(name)) throw new Error(`safetensors: tensor ${JSON.stringify(name)} given twice`);
    seen.add(name);
  }
  items.sort(([an, a], [bn, b]) => ITEMSIZE[b.dtype] - ITEMSIZE[a.dtype] || compareNames(an, bn));

  // Built by hand: JSON.stringify of an object would move integer-like names ("0") first.
  const parts: string[] = [];
  const metaKeys = Object.keys(metadata).sort(compareNames);
  if (metaKeys.length > 0) {
    const kv = metaKeys.map((k) => {
      const v = metadata[k];
      if (typeof v !== 'string')
        throw new Error(`safetensors: metadata ${JSON.stringify(k)} is not a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  const chunks: Uint8Array[] = [new Uint8Array(0)];
  let offset = 0;
  for (const [name, t] of items) {
    const bytes = bytesOf(t.data);
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${ST_NAME[t.dtype]}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`,
    );
    offset += bytes.length;
    chunks.push(bytes);
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES)
    throw new Error(`safetensors: header of ${padded} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  chunks[0] = head;
  return { chunks, size: head.length + offset };
}

/** The whole file in one buffer. */
export function writeSafetensors(
  tensors: ReadonlyMap<string, IoTensor> | Readonly<Record<string, IoTensor>>,
  metadata: Readonly<Record<string, string>> = {},
  opts: WriteOptions = {},
): Uint8Array {
  const { chunks, size } = encodeSafetensors(tensors, metadata, opts);
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Writes the file atomically (see atomic.ts) without assembling it in one buffer first. */
export async function saveSafetensorsAtomic(
  path: string,
  tensors: ReadonlyMap<string, IoTensor> | Readonly<Record<string, IoTensor>>,
  metadata: Readonly<Record<string, string>> = {},
  opts: WriteOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata, opts).chunks);
}
