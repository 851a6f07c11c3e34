// The HTTP segment server (node:http, no framework): reliability.md "Server" is the contract.
//
//   POST /v1/segment   multipart/form-data (image file + text [+ threshold]) or JSON
//                      {image: base64, text, threshold?} → JSON {width, height, rle, score, ...}
//                      or, with Accept: image/png, the mask as a PNG at the image's size
//   GET  /healthz      200 while the process serves HTTP (liveness)
//   GET  /readyz       200 once the model is loaded and warmed up; 503 while loading or draining
//
// Limits: body bytes (413), image pixels (413), text length / empty / invalid UTF-8 (400), image
// format by magic bytes (415) or undecodable (400), per-request deadline (504), bounded queue
// (429 + Retry-After). The main thread parses, validates and decodes (sharp works on libuv's
// pool); inference runs in worker threads (pool.ts). Binds 127.0.0.1 unless told otherwise.
// No endpoint takes a path, a URL or a model. Error bodies are {error} with no stack or path.
// drain(): readiness off, new requests 503, in-flight ones finish, then the listener closes.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_MAX_PIXELS, ImageDecodeError, decodeImage, sniffFormat } from '../data/image.js';
import { maskPng } from '../infer/png.js';
import { assertCheckpointExists } from '../infer/paths.js';
import { HttpError } from './errors.js';
import { JobFailedError, JobTimeoutError, QueueFullError, WorkerPool } from './pool.js';
import { discardBody, parseSegmentRequest, readBody, wantsPng } from './request.js';

export interface ServerOptions {
  /** Checkpoint path or bytes. */
  checkpoint: string | Uint8Array;
  /** Default 127.0.0.1: reachable from this machine only until someone decides otherwise. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Request body limit in bytes (default 32 MiB: a 40 MP JPEG as base64 JSON fits). */
  maxBodyBytes?: number;
  /** Image pixel limit (default 40 MP, as decodeImage). */
  maxPixels?: number;
  /** Expression length limit in characters (default 500). */
  maxTextChars?: number;
  /** Per-request deadline from arrival to result, ms (default 30 000). */
  timeoutMs?: number;
  /** Requests allowed to wait for a worker (default 16); more get 429. */
  queue?: number;
  /** Inference worker threads (default 1). */
  workers?: number;
  /** ONNX Runtime threads per worker (default: cores / workers). */
  threads?: number;
  /** Test hook: every inference first sleeps this long. */
  testDelayMs?: number;
  /** Where operational lines go (default stderr). */
  log?: (line: string) => void;
}

export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 32 * 2 ** 20,
  maxPixels: DEFAULT_MAX_PIXELS,
  maxTextChars: 500,
  timeoutMs: 30_000,
  queue: 16,
  workers: 1,
} as const;

