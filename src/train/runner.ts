// Runs a training-step graph on ONNX Runtime and owns the optimizer state between steps.
//
// ORT sessions are stateless, so parameters and moments travel in and out every step. Inputs wrap
// JS memory without a copy; outputs are requested into a second bank of buffers (pre-allocated
// outputs) and the banks swap after each step. Measured (bench engine): onnxruntime-node 1.30 still
// copies every output once inside its binding, ≈0.47 ms per MiB of state per step.

import type { DType } from '../graph/graph.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { type TrainStepGraph, stateNames } from './step.js';

interface Bank {
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  buffers: Map<string, Float32Array>;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  /** False when the non-finite guard skipped the update. */
  finite: boolean;
  extra: Record<string, HostTensor>;
}

export interface OptimizerState {
  /** Completed (finite) updates. */
  t: number;
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  buffers: Map<string, Float32Array>;
}

const f32 = (shape: readonly number[], data: Float32Array): HostTensor => ({ dtype: 'float32' as DType, shape, data });

function emptyBank(g: TrainStepGraph): Bank {
  const z = (n: readonly number[]) => new Float32Array(n.reduce((a, b) => a * b, 1));
  return {
    params: new Map(g.params.map((s) => [s.name, z(s.shape)])),
    m: new Map(g.params.map((s) => [s.name, z(s.shape)])),
    v: new Map(g.params.map((s) => [s.name, z(s.shape)])),
    buffers: new Map(g.buffers.map((s) => [s.name, z(s.shape)])),
  };
}

export class StepRunner {
  private cur: Bank;
  private next: Bank;
  /** Completed (finite) updates; the next update uses t + 1 for bias correction. */
  t = 0;

  private constructor(
    readonly graph: TrainStepGraph,
    private readonly session: Session,
  ) {
    this.cur = emptyBank(graph);
    this.next = emptyBank(graph);
  }

  static async create(graph: TrainStepGraph, values: ReadonlyMap<string, Float32Array>, o: SessionOptions = {}): Promise<StepRunner> {
    const r = new StepRunner(graph, await Session.create(graph.model, { memPattern: false, ...o }));
    r.setState({ t: 0, params: new Map(values), m: new Map(), v: new Map(), buffers: new Map(values) });
    return r;
  }

  /** Replaces the state (missing moments are zeros). Copies, so callers keep their arrays. */
  setState(s: OptimizerState): void {
    this.t = s.t;
    const fill = (dst: Map<string, Float32Array>, src: ReadonlyMap<string, Float32Array>, what: string, required: boolean) => {
      for (const [name, arr] of dst) {
        const v = src.get(name);
        if (!v) {
          if (required) throw new Error(`${what} '${name}' is missing`);
          arr.fill(0);
        } else if (v.length !== arr.length) {
          throw new Error(`${what} '${name}' has ${v.length} values, expected ${arr.length}`);
        } else arr.set(v);
      }
    };
    fill(this.cur.params, s.params, 'parameter', true);
    fill(this.cur.m, s.m, 'first moment', false);
    fill(this.cur.v, s.v, 'second moment', false);
    fill(this.cur.buffers, s.buffers, 'buffer', true);
  }

  /** The current state (views of internal buffers: copy before the next step if you keep them). */
  state(): OptimizerState {
    return { t: this.t, params: this.cur.params, m: this.cur.m, v: this.cur.v, buffers: this.cur.buffers };
  }

  async step(data: Readonly<Record<string, HostTensor>>, lr: number): Promise<StepResult> {
    const feeds: Record<string, HostTensor> = { ...data };
    const into: Record<string, HostTensor> = {};
    feeds.lr = f32([], Float32Array.of(lr));
    feeds.step = f32([], Float32Array.of(this.t + 1));
    for (const s of this.graph.params) {
      const n = stateNames(s.name);
      feeds[n.param] = f32(s.shape, this.cur.params.get(s.name)!);
      feeds[n.m] = f32(s.shape, this.cur.m.get(s.name)!);
      feeds[n.v] = f32(s.shape, this.cur.v.get(s.name)!);
      into[n.outParam] = f32(s.shape, this.next.params.get(s.name)!);
      into[n.outM] = f32(s.shape, this.next.m.get(s.name)!);
      into[n.outV] = f32(s.shape, this.next.v.get(s.name)!);
    }
    for (const s of this.graph.buffers) {
      feeds[s.name] = f32(s.shape, this.cur.buffers.get(s.name)!);
      into[`out.${s.name}`] = f32(s.shape, this.next.buffers.get(s.name)!);
    }
    const names = ['loss', 'grad_norm', 'finite', ...Object.keys(into), ...this.graph.extraOutputs];
    const out = await this.session.run(feeds, names, into);
    [this.cur, this.next] = [this.next, this.cur];
    const finite = (out.finite!.data as Uint8Array)[0] === 1;
    if (finite) this.t++;
    const extra: Record<string, HostTensor> = {};
    for (const n of this.graph.extraOutputs) extra[n] = out[n]!;
    return { loss: Number(out.loss!.data[0]), gradNorm: Number(out.grad_norm!.data[0]), finite, extra };
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
