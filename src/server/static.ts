// Static files for the web demo: a file under a fixed root, by a URL path that cannot leave it
// ('..', absolute paths, NUL and backslashes are refused before touching the file system), with a
// content type from a short allow-list of extensions; anything else is 404.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

/** The file `rel` (a URL path, already without the mount prefix) resolves to under `root`, or null. */
export function resolveUnder(root: string, rel: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\') || decoded.split('/').some((s) => s === '..'))
    return null;
  if (!(extname(decoded) in TYPES)) return null;
  const base = resolve(root);
  const full = resolve(base, `.${decoded.startsWith('/') ? '' : '/'}${decoded}`);
  return full.startsWith(base + sep) ? full : null;
}

/** Sends a file with its content type; false when there is no such (regular) file. */
export async function sendFile(
  res: ServerResponse,
  path: string,
  headers: Record<string, string> = {},
  head = false,
): Promise<boolean> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) return false;
    size = s.size;
  } catch {
    return false;
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
    'content-length': size,
    ...headers,
  });
  if (head) {
    res.end();
    return true;
  }
  await new Promise<void>((done) => {
    const stream = createReadStream(path);
    stream.on('error', () => {
      res.destroy();
      done();
    });
    stream.on('end', () => done());
    stream.pipe(res);
  });
  return true;
}

export function contentTypeOf(path: string): string | undefined {
  return TYPES[extname(path)];
}
