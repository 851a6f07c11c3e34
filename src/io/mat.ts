// MATLAB Level-5 MAT-files (`save -v5`/`-v7`, scipy.io.savemat): the ReferIt masks of
// spec/data.md §2 (`segimg_t`) and anything else small enough to live in a .mat.
//
// Format (MathWorks, "MAT-File Format", Level 5):
// - A 128-byte header: 116 bytes of descriptive text, 8 bytes of subsystem data offset, a u16
//   version (0x0100) and a 2-byte endian indicator, the characters 'MI' written as a u16: a file
//   written little-endian holds the bytes 'IM', a big-endian one 'MI'. Every number after it is in
//   that byte order. Version 0x0200 is a v7.3 file, which is HDF5 (refused); a v4 file has no
//   header text at all (its first bytes hold a zero, also refused, as scipy's version sniffing does).
// - Then data elements, each an 8-byte tag (u32 type, u32 byte count) and its data, padded to a
//   multiple of 8. A "small data element" packs byte count (≤ 4) and type into the first u32 (count
//   in the high 16 bits, which is how a reader tells them apart) and its data into the next 4 bytes.
// - Top-level elements are miMATRIX (one variable) or miCOMPRESSED: a zlib stream whose inflated
//   bytes are one miMATRIX element; the next top-level element follows the compressed bytes
//   directly (no padding), as MATLAB and scipy write them.
// - miMATRIX holds sub-elements: array flags (miUINT32 ×2: class in the low byte, flag bits
//   complex 0x800 / global 0x400 / logical 0x200; nzmax), dimensions (miINT32, ≥ 1 of them), the
//   name (miINT8), then by class:
//     numeric (double single int8…uint64): the real part, the imaginary part when complex. The
//       STORAGE type may be narrower than the class (MATLAB saves a double 0/1 image as miUINT8);
//       values are converted to the class's type, as MATLAB and scipy do on load.
//     char: the characters as miUTF8, miUTF16/miUINT16 (code units) or miUINT8/miINT8 (latin-1).
//     cell: one miMATRIX per element; struct: field-name length (miINT32), the names (NUL-padded
//       miINT8), then one miMATRIX per (element, field), elements in column-major order.
//   Sparse, object, function-handle and opaque classes are skipped (their byte count is known)
//   and reported as `unsupported`, so a file holding one of them still yields its other variables.
// - Data are column-major (MATLAB is Fortran-ordered); everything returned here is ROW-major with
//   the same dims: element (i0, i1, …) of dims [d0, d1, …] at ((i0·d1 + i1)·d2 + …), as numpy
//   gives after scipy.io.loadmat.
//
// Hostile input (reliability.md): every byte count is checked against the bytes actually present
// (of the file or of the inflated stream) before anything is allocated; inflated output is bounded
// by `maxInflatedBytes` over the whole file; nesting depth is bounded; errors are FormatErrors that
// name the file, the element's offset and the variable being read.

import * as fs from 'node:fs';
import { inflateSync } from 'node:zlib';
import { FormatError, guard } from './errors.js';
import { plainBytes } from './bytes.js';
import { checkedNumel, gatherStrided, swapBytes } from './tensor.js';

// Data element types (Table 1-1 of the format description).
const miINT8 = 1;
const miUINT8 = 2;
const miINT16 = 3;
const miUINT16 = 4;
const miINT32 = 5;
const miUINT32 = 6;
const miSINGLE = 7;
const miDOUBLE = 9;
const miINT64 = 12;
const miUINT64 = 13;
const miMATRIX = 14;
const miCOMPRESSED = 15;
const miUTF8 = 16;
const miUTF16 = 17;

const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'miINT8',
  2: 'miUINT8',
  3: 'miINT16',
  4: 'miUINT16',
  5: 'miINT32',
  6: 'miUINT32',
  7: 'miSINGLE',
  9: 'miDOUBLE',
  12: 'miINT64',
  13: 'miUINT64',
  14: 'miMATRIX',
  15: 'miCOMPRESSED',
  16: 'miUTF8',
  17: 'miUTF16',
  18: 'miUTF32',
};
const typeName = (t: number): string => TYPE_NAMES[t] ?? `type ${t}`;

