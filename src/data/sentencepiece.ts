// SentencePiece unigram encoding (Kudo & Richardson 2018; google/sentencepiece 0.1.9x), reading the
// `.model` file (a serialized sentencepiece.ModelProto), and the BEiT-3 / XLM-R id framing that
// Shared-RIS uses (spec/shared-ris.md §1: `[CLS] tokens [EOT]`, padded).
//
// Encoding follows sentencepiece's own code path so that ids equal the Python encoder's exactly:
//  1. Normalizer::Normalize: at each position the longest rule of the model's precompiled
//     character map (a Darts-clone double-array trie over UTF-8 bytes; for `nmt_nfkc` it holds NFKC
//     plus the NMT whitespace/control-character rules) replaces the prefix, else one character is
//     copied (a malformed byte becomes U+FFFD). User-defined symbols pass unnormalized. Leading,
//     trailing and repeated spaces are removed (remove_extra_whitespaces), spaces become '▁'
//     (escape_whitespaces) and one '▁' is prepended (add_dummy_prefix).
//  2. unigram Model::EncodeOptimized: Viterbi over every piece of the vocabulary that starts at a
//     character boundary, scores summed in float32 as the C++ does; a character no piece covers is
//     <unk> with score min_score − 10; user-defined symbols score length·max_score − 0.1; UNUSED
//     pieces never match. Ties keep the earlier start (strict `>`), as the C++ does.
//  3. SentencePieceProcessor::Encode: with byte_fallback, an <unk> piece becomes its UTF-8 bytes
//     as the pieces <0xXX>; without, a run of <unk> pieces merges into one.
// BEiT-3 tokenizes with transformers' XLMRobertaTokenizer over `beit3.spm`, whose ids are fairseq's
// dictionary: <s> = 0, <pad> = 1, </s> = 2, <unk> = 3, and sentencepiece id i ≥ 1 → i + 1
// (sentencepiece's own <unk>, id 0, → 3). unilm beit3 frames a sentence as
// [<s>] + ids[: T − 2] + [</s>] and pads with <pad> (datasets.py `_get_text_segment`).

import type { TextEncoder } from './text.js';

/** BEiT-3 (fairseq / XLM-R) special ids: [CLS] = <s>, padding, [EOT] = </s>, unknown. */
export const BEIT3_TOKENS = { cls: 0, pad: 1, eot: 2, unk: 3 } as const;
/** fairseq_offset of XLMRobertaTokenizer: sentencepiece id i (≥ 1) is dictionary id i + 1. */
export const FAIRSEQ_OFFSET = 1;

/** ModelProto.SentencePiece.Type. */
export const PieceType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface Piece {
  piece: string;
  score: number;
  type: number;
}

export interface SentencePieceModelProto {
  pieces: Piece[];
  /** TrainerSpec.model_type (1 = UNIGRAM). */
  modelType: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  normalizer: {
    name: string;
    precompiledCharsmap: Uint8Array;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
  };
}

export class SentencePieceError extends Error {
  override name = 'SentencePieceError';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
  }
}

// ---------------------------------------------------------------- protobuf (the few fields needed)

class ProtoReader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly fail: (msg: string) => never,
  ) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) this.fail(`truncated varint at byte ${this.pos}`);
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    return this.fail(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) this.fail(`length-delimited field of ${n} bytes runs past the end`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  float32(): number {
    if (this.pos + 4 > this.buf.length) this.fail('truncated float');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else this.fail(`unsupported wire type ${wire} at byte ${this.pos}`);
    if (this.pos > this.buf.length) this.fail('field runs past the end');
  }

  /** Calls `field(number, wireType)` for every field; it returns false to have the field skipped. */
  fields(field: (n: number, wire: number) => boolean): void {
    while (!this.done) {
      const key = this.varint();
      const n = Math.floor(key / 8);
      const wire = key % 8;
      if (!field(n, wire)) this.skip(wire);
    }
  }
}

