// Finite-difference gradient checks: the gradients that autodiff emits (src/autodiff), run in ONNX
// Runtime, against central differences of the same forward graph run in ONNX Runtime.
//
// The checked loss is L = Σ_k sum(y_k ⊙ R_k) with fixed random R_k, so every output element counts
// with its own weight (a plain sum would hide errors that cancel, e.g. a gradient routed to the wrong
// element of a permutation). L is summed in JS in float64 from the forward outputs: float32 checks
// then only see the op's own rounding, and outputs the perturbation does not reach are bit-identical
// between the two runs and cancel exactly.

import assert from 'node:assert/strict';
import {
  type DType,
  FLOAT_DTYPES,
  Graph,
  type Node,
  type Shape,
  Tensor,
  type TensorData,
} from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { toModelProto } from '../../src/graph/onnx.js';
import { gradients } from '../../src/autodiff/grad.js';
import { type HostTensor, Session } from '../../src/runtime/session.js';

// ---------- deterministic randomness ----------

/** mulberry32: a tiny 32-bit PRNG, enough to make every check reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log is finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}

// ---------- input values ----------

/**
 * How an input is filled. Values are chosen away from the op's non-differentiable points:
 * 'awayFromZero' for |x|, relu and divisors; 'distinct' for max-like ops (no ties).
 */
export type Init =
  | 'normal' // N(0, 1)
  | 'uniform' // U(-1, 1)
  | 'positive' // U(0.5, 2): sqrt, log, pow base, variances
  | 'awayFromZero' // ±U(0.5, 1.5)
  | 'distinct' // a shuffled ladder with steps ≥ 0.25: no two elements tie
  | readonly number[]
  | ((rng: Rng, n: number) => number[]);

/**
 * Multiples of 0.3 in [−0.3·k, 0.3·k], plus offset: two grids with offsets 0 and 0.15 never come
 * within 0.15 of each other (Max/Min without ties). A single element sits at the centre, so that
 * it wins against some elements of a broadcast partner and loses against others.
 */
export const grid =
  (offset: number, k = 5) =>
  (rng: Rng, n: number): number[] =>
    Array.from({ length: n }, () => (n === 1 ? 0 : rng.int(-k, k + 1) * 0.3) + offset);

function fill(rng: Rng, init: Init, n: number): number[] {
  if (typeof init === 'function') return init(rng, n);
  if (typeof init !== 'string') {
    assert.equal(init.length, n, `explicit input values: ${init.length} given, ${n} needed`);
    return [...init];
  }
  const v = (f: () => number) => Array.from({ length: n }, f);
  switch (init) {
    case 'normal':
      return v(() => rng.normal());
    case 'uniform':
      return v(() => rng.uniform(-1, 1));
    case 'positive':
      return v(() => rng.uniform(0.5, 2));
    case 'awayFromZero':
      return v(() => (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(0.5, 1.5));
    case 'distinct':
      return rng.shuffle(v(() => 0).map((_, i) => i * 0.3 - n * 0.15 + rng.uniform(0, 0.05)));
  }
}

export function hostData(dtype: DType, values: readonly number[]): TensorData {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((x) => BigInt(x)));
    case 'int32':
      return Int32Array.from(values);
    case 'bool':
    case 'uint8':
      return Uint8Array.from(values);
    case 'float16':
      throw new Error('gradcheck: float16 inputs are not supported');
  }
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// ---------- the check ----------

export interface InputSpec {
  name: string;
  /** Runtime shape (what is fed). */
  shape: readonly number[];
  /** Traced shape when it differs from `shape`: symbolic dims such as ['B', 3]. */
  declared?: Shape;
  /** Default: the check's dtype. */
  dtype?: DType;
  /** Default 'normal'; integer and bool inputs need explicit values. */
  init?: Init;
  /** Differentiate with respect to this input. Default: true for floating-point inputs. */
  wrt?: boolean;
}

export interface CheckOptions {
  inputs: readonly InputSpec[];
  /** Builds the outputs from the traced inputs (keyed by name); several outputs are all weighted into L. */
  build: (t: Readonly<Record<string, Tensor>>, g: Graph) => Tensor | readonly Tensor[];
  /** Default dtype of inputs; also selects default step and tolerances. */
  dtype: 'float32' | 'float64';
  seed?: number;
  /** Central-difference step (default by `dtype`, see TOLERANCE). */
  eps?: number;
  /** Pass when |analytic − numeric| ≤ atol + rtol·|numeric| (defaults by dtype, see TOLERANCE). */
  atol?: number;
  rtol?: number;
  /** Check at most this many elements of each input (sampled deterministically); default 200. */
  maxPerInput?: number;
  /** wrt inputs the loss does not depend on: their gradient must be exactly zero. */
  expectZero?: readonly string[];
}

