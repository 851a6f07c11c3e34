// Atomic file replacement for checkpoints and every other file whose loss would hurt.
//
// reliability.md ("Training state"): write a temp file in the SAME folder (rename is only atomic
// within one file system), fsync it (so the rename never points at unwritten blocks after a
// crash), rename it over the target, then fsync the folder (so the rename itself is durable).
// Killing the process at any moment leaves either the old file or the new one, never a mix; a
// failed write removes its temp file and leaves the old file untouched. A missing folder is made
// first (`--out runs/model.safetensors` in a fresh checkout).

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

export type AtomicData = Uint8Array | Iterable<Uint8Array>;

function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  // pid + random: concurrent writers (threads, processes) never share a temp file.
  return path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

function chunksOf(data: AtomicData): Iterable<Uint8Array> {
  return data instanceof Uint8Array ? [data] : data;
}

// Some platforms (Windows) cannot open or fsync a directory; the rename is still atomic there.
const DIR_FSYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EACCES', 'EINVAL', 'ENOTSUP']);

function isUnsupported(e: unknown): boolean {
  return DIR_FSYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? '');
}

/** Replaces `target` with `data` atomically and durably. */
export async function writeFileAtomic(target: string, data: AtomicData, mode = 0o644): Promise<void> {
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', mode);
    for (const chunk of chunksOf(data)) {
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, target);
  } catch (e) {
    await fh?.close().catch(() => {});
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
  try {
    const dh = await fsp.open(path.dirname(target), 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (e) {
    if (!isUnsupported(e)) throw e;
  }
}

/** Synchronous twin of `writeFileAtomic` (for exit handlers and simple scripts). */
export function writeFileAtomicSync(target: string, data: AtomicData, mode = 0o644): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', mode);
    for (const chunk of chunksOf(data)) {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = fs.openSync(path.dirname(target), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch (e) {
    if (!isUnsupported(e)) throw e;
  }
}
