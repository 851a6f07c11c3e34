// NumPy `.npy` arrays and `.npz` archives (Google's ViT checkpoints, our own exports).
//
// Follows numpy/lib/format.py: magic `\x93NUMPY`, version byte pair, header length (u16 in 1.0,
// u32 in 2.0 and 3.0), then a Python dict literal `{'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }` (latin-1 in 1.0/2.0, UTF-8 in 3.0), then the raw data. We parse that literal
// with a small parser, never by evaluating it. Accepted dtypes: f4 f8 f2 i8 i4 u1 b1, little- or
// big-endian (swapped on read); C or Fortran order (Fortran is copied to C order). Object arrays
// (`|O`, whose data is a pickle) and structured dtypes are refused. An `.npz` is a zip (stored or
// deflated) of `<name>.npy` entries; names may contain '/' (Google's ViT npz does).

import { FormatError, guard } from './errors.js';
import { type ByteSource, isByteSource, memorySource, plainBytes, withFileSource } from './bytes.js';
import { ZipReader } from './zip.js';
import {
  type DType,
  type IoTensor,
  checkedNumel,
  gatherStrided,
  swapBytes,
  typedFromBytes,
  typedOverOwnedBytes,
} from './tensor.js';
import * as fs from 'node:fs';

const KINDS: Readonly<Record<string, { dtype: DType; itemsize: number }>> = {
  f4: { dtype: 'float32', itemsize: 4 },
  f8: { dtype: 'float64', itemsize: 8 },
  f2: { dtype: 'float16', itemsize: 2 },
  i8: { dtype: 'int64', itemsize: 8 },
  i4: { dtype: 'int32', itemsize: 4 },
  u1: { dtype: 'uint8', itemsize: 1 },
  b1: { dtype: 'bool', itemsize: 1 },
};

type Literal = string | boolean | number | Literal[];

/** Parses the header's dict literal: strings, True/False, integers and tuples only. */
function parseHeaderDict(text: string, fail: (msg: string) => never): Map<string, Literal> {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const expect = (c: string): void => {
    ws();
    if (text[i] !== c) fail(`header: expected '${c}' at character ${i}`);
    i++;
  };
  const value = (depth: number): Literal => {
    ws();
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('header: unterminated string');
      const s = text.slice(i + 1, end);
      if (s.includes('\\')) fail('header: escapes in strings are not supported');
      i = end + 1;
      return s;
    }
    if (c === '(' || c === '[') {
      if (depth > 2) fail('header: nested too deeply');
      if (c === '[') fail('header: structured dtypes are not supported');
      i++;
      const items: Literal[] = [];
      for (;;) {
        ws();
        if (text[i] === ')') {
          i++;
          return items;
        }
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== ')') fail(`header: expected ',' or ')' at character ${i}`);
      }
    }
    const m = /^(True|False|-?[0-9]{1,16}L?)/.exec(text.slice(i, i + 20));
    if (!m) return fail(`header: unexpected ${JSON.stringify(text.slice(i, i + 10))} at character ${i}`);
    i += m[0].length;
    if (m[0] === 'True' || m[0] === 'False') return m[0] === 'True';
    return Number(m[0].replace('L', '')); // Python 2 numpy wrote longs as 3L
  };
  const out = new Map<string, Literal>();
  expect('{');
  for (;;) {
    ws();
    if (text[i] === '}') {
      i++;
      break;
    }
    const k = value(0);
    if (typeof k !== 'string') fail('header: dict keys must be strings');
    expect(':');
    if (out.has(k as string)) fail(`header: key ${JSON.stringify(k)} given twice`);
    out.set(k as string, value(0));
    ws();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') fail(`header: expected ',' or '}' at character ${i}`);
  }
  ws();
  if (i !== text.length) fail('header: text after the dict');
  return out;
}

export interface NpyOptions {
  source?: string;
}

/** One `.npy` file's bytes → tensor in C order. */
export function readNpy(bytes: Uint8Array, opts: NpyOptions = {}): IoTensor {
  const source = opts.source ?? '<npy>';
  return guard(source, 'npy', () => parseNpy(plainBytes(bytes), source));
}