/**
 * Defaults, by the precision of the outputs. float64: a step of 1e-6 leaves truncation error ~1e-12
 * and rounding ~1e-9 (measured), so 1e-5 is loose yet catches any wrong rule. float32 (ops with no
 * double kernel on ORT CPU): step 3e-3 balances truncation (~eps²·f'''/6) against float32 rounding
 * of the outputs the step reaches (~6e-8/eps); measured errors stay below 1e-4.
 */
export const TOLERANCE = {
  float64: { eps: 1e-6, atol: 1e-6, rtol: 1e-5 },
  float32: { eps: 3e-3, atol: 3e-4, rtol: 3e-3 },
} as const;

/**
 * float32 checks of an op that is linear in each input taken alone (Conv, ConvTranspose, Resize):
 * central differences are then exact for any step, and a large one shrinks rounding noise ~100×.
 */
export const LINEAR_F32 = { eps: 0.5, atol: 1e-4, rtol: 1e-4 } as const;

export interface GradcheckResult {
  graph: Graph;
  loss: Tensor;
  /** Gradient tensors as `gradients()` returned them, by input name. */
  grads: Record<string, Tensor>;
  /** The nodes `gradients()` appended to the graph. */
  backwardNodes: Node[];
  /** Analytic gradients from ONNX Runtime, by input name. */
  analytic: Record<string, Float64Array>;
  /** Largest |analytic − numeric| over the checked elements. */
  maxAbsErr: number;
  /** Number of elements compared. */
  checked: number;
}

function floats(t: HostTensor): Float64Array {
  if (t.data instanceof Float64Array) return t.data;
  if (t.data instanceof Float32Array) return Float64Array.from(t.data);
  throw new Error(`gradcheck: output of dtype ${t.dtype} cannot be weighted into the loss`);
}

function pickFeeds(s: Session, feeds: Record<string, HostTensor>): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const name of s.inputNames) {
    const f = feeds[name];
    if (!f) throw new Error(`gradcheck: no feed for graph input '${name}'`);
    out[name] = f;
  }
  return out;
}

function indexOf(flat: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let i = shape.length - 1; i >= 0; i--) {
    idx.unshift(flat % shape[i]!);
    flat = Math.floor(flat / shape[i]!);
  }
  return `[${idx.join(',')}]`;
}

/**
 * Builds the forward graph and its gradients, runs both in ONNX Runtime, and asserts that each
 * analytic gradient matches central finite differences. Returns what it built for further checks.
 */
