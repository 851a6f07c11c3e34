// `refseg serve`: the HTTP segment server (src/server/server.ts) from the command line. Prints the
// URL once listening and a line once ready; SIGTERM/SIGINT drain it (readiness off, in-flight
// requests finish) and the process exits 0 (reliability.md "Server").

import { parseArgs } from 'node:util';
import { defaultCheckpointPath } from '../infer/paths.js';
import { SERVER_DEFAULTS, startServer } from '../server/server.js';
import type { Command } from './commands.js';
import { UsageError, intFlag, runCommand } from './args.js';

const d = SERVER_DEFAULTS;
const HELP = `refseg serve [--checkpoint model.safetensors] [--host ${d.host}] [--port ${d.port}]
             [--max-body-bytes ${d.maxBodyBytes}] [--max-pixels ${d.maxPixels}] [--max-text-chars ${d.maxTextChars}]
             [--timeout-ms ${d.timeoutMs}] [--queue ${d.queue}] [--workers ${d.workers}] [--threads N]

Serves referring segmentation over HTTP:
  POST /v1/segment  multipart/form-data (image file + text field [+ threshold]) or JSON
                    {"image": "<base64>", "text": "..."}; answers JSON
                    {width, height, rle: {size, counts}, area, score, timings}, or the mask as a
                    PNG with "Accept: image/png"
  GET  /healthz     200 while the process is up
  GET  /readyz      200 once the model is loaded and warmed up, 503 while loading or draining

  --checkpoint      model checkpoint (default: the built-in model, models/default.safetensors)
  --host            interface to bind (default ${d.host}: this machine only)
  --port            TCP port (0 = any free port; the URL is printed)
  --max-body-bytes  larger request bodies get 413
  --max-pixels      larger images get 413
  --max-text-chars  longer expressions get 400
  --timeout-ms      a request without a result by then gets 504
  --queue           requests that may wait for a worker; beyond that 429 with Retry-After
  --workers         inference worker threads, each with its own copy of the model
  --threads         ONNX Runtime threads per worker (default: cores / workers)
SIGTERM or SIGINT: /readyz turns 503, new requests get 503, in-flight ones finish, exit 0.`;

/** Test hook (not a flag, so it cannot be turned on by accident in production): a slow model. */
const TEST_DELAY_ENV = 'REFSEG_TEST_INFERENCE_DELAY_MS';

export const serveCommand: Command = {
  summary: 'serve segmentation over HTTP (POST /v1/segment)',
  run: (argv) =>
    runCommand(HELP, argv, async () => {
      const { values: o } = parseArgs({
        args: argv,
        options: {
          checkpoint: { type: 'string' },
          host: { type: 'string', default: d.host },
          port: { type: 'string' },
          'max-body-bytes': { type: 'string' },
          'max-pixels': { type: 'string' },
          'max-text-chars': { type: 'string' },
          'timeout-ms': { type: 'string' },
          queue: { type: 'string' },
          workers: { type: 'string' },
          threads: { type: 'string' },
        },
        strict: true,
      });
      if (!o.host) throw new UsageError('--host must not be empty');
      const delay = process.env[TEST_DELAY_ENV];
      const opts = {
        checkpoint: o.checkpoint ?? defaultCheckpointPath(),
        host: o.host,
        port: intFlag('port', o.port, { min: 0, max: 65535 }) ?? d.port,
        maxBodyBytes: intFlag('max-body-bytes', o['max-body-bytes'], { min: 1 }) ?? d.maxBodyBytes,
        maxPixels: intFlag('max-pixels', o['max-pixels'], { min: 1 }) ?? d.maxPixels,
        maxTextChars: intFlag('max-text-chars', o['max-text-chars'], { min: 1 }) ?? d.maxTextChars,
        timeoutMs: intFlag('timeout-ms', o['timeout-ms'], { min: 1 }) ?? d.timeoutMs,
        queue: intFlag('queue', o.queue, { min: 0 }) ?? d.queue,
        workers: intFlag('workers', o.workers, { min: 1, max: 256 }) ?? d.workers,
        ...(o.threads ? { threads: intFlag('threads', o.threads, { min: 1, max: 1024 })! } : {}),
        ...(delay ? { testDelayMs: Number(delay) } : {}),
      };

      const server = await startServer(opts);
      console.log(`refseg serve: listening on ${server.url} (POST ${server.url}/v1/segment)`);
      let stopping = false;
      let stopped!: () => void;
      const done = new Promise<void>((r) => (stopped = r));
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        console.log(`refseg serve: ${signal}, draining (in-flight requests finish)`);
        void server.drain().then(() => {
          console.log('refseg serve: stopped');
          stopped();
        });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      try {
        await server.ready;
      } catch (e) {
        if (stopping) {
          await done; // a signal during loading: a clean stop, not a load failure
          return 0;
        }
        await server.close();
        throw new Error(`cannot load the model: ${(e as Error).message}`);
      }
      if (!stopping)
        console.log(`refseg serve: ready (${opts.workers} worker${opts.workers > 1 ? 's' : ''})`);
      // Returns 0 once drained: main.ts sets the exit code, the event loop empties, Node exits.
      await done;
      return 0;
    }),
};
