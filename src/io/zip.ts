// Minimal zip reader: the containers of PyTorch `.pth` (torch.save ≥ 1.6) and NumPy `.npz`.
//
// Follows PKWARE's APPNOTE.TXT: the end-of-central-directory record (and its ZIP64 locator and
// record when counts or offsets overflow 32 bits), central directory headers (with the ZIP64 extra
// field 0x0001), local file headers, entries stored (method 0) or deflated (method 8, inflated with
// zlib.inflateRawSync). Hostile archives are refused (reliability.md): names with a `..` component,
// absolute or drive-letter names, backslashes, duplicate names, encrypted entries, sizes or offsets
// past the file, overlapping entries (the trick behind non-recursive zip bombs), a local header
// that disagrees with the central directory, inflated output larger than declared, bad CRC-32.
// Data offsets come from the LOCAL header's name and extra lengths: torch pads the local extra
// field so storages start 64-byte aligned, and that padding is absent from the central directory.

import * as zlib from 'node:zlib';
import { constants as bufferConstants } from 'node:buffer';
import { FormatError, guard } from './errors.js';
import { type ByteSource, isByteSource, memorySource, plainBytes } from './bytes.js';

export interface ZipEntry {
  readonly name: string;
  readonly method: 0 | 8;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
  /** Where the entry's (compressed) bytes start in the archive. */
  readonly dataOffset: number;
}

export interface ZipOptions {
  source?: string;
  /** Largest uncompressed entry `read` will produce (default: the largest Buffer Node allows). */
  maxEntrySize?: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO-HDLC, the zip and gzip polynomial 0xEDB88320). */
export function crc32(bytes: Uint8Array, seed = 0): number {
  const t = (crcTable ??= (() => {
    const tab = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      tab[n] = c >>> 0;
    }
    return tab;
  })());
  let c = ~seed >>> 0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** A name that could escape an extraction folder or alias another entry. */
function unsafeName(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.includes('\0')) return 'NUL in name';
  if (name.includes('\\')) return 'backslash in name';
  if (name.startsWith('/')) return 'absolute name';
  if (/^[A-Za-z]:/.test(name)) return 'drive-letter name';
  if (name.split('/').some((part) => part === '..')) return "'..' component in name";
  return undefined;
}

export class ZipReader {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  readonly source: string;
  private readonly src: ByteSource;
  private readonly maxEntrySize: number;

  private constructor(src: ByteSource, source: string, entries: Map<string, ZipEntry>, maxEntrySize: number) {
    this.src = src;
    this.source = source;
    this.entries = entries;
    this.maxEntrySize = maxEntrySize;
  }

  /** Reads and validates the directory; entry data is read (and CRC-checked) by `read`. */
  static open(input: Uint8Array | ByteSource, opts: ZipOptions = {}): ZipReader {
    const source = opts.source ?? '<zip>';
    const src = isByteSource(input) ? input : memorySource(input);
    const maxEntrySize = Math.min(
      opts.maxEntrySize ?? bufferConstants.MAX_LENGTH,
      bufferConstants.MAX_LENGTH,
    );
    return guard(
      source,
      'zip directory',
      () => new ZipReader(src, source, readDirectory(src, source), maxEntrySize),
    );
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The uncompressed bytes of `name`, checked against the declared size and CRC-32. */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (e === undefined) throw new FormatError(this.source, `no entry named ${JSON.stringify(name)}`);
    return guard(this.source, `zip entry ${JSON.stringify(name)}`, () => this.readEntry(e));
  }

