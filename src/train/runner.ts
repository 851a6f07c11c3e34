// Runs a training-step graph on ONNX Runtime and owns the optimizer state between steps.
//
// ORT sessions are stateless: parameters and buffers go in every step (inputs wrap JS memory
// without a copy), gradients come out, and AdamW updates parameters and moments in place here
// (step.ts says why the update is not in the graph). The state is held once, as PyTorch holds it.

import { type DType, numel } from '../graph/graph.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { adamwStep, clipCoefficient } from './adamw.js';
import { type TrainStepGraph, gradName } from './step.js';

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

const f32 = (shape: readonly number[], data: Float32Array): HostTensor => ({
  dtype: 'float32' as DType,
  shape,
  data,
});

function emptyBank(g: TrainStepGraph): Bank {
  const z = (n: readonly number[]) => new Float32Array(numel(n));
  return {
    params: new Map(g.params.map((s) => [s.name, z(s.shape)])),
    m: new Map(g.params.map((s) => [s.name, z(s.shape)])),
    v: new Map(g.params.map((s) => [s.name, z(s.shape)])),
    buffers: new Map(g.buffers.map((s) => [s.name, z(s.shape)])),
  };
}

type Arrays = ReadonlyMap<string, Float32Array>;

/**
 * Copies a state into a runner's arrays, name by name: parameters (and buffers, where the runner
 * has them) are required, missing moments become zeros; a length mismatch is an error naming what.
 */
export function restoreState(
  bank: { params: Arrays; m: Arrays; v: Arrays; buffers?: Arrays },
  s: OptimizerState,
): void {
  const fill = (dst: Arrays, src: Arrays, what: string, required: boolean) => {
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
  fill(bank.params, s.params, 'parameter', true);
  fill(bank.m, s.m, 'first moment', false);
  fill(bank.v, s.v, 'second moment', false);
  if (bank.buffers) fill(bank.buffers, s.buffers, 'buffer', true);
}

export class StepRunner {
  private readonly bank: Bank;
  /** Gradient output names, in `graph.trainable` order, and every output a step fetches. */
  private readonly grads: string[];
  private readonly outputs: string[];
  /** Completed (finite) updates; the next update uses t + 1 for bias correction. */
  t = 0;

  private constructor(
    readonly graph: TrainStepGraph,
    private readonly session: Session,
  ) {
    this.bank = emptyBank(graph);
    this.grads = graph.trainable.map((i) => gradName(graph.params[i]!.name));
    const bufferOuts = graph.buffers.map((s) => `out.${s.name}`);
    this.outputs = ['loss', 'grad_norm', 'finite', ...this.grads, ...bufferOuts, ...graph.extraOutputs];
  }

  static async create(
    graph: TrainStepGraph,
    values: ReadonlyMap<string, Float32Array>,
    o: SessionOptions = {},
  ): Promise<StepRunner> {
    const r = new StepRunner(graph, await Session.create(graph.model, { memPattern: false, ...o }));
    r.setState({ t: 0, params: new Map(values), m: new Map(), v: new Map(), buffers: new Map(values) });
    return r;
  }

  /** Replaces the state (missing moments are zeros). Copies, so callers keep their arrays. */
  setState(s: OptimizerState): void {
    this.t = s.t;
    restoreState(this.bank, s);
  }

  /** The parameters (views of internal buffers, changed by the next step). */
  params(): ReadonlyMap<string, Float32Array> {
    return this.bank.params;
  }

  /** The current state (views of internal buffers: copy before the next step if you keep them). */
  state(): OptimizerState {
    return {
      t: this.t,
      params: this.bank.params,
      m: this.bank.m,
      v: this.bank.v,
      buffers: this.bank.buffers,
    };
  }

  async step(data: Readonly<Record<string, HostTensor>>, lr: number): Promise<StepResult> {
    const feeds: Record<string, HostTensor> = { ...data };
    const into: Record<string, HostTensor> = {};
    for (const s of this.graph.params) feeds[s.name] = f32(s.shape, this.bank.params.get(s.name)!);
    // Buffers are written back into their own arrays: every buffer output waits for `finite`, so the
    // graph has read the old values before it writes (the binding's own copy of each is dropped).
    for (const s of this.graph.buffers) {
      feeds[s.name] = f32(s.shape, this.bank.buffers.get(s.name)!);
      into[`out.${s.name}`] = f32(s.shape, this.bank.buffers.get(s.name)!);
    }
    const out = await this.session.run(feeds, this.outputs, into);
    const finite = (out.finite!.data as Uint8Array)[0] === 1;
    const gradNorm = Number(out.grad_norm!.data[0]);
    if (finite) {
      this.t++;
      const c = this.graph.adamw;
      const gradScale = clipCoefficient(c, gradNorm);
      this.graph.trainable.forEach((p, k) => {
        const s = this.graph.params[p]!;
        const u = { lr: lr * this.graph.lrMults[p]!, t: this.t, decay: s.decay, gradScale };
        const g = out[this.grads[k]!]!.data as Float32Array;
        adamwStep(c, u, this.bank.params.get(s.name)!, this.bank.m.get(s.name)!, this.bank.v.get(s.name)!, g);
      });
    }
    const extra: Record<string, HostTensor> = {};
    for (const n of this.graph.extraOutputs) extra[n] = out[n]!;
    return { loss: Number(out.loss!.data[0]), gradNorm, finite, extra };
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
