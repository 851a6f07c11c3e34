// Pickle reader: our own opcode loop with a closed allow-list of callables.
//
// Follows the pickle protocols 0–5 as CPython's Lib/pickle.py and Lib/pickletools.py define them,
// for the opcodes plain data uses. reliability.md: nothing in a pickle is ever executed. Python
// callables (GLOBAL, STACK_GLOBAL + REDUCE/NEWOBJ/BUILD) are honoured only through the caller's
// allow-list of TypeScript stand-ins; with none (refs(*).p, data.md §1), every opcode that could
// name or call code is refused with its name, its byte offset and, for globals, `module.name`.
// Every declared length is checked against the bytes present before anything is allocated; the
// loop is iterative (no recursion however deep the nesting) and the stack and memo are capped.
//
// Values: None → null, bool, int → number (bigint beyond ±(2^53-1)), float → number,
// Python 2 `str` (STRING, BINSTRING, SHORT_BINSTRING) → string decoded as latin-1 (one char per
// byte; refer's pickles were written by Python 2, and the bytes are recoverable with
// Buffer.from(s, 'latin1')), unicode → string, bytes/bytearray → Uint8Array (a copy), list → Array,
// tuple → frozen Array (see isTuple), dict → Map (so a key like `__proto__` is just a key),
// set → Set, frozenset → frozen Set (see isFrozenSet). `toPlain` turns the result into JSON-like
// null-prototype objects.

import { FormatError } from './errors.js';
import { plainBytes } from './bytes.js';

/** A TypeScript stand-in for one allowed Python callable or class. */
export interface GlobalImpl {
  /** REDUCE: `callable(*args)`. */
  call?(args: readonly unknown[]): unknown;
  /** NEWOBJ: `cls.__new__(cls, *args)`. */
  newobj?(args: readonly unknown[]): unknown;
  /** BUILD on an object this global made: `obj.__setstate__(state)`; returns the object to keep. */
  build?(obj: unknown, state: unknown): unknown;
}

/** What GLOBAL/STACK_GLOBAL push for an allowed `module.name`. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly impl: GlobalImpl,
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

export interface UnpickleOptions {
  /** Names the bytes in errors (the file path). */
  source?: string;
  /** Allowed callables by `module.name`. Absent or empty: no global may appear at all. */
  globals?: Readonly<Record<string, GlobalImpl>>;
  /** Resolves PERSID/BINPERSID ids. Absent: persistent ids are refused. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Caps on the value stack (items + marks) and memo entries; defaults are far above real files. */
  maxStack?: number;
  maxMemo?: number;
  /** Longest integer accepted (LONG1/LONG4 bytes; decimal digits for INT/LONG are 2.5× this). */
  maxIntBytes?: number;
}

// prettier-ignore
const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, FLOAT: 0x46, INT: 0x49, BININT: 0x4a,
  BININT1: 0x4b, LONG: 0x4c, BININT2: 0x4d, NONE: 0x4e, PERSID: 0x50, BINPERSID: 0x51, REDUCE: 0x52,
  STRING: 0x53, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, UNICODE: 0x56, BINUNICODE: 0x58, APPEND: 0x61,
  BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, EMPTY_DICT: 0x7d, APPENDS: 0x65, GET: 0x67, BINGET: 0x68,
  INST: 0x69, LONG_BINGET: 0x6a, LIST: 0x6c, EMPTY_LIST: 0x5d, OBJ: 0x6f, PUT: 0x70, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47,
  // protocol 2
  PROTO: 0x80, NEWOBJ: 0x81, EXT1: 0x82, EXT2: 0x83, EXT4: 0x84, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b,
  // protocol 3
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  // protocol 4
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90,
  FROZENSET: 0x91, NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95,
  // protocol 5
  BYTEARRAY8: 0x96, NEXT_BUFFER: 0x97, READONLY_BUFFER: 0x98,
} as const;