function parseNpy(b: Uint8Array, source: string): IoTensor {
  const fail = (msg: string, offset?: number): never => {
    throw new FormatError(source, msg, offset);
  };
  const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (b.length < 10 || !MAGIC.every((c, k) => b[k] === c))
    fail('not an NPY file (bad magic or too short)', 0);
  const major = b[6]!;
  if (major < 1 || major > 3) fail(`unsupported NPY format version ${major}.${b[7]}`, 6);
  const lenBytes = major === 1 ? 2 : 4;
  if (b.length < 8 + lenBytes) fail('truncated header length', 8);
  const hlen =
    major === 1 ? b[8]! | (b[9]! << 8) : (b[8]! | (b[9]! << 8) | (b[10]! << 16) | (b[11]! << 24)) >>> 0;
  const hstart = 8 + lenBytes;
  if (hlen > b.length - hstart)
    fail(`header length ${hlen} exceeds the ${b.length - hstart} bytes present`, 8);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(
      b.subarray(hstart, hstart + hlen),
    );
  } catch {
    return fail('header is not valid UTF-8', hstart);
  }
  const h = parseHeaderDict(text, (msg) => fail(msg, hstart));
  const keys = [...h.keys()].sort().join(',');
  if (keys !== 'descr,fortran_order,shape')
    fail(`header keys are {${keys}}, expected descr, fortran_order, shape`, hstart);
  const descr = h.get('descr');
  const fortran = h.get('fortran_order');
  const shape = h.get('shape');
  if (typeof descr !== 'string') return fail('descr is not a string', hstart);
  if (typeof fortran !== 'boolean') return fail('fortran_order is not True or False', hstart);
  if (!Array.isArray(shape)) return fail('shape is not a tuple', hstart);
  if (/^[|<>=]?O/.test(descr)) fail('object arrays (pickled Python objects) are refused', hstart);
  const order = descr[0]!;
  const kind = KINDS[descr.slice(1)];
  // '|' (byte order not applicable) only for 1-byte types; '=' is native, i.e. little-endian here.
  if (!kind || !(kind.itemsize === 1 ? '|<>=' : '<>=').includes(order))
    fail(`unsupported dtype ${JSON.stringify(descr)}`, hstart);
  const count = checkedNumel(shape);
  if (typeof count === 'string') return fail(`shape: ${count}`, hstart);
  const dims = shape as number[];
  const dataStart = hstart + hlen;
  const nbytes = count * kind.itemsize;
  if (b.length - dataStart !== nbytes) {
    fail(`${descr} [${dims.join(',')}] needs ${nbytes} data bytes, found ${b.length - dataStart}`, dataStart);
  }
  let data = b.subarray(dataStart);
  if (order === '>' && kind.itemsize > 1) {
    data = data.slice();
    swapBytes(data, kind.itemsize);
  }
  if (fortran && dims.length > 1) {
    // Fortran order: the first index varies fastest, so element strides are cumulative products.
    const strides: number[] = [];
    let s = 1;
    for (const d of dims) {
      strides.push(s);
      s *= d;
    }
    const c = gatherStrided(data, kind.itemsize, 0, dims, strides);
    return { dtype: kind.dtype, shape: dims, data: typedOverOwnedBytes(kind.dtype, c) };
  }
  return { dtype: kind.dtype, shape: dims, data: typedFromBytes(kind.dtype, data) };
}

/** All arrays of an `.npz`, keyed by entry name without `.npy`, in archive order. */
export function readNpz(input: Uint8Array | ByteSource, opts: NpyOptions = {}): Map<string, IoTensor> {
  const source = opts.source ?? '<npz>';
  const src = isByteSource(input) ? input : memorySource(input);
  return guard(source, 'npz', () => {
    const zip = ZipReader.open(src, { source });
    const out = new Map<string, IoTensor>();
    for (const name of zip.names()) {
      if (!name.endsWith('.npy'))
        throw new FormatError(source, `entry ${JSON.stringify(name)} is not a .npy array`);
      out.set(name.slice(0, -4), readNpy(zip.read(name), { source: `${source}:${name}` }));
    }
    return out;
  });
}

export function loadNpz(path: string): Map<string, IoTensor> {
  return withFileSource(path, (src) => readNpz(src, { source: path }));
}

export function loadNpy(path: string): IoTensor {
  return readNpy(fs.readFileSync(path), { source: path });
}
