// Data-parallel training on one machine: N worker threads, each with its own ONNX Runtime session
// running 1/N of the batch, one shared copy of the parameters and AdamW moments.
//
// Why (measured on 2 cores, restr-tiny, batch 8): one session with 2 intra-op threads runs the step
// graph in 85 ms, two sessions with 1 thread each run its two halves side by side in 68 ms (ORT
// uses a second thread poorly on graphs this small), and the host work of a step (making the
// batch, AdamW) runs on both cores instead of one. Whole training loop, samples/s (steps 100–500,
// one sequence of runs on an idle machine):
//   --per-image 1: 60.6 (one session, 2 threads) → 63.3 (2 workers);  --per-image 2: 66.4 → 76.6;
//   --per-image 4: 78.6 → 90.8.
// Each worker still runs its half-batch graph with the same number of kernels as a whole batch,
// and waits for the slower one at each round, so the gain is small where the graph dominates.
//
// One step, three rounds (worker.ts does the work, this file only orders it):
//   run     each worker makes its rows of the batch (batch.ts: the same rows the whole batch
//           holds), copies the parameters into its session's feeds, runs forward + backward, and
//           writes its gradient into its own shared buffer;
//   reduce  each worker averages the N gradients of the parameters it owns (a fixed half of the
//           tensors, by size) into buffer 0 and returns their sum of squares;
//   update  with the global norm known here, each worker applies AdamW (clipping included) to
//           the parameters it owns, in place in shared memory, and blends them into the weight
//           average when the run keeps one (ema.ts).
// The loss of a part is the mean over its rows, so the mean of the N parts' losses and gradients
// is the whole batch's. Summation order is fixed, so runs are deterministic and resume exactly;
// against a single session the values differ only by float rounding (test/train/parallel.test.ts).
//
// Shared memory holds the state because ONNX Runtime's Node binding refuses SharedArrayBuffer-
// backed inputs ("Invalid argument"): workers copy parameters into private arrays before a run.

import { Worker } from 'node:worker_threads';
import type { PackedSamples } from './batch.js';
import { numel } from '../graph/graph.js';
import type { ParamSpec } from '../nn/params.js';
import { type OptimizerState, type StepResult, restoreState } from './runner.js';
import type { TrainStepGraph } from './step.js';
import { clipCoefficient } from './adamw.js';
import { emaDecay } from './ema.js';

/** Everything a worker needs to make its rows of a batch and run its step graph. */
export interface WorkerSetup {
  index: number;
  workers: number;
  /** The step graph for batch/N expressions. */
  model: Uint8Array;
  params: ParamSpec[];
  lrMults: number[];
  /** Indices of the parameters with a gradient (TrainStepGraph.trainable). */
  trainable: number[];
  adamw: TrainStepGraph['adamw'];
  /** Offsets of each parameter in the flat shared arrays. */
  offsets: number[];
  /** Trainable parameters (by index) this worker reduces and updates. */
  owned: number[];
  shared: {
    params: SharedArrayBuffer;
    m: SharedArrayBuffer;
    v: SharedArrayBuffer;
    grads: SharedArrayBuffer[];
    /** The weight average (`--ema`), when the run keeps one. */
    ema?: SharedArrayBuffer;
  };
  config: unknown;
  vocab: unknown;
  samples: PackedSamples;
  groups: readonly number[][] | null;
  seed: number;
  augment: boolean;
  batch: number;
  perImage: number;
  threads: number;
}

export type ToWorker =
  | { type: 'run'; step: number; epoch: number; start: number; indices: number[]; rows: number }
  | { type: 'reduce' }
  | { type: 'update'; lr: number; t: number; gradScale: number; ema: number | null };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'ran'; loss: number; finite: boolean }
  | { type: 'reduced'; sumsq: number }
  | { type: 'updated' }
  | { type: 'error'; message: string };

