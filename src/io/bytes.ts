// Random-access byte sources: a whole file in memory, or an open file read on demand.
//
// Zip-based formats (.pth, .npz) only need the central directory and the entries asked for, so a
// 1.5 GB BEiT-3 checkpoint need not be read whole: `withFileSource` reads ranges with pread.

import * as fs from 'node:fs';

export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset`; the caller has checked the range lies within `size`. */
  read(offset: number, length: number): Uint8Array;
}

/**
 * A plain Uint8Array view of `bytes`. Node's Buffer is a Uint8Array whose `slice` does NOT copy
 * (and whose small instances share one pooled ArrayBuffer), so every reader normalizes its input
 * first: after this, `slice` copies and `subarray` views, as everywhere else.
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : bytes;
}

export function memorySource(input: Uint8Array): ByteSource {
  const bytes = plainBytes(input);
  return {
    size: bytes.length,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > bytes.length) {
        throw new RangeError(`read [${offset}, ${offset + length}) outside [0, ${bytes.length})`);
      }
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** Opens `path`, hands a source over it to `fn`, and closes the file whatever happens. */
export function withFileSource<T>(path: string, fn: (src: ByteSource) => T): T {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const src: ByteSource = {
      size,
      read(offset, length) {
        if (offset < 0 || length < 0 || offset + length > size) {
          throw new RangeError(`read [${offset}, ${offset + length}) outside [0, ${size})`);
        }
        const buf = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
          const n = fs.readSync(fd, buf, done, length - done, offset + done);
          if (n === 0) throw new RangeError(`file shrank while reading at ${offset + done}`);
          done += n;
        }
        return new Uint8Array(buf.buffer, buf.byteOffset, length);
      },
    };
    return fn(src);
  } finally {
    fs.closeSync(fd);
  }
}

export function isByteSource(x: Uint8Array | ByteSource): x is ByteSource {
  return !(x instanceof Uint8Array);
}
