// One data-parallel training worker (parallel.ts says how the rounds fit together).

import { parentPort, workerData } from 'node:worker_threads';
import { textEncoderFromCheckpoint } from '../data/text.js';
import { numel } from '../graph/graph.js';
import { validateConfig } from '../models/registry.js';
import { type HostTensor, Session } from '../runtime/session.js';
import { adamwStep } from './adamw.js';
import { emaBlend } from './ema.js';
import { type BatchSource, makeBatch, sampleTable } from './batch.js';
import { type FromWorker, type ToWorker, type WorkerSetup, paramViews } from './parallel.js';
import { gradName } from './step.js';

const w = workerData as WorkerSetup;
const port = parentPort!;
const reply = (m: FromWorker) => port.postMessage(m);

const views = (b: SharedArrayBuffer) => paramViews(b, w.params, w.offsets);
const params = views(w.shared.params);
const m = views(w.shared.m);
const v = views(w.shared.v);
const ema = w.shared.ema ? views(w.shared.ema) : null;
const grads = w.shared.grads.map(views);
const mine = grads[w.index]!;
// private copies of the parameters: the session's feeds (ORT refuses shared buffers)
const feeds = w.params.map((p) => new Float32Array(numel(p.shape)));
// gradients of the trainable parameters only (`w.trainable`, in that order)
const trainable = w.trainable.map((i) => w.params[i]!);
const gradOutputs = trainable.map((p) => gradName(p.name));
const gradArrays = trainable.map((p) => new Float32Array(numel(p.shape)));
const gradInto: Record<string, HostTensor> = Object.fromEntries(
  trainable.map((p, k) => [gradOutputs[k]!, { dtype: 'float32', shape: p.shape, data: gradArrays[k]! }]),
);

function accumulate(dst: Float32Array, src: Float32Array): void {
  for (let k = 0; k < dst.length; k++) dst[k]! += src[k]!;
}

/** x ← x·f in place; returns Σx² (float64). */
function scale(x: Float32Array, f: number): number {
  let s = 0;
  for (let k = 0; k < x.length; k++) {
    const y = Math.fround(x[k]! * f);
    x[k] = y;
    s += y * y;
  }
  return s;
}

async function start(): Promise<{ session: Session; src: BatchSource }> {
  const { def, config } = validateConfig(w.config);
  const encoder = textEncoderFromCheckpoint(w.vocab, def.maxTokens(config), 'training worker');
  const session = await Session.create(w.model, { memPattern: false, threads: w.threads });
  const src: BatchSource = {
    def,
    config,
    samples: sampleTable(w.samples),
    groups: w.groups,
    encoder,
    seed: w.seed,
    augment: w.augment,
    batch: w.batch,
    perImage: w.perImage,
  };
  return { session, src };
}

async function main() {
  const { session, src } = await start();
  reply({ type: 'ready' });
  let queue = Promise.resolve();
  port.on('message', (msg: ToWorker) => {
    queue = queue
      .then(() => handle(msg))
      .catch((e: Error) => reply({ type: 'error', message: `training worker ${w.index}: ${e.message}` }));
  });

  async function handle(msg: ToWorker): Promise<void> {
    if (msg.type === 'run') {
      const data = await makeBatch(src, msg, msg.step, msg.rows);
      const input: Record<string, HostTensor> = { ...data };
      w.params.forEach((p, i) => {
        feeds[i]!.set(params[i]!);
        input[p.name] = { dtype: 'float32', shape: p.shape, data: feeds[i]! };
      });
      // gradients land in reused private arrays (no fresh buffers for the GC), then in shared memory
      const out = await session.run(input, ['loss', 'finite', ...gradOutputs], gradInto);
      w.trainable.forEach((i, k) => mine[i]!.set(gradArrays[k]!));
      reply({
        type: 'ran',
        loss: Number(out.loss!.data[0]),
        finite: (out.finite!.data as Uint8Array)[0] === 1,
      });
    } else if (msg.type === 'reduce') {
      // the mean of the workers' gradients into buffer 0, for the parameters this worker owns
      let sumsq = 0;
      for (const i of w.owned) {
        const dst = grads[0]![i]!;
        for (let j = 1; j < grads.length; j++) accumulate(dst, grads[j]![i]!);
        sumsq += scale(dst, 1 / w.workers);
      }
      reply({ type: 'reduced', sumsq });
    } else {
      for (const i of w.owned) {
        const p = w.params[i]!;
        const u = { lr: msg.lr * w.lrMults[i]!, t: msg.t, decay: p.decay, gradScale: msg.gradScale };
        adamwStep(w.adamw, u, params[i]!, m[i]!, v[i]!, grads[0]![i]!);
        if (ema && msg.ema !== null) emaBlend(ema[i]!, params[i]!, msg.ema);
      }
      reply({ type: 'updated' });
    }
  }
}

main().catch((e: Error) => reply({ type: 'error', message: `training worker ${w.index}: ${e.message}` }));