export type MatNumericClass =
  'double' | 'single' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64';

export type MatNumericData =
  | Float64Array
  | Float32Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

type NumericArrayCtor = {
  new (n: number): MatNumericData;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): MatNumericData;
  readonly BYTES_PER_ELEMENT: number;
};

/** Numeric classes (mxCLASS ids) with their typed array and natural storage type. */
const NUMERIC_CLASSES: Readonly<
  Record<number, { name: MatNumericClass; array: NumericArrayCtor; storage: number }>
> = {
  6: { name: 'double', array: Float64Array, storage: miDOUBLE },
  7: { name: 'single', array: Float32Array, storage: miSINGLE },
  8: { name: 'int8', array: Int8Array, storage: miINT8 },
  9: { name: 'uint8', array: Uint8Array, storage: miUINT8 },
  10: { name: 'int16', array: Int16Array, storage: miINT16 },
  11: { name: 'uint16', array: Uint16Array, storage: miUINT16 },
  12: { name: 'int32', array: Int32Array, storage: miINT32 },
  13: { name: 'uint32', array: Uint32Array, storage: miUINT32 },
  14: { name: 'int64', array: BigInt64Array as unknown as NumericArrayCtor, storage: miINT64 },
  15: { name: 'uint64', array: BigUint64Array as unknown as NumericArrayCtor, storage: miUINT64 },
};
const mxCELL = 1;
const mxSTRUCT = 2;
const mxCHAR = 4;
/** Classes we skip rather than decode. */
const mxOPAQUE = 17;
const UNSUPPORTED_CLASSES: Readonly<Record<number, string>> = {
  3: 'object',
  5: 'sparse',
  16: 'function handle',
};

/** How each storage type's elements are read (DataView getter and size). */
const STORAGE: Readonly<
  Record<number, { size: number; get: (v: DataView, at: number, le: boolean) => number | bigint }>
> = {
  [miINT8]: { size: 1, get: (v, at) => v.getInt8(at) },
  [miUINT8]: { size: 1, get: (v, at) => v.getUint8(at) },
  [miINT16]: { size: 2, get: (v, at, le) => v.getInt16(at, le) },
  [miUINT16]: { size: 2, get: (v, at, le) => v.getUint16(at, le) },
  [miINT32]: { size: 4, get: (v, at, le) => v.getInt32(at, le) },
  [miUINT32]: { size: 4, get: (v, at, le) => v.getUint32(at, le) },
  [miSINGLE]: { size: 4, get: (v, at, le) => v.getFloat32(at, le) },
  [miDOUBLE]: { size: 8, get: (v, at, le) => v.getFloat64(at, le) },
  [miINT64]: { size: 8, get: (v, at, le) => v.getBigInt64(at, le) },
  [miUINT64]: { size: 8, get: (v, at, le) => v.getBigUint64(at, le) },
};

export type MatValue =
  | {
      kind: 'numeric';
      className: MatNumericClass;
      dims: number[];
      /** Row-major values of the class's type (real part). */
      data: MatNumericData;
      /** Row-major imaginary part, for complex arrays. */
      imag?: MatNumericData;
      /** MATLAB `logical` (stored as uint8 0/1). */
      logical: boolean;
    }
  | {
      kind: 'char';
      dims: number[];
      /** dims[0] rows of the character grid (for a 1×n char array: the one string). */
      rows: string[];
    }
  | { kind: 'cell'; dims: number[]; /** row-major */ cells: MatValue[] }
  | {
      kind: 'struct';
      dims: number[];
      fields: string[];
      /** One Map per element, row-major; Maps so that field names like `__proto__` stay plain keys. */
      elements: Map<string, MatValue>[];
    }
  | { kind: 'unsupported'; className: string };

export interface MatFile {
  /** The header's descriptive text, trailing spaces and NULs removed. */
  header: string;
  endian: 'little' | 'big';
  /** Variables in file order. */
  variables: Map<string, MatValue>;
}

