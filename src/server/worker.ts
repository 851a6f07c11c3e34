// Inference worker (worker_threads) of the server: ONNX Runtime's session.run blocks its thread
// (design.md §1), so the model lives here and the main thread keeps parsing HTTP, decoding images
// and answering /healthz while a request runs. One job at a time; the pool (pool.ts) queues.
//
// Protocol: workerData = WorkerConfig; → 'ready' (model loaded and warmed up) or 'fatal';
// then for each JobMessage → ResultMessage, with the mask's buffer transferred, not copied.

import { parentPort, workerData } from 'node:worker_threads';
import { encodeRle } from '../data/rle.js';
import { loadSegmenter } from '../infer/segmenter.js';
import type { JobMessage, ResultMessage, WorkerConfig, WorkerReply } from './pool.js';

const port = parentPort;
if (!port) throw new Error('src/server/worker.js runs as a worker thread of the server');
const config = workerData as WorkerConfig;
const send = (m: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

try {
  const seg = await loadSegmenter(config.checkpoint, {
    ...(config.threads ? { threads: config.threads } : {}),
    maxPixels: config.maxPixels,
  });
  await seg.warmUp();
  send({ type: 'ready', model: { kind: seg.kind, imageSize: seg.imageSize, maxTokens: seg.maxTokens } });

  port.on('message', (job: JobMessage) => {
    void (async () => {
      try {
        if (config.testDelayMs) await sleep(config.testDelayMs);
        const r = await seg.segment(
          job.image,
          job.text,
          job.threshold !== undefined ? { threshold: job.threshold } : {},
        );
        const reply: ResultMessage = {
          type: 'result',
          id: job.id,
          ok: true,
          width: r.mask.width,
          height: r.mask.height,
          area: r.area,
          score: r.score,
          threshold: r.threshold,
          timings: r.timings,
          // RLE here rather than on the main thread: it walks every pixel.
          ...(job.output === 'rle' ? { rle: encodeRle(r.mask) } : { mask: r.mask.data }),
        };
        send(reply, reply.mask ? [reply.mask.buffer as ArrayBuffer] : []);
      } catch (e) {
        send({ type: 'result', id: job.id, ok: false, error: e instanceof Error ? e.message : String(e) });
      }
    })();
  });
} catch (e) {
  send({ type: 'fatal', error: e instanceof Error ? e.message : String(e) });
  port.close();
}
