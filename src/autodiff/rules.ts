// Gradient rules, one per op type. The table is total: `RULES` is typed `{ [K in OpType]: GradRule }`,
// so adding an op to OP_TYPES without a rule (or an explicit 'nondiff') is a compile error.
//
// A rule receives the node, the gradients of its outputs (null where no gradient flows) and which
// inputs need a gradient; it returns one gradient per input (null when not needed). A rule may
// return a gradient in the broadcast (output) shape: the driver reduces it to the input's shape.
// Rules never accumulate and never un-broadcast: the driver does both, once.

import { type Node, ShapeError, Tensor, isStatic } from '../graph/graph.js';
import { interpMatrix, transposeMatrix } from '../graph/interp.js';
import * as op from '../graph/ops.js';
import type { OpType, ResizeCoord } from '../graph/ops.js';

export interface GradContext {
  readonly node: Node;
  readonly x: readonly (Tensor | null)[]; // node inputs
  readonly y: readonly Tensor[]; // node outputs
  readonly dy: readonly (Tensor | null)[]; // gradient of each output
  readonly needs: readonly boolean[]; // gradient wanted for input i
}

export type GradFn = (c: GradContext) => (Tensor | null)[];
/** 'nondiff': outputs are piecewise constant or do not depend on input values (no gradient flows). */
export type GradRule = GradFn | 'nondiff';

const attr = <T>(n: Node, name: string, fallback: T): T => (n.attrs[name] as T | undefined) ?? fallback;
const X = (c: GradContext, i: number): Tensor => c.x[i]!;
const DY = (c: GradContext): Tensor => c.dy[0]!;
/** Only compute what is needed: `want(c, i, () => grad)`. */
const want = (c: GradContext, i: number, f: () => Tensor): Tensor | null => (c.needs[i] ? f() : null);

/** Swaps the last two axes. */
function mT(t: Tensor): Tensor {
  const perm = t.shape.map((_, i) => i);
  perm[t.rank - 2] = t.rank - 1;
  perm[t.rank - 1] = t.rank - 2;
  return op.transpose(t, perm);
}

/**
 * dB of Y = A·B. When B is a matrix shared by every batch entry of A (a linear layer), the batched
 * Aᵀ·dY followed by the driver's sum over the batch is one matrix product over the flattened
 * rows: reshape(A, [-1, K])ᵀ · reshape(dY, [-1, N]). Same values, no [batch, K, N] intermediate;
 * measured on the restr-tiny training step, the batch sums were about a tenth of the step.
 */
function matmulGradB(a: Tensor, dy: Tensor, b: Tensor): Tensor {
  const k = a.shape[a.rank - 1];
  const n = dy.shape[dy.rank - 1];
  // (a symbolic batch cannot be flattened by Reshape here: those graphs keep the batched form)
  if (b.rank !== 2 || a.rank < 3 || !isStatic(a.shape) || !isStatic(dy.shape)) return op.matmul(mT(a), dy);
  return op.matmul(mT(op.reshape(a, [-1, k as number])), op.reshape(dy, [-1, n as number]));
}

/** [x > 0] as 0/1 in x's dtype. */
const positive = (x: Tensor): Tensor => op.cast(op.greater(x, 0), x.dtype);

/** dy of a reduction over `axes`, brought back to x's shape. */
function unreduce(c: GradContext, dy: Tensor): Tensor {
  const x = X(c, 0);
  const keep = attr<number>(c.node, 'keepdims', 1);
  const axes = Array.from(constInts(c.x[1]!));
  const kept = keep ? dy : op.unsqueeze(dy, axes);
  return op.broadcastTo(kept, x);
}

/** The values of an int64 constant input (axes, shapes, pads). */
export function constInts(t: Tensor): number[] {
  const c = t.graph.consts.get(t);
  if (!c || !(c.data instanceof BigInt64Array)) throw new ShapeError(`gradient needs ${t.name} to be an int64 constant`);
  return Array.from(c.data, Number);
}

function reducedCount(c: GradContext): number {
  const x = X(c, 0);
  let n = 1;
  for (const a of constInts(c.x[1]!)) {
    const d = x.shape[a];
    if (typeof d !== 'number') throw new ShapeError(`ReduceMean gradient: axis ${a} of ${x} is symbolic`);
    n *= d;
  }
  return n;
}