export interface MatOptions {
  /** Named in every error (a file path). */
  source?: string;
  /** Most bytes all miCOMPRESSED elements of the file may inflate to together (default 256 MiB). */
  maxInflatedBytes?: number;
  /** Deepest nesting of cells and structs (default 32). */
  maxDepth?: number;
}

export const DEFAULT_MAX_INFLATED_BYTES = 256 * 1024 * 1024;
/** A struct array with no fields costs no bytes per element, so its element count is capped. */
const MAX_FIELDLESS_ELEMENTS = 1 << 20;

/** One data element: its type, its data bytes, and where they start (for messages). */
interface Element {
  type: number;
  data: Uint8Array;
  offset: number;
}

/**
 * A bounded region of a byte buffer (the file, an inflated stream, or one miMATRIX's data) read
 * element by element. `fail(msg, pos)` raises the FormatError: at file offset `pos`, or for an
 * inflated stream at the compressed element's offset, naming the byte within the inflated data.
 */
class Region {
  private pos: number;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly start: number,
    readonly end: number,
    readonly le: boolean,
    readonly fail: (msg: string, pos: number) => never,
  ) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get position(): number {
    return this.pos;
  }

  /** Continue at `pos` (within the region). */
  skipTo(pos: number): void {
    this.pos = Math.min(this.end, Math.max(this.pos, pos));
  }

  u32(at: number): number {
    return this.view.getUint32(at, this.le);
  }

  /**
   * The next element. Normal elements are padded to 8 bytes; a region may end without the last
   * element's padding (it is not needed to find anything after it).
   */
  next(what: string): Element {
    const at = this.pos;
    if (this.remaining < 8) this.fail(`${what}: element tag needs 8 bytes, ${this.remaining} left`, at);
    const first = this.u32(at);
    const small = first >>> 16;
    if (small !== 0) {
      // Small data element: byte count in the high half, type in the low half, data inline.
      const type = first & 0xffff;
      if (small > 4) this.fail(`${what}: small data element claims ${small} bytes (at most 4)`, at);
      this.pos = at + 8;
      return { type, data: this.bytes.subarray(at + 4, at + 4 + small), offset: at };
    }
    const type = first;
    const n = this.u32(at + 4);
    if (n > this.remaining - 8)
      this.fail(`${what}: ${typeName(type)} element of ${n} bytes, only ${this.remaining - 8} left`, at);
    const dataEnd = at + 8 + n;
    this.pos = Math.min(this.end, dataEnd + ((8 - (n % 8)) % 8));
    return { type, data: this.bytes.subarray(at + 8, dataEnd), offset: at };
  }

  /** The next element, which must be of one of `types`. */
  expect(what: string, ...types: number[]): Element {
    const el = this.next(what);
    if (!types.includes(el.type))
      this.fail(
        `${what}: expected ${types.map(typeName).join(' or ')}, found ${typeName(el.type)}`,
        el.offset,
      );
    return el;
  }

  /** The int32 values of an miINT32 element. */
  int32s(el: Element, what: string): number[] {
    if (el.data.length % 4 !== 0)
      this.fail(`${what}: ${el.data.length} bytes is not a whole number of int32`, el.offset);
    const v = new DataView(el.data.buffer, el.data.byteOffset, el.data.byteLength);
    const out: number[] = [];
    for (let i = 0; i < el.data.length; i += 4) out.push(v.getInt32(i, this.le));
    return out;
  }
}

/** A row-major permutation: out[c] = Fortran (column-major) position of C-order element c. */
function fortranOrder(dims: readonly number[], count: number): Int32Array {
  const idx = new Int32Array(count);
  for (let i = 0; i < count; i++) idx[i] = i;
  return reorderToRowMajor(idx, dims);
}

/** Cumulative-product strides of a column-major array of `dims` (in elements). */
function fortranStrides(dims: readonly number[]): number[] {
  const strides: number[] = [];
  let s = 1;
  for (const d of dims) {
    strides.push(s);
    s *= d;
  }
  return strides;
}