const utf8Decode = new globalThis.TextDecoder('utf-8', { fatal: true });
const utf8Encode = new globalThis.TextEncoder();

/** Parses the ModelProto fields encoding needs (unknown fields are skipped, as protobuf does). */
export function parseModelProto(
  bytes: Uint8Array,
  source = '<sentencepiece model>',
): SentencePieceModelProto {
  const fail = (msg: string): never => {
    throw new SentencePieceError(source, `not a valid sentencepiece model: ${msg}`);
  };
  const text = (b: Uint8Array) => {
    try {
      return utf8Decode.decode(b);
    } catch {
      return fail('a string field is not valid UTF-8');
    }
  };
  const m: SentencePieceModelProto = {
    pieces: [],
    modelType: 1,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    normalizer: {
      name: '',
      precompiledCharsmap: new Uint8Array(0),
      addDummyPrefix: true, // proto2 defaults of NormalizerSpec
      removeExtraWhitespaces: true,
      escapeWhitespaces: true,
    },
  };
  const top = new ProtoReader(bytes, fail);
  while (!top.done) {
    const key = top.varint();
    const [n, wire] = [Math.floor(key / 8), key % 8];
    if (wire !== 2 || (n !== 1 && n !== 2 && n !== 3)) {
      top.skip(wire);
      continue;
    }
    const r = new ProtoReader(top.bytes(), fail);
    if (n === 1) {
      const p: Piece = { piece: '', score: 0, type: PieceType.NORMAL };
      r.fields((f, w) => {
        if (f === 1 && w === 2) p.piece = text(r.bytes());
        else if (f === 2 && w === 5) p.score = r.float32();
        else if (f === 3 && w === 0) p.type = r.varint();
        else return false;
        return true;
      });
      m.pieces.push(p);
    } else if (n === 2) {
      r.fields((f, w) => {
        if (w !== 0) return false;
        if (f === 3) m.modelType = r.varint();
        else if (f === 24) m.treatWhitespaceAsSuffix = r.varint() !== 0;
        else if (f === 35) m.byteFallback = r.varint() !== 0;
        else return false;
        return true;
      });
    } else {
      const ns = m.normalizer;
      r.fields((f, w) => {
        if (f === 1 && w === 2) ns.name = text(r.bytes());
        else if (f === 2 && w === 2) ns.precompiledCharsmap = r.bytes().slice();
        else if (f === 3 && w === 0) ns.addDummyPrefix = r.varint() !== 0;
        else if (f === 4 && w === 0) ns.removeExtraWhitespaces = r.varint() !== 0;
        else if (f === 5 && w === 0) ns.escapeWhitespaces = r.varint() !== 0;
        else return false;
        return true;
      });
    }
  }
  return m;
}

// ---------------------------------------------------------------- normalizer

/** Darts-clone double array (the precompiled character map's trie): units of 32 bits. */
class DoubleArray {
  constructor(private readonly units: Uint32Array) {}

  /** Longest key that prefixes bytes[pos..] (among the first 32 matches, as sentencepiece): [length, value]. */
  longestPrefix(bytes: Uint8Array, pos: number): [number, number] | null {
    const u = this.units;
    const offset = (unit: number) => (unit >>> 10) * ((unit & 0x200) !== 0 ? 256 : 1);
    let node = offset(u[0]!);
    let best: [number, number] | null = null;
    let found = 0;
    for (let i = pos; i < bytes.length; i++) {
      const c = bytes[i]!;
      node = (node ^ c) >>> 0;
      if (node >= u.length) break;
      const unit = u[node]!;
      if ((unit & 0x800000ff) >>> 0 !== c) break; // label
      node = (node ^ offset(unit)) >>> 0;
      if ((unit >>> 8) & 1) {
        // has_leaf: the value sits in the unit at `node`
        if (found < 32 && node < u.length) best = [i - pos + 1, u[node]! & 0x7fffffff];
        found++;
      }
    }
    return best;
  }
}