/** d max(a,b), d min(a,b): the gradient flows to the selected operand (ties go to a). */
function selected(c: GradContext): (Tensor | null)[] {
  const aWins = op.equal(X(c, 0), c.y[0]!);
  const zero = op.scalarLike(DY(c), 0);
  return [want(c, 0, () => op.where(aWins, DY(c), zero)), want(c, 1, () => op.where(aWins, zero, DY(c)))];
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

export const RULES: { readonly [K in OpType]: GradRule } = {
  Identity: (c) => [DY(c)],
  Cast: (c) => [want(c, 0, () => op.cast(DY(c), X(c, 0).dtype))],
  Add: (c) => [c.needs[0] ? DY(c) : null, c.needs[1] ? DY(c) : null],
  Sub: (c) => [c.needs[0] ? DY(c) : null, want(c, 1, () => op.neg(DY(c)))],
  // d(ab) = b da + a db
  Mul: (c) => [want(c, 0, () => op.mul(DY(c), X(c, 1))), want(c, 1, () => op.mul(DY(c), X(c, 0)))],
  // d(a/b) = da / b - (a/b) db / b
  Div: (c) => [
    want(c, 0, () => op.div(DY(c), X(c, 1))),
    want(c, 1, () => op.neg(op.div(op.mul(DY(c), c.y[0]!), X(c, 1)))),
  ],
  // d(a^b) = b a^(b-1) da + a^b log(a) db
  Pow: (c) => [
    want(c, 0, () => op.mul(DY(c), op.mul(X(c, 1), op.pow(X(c, 0), op.sub(X(c, 1), 1))))),
    want(c, 1, () => op.mul(DY(c), op.mul(c.y[0]!, op.log(X(c, 0))))),
  ],
  Max: selected,
  Min: selected,
  Neg: (c) => [op.neg(DY(c))],
  // d|x| = sign(x) dx
  Abs: (c) => [op.mul(DY(c), op.sign(X(c, 0)))],
  // d sqrt(x) = dx / (2 sqrt(x))
  Sqrt: (c) => [op.div(DY(c), op.mul(c.y[0]!, 2))],
  // d(1/x) = -dx / x²
  Reciprocal: (c) => [op.neg(op.mul(DY(c), op.mul(c.y[0]!, c.y[0]!)))],
  // d exp(x) = exp(x) dx
  Exp: (c) => [op.mul(DY(c), c.y[0]!)],
  // d log(x) = dx / x
  Log: (c) => [op.div(DY(c), X(c, 0))],
  // d erf(x) = 2/√π exp(-x²) dx
  Erf: (c) => [op.mul(DY(c), op.mul(op.exp(op.neg(op.mul(X(c, 0), X(c, 0)))), 2 / Math.sqrt(Math.PI)))],
  // d tanh(x) = (1 - tanh²) dx
  Tanh: (c) => [op.mul(DY(c), op.sub(op.scalarLike(DY(c), 1), op.mul(c.y[0]!, c.y[0]!)))],
  // d σ(x) = σ(1 - σ) dx
  Sigmoid: (c) => [op.mul(DY(c), op.mul(c.y[0]!, op.sub(op.scalarLike(DY(c), 1), c.y[0]!)))],
  // d relu(x) = [x > 0] dx. Written as a product with the cast mask, not a Where: on the decoder's
  // 128×128 maps of restr-tiny, ORT's Where took about three times as long as Cast + Mul.
  Relu: (c) => [op.mul(DY(c), positive(X(c, 0)))],
  // d leaky(x) = (x > 0 ? 1 : α) dx = (α + (1 - α)·[x > 0]) dx
  LeakyRelu: (c) => {
    const alpha = attr(c.node, 'alpha', 0.01);
    return [op.mul(DY(c), op.add(op.mul(positive(X(c, 0)), 1 - alpha), alpha))];
  },
  // d gelu(x) = (Φ(x) + x φ(x)) dx, exact (erf) form
  Gelu: (c) => {
    if (attr<string>(c.node, 'approximate', 'none') !== 'none') throw new ShapeError('Gelu gradient: only approximate="none" is supported');
    const x = X(c, 0);
    const cdf = op.mul(op.add(op.erf(op.mul(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = op.mul(op.exp(op.mul(op.mul(x, x), -0.5)), INV_SQRT_2PI);
    return [op.mul(DY(c), op.add(cdf, op.mul(x, pdf)))];
  },
  // d softmax: dx = y ⊙ (dy − Σ(dy ⊙ y))
  Softmax: (c) => {
    const y = c.y[0]!;
    const axis = attr<number>(c.node, 'axis', -1);
    return [op.mul(y, op.sub(DY(c), op.reduceSum(op.mul(DY(c), y), [axis], true)))];
  },
  // d(AB) = dY Bᵀ, Aᵀ dY (batch dims reduced by the driver)
  MatMul: (c) => [want(c, 0, () => op.matmul(DY(c), mT(X(c, 1)))), want(c, 1, () => matmulGradB(X(c, 0), DY(c), X(c, 1)))],
  // Y = α A'B' + β C with A' = transA ? Aᵀ : A, B' likewise
  Gemm: (c) => {
    const [a, b, dy] = [X(c, 0), X(c, 1), DY(c)];
    const tA = attr<number>(c.node, 'transA', 0) as 0 | 1;
    const tB = attr<number>(c.node, 'transB', 0) as 0 | 1;
    const alpha = attr<number>(c.node, 'alpha', 1);
    const beta = attr<number>(c.node, 'beta', 1);
    const flip = (v: 0 | 1) => (v ? 0 : 1) as 0 | 1;
    return [
      want(c, 0, () => (tA ? op.gemm(b, dy, null, { transA: tB, transB: 1, alpha }) : op.gemm(dy, b, null, { transB: flip(tB), alpha }))),
      want(c, 1, () => (tB ? op.gemm(dy, a, null, { transA: 1, transB: tA, alpha }) : op.gemm(a, dy, null, { transA: flip(tA), alpha }))),
      want(c, 2, () => (beta === 1 ? dy : op.mul(dy, beta))),
    ];
  },
  ReduceSum: (c) => [unreduce(c, DY(c)), null],
  ReduceMean: (c) => [unreduce(c, op.div(DY(c), reducedCount(c))), null],
  // the max's gradient is shared by the tied maxima
  ReduceMax: (c) => {
    const x = X(c, 0);
    const keep = attr<number>(c.node, 'keepdims', 1);
    const axes = constInts(c.x[1]!);
    const yk = keep ? c.y[0]! : op.unsqueeze(c.y[0]!, axes);
    const mask = op.cast(op.equal(x, yk), x.dtype);
    const count = op.reduceSum(mask, axes, true);
    return [op.mul(mask, op.div(unreduce(c, DY(c)), count)), null];
  },
  Reshape: (c) => [op.reshapeLike(DY(c), X(c, 0)), null],
  Unsqueeze: (c) => [op.reshapeLike(DY(c), X(c, 0)), null],
  Squeeze: (c) => [op.reshapeLike(DY(c), X(c, 0)), null],
  Transpose: (c) => {
    const perm = attr<number[]>(c.node, 'perm', []);
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [op.transpose(DY(c), inv)];
  },
  // d concat = the matching slices of dy
  Concat: (c) => {
    const axis = attr<number>(c.node, 'axis', 0);
    const sizes = c.x.map((t) => t!.shape[axis]!);
    if (sizes.some((s) => typeof s !== 'number')) throw new ShapeError('Concat gradient: concat axis must be static');
    const parts = op.split(DY(c), sizes as number[], axis);
    return parts.map((p, i) => (c.needs[i] ? p : null));
  },
  // d split = concat of the output gradients (zeros where none flows)
  Split: (c) => {
    const axis = attr<number>(c.node, 'axis', 0);
    return [op.concat(c.dy.map((d, i) => d ?? op.zerosLike(c.y[i]!)), axis), null];
  },
  // d slice = dy padded back to x's shape
  Slice: (c) => {
    const x = X(c, 0);
    const starts = constInts(c.x[1]!);
    const axes = constInts(c.x[3]!);
    const steps = c.x[4] ? constInts(c.x[4]) : axes.map(() => 1);
    if (steps.some((s) => s !== 1)) throw new ShapeError('Slice gradient: only step 1 is supported');
    const pads = new Array<number>(2 * x.rank).fill(0);
    axes.forEach((a, i) => {
      const d = x.shape[a] as number;
      const s = Math.min(Math.max(starts[i]! < 0 ? starts[i]! + d : starts[i]!, 0), d);
      pads[a] = s;
      pads[a + x.rank] = d - s - (c.y[0]!.shape[a] as number);
    });
    return [op.pad(DY(c), pads), null, null, null, ...(c.x[4] ? [null] : [])];
  },
  Pad: (c) => {
    const x = X(c, 0);
    const pads = constInts(c.x[1]!);
    const axes = x.shape.map((_, i) => i);
    const starts = axes.map((a) => pads[a]!);
    const ends = axes.map((a) => pads[a]! + (x.shape[a] as number));
    return [op.slice(DY(c), axes, starts, ends), null];
  },
  // d gather along `axis` = scatter-add of dy into zeros (embedding gradient)
  Gather: (c) => {
    const [x, idx] = [X(c, 0), X(c, 1)];
    const axis = attr<number>(c.node, 'axis', 0);
    const perm = [axis, ...x.shape.map((_, i) => i).filter((i) => i !== axis)];
    const xT = axis === 0 ? x : op.transpose(x, perm); // [X_axis, rest...]
    // dy: x[:axis] + idx + x[axis+1:]  →  idx + x[:axis] + x[axis+1:]
    const ir = idx.rank;
    const dyPerm = [
      ...Array.from({ length: ir }, (_, i) => axis + i),
      ...Array.from({ length: axis }, (_, i) => i),
      ...Array.from({ length: x.rank - axis - 1 }, (_, i) => axis + ir + i),
    ];
    const dyT = dyPerm.every((p, i) => p === i) ? DY(c) : op.transpose(DY(c), dyPerm);
    const idx64 = idx.dtype === 'int64' ? idx : op.cast(idx, 'int64');
    const dxT = op.scatterND(op.zerosLike(xT), op.unsqueeze(idx64, [-1]), dyT, 'add');
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [axis === 0 ? dxT : op.transpose(dxT, inv), null];
  },
  ScatterND: (c) => {
    if (attr<string>(c.node, 'reduction', 'none') !== 'add') throw new ShapeError('ScatterND gradient: only reduction="add" is supported');
    return [c.needs[0] ? DY(c) : null, null, want(c, 2, () => op.gatherND(DY(c), X(c, 1)))];
  },
  GatherND: (c) => [op.scatterND(op.zerosLike(X(c, 0)), X(c, 1), DY(c), 'add'), null],
  Expand: (c) => [DY(c), null],
  Where: (c) => {
    const zero = op.scalarLike(DY(c), 0);
    return [null, want(c, 1, () => op.where(X(c, 0), DY(c), zero)), want(c, 2, () => op.where(X(c, 0), zero, DY(c)))];
  },
  // Resize is linear: Y = A_h X A_wᵀ, so dX = A_hᵀ dY A_w
  Resize: (c) => {
    const x = X(c, 0);
    if (attr<string>(c.node, 'mode', 'nearest') !== 'linear') throw new ShapeError('Resize gradient: only mode="linear" is supported');
    const coord = attr<ResizeCoord>(c.node, 'coordinate_transformation_mode', 'half_pixel');
    const [h, w] = [x.shape[2] as number, x.shape[3] as number];
    const [oh, ow] = [c.y[0]!.shape[2] as number, c.y[0]!.shape[3] as number];
    const g = x.graph;
    const ahT = op.tensorConst(g, transposeMatrix(interpMatrix(h, oh, coord), oh, h), [h, oh], 'resize_ahT');
    const aw = op.tensorConst(g, interpMatrix(w, ow, coord), [ow, w], 'resize_aw');
    const cast = (t: Tensor) => (x.dtype === 'float32' ? t : op.cast(t, x.dtype));
    return [op.matmul(op.matmul(cast(ahT), DY(c)), cast(aw)), null, null, null];
  },
  // stride-1 Conv: dX = ConvTranspose(dY, W); dW[o,i] = Σ_b xpad[b,i] ⋆ dY[b,o] (a Conv with batch as channels)
  Conv: (c) => {
    const [x, w] = [X(c, 0), X(c, 1)];
    const strides = attr<number[]>(c.node, 'strides', [1, 1]);
    const pads = attr<number[]>(c.node, 'pads', [0, 0, 0, 0]);
    if (strides.some((s) => s !== 1) || attr(c.node, 'group', 1) !== 1) {
      throw new ShapeError('Conv gradient: only stride 1 and group 1 are supported');
    }
    const dy = DY(c);
    return [
      want(c, 0, () => op.convTranspose(dy, w, pads)),
      want(c, 1, () => {
        const xT = op.transpose(x, [1, 0, 2, 3]); // [Ci, B, H, W]
        const dyT = op.transpose(dy, [1, 0, 2, 3]); // [Co, B, Ho, Wo]
        return op.transpose(op.conv(xT, dyT, null, { pads }), [1, 0, 2, 3]); // [Co, Ci, kh, kw]
      }),
      want(c, 2, () => op.reduceSum(dy, [0, 2, 3], false)),
    ];
  },
  // ConvTranspose is Conv's adjoint: dX = Conv(dY, W)
  ConvTranspose: (c) => {
    if (c.needs[1]) throw new ShapeError('ConvTranspose gradient: weight gradient is not supported');
    return [op.conv(DY(c), X(c, 1), null, { pads: attr<number[]>(c.node, 'pads', [0, 0, 0, 0]) }), null];
  },
  // inference-mode BatchNorm: y = (x − μ)·s·r + b, r = 1/√(σ²+ε), with μ, σ² the running statistics (inputs, not batch stats)
  BatchNormalization: (c) => {
    if (attr(c.node, 'training_mode', 0) !== 0) throw new ShapeError('BatchNormalization gradient: training mode is built as a composition (nn/batchNorm)');
    const [x, s, , mean, variance] = c.x.map((t) => t!);
    const eps = attr<number>(c.node, 'epsilon', 1e-5);
    // channels are axis 1 of [N, C, ...] (any rank ≥ 2); per-channel sums run over all other axes
    const axes = x!.shape.map((_, i) => i).filter((i) => i !== 1);
    const chan = (t: Tensor) => op.reshape(t, [1, -1, ...axes.slice(1).map(() => 1)]);
    const r = op.reciprocal(op.sqrt(op.add(variance!, eps))); // [C]
    const dy = DY(c);
    const sumDy = () => op.reduceSum(dy, axes, false);
    const sumDyXc = () => op.reduceSum(op.mul(dy, op.sub(x!, chan(mean!))), axes, false);
    return [
      want(c, 0, () => op.mul(dy, chan(op.mul(s!, r)))),
      // ds = Σ dy (x − μ) r
      want(c, 1, () => op.mul(sumDyXc(), r)),
      want(c, 2, sumDy),
      // dμ = −Σ dy · s r
      want(c, 3, () => op.neg(op.mul(sumDy(), op.mul(s!, r)))),
      // dσ² = Σ dy (x − μ) · s · (−r³ / 2)
      want(c, 4, () => op.mul(sumDyXc(), op.mul(s!, op.mul(op.mul(r, op.mul(r, r)), -0.5)))),
    ];
  },
  // x̂ = (x − μ)·r, y = x̂ w + b:  dx = r (g − mean(g) − x̂ mean(g x̂)) with g = dy w
  LayerNormalization: (c) => {
    const [x, w] = [X(c, 0), X(c, 1)];
    const eps = attr<number>(c.node, 'epsilon', 1e-5);
    const axis = attr<number>(c.node, 'axis', -1);
    if (axis !== -1 && axis !== x.rank - 1) throw new ShapeError('LayerNormalization gradient: only the last axis is supported');
    const dy = DY(c);
    const xc = op.sub(x, op.reduceMean(x, [-1]));
    const r = op.reciprocal(op.sqrt(op.add(op.reduceMean(op.mul(xc, xc), [-1]), eps)));
    const xhat = op.mul(xc, r);
    return [
      want(c, 0, () => {
        const g = op.mul(dy, w);
        return op.mul(r, op.sub(op.sub(g, op.reduceMean(g, [-1])), op.mul(xhat, op.reduceMean(op.mul(g, xhat), [-1]))));
      }),
      want(c, 1, () => op.mul(dy, xhat)),
      want(c, 2, () => dy),
    ];
  },
  Equal: 'nondiff',
  Less: 'nondiff',
  Greater: 'nondiff',
  Not: 'nondiff',
  And: 'nondiff',
  Or: 'nondiff',
  IsNaN: 'nondiff',
  IsInf: 'nondiff',
  Floor: 'nondiff',
  Sign: 'nondiff',
  Shape: 'nondiff',
  RandomUniformLike: 'nondiff',
  ConstantOfShape: 'nondiff',
};