/** A column-major typed array as a new row-major one of the same type. */
function reorderToRowMajor<T extends MatNumericData>(data: T, dims: readonly number[]): T {
  // Only dims > 1 make the two orders differ.
  if (dims.filter((d) => d > 1).length <= 1) return data;
  const Ctor = data.constructor as NumericArrayCtor;
  if (dims.length === 2) {
    // The common case (masks, images), a plain transpose: several times faster than the general
    // byte-level gather below, which walks an odometer per element when elements are not contiguous.
    const [h, w] = dims as [number, number];
    const out = new Ctor(data.length) as T;
    for (let x = 0, i = 0; x < w; x++) for (let y = 0, o = x; y < h; y++, o += w) out[o] = data[i++]!;
    return out;
  }
  const size = data.BYTES_PER_ELEMENT;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const c = gatherStrided(bytes, size, 0, dims, fortranStrides(dims));
  return new Ctor(c.buffer, c.byteOffset, data.length) as T;
}

class MatParser {
  private inflated = 0;
  private readonly head: { text: string; endian: 'little' | 'big' };
  private readonly le: boolean;

  constructor(
    private readonly b: Uint8Array,
    private readonly source: string,
    private readonly maxInflated: number,
    private readonly maxDepth: number,
  ) {
    this.head = this.readHeader();
    this.le = this.head.endian === 'little';
  }

  private fail(msg: string, offset?: number): never {
    throw new FormatError(this.source, msg, offset);
  }

  /** Validates the 128-byte header (see the file comment). */
  private readHeader(): { text: string; endian: 'little' | 'big' } {
    const b = this.b;
    if (b.length < 128) this.fail(`not a MAT-file: ${b.length} bytes, a Level-5 header alone is 128`, 0);
    if (b[0] === 0 || b[1] === 0 || b[2] === 0 || b[3] === 0)
      this.fail('not a Level-5 MAT-file (a zero in the first 4 bytes: MAT v4, which is not supported)', 0);
    const ind = String.fromCharCode(b[126]!, b[127]!);
    if (ind !== 'IM' && ind !== 'MI')
      this.fail(
        `not a Level-5 MAT-file: endian indicator is ${JSON.stringify(ind)}, expected "IM" or "MI"`,
        126,
      );
    const endian = ind === 'IM' ? 'little' : 'big';
    const version = new DataView(b.buffer, b.byteOffset + 124, 2).getUint16(0, endian === 'little');
    if (version === 0x0200) this.fail('MAT v7.3 files (HDF5) are not supported; save with -v7', 124);
    if (version !== 0x0100) this.fail(`unsupported MAT-file version 0x${version.toString(16)}`, 124);
    const text = new TextDecoder('latin1').decode(b.subarray(0, 116)).replace(/[\0 ]+$/, '');
    return { text, endian };
  }

  parse(): MatFile {
    const { text, endian } = this.head;
    const variables = new Map<string, MatValue>();
    const file = new Region(this.b, 128, this.b.length, this.le, (m, p) => this.fail(m, p));
    let index = 0;
    while (file.remaining > 0) {
      const what = `variable ${index}`;
      const at = file.position;
      if (file.remaining < 8) this.fail(`${what}: element tag needs 8 bytes, ${file.remaining} left`, at);
      // Top-level elements are never small data elements; read the tag by hand so that the
      // compressed element's bytes are not followed by padding.
      const type = file.u32(at);
      const n = file.u32(at + 4);
      if (type !== miMATRIX && type !== miCOMPRESSED)
        this.fail(`${what}: expected miMATRIX or miCOMPRESSED, found ${typeName(type)}`, at);
      if (n > file.remaining - 8)
        this.fail(`${what}: ${typeName(type)} element of ${n} bytes, only ${file.remaining - 8} left`, at);
      let name: string;
      let value: MatValue;
      if (type === miCOMPRESSED) {
        const inner = this.inflate(this.b.subarray(at + 8, at + 8 + n), at, what);
        const where = (p: number) => `byte ${p} of the data inflated from the miCOMPRESSED element`;
        const region = new Region(inner, 0, inner.length, this.le, (m, p) =>
          this.fail(`${m} (${where(p)})`, at),
        );
        const el = region.expect(`${what}: inflated element`, miMATRIX);
        ({ name, value } = this.matrix(region, el, 0, what));
      } else {
        const region = new Region(this.b, at, at + 8 + n, this.le, (m, p) => this.fail(m, p));
        const el = region.next(what);
        ({ name, value } = this.matrix(region, el, 0, what));
      }
      if (variables.has(name)) this.fail(`variable ${JSON.stringify(name)} appears twice`, at);
      variables.set(name, value);
      // scipy and MATLAB place the next top-level element right after the byte count.
      file.skipTo(at + 8 + n);
      index++;
    }
    return { header: text, endian, variables };
  }

