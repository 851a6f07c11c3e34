// Runs a training-step graph on ONNX Runtime and owns the optimizer state between steps.
//
// ORT sessions are stateless: parameters and buffers go in every step (inputs wrap JS memory
// without a copy), gradients come out, and AdamW updates parameters and moments in place here
// (step.ts says why the update is not in the graph). The state is held once, as PyTorch holds it.

import { type DType, numel } from '../graph/graph.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { adamwStep, clipCoefficient } from './adamw.js';
import { emaBlend, emaDecay } from './ema.js';
import { type TrainStepGraph, gradName } from './step.js';

interface Bank {
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  buffers: Map<string, Float32Array>;
  /** The weight average (ema.ts), when the runner keeps one. */
  ema?: Map<string, Float32Array>;
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
  /** The weight average (`--ema`); absent when the runner keeps none. */
  ema?: Map<string, Float32Array>;
}

const f32 = (shape: readonly number[], data: Float32Array): HostTensor => ({
  dtype: 'float32' as DType,
  shape,
  data,
});

function emptyBank(g: TrainStepGraph, ema: boolean): Bank {
  const z = (n: readonly number[]) => new Float32Array(numel(n));
  const perParam = () => new Map(g.params.map((s) => [s.name, z(s.shape)]));
  return {
    params: perParam(),
    m: perParam(),
    v: perParam(),
    buffers: new Map(g.buffers.map((s) => [s.name, z(s.shape)])),
    ...(ema ? { ema: perParam() } : {}),
  };
}

type Arrays = ReadonlyMap<string, Float32Array>;

/**
 * Copies a state into a runner's arrays, name by name: parameters (and buffers, where the runner
 * has them) are required, missing moments become zeros, a missing weight average starts from the
 * parameters (where the runner keeps one); a length mismatch is an error naming what.
 */
export function restoreState(
  bank: { params: Arrays; m: Arrays; v: Arrays; buffers?: Arrays; ema?: Arrays },
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
  if (bank.ema) fill(bank.ema, s.ema ?? s.params, 'weight average', true);
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
    /** The weight average's decay (`--ema`), or null for none. */
    private readonly ema: number | null,
  ) {
    this.bank = emptyBank(graph, ema !== null);
    this.grads = graph.trainable.map((i) => gradName(graph.params[i]!.name));
    const bufferOuts = graph.buffers.map((s) => `out.${s.name}`);
    this.outputs = ['loss', 'grad_norm', 'finite', ...this.grads, ...bufferOuts, ...graph.extraOutputs];
  }

  /** `ema`: keep a weight average with this decay (ema.ts), starting from `values`. */
  static async create(
    graph: TrainStepGraph,
    values: ReadonlyMap<string, Float32Array>,
    o: SessionOptions = {},
    ema: number | null = null,
  ): Promise<StepRunner> {
    const session = await Session.create(graph.model, { memPattern: false, ...o });
    const r = new StepRunner(graph, session, ema);
    r.setState({ t: 0, params: new Map(values), m: new Map(), v: new Map(), buffers: new Map(values) });
    return r;
  }

  /** Replaces the state (missing moments are zeros). Copies, so callers keep their arrays. */
  setState(s: OptimizerState): void {
    this.t = s.t;
    restoreState(this.bank, s);
  }

  /** The current state (views of internal buffers: copy before the next step if you keep them). */
  state(): OptimizerState {
    return {
      t: this.t,
      params: this.bank.params,
      m: this.bank.m,
      v: this.bank.v,
      buffers: this.bank.buffers,
      ...(this.bank.ema ? { ema: this.bank.ema } : {}),
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
      const d = this.ema === null ? 0 : emaDecay(this.ema, this.t);
      this.graph.trainable.forEach((p, k) => {
        const s = this.graph.params[p]!;
        const u = { lr: lr * this.graph.lrMults[p]!, t: this.t, decay: s.decay, gradScale };
        const g = out[this.grads[k]!]!.data as Float32Array;
        const w = this.bank.params.get(s.name)!;
        adamwStep(c, u, w, this.bank.m.get(s.name)!, this.bank.v.get(s.name)!, g);
        if (this.bank.ema) emaBlend(this.bank.ema.get(s.name)!, w, d);
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