/** Per-parameter views (in `params` order) of one flat shared array laid out by `offsets`. */
export function paramViews(
  buffer: SharedArrayBuffer,
  params: readonly ParamSpec[],
  offsets: readonly number[],
) {
  const flat = new Float32Array(buffer);
  return params.map((p, i) => flat.subarray(offsets[i]!, offsets[i]! + numel(p.shape)));
}

/** Splits parameters into N sets of about equal size (largest first, each to the lightest set). */
export function ownership(sizes: readonly number[], workers: number): number[][] {
  const sets = Array.from({ length: workers }, () => ({ load: 0, items: [] as number[] }));
  const order = sizes.map((n, i) => i).sort((a, b) => sizes[b]! - sizes[a]! || a - b);
  for (const i of order) {
    const lightest = sets.reduce((a, b) => (b.load < a.load ? b : a));
    lightest.items.push(i);
    lightest.load += sizes[i]!;
  }
  return sets.map((s) => s.items.sort((a, b) => a - b));
}

interface Pending {
  resolve: (m: FromWorker) => void;
  reject: (e: Error) => void;
}

/**
 * A worker thread that answers each message with one reply, in order. Replies that arrive before
 * anyone waits for them (a worker's 'ready' while the first is awaited) wait in `inbox`.
 */
class Peer {
  private readonly pending: Pending[] = [];
  private readonly inbox: FromWorker[] = [];
  private dead: Error | null = null;

  constructor(readonly worker: Worker) {
    worker.on('message', (m: FromWorker) => {
      const p = this.pending.shift();
      if (!p) this.inbox.push(m);
      else if (m.type === 'error') p.reject(new Error(m.message));
      else p.resolve(m);
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.splice(0)) p.reject(e);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`training worker exited (code ${code})`)));
  }

  /** The next reply (the first one is 'ready'). */
  next(): Promise<FromWorker> {
    const m = this.inbox.shift();
    if (m) return m.type === 'error' ? Promise.reject(new Error(m.message)) : Promise.resolve(m);
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  ask(m: ToWorker): Promise<FromWorker> {
    const reply = this.next();
    this.worker.postMessage(m);
    return reply;
  }
}

export class ParallelRunner {
  /** Completed (finite) updates. */
  t = 0;
  /** Views of the shared parameters, moments and weight average, by name. */
  private readonly bank: Record<'params' | 'm' | 'v', Map<string, Float32Array>> & {
    ema?: Map<string, Float32Array>;
  };

  private constructor(
    specs: ParamSpec[],
    offsets: number[],
    private readonly peers: Peer[],
    shared: WorkerSetup['shared'],
    private readonly unitsPerWorker: number,
    private readonly perImage: number,
    private readonly adamw: TrainStepGraph['adamw'],
    /** The weight average's decay (`--ema`), or null for none. */
    private readonly ema: number | null,
  ) {
    const byName = (b: SharedArrayBuffer) => {
      const views = paramViews(b, specs, offsets);
      return new Map(specs.map((s, i) => [s.name, views[i]!]));
    };
    this.bank = {
      params: byName(shared.params),
      m: byName(shared.m),
      v: byName(shared.v),
      ...(shared.ema ? { ema: byName(shared.ema) } : {}),
    };
  }