  private readEntry(e: ZipEntry): Uint8Array {
    const fail = (msg: string): never => {
      throw new FormatError(this.source, `zip entry ${JSON.stringify(e.name)}: ${msg}`, e.localHeaderOffset);
    };
    if (e.size > this.maxEntrySize) fail(`size ${e.size} exceeds the ${this.maxEntrySize}-byte limit`);
    const raw = this.src.read(e.dataOffset, e.compressedSize);
    let data: Uint8Array;
    if (e.method === 0) {
      data = raw;
    } else {
      try {
        // maxOutputLength stops a bomb at the declared size instead of after filling memory.
        data = plainBytes(zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) }));
      } catch (err) {
        return fail(
          `deflate data is corrupt or larger than the declared ${e.size} bytes (${(err as Error).message})`,
        );
      }
      if (e.size === 0 && data.length > 0) fail('deflate data is larger than the declared 0 bytes');
    }
    if (data.length !== e.size) fail(`holds ${data.length} bytes, the directory declares ${e.size}`);
    const crc = crc32(data);
    if (crc !== e.crc32) {
      fail(
        `CRC-32 mismatch (data ${crc.toString(16).padStart(8, '0')}, directory ${e.crc32.toString(16).padStart(8, '0')})`,
      );
    }
    return data;
  }
}

/** Convenience: open an archive held in memory. */
export function readZip(bytes: Uint8Array, opts: ZipOptions = {}): ZipReader {
  return ZipReader.open(bytes, opts);
}