const SPACE = 0x20;
const SPACE_SYMBOL = utf8Encode.encode('\u2581'); // ▁
const REPLACEMENT = utf8Encode.encode('\ufffd');

/** Length of the UTF-8 character starting with byte `b` (sentencepiece OneCharLen). */
const oneCharLen = (b: number): number => [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4][b >> 4]!;

/** Length of a valid UTF-8 character at `pos`, or 0 if the bytes there are malformed. */
function validCharLen(bytes: Uint8Array, pos: number): number {
  const b = bytes[pos]!;
  if (b < 0x80) return 1;
  let n: number;
  let min: number;
  if (b >= 0xc2 && b <= 0xdf) [n, min] = [2, 0x80];
  else if (b >= 0xe0 && b <= 0xef) [n, min] = [3, 0x800];
  else if (b >= 0xf0 && b <= 0xf4) [n, min] = [4, 0x10000];
  else return 0;
  if (pos + n > bytes.length) return 0;
  let cp = b & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const c = bytes[pos + k]!;
    if ((c & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

function startsWith(bytes: Uint8Array, pos: number, prefix: Uint8Array): boolean {
  if (pos + prefix.length > bytes.length) return false;
  for (let k = 0; k < prefix.length; k++) if (bytes[pos + k] !== prefix[k]) return false;
  return true;
}

/** A byte-level trie of pieces: children by byte, `id` where a piece ends. */
interface TrieNode {
  id: number;
  next: Map<number, TrieNode>;
}

function buildTrie(entries: Iterable<[Uint8Array, number]>): TrieNode {
  const root: TrieNode = { id: -1, next: new Map() };
  for (const [bytes, id] of entries) {
    let n = root;
    for (const b of bytes) {
      let c = n.next.get(b);
      if (!c) n.next.set(b, (c = { id: -1, next: new Map() }));
      n = c;
    }
    n.id = id;
  }
  return root;
}

// ---------------------------------------------------------------- the processor

export class SentencePiece {
  readonly pieces: readonly Piece[];
  readonly unkId: number;
  private readonly charsmap: DoubleArray | null;
  private readonly normalizedStrings: Uint8Array;
  private readonly trie: TrieNode;
  private readonly userDefined: TrieNode | null;
  private readonly ids = new Map<string, number>();
  private readonly minScore: number;
  private readonly maxScore: number;

  constructor(
    readonly proto: SentencePieceModelProto,
    readonly source = '<sentencepiece model>',
  ) {
    const fail = (msg: string): never => {
      throw new SentencePieceError(source, msg);
    };
    if (proto.modelType !== 1)
      fail(`only unigram models are supported (TrainerSpec.model_type = ${proto.modelType})`);
    this.pieces = proto.pieces;
    let unk = -1;
    let min = 3.4028234663852886e38; // FLT_MAX
    let max = 1.1754943508222875e-38; // FLT_MIN, as the C++ initializes it
    const normal: [Uint8Array, number][] = [];
    const user: [Uint8Array, number][] = [];
    proto.pieces.forEach((p, i) => {
      if (p.piece === '') fail(`piece ${i} is empty`);
      if (this.ids.has(p.piece)) fail(`piece ${JSON.stringify(p.piece)} is defined twice`);
      this.ids.set(p.piece, i);
      if (p.type === PieceType.UNKNOWN) {
        if (unk >= 0) fail('<unk> is defined twice');
        unk = i;
      }
      if (p.type === PieceType.BYTE && !proto.byteFallback)
        fail(`byte piece ${p.piece} in a model without byte_fallback`);
      if (p.type === PieceType.NORMAL) {
        min = Math.min(min, p.score);
        max = Math.max(max, p.score);
      }
      if (p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED || p.type === PieceType.UNUSED)
        normal.push([utf8Encode.encode(p.piece), i]);
      if (p.type === PieceType.USER_DEFINED) user.push([utf8Encode.encode(p.piece), i]);
    });
    if (unk < 0) fail('the model defines no <unk> piece');
    this.unkId = unk;
    this.minScore = min;
    this.maxScore = max;
    this.trie = buildTrie(normal);
    this.userDefined = user.length ? buildTrie(user) : null;

    const blob = proto.normalizer.precompiledCharsmap;
    if (blob.length === 0) {
      this.charsmap = null;
      this.normalizedStrings = new Uint8Array(0);
    } else {
      if (blob.length <= 4) fail('precompiled_charsmap is truncated');
      const trieSize = new DataView(blob.buffer, blob.byteOffset, 4).getUint32(0, true);
      if (trieSize >= blob.length || trieSize % 4 !== 0)
        fail(`precompiled_charsmap trie size ${trieSize} is invalid`);
      const units = new Uint32Array(trieSize / 4);
      const view = new DataView(blob.buffer, blob.byteOffset + 4, trieSize);
      for (let k = 0; k < units.length; k++) units[k] = view.getUint32(4 * k, true);
      this.charsmap = new DoubleArray(units);
      this.normalizedStrings = blob.slice(4 + trieSize);
    }
  }

  static fromBytes(bytes: Uint8Array, source?: string): SentencePiece {
    return new SentencePiece(parseModelProto(bytes, source), source);
  }

  get size(): number {
    return this.pieces.length;
  }

  /** The id of a piece, or the <unk> id (sentencepiece PieceToId). */
  pieceToId(piece: string): number {
    return this.ids.get(piece) ?? this.unkId;
  }

  /** Longest user-defined symbol at `pos` (the normalizer and the model never split them), in bytes. */
  private userSymbolAt(bytes: Uint8Array, pos: number): number {
    let n = this.userDefined;
    let best = 0;
    for (let i = pos; n && i < bytes.length; i++) {
      n = n.next.get(bytes[i]!) ?? null;
      if (n && n.id >= 0) best = i - pos + 1;
    }
    return best;
  }

  /** Normalizer::NormalizePrefix: the replacement for the prefix at `pos` and how many bytes it consumes. */
  private normalizePrefix(input: Uint8Array, pos: number): [Uint8Array, number] {
    const user = this.userDefined ? this.userSymbolAt(input, pos) : 0;
    if (user > 0) return [input.subarray(pos, pos + user), user];
    const rule = this.charsmap?.longestPrefix(input, pos) ?? null;
    if (rule) {
      const [length, value] = rule;
      let end = value;
      while (end < this.normalizedStrings.length && this.normalizedStrings[end] !== 0) end++;
      return [this.normalizedStrings.subarray(value, end), length];
    }
    const n = validCharLen(input, pos);
    return n === 0 ? [REPLACEMENT, 1] : [input.subarray(pos, pos + n), n];
  }

  /** The normalized text as UTF-8 bytes (spaces as '▁' with the default spec). */
  normalizeBytes(text: string): Uint8Array {
    const input = utf8Encode.encode(text);
    const ns = this.proto.normalizer;
    const out: number[] = [];
    let pos = 0;
    if (ns.removeExtraWhitespaces) {
      while (pos < input.length) {
        const [s, n] = this.normalizePrefix(input, pos);
        if (!(s.length === 1 && s[0] === SPACE)) break;
        pos += n;
      }
    }
    if (pos >= input.length) return new Uint8Array(0);
    const space = ns.escapeWhitespaces ? SPACE_SYMBOL : Uint8Array.of(SPACE);
    const addWs = () => out.push(...space);
    if (!this.proto.treatWhitespaceAsSuffix && ns.addDummyPrefix) addWs();
    let prevSpace = ns.removeExtraWhitespaces;
    while (pos < input.length) {
      const [piece, n] = this.normalizePrefix(input, pos);
      let s = piece;
      if (prevSpace) {
        let k = 0;
        while (k < s.length && s[k] === SPACE) k++;
        s = s.subarray(k);
      }
      if (s.length > 0) {
        for (const b of s) {
          if (ns.escapeWhitespaces && b === SPACE) out.push(...SPACE_SYMBOL);
          else out.push(b);
        }
        prevSpace = s[s.length - 1] === SPACE;
      }
      pos += n;
      if (!ns.removeExtraWhitespaces) prevSpace = false;
    }
    if (ns.removeExtraWhitespaces) {
      const bytes = Uint8Array.from(out);
      let end = bytes.length;
      while (end >= space.length && startsWith(bytes, end - space.length, space)) end -= space.length;
      out.length = end;
    }
    if (this.proto.treatWhitespaceAsSuffix && ns.addDummyPrefix) addWs();
    return Uint8Array.from(out);
  }

  /** The normalized text (what the Viterbi segmentation runs on). */
  normalize(text: string): string {
    return new globalThis.TextDecoder().decode(this.normalizeBytes(text));
  }

  /** unigram Model::EncodeOptimized over normalized bytes: [start, end, id] per piece, in order. */
  private viterbi(s: Uint8Array): [number, number, number][] {
    const size = s.length;
    const f32 = Math.fround;
    const unkScore = f32(this.minScore - 10);
    const score = new Float64Array(size + 1);
    const from = new Int32Array(size + 1).fill(-1);
    const id = new Int32Array(size + 1).fill(-1);
    let start = 0;
    while (start < size) {
      const base = score[start]!;
      const mblen = Math.min(oneCharLen(s[start]!), size - start);
      let single = false;
      let node: TrieNode | undefined = this.trie;
      for (let end = start; end < size;) {
        node = node.next.get(s[end]!);
        end++;
        if (!node) break;
        const pid = node.id;
        if (pid < 0) continue;
        const p = this.pieces[pid]!;
        if (p.type === PieceType.UNUSED) continue;
        const length = end - start;
        const pieceScore = p.type === PieceType.USER_DEFINED ? f32(length * this.maxScore - 0.1) : p.score;
        const candidate = f32(pieceScore + base);
        if (from[end] === -1 || candidate > score[end]!) {
          score[end] = candidate;
          from[end] = start;
          id[end] = pid;
        }
        if (length === mblen) single = true;
      }
      if (!single) {
        const end = start + mblen;
        const candidate = f32(unkScore + base);
        if (from[end] === -1 || candidate > score[end]!) {
          score[end] = candidate;
          from[end] = start;
          id[end] = this.unkId;
        }
      }
      start += mblen;
    }
    const out: [number, number, number][] = [];
    for (let end = size; end > 0; end = from[end]!) out.push([from[end]!, end, id[end]!]);
    return out.reverse();
  }

  /** Pieces and sentencepiece ids of a sentence (SentencePieceProcessor::Encode). */
  encodePieces(text: string): { piece: string; id: number }[] {
    const s = this.normalizeBytes(text);
    const dec = new globalThis.TextDecoder();
    const out: { piece: string; id: number }[] = [];
    let prevUnk = false;
    for (const [a, b, pid] of this.viterbi(s)) {
      const bytes = s.subarray(a, b);
      const unk = pid === this.unkId;
      if (unk && this.proto.byteFallback) {
        for (const byte of bytes) {
          const piece = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
          out.push({ piece, id: this.pieceToId(piece) });
        }
        continue;
      }
      // a run of unknown characters is one <unk> piece
      if (unk && prevUnk) out[out.length - 1]!.piece += dec.decode(bytes);
      else out.push({ piece: dec.decode(bytes), id: pid });
      prevUnk = unk;
    }
    return out;
  }

  /** Sentencepiece ids of a sentence. */
  encode(text: string): number[] {
    return this.encodePieces(text).map((p) => p.id);
  }
}

// ---------------------------------------------------------------- BEiT-3 framing and the TextEncoder

/** XLMRobertaTokenizer._convert_token_to_id: sentencepiece id → fairseq dictionary id. */
export const toFairseqId = (spmId: number): number =>
  spmId === 0 ? BEIT3_TOKENS.unk : spmId + FAIRSEQ_OFFSET;

/** [<s>] + ids[: T − 2] + [</s>], padded with <pad> to T (unilm beit3 `_get_text_segment`). */
export function beit3Ids(sp: SentencePiece, sentence: string, length: number): number[] {
  if (length < 2) throw new Error(`beit3Ids: length ${length} cannot hold [CLS] and [EOT]`);
  const ids = sp
    .encode(sentence)
    .map(toFairseqId)
    .slice(0, length - 2);
  const out = [BEIT3_TOKENS.cls, ...ids, BEIT3_TOKENS.eot];
  while (out.length < length) out.push(BEIT3_TOKENS.pad);
  return out;
}

/** The checkpoint `vocab` metadata of a SentencePiece tokenizer. */
export interface SentencePieceVocab {
  kind: 'sentencepiece';
  /** The `.model` file, base64. */
  model: string;
}

export function isSentencePieceVocab(v: unknown): v is SentencePieceVocab {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'sentencepiece';
}

/** A TextEncoder with BEiT-3 framing (padding id 1, not 0) over a SentencePiece model. */
export function sentencePieceEncoder(modelBytes: Uint8Array, length: number, source?: string): TextEncoder {
  const sp = SentencePiece.fromBytes(modelBytes, source);
  const model = base64Encode(modelBytes);
  return {
    length,
    encode: (s) => BigInt64Array.from(beit3Ids(sp, s, length), (v) => BigInt(v)),
    toJSON: (): SentencePieceVocab => ({ kind: 'sentencepiece', model }),
  };
}

/** The encoder a checkpoint's `{kind: 'sentencepiece', model}` vocabulary describes. */
export function sentencePieceEncoderFromJSON(
  v: SentencePieceVocab,
  length: number,
  source = '<vocab>',
): TextEncoder {
  if (typeof v.model !== 'string' || v.model.length === 0)
    throw new SentencePieceError(
      source,
      'vocab.model must hold the base64 bytes of a sentencepiece .model file',
    );
  const bytes = base64Decode(v.model);
  if (bytes === null)
    throw new SentencePieceError(source, 'vocab.model is not valid base64 (RFC 4648, standard alphabet)');
  return sentencePieceEncoder(bytes, length, source);
}

// Base64 without Node's Buffer: the web demo imports this module in the browser.
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_CODES = Uint8Array.from(B64, (c) => c.charCodeAt(0));
const B64_INDEX = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

/** RFC 4648 base64 with padding (what Buffer's toString('base64') writes). */
export function base64Encode(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(4 * Math.ceil(n / 3));
  const pad = 61; // '='
  for (let i = 0, o = 0; i < n; i += 3, o += 4) {
    const v = (bytes[i]! << 16) | ((i + 1 < n ? bytes[i + 1]! : 0) << 8) | (i + 2 < n ? bytes[i + 2]! : 0);
    out[o] = B64_CODES[v >>> 18]!;
    out[o + 1] = B64_CODES[(v >>> 12) & 63]!;
    out[o + 2] = i + 1 < n ? B64_CODES[(v >>> 6) & 63]! : pad;
    out[o + 3] = i + 2 < n ? B64_CODES[v & 63]! : pad;
  }
  return new globalThis.TextDecoder().decode(out); // ASCII
}

/** Decodes base64 (padding optional, ASCII whitespace ignored); null when malformed. */
export function base64Decode(text: string): Uint8Array | null {
  const s = text.replace(/[\t\n\f\r ]+/g, '').replace(/={1,2}$/, '');
  if (s.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? B64_INDEX[c]! : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  return out;
}