  /**
   * Starts `workers` threads. `graph` is the step graph for batch/workers expressions; `setup`
   * holds the data side (the same for every worker); `ema` as StepRunner.create's.
   */
  static async create(
    graph: TrainStepGraph,
    values: ReadonlyMap<string, Float32Array>,
    setup: Omit<
      WorkerSetup,
      | 'index'
      | 'workers'
      | 'model'
      | 'params'
      | 'lrMults'
      | 'trainable'
      | 'adamw'
      | 'offsets'
      | 'owned'
      | 'shared'
    >,
    workers: number,
    ema: number | null = null,
  ): Promise<ParallelRunner> {
    if (graph.buffers.length)
      throw new Error(
        `--workers ${workers}: the model has buffers (${graph.buffers[0]!.name}); train it with one worker`,
      );
    if (graph.extraOutputs.length) throw new Error('--workers: extra step outputs are not supported');
    const sizes = graph.params.map((p) => numel(p.shape));
    const offsets: number[] = [];
    let total = 0;
    for (const n of sizes) {
      offsets.push(total);
      total += n;
    }
    const sab = () => new SharedArrayBuffer(4 * total);
    const shared = {
      params: sab(),
      m: sab(),
      v: sab(),
      grads: Array.from({ length: workers }, sab),
      ...(ema !== null ? { ema: sab() } : {}),
    };
    const { trainable } = graph;
    const sets = ownership(
      trainable.map((i) => sizes[i]!),
      workers,
    );
    const owned = sets.map((set) => set.map((k) => trainable[k]!));
    const url = new URL('./worker.js', import.meta.url);
    const peers: Peer[] = [];
    try {
      for (let i = 0; i < workers; i++) {
        const data: WorkerSetup = {
          ...setup,
          index: i,
          workers,
          model: graph.model,
          params: graph.params,
          lrMults: graph.lrMults,
          trainable,
          adamw: graph.adamw,
          offsets,
          owned: owned[i]!,
          shared,
        };
        peers.push(new Peer(new Worker(url, { workerData: data })));
      }
      for (const p of peers) await p.next(); // 'ready'
    } catch (e) {
      await Promise.all(peers.map((p) => p.worker.terminate()));
      throw e;
    }
    const unitsPerWorker = setup.batch / setup.perImage / workers;
    const r = new ParallelRunner(
      graph.params,
      offsets,
      peers,
      shared,
      unitsPerWorker,
      setup.perImage,
      graph.adamw,
      ema,
    );
    r.setState({ t: 0, params: new Map(values), m: new Map(), v: new Map(), buffers: new Map() });
    return r;
  }

  /** Replaces the state (missing moments are zeros), as StepRunner.setState. Copies. */
  setState(s: OptimizerState): void {
    this.t = s.t;
    restoreState(this.bank, s);
  }

  /** The current state, copied out of shared memory (ONNX Runtime does not read shared buffers). */
  state(): OptimizerState {
    const copy = (m: Map<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, v.slice()]));
    const { params, m, v, ema } = this.bank;
    return {
      t: this.t,
      params: copy(params),
      m: copy(m),
      v: copy(v),
      buffers: new Map(),
      ...(ema ? { ema: copy(ema) } : {}),
    };
  }

  /** One step on `batch` (the sampler's units): each worker takes an equal consecutive share. */
  async step(
    batch: { epoch: number; start: number; indices: number[] },
    step: number,
    lr: number,
  ): Promise<StepResult> {
    const u = this.unitsPerWorker;
    if (batch.indices.length !== u * this.peers.length)
      throw new Error(
        `parallel step: a batch of ${batch.indices.length} units, expected ${u * this.peers.length}`,
      );
    const ran = (await Promise.all(
      this.peers.map((p, j) =>
        p.ask({
          type: 'run',
          step,
          epoch: batch.epoch,
          start: batch.start + j * u,
          indices: batch.indices.slice(j * u, (j + 1) * u),
          rows: j * u * this.perImage,
        }),
      ),
    )) as Extract<FromWorker, { type: 'ran' }>[];
    const loss = ran.reduce((a, r) => a + r.loss, 0) / ran.length;
    const reduced = (await Promise.all(this.peers.map((p) => p.ask({ type: 'reduce' })))) as Extract<
      FromWorker,
      { type: 'reduced' }
    >[];
    const gradNorm = Math.sqrt(reduced.reduce((a, r) => a + r.sumsq, 0));
    const finite = ran.every((r) => r.finite) && Number.isFinite(gradNorm) && Number.isFinite(loss);
    if (finite) {
      this.t++;
      const gradScale = clipCoefficient(this.adamw, gradNorm);
      const ema = this.ema === null ? null : emaDecay(this.ema, this.t);
      await Promise.all(this.peers.map((p) => p.ask({ type: 'update', lr, t: this.t, gradScale, ema })));
    }
    return { loss, gradNorm, finite, extra: {} };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.peers.map((p) => p.worker.terminate()));
  }
}
