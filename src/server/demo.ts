// The web demo's server: static files only, the model runs in the BROWSER (onnxruntime-web,
// WebGPU when the browser has it, WASM otherwise). It serves
//   /                    web/index.html, and /web/* the page's own files
//   /lib/*               the project's browser-safe compiled modules (tokenizer, letterbox,
//                        post-processing, drawing): the page runs the same code as Node, no copy
//   /ort/*               onnxruntime-web's dist files (from node_modules)
//   /model/manifest.json config, vocabulary, input names, part URLs; /model/*.onnx the exported
//                        model (split into image and text parts when the model can be split)
//   /example/*           the bundled example scene and its expressions
// Cross-origin isolation headers (COOP/COEP) let onnxruntime-web use threaded WASM.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ModelCheckpoint, decodeModelCheckpoint, loadModelCheckpoint } from '../models/checkpoint.js';
import { exportModel } from '../models/export.js';
import { assertCheckpointExists, examplePaths, packageRoot } from '../infer/paths.js';
import { resolveUnder, sendFile } from './static.js';

export interface DemoOptions {
  /** Checkpoint path, bytes or loaded checkpoint (it must carry its vocabulary). */
  checkpoint: string | Uint8Array | ModelCheckpoint;
  host?: string;
  port?: number;
  /** Where onnxruntime-web's dist files are (default: resolved from node_modules). */
  ortDir?: string | null;
}

export interface RunningDemo {
  readonly url: string;
  readonly port: number;
  /** Whether onnxruntime-web was found (the page says how to install it when not). */
  readonly ort: boolean;
  close(): Promise<void>;
}

/** The browser-safe compiled modules the page may import (relative to dist/src/). */
const BROWSER_MODULES = new Set([
  'data/text.js',
  'data/sentencepiece.js',
  'data/tokenizer.js',
  'data/image.js',
  'data/bmp.js',
  'graph/interp.js',
  'infer/draw.js',
  'infer/postprocess.js',
]);

/** The ORT bundle the page imports: WebGPU and WASM execution providers in one file. */
export const ORT_BUNDLE = 'ort.webgpu.min.mjs';

/** onnxruntime-web's dist folder, or null when the package is not installed. */
export function findOrtWeb(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve('onnxruntime-web')); // "require" condition → dist/ort.min.js
    return existsSync(join(dir, ORT_BUNDLE)) ? dir : null;
  } catch {
    return null;
  }
}

const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

function loadCheckpoint(c: DemoOptions['checkpoint']): ModelCheckpoint {
  if (c instanceof Uint8Array) return decodeModelCheckpoint(c);
  if (typeof c === 'string') {
    assertCheckpointExists(c);
    return loadModelCheckpoint(c);
  }
  return c;
}

export async function startDemo(o: DemoOptions): Promise<RunningDemo> {
  const ck = loadCheckpoint(o.checkpoint);
  if (ck.vocab === undefined)
    throw new Error('the checkpoint carries no vocabulary; the demo needs it to read sentences');
  const { def, config, params } = ck;
  const split = def.split !== undefined;
  const models = exportModel(def, config, params, { parts: split ? 'split' : 'full', vocab: ck.vocab });
  const files = new Map<string, Uint8Array>(
    split
      ? [
          ['image.onnx', models.image!],
          ['text.onnx', models.text!],
        ]
      : [['model.onnx', models.full]],
  );
  const manifest = JSON.stringify({
    kind: def.kind,
    format: def.format,
    config,
    vocab: ck.vocab,
    imageSize: def.imageSize(config),
    maxTokens: def.maxTokens(config),
    tokenInput: def.tokenInput,
    threshold: def.threshold(config),
    normalization: def.normalization(config),
    parts: split
      ? {
          image: '/model/image.onnx',
          text: '/model/text.onnx',
          features: Object.keys(def.split!.features(config, 1)),
        }
      : { full: '/model/model.onnx' },
    example: { image: '/example/scene.png', expressions: '/example/scene.json' },
    ort: `/ort/${ORT_BUNDLE}`,
  });

  const root = packageRoot();
  const webDir = join(root, 'web');
  const libDir = dirname(dirname(fileURLToPath(import.meta.url))); // dist/src
  const ortDir = o.ortDir === undefined ? findOrtWeb() : o.ortDir;
  const example = examplePaths();

  const notFound = (res: ServerResponse) => {
    const body = JSON.stringify({ error: 'not found' });
    res.writeHead(404, {
      ...ISOLATION,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...ISOLATION, allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const head = req.method === 'HEAD';
    const path = (req.url ?? '/').split('?')[0]!;
    const file = async (p: string | null) =>
      (p !== null && (await sendFile(res, p, ISOLATION, head))) || notFound(res);
    if (path === '/' || path === '/index.html') return void (await file(join(webDir, 'index.html')));
    if (path === '/healthz') {
      res.writeHead(200, { ...ISOLATION, 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (path === '/model/manifest.json') {
      res.writeHead(200, {
        ...ISOLATION,
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(manifest),
      });
      res.end(head ? undefined : manifest);
      return;
    }
    if (path.startsWith('/model/')) {
      const bytes = files.get(path.slice('/model/'.length));
      if (!bytes) return notFound(res);
      res.writeHead(200, {
        ...ISOLATION,
        'content-type': 'application/octet-stream',
        'content-length': bytes.length,
      });
      res.end(head ? undefined : bytes);
      return;
    }
    if (path === '/example/scene.png') return void (await file(example.image));
    if (path === '/example/scene.json') return void (await file(example.expressions));
    if (path.startsWith('/web/')) return void (await file(resolveUnder(webDir, path.slice('/web'.length))));
    if (path.startsWith('/lib/')) {
      const rel = path.slice('/lib/'.length);
      return void (await file(BROWSER_MODULES.has(rel) ? join(libDir, rel) : null));
    }
    if (path.startsWith('/ort/') && ortDir)
      return void (await file(resolveUnder(ortDir, path.slice('/ort'.length))));
    notFound(res);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, ISOLATION);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}/`,
    port: addr.port,
    ort: ortDir !== null,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