  /** zlib-inflates one miCOMPRESSED element, within what is left of the file's inflate budget. */
  private inflate(data: Uint8Array, at: number, what: string): Uint8Array {
    const budget = this.maxInflated - this.inflated;
    if (budget < 1) this.fail(`${what}: the file inflates to more than ${this.maxInflated} bytes`, at);
    let out: Buffer;
    try {
      out = inflateSync(data, { maxOutputLength: budget });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError)
        this.fail(
          `${what}: miCOMPRESSED data inflate to more than the limit of ${this.maxInflated} bytes`,
          at,
        );
      this.fail(`${what}: miCOMPRESSED data are not a valid zlib stream (${err.message})`, at);
    }
    this.inflated += out.length;
    return plainBytes(out);
  }

  /**
   * One miMATRIX element `el`, read through a sub-region of `parent`'s buffer. Returns its name
   * (empty inside cells and structs) and value.
   */
  private matrix(
    parent: Region,
    el: Element,
    depth: number,
    what: string,
  ): { name: string; value: MatValue } {
    if (el.type !== miMATRIX)
      parent.fail(`${what}: expected miMATRIX, found ${typeName(el.type)}`, el.offset);
    if (depth > this.maxDepth)
      parent.fail(`${what}: cells/structs nested deeper than ${this.maxDepth}`, el.offset);
    const start = el.data.byteOffset - parent.bytes.byteOffset;
    const r = new Region(parent.bytes, start, start + el.data.length, this.le, parent.fail);
    // An empty miMATRIX (MATLAB writes them for empty struct fields) is an empty double array.
    if (r.remaining === 0)
      return {
        name: '',
        value: {
          kind: 'numeric',
          className: 'double',
          dims: [0, 0],
          data: new Float64Array(0),
          logical: false,
        },
      };

    const flagsEl = r.expect(`${what}: array flags`, miUINT32);
    if (flagsEl.data.length !== 8)
      r.fail(`${what}: array flags are ${flagsEl.data.length} bytes, expected 8`, flagsEl.offset);
    const flags = new DataView(flagsEl.data.buffer, flagsEl.data.byteOffset, 8).getUint32(0, this.le);
    const cls = flags & 0xff;
    const complex = (flags & 0x800) !== 0;
    const logical = (flags & 0x200) !== 0;
    const readName = (): string =>
      new TextDecoder('latin1')
        .decode(r.expect(`${what}: name`, miINT8, miUINT8, miUTF8).data)
        .replace(/\0+$/, '');
    // Opaque arrays (MATLAB's classdef objects, function handles) have no dimensions element.
    if (cls === mxOPAQUE) return { name: readName(), value: { kind: 'unsupported', className: 'opaque' } };
    if (
      !NUMERIC_CLASSES[cls] &&
      !UNSUPPORTED_CLASSES[cls] &&
      cls !== mxCELL &&
      cls !== mxSTRUCT &&
      cls !== mxCHAR
    )
      r.fail(`${what}: unknown array class ${cls}`, flagsEl.offset);

    const dimsEl = r.expect(`${what}: dimensions`, miINT32);
    const dims = r.int32s(dimsEl, `${what}: dimensions`);
    if (dims.length === 0) r.fail(`${what}: no dimensions`, dimsEl.offset);
    const count = checkedNumel(dims);
    if (typeof count === 'string') return r.fail(`${what}: dimensions: ${count}`, dimsEl.offset);
    const name = readName();
    const label = name ? `variable ${JSON.stringify(name)}` : what;
    // Skipped classes: the caller moves past the whole miMATRIX element by its byte count.
    if (UNSUPPORTED_CLASSES[cls])
      return { name, value: { kind: 'unsupported', className: UNSUPPORTED_CLASSES[cls]! } };

    const numeric = NUMERIC_CLASSES[cls];
    if (numeric) {
      const data = this.numeric(r, r.next(`${label}: real part`), numeric, count, label);
      const value: MatValue = {
        kind: 'numeric',
        className: numeric.name,
        dims,
        data: reorderToRowMajor(data, dims),
        logical,
      };
      if (complex) {
        const imag = this.numeric(r, r.next(`${label}: imaginary part`), numeric, count, label);
        value.imag = reorderToRowMajor(imag, dims);
      }
      return { name, value };
    }
    if (cls === mxCHAR)
      return { name, value: this.chars(r, r.next(`${label}: characters`), dims, count, label) };

    // Cells and structs: sub-matrices in column-major order, each at least an 8-byte tag.
    let fields: string[] = [];
    if (cls === mxSTRUCT) fields = this.fieldNames(r, label);
    const perElement = cls === mxCELL ? 1 : fields.length;
    if (perElement === 0 && count > MAX_FIELDLESS_ELEMENTS)
      r.fail(`${label}: struct array of ${count} elements with no fields`, dimsEl.offset);
    if (count * perElement > r.remaining / 8)
      r.fail(
        `${label}: ${count * perElement} sub-arrays cannot fit in the ${r.remaining} bytes left`,
        r.position,
      );
    const items: MatValue[] = [];
    for (let i = 0; i < count * perElement; i++) {
      const sub =
        cls === mxCELL
          ? `${label} cell ${i}`
          : `${label} element ${Math.floor(i / perElement)} field ${JSON.stringify(fields[i % perElement])}`;
      items.push(this.matrix(r, r.next(sub), depth + 1, sub).value);
    }
    const order = fortranOrder(dims, count);
    if (cls === mxCELL)
      return { name, value: { kind: 'cell', dims, cells: Array.from(order, (f) => items[f]!) } };
    const elements = Array.from(order, (f) => new Map(fields.map((k, j) => [k, items[f * perElement + j]!])));
    return { name, value: { kind: 'struct', dims, fields, elements } };
  }

  /** A struct's field names: the per-name length (miINT32) then NUL-padded names (miINT8). */
  private fieldNames(r: Region, label: string): string[] {
    const lenEl = r.expect(`${label}: field name length`, miINT32);
    const lens = r.int32s(lenEl, `${label}: field name length`);
    const len = lens[0];
    if (lens.length !== 1 || len === undefined || len < 1)
      r.fail(`${label}: field name length must be one positive int32`, lenEl.offset);
    const namesEl = r.expect(`${label}: field names`, miINT8, miUINT8);
    if (namesEl.data.length % len! !== 0)
      r.fail(
        `${label}: ${namesEl.data.length} bytes of field names is not a multiple of ${len}`,
        namesEl.offset,
      );
    const fields: string[] = [];
    const latin1 = new TextDecoder('latin1');
    for (let i = 0; i < namesEl.data.length; i += len!) {
      const f = latin1.decode(namesEl.data.subarray(i, i + len!)).replace(/\0.*$/s, '');
      if (fields.includes(f)) r.fail(`${label}: field ${JSON.stringify(f)} appears twice`, namesEl.offset);
      fields.push(f);
    }
    return fields;
  }

  /** Numeric data in column-major order, converted from the storage type to the class's type. */
  private numeric(
    r: Region,
    el: Element,
    cls: (typeof NUMERIC_CLASSES)[number],
    count: number,
    label: string,
  ): MatNumericData {
    const st = STORAGE[el.type];
    if (!st) return r.fail(`${label}: ${typeName(el.type)} cannot hold ${cls.name} data`, el.offset);
    if (el.data.length !== count * st.size)
      r.fail(
        `${label}: ${count} elements of ${typeName(el.type)} need ${count * st.size} bytes, found ${el.data.length}`,
        el.offset,
      );
    if (el.type === cls.storage) {
      // Same type: copy (aligned, owned), then fix the byte order.
      const copy = el.data.slice();
      if (!this.le && st.size > 1) swapBytes(copy, st.size);
      return new cls.array(copy.buffer, 0, count);
    }
    const out = new cls.array(count);
    const v = new DataView(el.data.buffer, el.data.byteOffset, el.data.byteLength);
    if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
      // Into int64/uint64: integers exactly, floats truncated (numpy's astype; NaN/Inf become 0).
      for (let i = 0; i < count; i++) {
        const x = st.get(v, i * st.size, this.le);
        out[i] = typeof x === 'bigint' ? x : BigInt(Number.isFinite(x) ? Math.trunc(x) : 0);
      }
    } else {
      // Typed-array assignment converts as numpy's astype does for in-range values.
      for (let i = 0; i < count; i++) out[i] = Number(st.get(v, i * st.size, this.le));
    }
    return out;
  }

  /** A char array as dims[0] row strings of the column-major character grid. */
  private chars(r: Region, el: Element, dims: number[], count: number, label: string): MatValue {
    let chars: string[];
    if (el.type === miUTF8) {
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(el.data);
      } catch {
        return r.fail(`${label}: characters are not valid UTF-8`, el.offset);
      }
      chars = Array.from(text);
    } else if (el.type === miUINT16 || el.type === miUTF16) {
      if (el.data.length % 2 !== 0) r.fail(`${label}: odd number of UTF-16 bytes`, el.offset);
      const v = new DataView(el.data.buffer, el.data.byteOffset, el.data.byteLength);
      chars = [];
      for (let i = 0; i < el.data.length; i += 2) chars.push(String.fromCharCode(v.getUint16(i, this.le)));
    } else if (el.type === miUINT8 || el.type === miINT8) {
      chars = Array.from(el.data, (c) => String.fromCharCode(c));
    } else {
      return r.fail(`${label}: ${typeName(el.type)} cannot hold characters`, el.offset);
    }
    if (chars.length !== count)
      r.fail(`${label}: ${chars.length} characters for ${count} elements`, el.offset);
    const nRows = dims[0]!;
    const perRow = nRows === 0 ? 0 : count / nRows;
    const rows: string[] = [];
    for (let i = 0; i < nRows; i++) {
      let s = '';
      for (let j = 0; j < perRow; j++) s += chars[i + nRows * j];
      rows.push(s);
    }
    return { kind: 'char', dims, rows };
  }
}

