// The inference pool of the server: N worker threads (worker.ts), each holding its own ONNX Runtime
// session, and a BOUNDED queue in front of them (reliability.md "Server"):
//   - a job runs at once on an idle worker, else waits in the queue;
//   - when `queue` jobs already wait, it is refused at once (QueueFullError → 429 + Retry-After):
//     under overload, fast refusals beat an ever-growing backlog that times out anyway;
//   - every job has a deadline (JobTimeoutError → 504). A queued job past it leaves the queue; a
//     running one is answered at once while its worker finishes the run (ORT cannot interrupt a
//     run), and the late result is dropped;
//   - a worker that dies fails its job and is replaced.

import { Worker } from 'node:worker_threads';
import type { RgbImage } from '../data/image.js';
import type { CompressedRle } from '../data/rle.js';
import type { SegmentTimings } from '../infer/segmenter.js';

export interface WorkerConfig {
  /** Checkpoint path or bytes (bytes are copied into each worker). */
  checkpoint: string | Uint8Array;
  threads?: number;
  maxPixels: number;
  /** Test hook: each job first sleeps this long (a slow model without a big one). */
  testDelayMs?: number;
}

export interface ModelInfo {
  kind: string;
  imageSize: number;
  maxTokens: number;
}

export interface Job {
  image: RgbImage;
  text: string;
  threshold?: number;
  /** 'rle': COCO RLE computed in the worker; 'mask': the raw 0/1 mask. */
  output: 'rle' | 'mask';
}

export interface JobMessage extends Job {
  id: number;
}

export interface JobResult {
  width: number;
  height: number;
  area: number;
  score: number;
  threshold: number;
  timings: SegmentTimings;
  rle?: CompressedRle;
  mask?: Uint8Array;
}

export type ResultMessage =
  | ({ type: 'result'; id: number; ok: true } & JobResult)
  | { type: 'result'; id: number; ok: false; error: string };

export type WorkerReply =
  { type: 'ready'; model: ModelInfo } | { type: 'fatal'; error: string } | ResultMessage;

export class QueueFullError extends Error {
  override name = 'QueueFullError';
  constructor(readonly retryAfterSeconds: number) {
    super('server is busy: the request queue is full');
  }
}

export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError';
}

/** A job that failed inside the worker (its message is for logs, not for clients). */
export class JobFailedError extends Error {
  override name = 'JobFailedError';
}

export interface PoolOptions extends WorkerConfig {
  workers: number;
  /** Jobs allowed to wait for a worker; more are refused. */
  queue: number;
  log?: (line: string) => void;
}

interface Task {
  id: number;
  job: Job;
  resolve(r: JobResult): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
  settled: boolean;
  started: number;
}

interface Slot {
  worker: Worker;
  task: Task | null;
  ready: boolean;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

export class WorkerPool {
  private readonly slots = new Set<Slot>();
  private readonly waiting: Task[] = [];
  private nextId = 1;
  private closing = false;
  /** Smoothed seconds per job, for Retry-After. */
  private serviceSeconds = 1;
  model: ModelInfo | undefined;

  private constructor(private readonly o: PoolOptions) {}