export async function gradcheck(o: CheckOptions): Promise<GradcheckResult> {
  const rng = new Rng(o.seed ?? 20240611);
  const g = new Graph('gradcheck');
  const tensors: Record<string, Tensor> = {};
  const feeds: Record<string, HostTensor> = {};
  for (const s of o.inputs) {
    const dtype = s.dtype ?? o.dtype;
    tensors[s.name] = g.input(s.name, dtype, s.declared ?? s.shape);
    const init = s.init ?? (FLOAT_DTYPES.has(dtype) ? 'normal' : undefined);
    if (init === undefined) throw new Error(`gradcheck: input '${s.name}' (${dtype}) needs explicit values`);
    feeds[s.name] = { dtype, shape: s.shape, data: hostData(dtype, fill(rng, init, numel(s.shape))) };
  }
  const built = o.build(tensors, g);
  const ys: readonly Tensor[] = built instanceof Tensor ? [built] : built;

  const sessions: Session[] = [];
  try {
    // Forward model: the outputs only; its runs give shapes, R, and the finite differences.
    const fwd = await Session.create(toModelProto(g, { outputs: ys }), { threads: 1 });
    sessions.push(fwd);
    const forwardL = async (f: Record<string, HostTensor>, r: readonly Float64Array[]): Promise<number> => {
      const out = await fwd.run(pickFeeds(fwd, f));
      let l = 0;
      ys.forEach((y, k) => {
        const v = floats(out[fwd.outputNames[k]!]!);
        const rk = r[k]!;
        for (let i = 0; i < v.length; i++) l += v[i]! * rk[i]!;
      });
      return l;
    };
    const first = await fwd.run(pickFeeds(fwd, feeds));
    const rValues = ys.map((y, k) => {
      const out = first[fwd.outputNames[k]!]!;
      const r = Float64Array.from({ length: out.data.length }, () => rng.normal());
      // R is fed as the output's dtype; keep the JS copy equal to what ORT sees.
      const data = hostData(y.dtype, Array.from(r));
      feeds[`__r${k}`] = { dtype: y.dtype, shape: out.shape, data };
      return Float64Array.from(data as Float32Array | Float64Array);
    });

    // Loss and gradients.
    const parts = ys.map((y, k) => {
      const p = op.mul(y, g.input(`__r${k}`, y.dtype, y.shape));
      return p.rank ? op.reduceSum(p, op.allAxes(p), false) : p;
    });
    let loss = parts[0]!;
    for (const p of parts.slice(1)) loss = op.add(loss, p.dtype === loss.dtype ? p : op.cast(p, loss.dtype));
    const wrt = o.inputs.filter((s) => s.wrt ?? FLOAT_DTYPES.has(s.dtype ?? o.dtype));
    const before = g.nodes.length;
    const gradTensors = gradients(
      loss,
      wrt.map((s) => tensors[s.name]!),
    );
    const backwardNodes = g.nodes.slice(before);
    const named = gradTensors.map((t, i) => g.named(t, `__grad_${wrt[i]!.name}`));
    const full = await Session.create(toModelProto(g, { outputs: [loss, ...named] }), { threads: 1 });
    sessions.push(full);
    const res = await full.run(pickFeeds(full, feeds));

    const lossJs = await forwardL(feeds, rValues);
    const lossOrt = floats(res[loss.name]!)[0]!;
    const tol = TOLERANCE[o.dtype];
    assert.ok(
      Math.abs(lossJs - lossOrt) <= 1e-4 * (1 + Math.abs(lossJs)),
      `gradcheck harness: loss from ORT ${lossOrt} ≠ loss summed in JS ${lossJs}`,
    );

    const analytic: Record<string, Float64Array> = {};
    const grads: Record<string, Tensor> = {};
    const failures: string[] = [];
    let maxAbsErr = 0;
    let checked = 0;
    for (const [i, s] of wrt.entries()) {
      grads[s.name] = gradTensors[i]!;
      const gr = res[named[i]!.name]!;
      assert.deepEqual(
        gr.shape,
        [...s.shape],
        `gradient of '${s.name}' has shape [${gr.shape}], input has [${s.shape}]`,
      );
      const a = floats(gr);
      analytic[s.name] = a;
      const eps = o.eps ?? tol.eps;
      const atol = o.atol ?? tol.atol;
      const rtol = o.rtol ?? tol.rtol;
      const x = feeds[s.name]!.data as Float32Array | Float64Array;
      const n = x.length;
      const max = o.maxPerInput ?? 200;
      const elems =
        n <= max
          ? [...Array(n).keys()]
          : rng
              .shuffle([...Array(n).keys()])
              .slice(0, max)
              .sort((p, q) => p - q);
      let maxNumeric = 0;
      for (const e of elems) {
        const x0 = x[e]!;
        x[e] = x0 + eps;
        const xp = x[e]!; // the float32 value actually fed
        const lp = await forwardL(feeds, rValues);
        x[e] = x0 - eps;
        const xm = x[e]!;
        const lm = await forwardL(feeds, rValues);
        x[e] = x0;
        const numeric = (lp - lm) / (xp - xm);
        const err = Math.abs(a[e]! - numeric);
        maxAbsErr = Math.max(maxAbsErr, err);
        maxNumeric = Math.max(maxNumeric, Math.abs(numeric));
        checked++;
        if (!(err <= atol + rtol * Math.abs(numeric))) {
          failures.push(`d/d${s.name}${indexOf(e, s.shape)}: analytic ${a[e]} vs numeric ${numeric}`);
        }
      }
      if (o.expectZero?.includes(s.name)) {
        assert.ok(
          a.every((v) => v === 0),
          `gradient of '${s.name}' should be exactly zero, got [${Array.from(a).slice(0, 8)}…]`,
        );
      } else {
        // Guards against a vacuous pass (an output that does not depend on the input at all).
        assert.ok(
          maxNumeric > 10 * atol,
          `gradcheck: loss barely depends on '${s.name}' (max |dL/dx| = ${maxNumeric})`,
        );
      }
    }
    if (failures.length) {
      assert.fail(
        `${failures.length} of ${checked} gradient elements differ:\n  ${failures.slice(0, 12).join('\n  ')}`,
      );
    }
    return { graph: g, loss, grads, backwardNodes, analytic, maxAbsErr, checked };
  } finally {
    for (const s of sessions) await s.dispose();
  }
}

/** `[2,3]`, `[B,3]`, `[]`: shapes in test names. */
export const fmt = (s: Shape): string => `[${s.join(',')}]`;

/** Runs `outputs` of a traced graph once in ONNX Runtime (for checks that are not finite differences). */
export async function evaluate(
  g: Graph,
  outputs: readonly Tensor[],
  feeds: Readonly<Record<string, HostTensor>>,
): Promise<HostTensor[]> {
  const s = await Session.create(toModelProto(g, { outputs }), { threads: 1 });
  try {
    const r = await s.run(pickFeeds(s, { ...feeds }));
    return s.outputNames.map((n) => r[n]!);
  } finally {
    await s.dispose();
  }
}

/** A float64 host tensor. */
export const f64 = (shape: readonly number[], values: readonly number[]): HostTensor => ({
  dtype: 'float64',
  shape,
  data: Float64Array.from(values),
});