/** Parses a Level-5 MAT-file's bytes (see the file comment). Throws FormatError on bad input. */
export function readMat(bytes: Uint8Array, opts: MatOptions = {}): MatFile {
  const source = opts.source ?? '<mat>';
  return guard(source, 'MAT-file', () =>
    new MatParser(
      plainBytes(bytes),
      source,
      opts.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES,
      opts.maxDepth ?? 32,
    ).parse(),
  );
}

export function loadMat(path: string, opts: Omit<MatOptions, 'source'> = {}): MatFile {
  return readMat(fs.readFileSync(path), { ...opts, source: path });
}

/** The numeric (or logical) variable `name` of a parsed file; FormatError naming it otherwise. */
export function matNumeric(
  file: MatFile,
  name: string,
  source: string,
): Extract<MatValue, { kind: 'numeric' }> {
  const v = file.variables.get(name);
  if (!v) {
    const have = [...file.variables.keys()].map((k) => JSON.stringify(k)).join(', ') || 'none';
    throw new FormatError(source, `no variable ${JSON.stringify(name)} (variables: ${have})`);
  }
  if (v.kind !== 'numeric')
    throw new FormatError(
      source,
      `variable ${JSON.stringify(name)} is ${v.kind === 'unsupported' ? v.className : v.kind}, expected a numeric array`,
    );
  return v;
}