  /** Starts the workers; resolves once every one has loaded the model and warmed up. */
  static async start(o: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(o);
    try {
      await Promise.all(Array.from({ length: Math.max(1, o.workers) }, () => pool.spawn()));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private spawn(): Promise<void> {
    const { checkpoint, threads, maxPixels, testDelayMs } = this.o;
    const config: WorkerConfig = {
      checkpoint,
      maxPixels,
      ...(threads ? { threads } : {}),
      ...(testDelayMs ? { testDelayMs } : {}),
    };
    const worker = new Worker(WORKER_URL, { workerData: config });
    const slot: Slot = { worker, task: null, ready: false };
    this.slots.add(slot);
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (m: WorkerReply) => {
        if (m.type === 'ready') {
          slot.ready = true;
          this.model = m.model;
          resolve();
          this.dispatch();
        } else if (m.type === 'fatal') {
          reject(new Error(m.error));
        } else this.finish(slot, m);
      });
      worker.on('error', (e) => {
        this.o.log?.(`worker error: ${e.stack ?? e.message}`);
        reject(e);
      });
      worker.on('exit', (code) => {
        this.slots.delete(slot);
        if (!slot.ready) reject(new Error(`inference worker exited (code ${code}) before it was ready`));
        if (slot.task)
          this.settle(slot.task, new JobFailedError(`inference worker exited (code ${code}) during a job`));
        slot.task = null;
        if (!this.closing && slot.ready) {
          // A ready worker that died (out of memory, a native crash) is replaced; its job already failed.
          this.o.log?.(`inference worker exited (code ${code}); starting a new one`);
          this.spawn().catch((e: Error) => {
            this.o.log?.(`could not restart the inference worker: ${e.message}`);
            if (this.slots.size === 0)
              for (const t of this.waiting.splice(0))
                this.settle(t, new JobFailedError('no inference worker left'));
          });
        }
      });
    });
  }

  private settle(t: Task, result: JobResult | Error): void {
    if (t.settled) return;
    t.settled = true;
    clearTimeout(t.timer);
    if (result instanceof Error) t.reject(result);
    else t.resolve(result);
  }

  private finish(slot: Slot, m: ResultMessage): void {
    const t = slot.task;
    slot.task = null;
    if (t && t.id === m.id) {
      const s = (performance.now() - t.started) / 1000;
      this.serviceSeconds = 0.8 * this.serviceSeconds + 0.2 * s;
      if (m.ok) {
        const { type: _type, id: _id, ok: _ok, ...result } = m;
        this.settle(t, result);
      } else this.settle(t, new JobFailedError(m.error));
    }
    this.dispatch();
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.task) continue;
      const t = this.waiting.shift();
      if (!t) return;
      slot.task = t;
      t.started = performance.now();
      const msg: JobMessage = { id: t.id, ...t.job };
      // Structured clone copies the pixels; transferring would detach a buffer the caller may share
      // (Node's Buffer pool) or that cannot be transferred (external memory from sharp).
      slot.worker.postMessage(msg);
    }
  }

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Jobs running on a worker. */
  get running(): number {
    let n = 0;
    for (const s of this.slots) if (s.task) n++;
    return n;
  }

  /** Seconds a refused client should wait: the queue ahead of it divided among the workers. */
  retryAfterSeconds(): number {
    const workers = Math.max(1, this.slots.size);
    return Math.max(1, Math.ceil((this.serviceSeconds * (this.waiting.length + this.running)) / workers));
  }

  /** Runs a job within `timeoutMs`; refuses at once when the queue is full. */
  run(job: Job, timeoutMs: number): Promise<JobResult> {
    if (this.closing) return Promise.reject(new JobFailedError('the pool is closed'));
    const idle = [...this.slots].some((s) => s.ready && !s.task);
    if (!idle && this.waiting.length >= this.o.queue)
      return Promise.reject(new QueueFullError(this.retryAfterSeconds()));
    return new Promise<JobResult>((resolve, reject) => {
      const t: Task = { id: this.nextId++, job, resolve, reject, settled: false, started: performance.now() };
      t.timer = setTimeout(
        () => {
          const i = this.waiting.indexOf(t);
          if (i >= 0) this.waiting.splice(i, 1);
          this.settle(t, new JobTimeoutError(`no result within ${timeoutMs} ms`));
        },
        Math.max(0, timeoutMs),
      );
      this.waiting.push(t);
      this.dispatch();
    });
  }

  /** Stops every worker; waiting and running jobs fail. */
  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.waiting.splice(0)) this.settle(t, new JobFailedError('the pool is closed'));
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
    this.slots.clear();
  }
}