export interface RunningServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  /** Resolves when the model is loaded and warmed up (rejects when it cannot be). */
  readonly ready: Promise<void>;
  isReady(): boolean;
  /** Readiness off, refuse new work, let in-flight requests finish, close. Idempotent. */
  drain(): Promise<void>;
  /** Stops at once (tests, fatal errors). */
  close(): Promise<void>;
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** How much of a refused body is read and dropped before answering (see handle()). */
const DISCARD_GRACE_MS = 2000;
const DISCARD_MAX_BYTES = 16 * 2 ** 20;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const o = { ...SERVER_DEFAULTS, ...options };
  // A missing file fails here, before anything listens; a bad one fails in the workers (ready rejects).
  if (typeof o.checkpoint === 'string') assertCheckpointExists(o.checkpoint);
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  let pool: WorkerPool | undefined;
  let ready = false;
  let draining = false;
  let active = 0; // segment requests between arrival and the end of their response
  let idleWaiters: (() => void)[] = [];

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      sendJson(res, 500, { error: 'internal error' });
    });
  });
  // Slow-loris bound: the whole request must arrive within the deadline (plus upload slack).
  server.requestTimeout = o.timeoutMs + 30_000;
  server.headersTimeout = Math.min(60_000, server.requestTimeout);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/readyz') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return sendJson(res, 405, { error: 'use GET' }, { allow: 'GET, HEAD' });
      if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
      const status = draining ? 'draining' : ready ? 'ready' : 'loading';
      return sendJson(res, ready && !draining ? 200 : 503, {
        status,
        ...(pool?.model && ready ? { model: pool.model } : {}),
      });
    }
    if (path !== '/v1/segment') return sendJson(res, 404, { error: 'not found' });
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
    active++;
    try {
      await segment(req, res);
    } catch (e) {
      if (e instanceof HttpError) {
        // Refused before the whole body arrived (413): drop the rest first, so a client that writes
        // its whole body before reading gets this answer rather than EPIPE, then close the
        // connection (any part of the body not dropped would be misread as the next request).
        const unread = !req.complete;
        if (unread) await discardBody(req, DISCARD_MAX_BYTES, DISCARD_GRACE_MS);
        sendJson(
          res,
          e.status,
          { error: e.message },
          { ...e.headers, ...(unread ? { connection: 'close' } : {}) },
        );
      } else throw e;
    } finally {
      const done = () => {
        active--;
        if (active === 0) for (const w of idleWaiters.splice(0)) w();
      };
      if (res.writableFinished) done();
      else res.once('close', done);
    }
  }

  async function segment(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = performance.now();
    // The body is read even when refusing (503), for the reason given in handle().
    const body = await readBody(req, o.maxBodyBytes);
    if (draining)
      throw new HttpError(503, 'server is shutting down', { 'retry-after': '5', connection: 'close' });
    if (!ready || !pool) throw new HttpError(503, 'model is loading', { 'retry-after': '2' });

    const r = parseSegmentRequest(body, req.headers['content-type'], o.maxTextChars);
    if (!sniffFormat(r.image))
      throw new HttpError(415, "field 'image': unsupported format (send JPEG, PNG, WebP, GIF or BMP)");
    let t = performance.now();
    let image;
    try {
      image = await decodeImage(r.image, { source: "field 'image'", maxPixels: o.maxPixels });
    } catch (e) {
      if (e instanceof ImageDecodeError) {
        // decodeImage's pixel-limit refusal reads "... pixels, over the limit of N": a size problem (413).
        throw new HttpError(/over the limit/.test(e.message) ? 413 : 400, e.message);
      }
      throw e;
    }
    const decodeMs = performance.now() - t;

    const png = wantsPng(req.headers.accept);
    const remaining = o.timeoutMs - (performance.now() - arrived);
    t = performance.now();
    let result;
    try {
      if (remaining <= 0) throw new JobTimeoutError('deadline passed before inference');
      result = await pool.run(
        {
          image: { width: image.width, height: image.height, data: image.data },
          text: r.text,
          ...(r.threshold !== undefined ? { threshold: r.threshold } : {}),
          output: png ? 'mask' : 'rle',
        },
        remaining,
      );
    } catch (e) {
      if (e instanceof QueueFullError)
        throw new HttpError(429, e.message, { 'retry-after': String(e.retryAfterSeconds) });
      if (e instanceof JobFailedError) {
        log(`inference failed: ${e.message}`); // for the operator; the client gets no internals
        throw new HttpError(500, 'inference failed');
      }
      if (e instanceof JobTimeoutError)
        throw new HttpError(504, `no result within the ${o.timeoutMs} ms request timeout`);
      throw e;
    }
    const inferMs = performance.now() - t;
    const timings = {
      ...Object.fromEntries(Object.entries(result.timings).map(([k, v]) => [k, round2(v)])),
      decode: round2(decodeMs),
      queueAndInference: round2(inferMs),
      request: round2(performance.now() - arrived),
    };

    if (png) {
      const bytes = await maskPng({ width: result.width, height: result.height, data: result.mask! });
      res.writeHead(200, {
        'content-type': 'image/png',
        'content-length': bytes.length,
        'cache-control': 'no-store',
        'x-refseg-score': result.score.toFixed(6),
        'x-refseg-area': String(result.area),
      });
      res.end(bytes);
      return;
    }
    sendJson(res, 200, {
      width: result.width,
      height: result.height,
      rle: result.rle,
      area: result.area,
      score: result.score,
      threshold: result.threshold,
      timings,
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;

  const cores = (await import('node:os')).availableParallelism();
  const threads = o.threads ?? Math.max(1, Math.floor(cores / Math.max(1, o.workers)));
  const readyPromise = WorkerPool.start({
    checkpoint: o.checkpoint,
    workers: o.workers,
    queue: o.queue,
    threads,
    maxPixels: o.maxPixels,
    ...(o.testDelayMs ? { testDelayMs: o.testDelayMs } : {}),
    log,
  }).then(async (p) => {
    if (draining) {
      await p.close();
      throw new Error('server closed while the model was loading');
    }
    pool = p;
    ready = true;
  });
  readyPromise.catch(() => {}); // the caller awaits `ready`; an unobserved rejection must not crash

  let drained: Promise<void> | undefined;
  const closeListener = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });

  return {
    url,
    port: addr.port,
    ready: readyPromise,
    isReady: () => ready && !draining,
    drain() {
      drained ??= (async () => {
        draining = true;
        if (active > 0) await new Promise<void>((r) => idleWaiters.push(r));
        await closeListener();
        server.closeAllConnections();
        await readyPromise.catch(() => {});
        await pool?.close();
      })();
      return drained;
    },
    async close() {
      draining = true;
      idleWaiters = [];
      server.closeAllConnections();
      await closeListener();
      await readyPromise.catch(() => {});
      await pool?.close();
    },
  };
}