function readDirectory(src: ByteSource, source: string): Map<string, ZipEntry> {
  const fail = (msg: string, offset?: number): never => {
    throw new FormatError(source, `zip: ${msg}`, offset);
  };
  const size = src.size;
  if (size < 22) fail(`file is ${size} bytes, too short for a zip end record`);

  // The end record is in the last 22 + 65535 bytes (its comment is at most 65535 bytes). Take the
  // last candidate whose comment length reaches exactly the end of the file.
  const tailLen = Math.min(size, 22 + 0xffff);
  const tailStart = size - tailLen;
  const tail = src.read(tailStart, tailLen);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.length);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) === tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record (not a zip file, or truncated)');
  const eocdOffset = tailStart + eocd;
  if (tv.getUint16(eocd + 4, true) !== 0 || tv.getUint16(eocd + 6, true) !== 0)
    fail('multi-disk archives are not supported', eocdOffset);
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  let cdLimit = eocdOffset; // the central directory must end before the records that follow it

  // ZIP64: a 20-byte locator right before the end record points at the ZIP64 end record. (Like
  // Python's zipfile, a 0xFFFF count without a locator is taken literally.)
  const locOffset = eocdOffset - 20;
  const loc = locOffset >= 0 ? view(src.read(locOffset, 20)) : undefined;
  if (loc !== undefined && loc.getUint32(0, true) === SIG_ZIP64_LOCATOR) {
    const recOffset = u64(loc, 8, () => fail('ZIP64 end record offset out of range', locOffset));
    if (recOffset + 56 > locOffset)
      fail(`ZIP64 end record at ${recOffset} is not before its locator`, locOffset);
    const rec = view(src.read(recOffset, 56));
    if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) fail('bad ZIP64 end record signature', recOffset);
    const bad = (): never => fail('ZIP64 end record value out of range', recOffset);
    count = u64(rec, 32, bad);
    cdSize = u64(rec, 40, bad);
    cdOffset = u64(rec, 48, bad);
    cdLimit = recOffset;
  }
  if (cdOffset + cdSize > cdLimit) {
    fail(
      `central directory [${cdOffset}, ${cdOffset + cdSize}) runs past its end record at ${cdLimit}`,
      eocdOffset,
    );
  }
  if (count * 46 > cdSize)
    fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`, eocdOffset);

  const cd = src.read(cdOffset, cdSize);
  const cv = view(cd);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    const at = cdOffset + p;
    if (p + 46 > cd.length) fail(`central directory entry ${i} is truncated`, at);
    if (cv.getUint32(p, true) !== SIG_CENTRAL) fail(`central directory entry ${i} has a bad signature`, at);
    const flags = cv.getUint16(p + 8, true);
    const method = cv.getUint16(p + 10, true);
    const crc = cv.getUint32(p + 16, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let usize = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    let localOffset = cv.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cd.length) fail(`central directory entry ${i} runs past the directory`, at);
    const nameBytes = cd.subarray(p + 46, p + 46 + nameLen);
    // Bit 11: UTF-8 names; otherwise CP437, of which we only accept the ASCII part.
    let name: string;
    try {
      name = new TextDecoder('utf-8', { fatal: true }).decode(nameBytes);
    } catch {
      return fail(`central directory entry ${i} has a name that is not valid UTF-8`, at);
    }
    if ((flags & 0x800) === 0 && /[^\x00-\x7f]/.test(name))
      fail(`entry name ${JSON.stringify(name)} is not ASCII or flagged UTF-8`, at);
    const why = unsafeName(name);
    if (why) fail(`refusing entry ${JSON.stringify(name)}: ${why}`, at);
    if (entries.has(name)) fail(`refusing duplicate entry name ${JSON.stringify(name)}`, at);
    if (flags & 0x1) fail(`entry ${JSON.stringify(name)} is encrypted`, at);
    if (method !== 0 && method !== 8)
      fail(`entry ${JSON.stringify(name)} uses unsupported compression method ${method}`, at);

    // ZIP64 extra field: 64-bit values for exactly those fields that hold 0xFFFFFFFF, in order.
    if (usize === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
      const extra = view(cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen));
      let q = 0;
      let found = false;
      while (q + 4 <= extra.byteLength) {
        const id = extra.getUint16(q, true);
        const len = extra.getUint16(q + 2, true);
        if (q + 4 + len > extra.byteLength) break;
        if (id === 0x0001) {
          let r = q + 4;
          const next = (): number => {
            if (r + 8 > q + 4 + len) fail(`entry ${JSON.stringify(name)}: ZIP64 extra field too short`, at);
            const v = u64(extra, r, () =>
              fail(`entry ${JSON.stringify(name)}: ZIP64 value out of range`, at),
            );
            r += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localOffset === 0xffffffff) localOffset = next();
          found = true;
          break;
        }
        q += 4 + len;
      }
      if (!found) fail(`entry ${JSON.stringify(name)} needs a ZIP64 extra field and has none`, at);
    }
    if (method === 0 && compressedSize !== usize) {
      fail(
        `stored entry ${JSON.stringify(name)} has compressed size ${compressedSize} but size ${usize}`,
        at,
      );
    }
    if (localOffset + 30 > cdOffset)
      fail(`entry ${JSON.stringify(name)}: local header at ${localOffset} is past the data area`, at);

    const lh = src.read(localOffset, 30);
    const lv = view(lh);
    if (lv.getUint32(0, true) !== SIG_LOCAL)
      fail(`entry ${JSON.stringify(name)}: bad local header signature`, localOffset);
    const lNameLen = lv.getUint16(26, true);
    const lExtraLen = lv.getUint16(28, true);
    const dataOffset = localOffset + 30 + lNameLen + lExtraLen;
    if (dataOffset + compressedSize > cdOffset) {
      fail(
        `entry ${JSON.stringify(name)}: data [${dataOffset}, ${dataOffset + compressedSize}) runs past the data area`,
        localOffset,
      );
    }
    const lName = src.read(localOffset + 30, lNameLen);
    if (lNameLen !== nameLen || !lName.every((c, k) => c === nameBytes[k])) {
      fail(`entry ${JSON.stringify(name)}: local header names a different file`, localOffset);
    }
    if (lv.getUint16(8, true) !== method)
      fail(`entry ${JSON.stringify(name)}: local header has a different method`, localOffset);
    entries.set(name, {
      name,
      method: method as 0 | 8,
      crc32: crc,
      compressedSize,
      size: usize,
      localHeaderOffset: localOffset,
      dataOffset,
    });
    p = end;
  }

  // No two entries may share bytes.
  const spans = [...entries.values()].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    if (spans[i]!.localHeaderOffset < prev.dataOffset + prev.compressedSize) {
      fail(
        `entries ${JSON.stringify(prev.name)} and ${JSON.stringify(spans[i]!.name)} overlap`,
        spans[i]!.localHeaderOffset,
      );
    }
  }
  return entries;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.length);
}

/** A 64-bit little-endian value that must fit a safe integer (any larger is past every file). */
function u64(v: DataView, at: number, bad: () => never): number {
  const lo = v.getUint32(at, true);
  const hi = v.getUint32(at + 4, true);
  if (hi >= 1 << 21) bad();
  return hi * 2 ** 32 + lo;
}