const OP_NAME: string[] = [];
for (const [k, v] of Object.entries(OP)) OP_NAME[v] = k;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Python int → number when exact, bigint otherwise. */
function normInt(v: bigint): number | bigint {
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

/** Tuples are frozen arrays; lists are ordinary (mutable) arrays. */
export function isTuple(v: unknown): v is readonly unknown[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

/** frozensets are frozen Sets (Object.freeze does not stop `add`; the flag is the point). */
export function isFrozenSet(v: unknown): v is ReadonlySet<unknown> {
  return v instanceof Set && Object.isFrozen(v);
}

function tuple(items: unknown[]): readonly unknown[] {
  return Object.freeze(items);
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (isTuple(v)) return 'tuple';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return Object.isFrozen(v) ? 'frozenset' : 'set';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PickleGlobal) return `global ${v.qualname}`;
  return typeof v === 'bigint' ? 'int' : typeof v;
}

// Dict keys and set items must be hashable in Python; a mutable container there means a forged file.
function isUnhashable(v: unknown): boolean {
  return (Array.isArray(v) || v instanceof Set || v instanceof Map) && !Object.isFrozen(v);
}

/** Bytes → string, one char per byte. Short strings (most keys and words) skip Buffer's overhead. */
function latin1(b: Uint8Array): string {
  if (b.length > 32) return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

// codecs.escape_decode's one-character escapes.
// prettier-ignore
const SIMPLE_ESCAPES: Readonly<Record<number, number>> = { 0x5c: 0x5c, 0x27: 0x27, 0x22: 0x22, 0x62: 8, 0x66: 12, 0x74: 9, 0x6e: 10, 0x72: 13, 0x76: 11, 0x61: 7 };
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Reads one pickle. Throws FormatError (naming `source`, the opcode and its offset) on bad input. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): unknown {
  const source = opts.source ?? '<pickle>';
  try {
    return new Unpickler(plainBytes(bytes), source, opts).run();
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(source, `unexpected error while unpickling: ${(e as Error).message}`, undefined, {
      cause: e,
    });
  }
}

class Unpickler {
  private pos = 0;
  private at = 0; // offset of the opcode being run, for errors
  private readonly stack: unknown[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly globals: ReadonlyMap<string, GlobalImpl>;
  private readonly made = new WeakMap<object, PickleGlobal>(); // objects built by an allowed global
  private readonly maxStack: number;
  private readonly maxMemo: number;
  private readonly maxIntBytes: number;

  constructor(
    private readonly b: Uint8Array,
    private readonly source: string,
    private readonly opts: UnpickleOptions,
  ) {
    // A Map built from own keys only: `constructor` or `__proto__` never resolve to something.
    this.globals = new Map(Object.keys(opts.globals ?? {}).map((k) => [k, opts.globals![k]!]));
    this.maxStack = opts.maxStack ?? 1 << 25;
    this.maxMemo = opts.maxMemo ?? 1 << 25;
    this.maxIntBytes = opts.maxIntBytes ?? 4096;
  }

  private fail(msg: string): never {
    const op = this.b[this.at];
    const name =
      op === undefined ? 'end of data' : (OP_NAME[op] ?? `opcode 0x${op.toString(16).padStart(2, '0')}`);
    throw new FormatError(this.source, `${name}: ${msg}`, this.at);
  }

  // ---- input -------------------------------------------------------------------------------
  private need(n: number): void {
    if (n > this.b.length - this.pos) {
      this.fail(`declares ${n} bytes at offset ${this.pos} but only ${this.b.length - this.pos} remain`);
    }
  }
  private take(n: number): Uint8Array {
    this.need(n);
    const s = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  private u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }
  private u16(): number {
    const s = this.take(2);
    return s[0]! | (s[1]! << 8);
  }
  private i32(): number {
    const s = this.take(4);
    return s[0]! | (s[1]! << 8) | (s[2]! << 16) | (s[3]! << 24);
  }
  private u32(): number {
    return this.i32() >>> 0;
  }
  /** An 8-byte length; anything past the safe-integer range is certainly past the data. */
  private u64len(): number {
    const s = this.take(8);
    const lo = (s[0]! | (s[1]! << 8) | (s[2]! << 16) | (s[3]! << 24)) >>> 0;
    const hi = (s[4]! | (s[5]! << 8) | (s[6]! << 16) | (s[7]! << 24)) >>> 0;
    if (hi >= 1 << 21) this.fail(`declared length ${(BigInt(hi) << 32n) | BigInt(lo)} is past the data`);
    return hi * 2 ** 32 + lo;
  }
  private line(): Uint8Array {
    const end = this.b.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('argument line has no terminating newline (truncated?)');
    const s = this.b.subarray(this.pos, end);
    this.pos = end + 1;
    return s;
  }
  private asciiLine(): string {
    return latin1(this.line());
  }
  private utf8(bytes: Uint8Array): string {
    try {
      return utf8Fatal.decode(bytes);
    } catch {
      return this.utf8SurrogatePass(bytes);
    }
  }
  /** CPython encodes str with 'surrogatepass': lone surrogates appear as 3-byte ED A0..BF xx. */
  private utf8SurrogatePass(b: Uint8Array): string {
    let out = '';
    let i = 0;
    const cont = (k: number): number => {
      const c = b[k];
      if (c === undefined || (c & 0xc0) !== 0x80) this.fail('string is not valid UTF-8');
      return c & 0x3f;
    };
    while (i < b.length) {
      const c = b[i]!;
      let cp: number;
      if (c < 0x80) ((cp = c), (i += 1));
      else if (c >= 0xc2 && c < 0xe0) ((cp = ((c & 0x1f) << 6) | cont(i + 1)), (i += 2));
      else if (c >= 0xe0 && c < 0xf0)
        ((cp = ((c & 0x0f) << 12) | (cont(i + 1) << 6) | cont(i + 2)), (i += 3));
      else if (c >= 0xf0 && c < 0xf5) {
        cp = ((c & 0x07) << 18) | (cont(i + 1) << 12) | (cont(i + 2) << 6) | cont(i + 3);
        i += 4;
      } else return this.fail('string is not valid UTF-8');
      if ((c >= 0xe0 && cp < 0x800) || (c >= 0xf0 && (cp < 0x10000 || cp > 0x10ffff)))
        this.fail('string is not valid UTF-8');
      out += String.fromCodePoint(cp);
    }
    return out;
  }

  // ---- stack -------------------------------------------------------------------------------
  private base(): number {
    return this.marks.length > 0 ? this.marks[this.marks.length - 1]! : 0;
  }
  private push(v: unknown): void {
    if (this.stack.length + this.marks.length >= this.maxStack)
      this.fail(`stack exceeds ${this.maxStack} entries`);
    this.stack.push(v);
  }
  private pop(): unknown {
    if (this.stack.length <= this.base()) this.fail('stack underflow');
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length <= this.base()) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail('no MARK on the stack');
    return this.stack.splice(m);
  }
  private setTop(v: unknown): void {
    this.stack[this.stack.length - 1] = v;
  }

  // ---- values ------------------------------------------------------------------------------
  private intFromText(text: string, allowBool: boolean): number | bigint | boolean {
    if (allowBool && text === '01') return true; // protocol 0 booleans: I01 / I00
    if (allowBool && text === '00') return false;
    if (!/^[+-]?[0-9]+$/.test(text)) this.fail(`${JSON.stringify(text.slice(0, 40))} is not an integer`);
    if (text.length > this.maxIntBytes * 2.5) this.fail(`integer of ${text.length} digits exceeds the limit`);
    return text.length <= 15 ? Number(text) : normInt(BigInt(text));
  }
  private longFromBytes(s: Uint8Array): number | bigint {
    if (s.length === 0) return 0;
    if (s.length <= 6) {
      // Fits in 48 bits: plain arithmetic, sign-extended from the top byte.
      let v = 0;
      for (let i = s.length - 1; i >= 0; i--) v = v * 256 + s[i]!;
      return s[s.length - 1]! & 0x80 ? v - 2 ** (8 * s.length) : v;
    }
    let hex = '';
    for (let i = s.length - 1; i >= 0; i--) hex += s[i]!.toString(16).padStart(2, '0');
    let v = BigInt('0x' + hex);
    if (s[s.length - 1]! & 0x80) v -= 1n << BigInt(8 * s.length); // two's complement
    return normInt(v);
  }
  private floatFromText(text: string): number {
    const t = text.trim();
    if (/^[+-]?inf(inity)?$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
    if (/^[+-]?nan$/i.test(t)) return NaN;
    if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(t)) {
      this.fail(`${JSON.stringify(t.slice(0, 40))} is not a float`);
    }
    return Number(t);
  }
  /** STRING's argument: a Python 2 repr, quoted, with backslash escapes (codecs.escape_decode). */
  private pyStringLiteral(s: Uint8Array): string {
    const q = s[0];
    if (s.length < 2 || (q !== 0x27 && q !== 0x22) || s[s.length - 1] !== q)
      this.fail('argument must be quoted');
    const end = s.length - 1;
    if (s.indexOf(0x5c, 1) < 0) return latin1(s.subarray(1, end)); // no escapes: the common case
    const out: number[] = [];
    const simple = SIMPLE_ESCAPES;
    for (let i = 1; i < end; i++) {
      const c = s[i]!;
      if (c !== 0x5c) {
        out.push(c);
        continue;
      }
      if (++i >= end) this.fail('trailing backslash in string');
      const e = s[i]!;
      if (e === 0x0a) continue; // line continuation
      if (simple[e] !== undefined) out.push(simple[e]!);
      else if (e >= 0x30 && e <= 0x37) {
        let v = e - 0x30;
        for (let k = 0; k < 2 && i + 1 < end && s[i + 1]! >= 0x30 && s[i + 1]! <= 0x37; k++)
          v = v * 8 + (s[++i]! - 0x30);
        out.push(v & 0xff);
      } else if (e === 0x78 /* x */) {
        const h = latin1(s.subarray(i + 1, i + 3));
        if (i + 2 >= end || !/^[0-9a-fA-F]{2}$/.test(h)) this.fail('invalid \\x escape in string');
        out.push(parseInt(h, 16));
        i += 2;
      } else out.push(0x5c, e); // unknown escapes stay as written
    }
    return latin1(Uint8Array.from(out));
  }
  /** UNICODE's argument: raw-unicode-escape (latin-1 plus \uXXXX and \UXXXXXXXX). */
  private rawUnicodeEscape(s: Uint8Array): string {
    let out = '';
    let i = 0;
    while (i < s.length) {
      if (s[i] !== 0x5c) {
        out += String.fromCharCode(s[i++]!);
        continue;
      }
      // Only an odd run of backslashes before u/U starts an escape.
      let j = i;
      while (j < s.length && s[j] === 0x5c) j++;
      const run = j - i;
      const kind = s[j];
      if (run % 2 === 0 || (kind !== 0x75 && kind !== 0x55)) {
        out += '\\'.repeat(run);
        i = j;
        continue;
      }
      out += '\\'.repeat(run - 1);
      const digits = kind === 0x75 ? 4 : 8;
      const h = latin1(s.subarray(j + 1, j + 1 + digits));
      if (h.length !== digits || !/^[0-9a-fA-F]+$/.test(h)) this.fail('truncated \\uXXXX escape');
      const cp = parseInt(h, 16);
      if (cp > 0x10ffff) this.fail('\\U escape out of range');
      out += String.fromCodePoint(cp);
      i = j + 1 + digits;
    }
    return out;
  }

  // ---- globals -----------------------------------------------------------------------------
  private resolveGlobal(module: string, name: string): PickleGlobal {
    const qual = `${module}.${name}`;
    const impl = this.globals.get(qual);
    if (impl === undefined) {
      const allowed = [...this.globals.keys()];
      this.fail(
        `${qual} refused: ${allowed.length === 0 ? 'this file may not reference any Python global' : `not among the allowed globals (${allowed.join(', ')})`}`,
      );
    }
    return new PickleGlobal(module, name, impl);
  }
  private callable(v: unknown, what: 'call' | 'newobj'): PickleGlobal {
    if (this.globals.size === 0) this.fail('refused: this file may not call anything');
    if (!(v instanceof PickleGlobal) || this.globals.get(v.qualname) !== v.impl || !v.impl[what]) {
      this.fail(`refused: ${describe(v)} is not an allowed callable`);
    }
    return v;
  }
  private invoke(g: PickleGlobal, fn: () => unknown): unknown {
    let r: unknown;
    try {
      r = fn();
    } catch (e) {
      if (e instanceof FormatError) throw e;
      this.fail(`${g.qualname}: ${(e as Error).message}`);
    }
    if (typeof r === 'object' && r !== null) this.made.set(r, g);
    return r;
  }
  private persistent(pid: unknown): unknown {
    const load = this.opts.persistentLoad;
    if (!load) this.fail('refused: this file may not reference persistent (external) objects');
    try {
      return load(pid);
    } catch (e) {
      if (e instanceof FormatError) throw e;
      return this.fail((e as Error).message);
    }
  }

  private memoPut(i: number): void {
    if (!this.memo.has(i) && this.memo.size >= this.maxMemo)
      this.fail(`memo exceeds ${this.maxMemo} entries`);
    this.memo.set(i, this.top());
  }
  private memoGet(i: number): void {
    if (!this.memo.has(i)) this.fail(`memo key ${i} was never stored`);
    this.push(this.memo.get(i));
  }
  private memoIndex(text: string): number {
    if (!/^[0-9]{1,15}$/.test(text))
      this.fail(`memo key ${JSON.stringify(text.slice(0, 40))} is not a number`);
    return Number(text);
  }
  private mapOf(items: unknown[], into: Map<unknown, unknown>): void {
    if (items.length % 2 !== 0) this.fail('odd number of items for key/value pairs');
    for (let i = 0; i < items.length; i += 2) {
      if (isUnhashable(items[i])) this.fail(`unhashable ${describe(items[i])} used as a dict key`);
      into.set(items[i], items[i + 1]);
    }
  }
  private dictTarget(): Map<unknown, unknown> {
    const d = this.top();
    if (!(d instanceof Map)) this.fail(`target is a ${describe(d)}, not a dict`);
    return d;
  }
  private listTarget(): unknown[] {
    const l = this.top();
    if (!Array.isArray(l) || Object.isFrozen(l)) this.fail(`target is a ${describe(l)}, not a list`);
    return l;
  }

  // ---- the loop ----------------------------------------------------------------------------
  run(): unknown {
    const b = this.b;
    for (;;) {
      this.at = this.pos;
      if (this.pos >= b.length) this.fail('data ends before STOP (truncated?)');
      const op = b[this.pos++]!;
      switch (op) {
        case OP.PROTO: {
          const v = this.u8();
          if (v > 5) this.fail(`unsupported protocol ${v}`);
          break;
        }
        case OP.FRAME: {
          const n = this.u64len();
          this.need(n); // framing is only a read-ahead hint; the frame must still be present
          break;
        }
        case OP.STOP: {
          const v = this.pop();
          return v;
        }
        case OP.MARK:
          if (this.stack.length + this.marks.length >= this.maxStack)
            this.fail(`stack exceeds ${this.maxStack} entries`);
          this.marks.push(this.stack.length);
          break;
        case OP.POP:
          if (this.stack.length > this.base()) this.stack.pop();
          else this.popMark(); // CPython: POP on an empty frame discards the mark
          break;
        case OP.POP_MARK:
          this.popMark();
          break;
        case OP.DUP:
          this.push(this.top());
          break;

        case OP.NONE:
          this.push(null);
          break;
        case OP.NEWTRUE:
          this.push(true);
          break;
        case OP.NEWFALSE:
          this.push(false);
          break;
        case OP.INT:
          this.push(this.intFromText(this.asciiLine(), true));
          break;
        case OP.BININT:
          this.push(this.i32());
          break;
        case OP.BININT1:
          this.push(this.u8());
          break;
        case OP.BININT2:
          this.push(this.u16());
          break;
        case OP.LONG: {
          const t = this.asciiLine();
          this.push(this.intFromText(t.endsWith('L') ? t.slice(0, -1) : t, false));
          break;
        }
        case OP.LONG1:
          this.push(this.longFromBytes(this.take(this.u8())));
          break;
        case OP.LONG4: {
          const n = this.i32();
          if (n < 0) this.fail(`negative length ${n}`);
          if (n > this.maxIntBytes)
            this.fail(`integer of ${n} bytes exceeds the ${this.maxIntBytes}-byte limit`);
          this.push(this.longFromBytes(this.take(n)));
          break;
        }
        case OP.FLOAT:
          this.push(this.floatFromText(this.asciiLine()));
          break;
        case OP.BINFLOAT: {
          const s = this.take(8);
          this.push(new DataView(s.buffer, s.byteOffset, 8).getFloat64(0, false)); // big-endian
          break;
        }

        case OP.STRING:
          this.push(this.pyStringLiteral(this.line()));
          break;
        case OP.BINSTRING: {
          const n = this.i32();
          if (n < 0) this.fail(`negative length ${n}`);
          this.push(latin1(this.take(n)));
          break;
        }
        case OP.SHORT_BINSTRING:
          this.push(latin1(this.take(this.u8())));
          break;
        case OP.UNICODE:
          this.push(this.rawUnicodeEscape(this.line()));
          break;
        case OP.BINUNICODE:
          this.push(this.utf8(this.take(this.u32())));
          break;
        case OP.SHORT_BINUNICODE:
          this.push(this.utf8(this.take(this.u8())));
          break;
        case OP.BINUNICODE8:
          this.push(this.utf8(this.take(this.u64len())));
          break;
        case OP.BINBYTES:
          this.push(this.take(this.u32()).slice());
          break;
        case OP.SHORT_BINBYTES:
          this.push(this.take(this.u8()).slice());
          break;
        case OP.BINBYTES8:
        case OP.BYTEARRAY8:
          this.push(this.take(this.u64len()).slice());
          break;

        case OP.EMPTY_LIST:
          this.push([]);
          break;
        case OP.APPEND: {
          const v = this.pop();
          this.listTarget().push(v);
          break;
        }
        case OP.APPENDS: {
          const items = this.popMark();
          const l = this.listTarget();
          for (const v of items) l.push(v);
          break;
        }
        case OP.LIST:
          this.push(this.popMark());
          break;
        case OP.EMPTY_TUPLE:
          this.push(tuple([]));
          break;
        case OP.TUPLE:
          this.push(tuple(this.popMark()));
          break;
        case OP.TUPLE1:
          this.push(tuple([this.pop()]));
          break;
        case OP.TUPLE2: {
          const y = this.pop();
          this.push(tuple([this.pop(), y]));
          break;
        }
        case OP.TUPLE3: {
          const z = this.pop();
          const y = this.pop();
          this.push(tuple([this.pop(), y, z]));
          break;
        }
        case OP.EMPTY_DICT:
          this.push(new Map());
          break;
        case OP.DICT: {
          const m = new Map<unknown, unknown>();
          this.mapOf(this.popMark(), m);
          this.push(m);
          break;
        }
        case OP.SETITEM: {
          const v = this.pop();
          const k = this.pop();
          this.mapOf([k, v], this.dictTarget());
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark();
          this.mapOf(items, this.dictTarget());
          break;
        }
        case OP.EMPTY_SET:
          this.push(new Set());
          break;
        case OP.ADDITEMS: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set) || Object.isFrozen(s)) this.fail(`target is a ${describe(s)}, not a set`);
          for (const v of items) {
            if (isUnhashable(v)) this.fail(`unhashable ${describe(v)} added to a set`);
            s.add(v);
          }
          break;
        }
        case OP.FROZENSET: {
          const items = this.popMark();
          if (items.some((v) => isUnhashable(v))) this.fail('unhashable item in a frozenset');
          this.push(Object.freeze(new Set(items)));
          break;
        }

        case OP.GET:
          this.memoGet(this.memoIndex(this.asciiLine()));
          break;
        case OP.BINGET:
          this.memoGet(this.u8());
          break;
        case OP.LONG_BINGET:
          this.memoGet(this.u32());
          break;
        case OP.PUT:
          this.memoPut(this.memoIndex(this.asciiLine()));
          break;
        case OP.BINPUT:
          this.memoPut(this.u8());
          break;
        case OP.LONG_BINPUT:
          this.memoPut(this.u32());
          break;
        case OP.MEMOIZE:
          this.memoPut(this.memo.size);
          break;

        case OP.PERSID:
          this.push(this.persistent(this.asciiLine()));
          break;
        case OP.BINPERSID:
          this.push(this.persistent(this.pop()));
          break;

        case OP.GLOBAL: {
          const module = this.utf8(this.line());
          const name = this.utf8(this.line());
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string')
            this.fail('module and name must be strings');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case OP.REDUCE: {
          if (this.globals.size === 0) this.fail('refused: this file may not call anything');
          const args = this.pop();
          const g = this.callable(this.pop(), 'call');
          if (!isTuple(args)) this.fail(`arguments of ${g.qualname} are a ${describe(args)}, not a tuple`);
          this.push(this.invoke(g, () => g.impl.call!(args)));
          break;
        }
        case OP.NEWOBJ: {
          if (this.globals.size === 0) this.fail('refused: this file may not create objects');
          const args = this.pop();
          const g = this.callable(this.pop(), 'newobj');
          if (!isTuple(args)) this.fail(`arguments of ${g.qualname} are a ${describe(args)}, not a tuple`);
          this.push(this.invoke(g, () => g.impl.newobj!(args)));
          break;
        }
        case OP.BUILD: {
          if (this.globals.size === 0) this.fail('refused: this file may not set object state');
          const state = this.pop();
          const obj = this.top();
          const g = typeof obj === 'object' && obj !== null ? this.made.get(obj) : undefined;
          if (!g?.impl.build)
            this.fail(`refused: ${describe(obj)} was not made by an allowed global that accepts state`);
          this.setTop(this.invoke(g, () => g.impl.build!(obj, state)));
          break;
        }
        case OP.INST: {
          const module = latin1(this.line());
          const name = latin1(this.line());
          this.fail(`${module}.${name} refused: INST creates arbitrary objects`);
          break;
        }
        case OP.OBJ:
        case OP.NEWOBJ_EX:
          this.fail('refused: creates arbitrary objects');
          break;
        case OP.EXT1:
        case OP.EXT2:
        case OP.EXT4:
          this.fail('refused: extension registry lookups name Python globals');
          break;
        case OP.NEXT_BUFFER:
        case OP.READONLY_BUFFER:
          this.fail('refused: out-of-band buffers are not supported');
          break;
        default:
          this.fail('unknown opcode');
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------

/**
 * Converts an unpickled value to JSON-like data: dicts become null-prototype objects (keys
 * stringified; `__proto__` stays an own key), tuples and sets become arrays; bytes stay
 * Uint8Array, big ints stay bigint. Iterative, so nesting depth cannot overflow the JS stack;
 * shared sub-values stay shared (and a cyclic value stays cyclic).
 */
export function toPlain(value: unknown): unknown {
  const done = new Map<object, unknown>();
  const convertShallow = (v: unknown, work: [unknown, unknown][]): unknown => {
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return v;
    const seen = done.get(v);
    if (seen !== undefined) return seen;
    let out: unknown;
    if (v instanceof Map) out = Object.create(null);
    else if (Array.isArray(v) || v instanceof Set) out = [];
    else return v; // an allowed global's stand-in object: left as it is
    done.set(v, out);
    work.push([v, out]);
    return out;
  };
  const work: [unknown, unknown][] = [];
  const root = convertShallow(value, work);
  while (work.length > 0) {
    const [src, dst] = work.pop()!;
    if (src instanceof Map) {
      const o = dst as Record<string, unknown>;
      for (const [k, v] of src) {
        if (
          typeof k !== 'string' &&
          typeof k !== 'number' &&
          typeof k !== 'bigint' &&
          typeof k !== 'boolean'
        ) {
          throw new Error(`toPlain: dict key of type ${describe(k)} cannot become an object key`);
        }
        o[String(k)] = convertShallow(v, work);
      }
    } else {
      const a = dst as unknown[];
      for (const v of src as Iterable<unknown>) a.push(convertShallow(v, work));
    }
  }
  return root;
}
