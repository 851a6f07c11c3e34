// Op builders, one per ONNX operator we emit, named as ONNX names them (opset OPSET).
//
// Each builder checks its inputs' shapes at trace time and throws a ShapeError that names the op
// and the shapes, so a model bug surfaces where it is written, not inside ONNX Runtime.
// Attribute names are ONNX's (`epsilon`, `perm`, `coordinate_transformation_mode`).

import {
  type AttrValue,
  type DType,
  type Dim,
  FLOAT_DTYPES,
  Graph,
  type Shape,
  ShapeError,
  Tensor,
  type TensorData,
  fmtShape,
  isStatic,
  numel,
} from './graph.js';

/** The one opset every graph is written against (ONNX 1.15: Gelu exists, Reduce* take axes as input). */
export const OPSET = 20;
export const IR_VERSION = 9;

/** Every op type we can emit. The autodiff rule table is keyed by exactly this union. */
export const OP_TYPES = [
  'Identity', 'Cast', 'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Neg', 'Abs', 'Sqrt', 'Reciprocal',
  'Exp', 'Log', 'Erf', 'Tanh', 'Sigmoid', 'Relu', 'LeakyRelu', 'Gelu', 'Softmax', 'MatMul', 'Gemm',
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'Reshape', 'Transpose', 'Concat', 'Split', 'Slice', 'Gather',
  'Expand', 'Unsqueeze', 'Squeeze', 'Where', 'Resize', 'Conv', 'ConvTranspose', 'BatchNormalization',
  'LayerNormalization', 'Equal', 'Less', 'Greater', 'Not', 'And', 'Or', 'IsNaN', 'IsInf', 'Floor',
  'Sign', 'Shape', 'RandomUniformLike', 'ConstantOfShape', 'Pad', 'ScatterND', 'GatherND',
] as const;
export type OpType = (typeof OP_TYPES)[number];

function err(op: string, msg: string, ...ts: (Tensor | null)[]): ShapeError {
  const desc = ts.filter((t): t is Tensor => t !== null).map((t) => `${t.name} ${fmtShape(t.shape)} ${t.dtype}`);
  return new ShapeError(`${op}: ${msg}${desc.length ? ` (inputs: ${desc.join(', ')})` : ''}`);
}

function graphOf(op: string, ...ts: Tensor[]): Graph {
  const g = ts[0]!.graph;
  for (const t of ts) if (t.graph !== g) throw err(op, 'inputs come from different graphs', ...ts);
  return g;
}

function sameDType(op: string, ...ts: Tensor[]): DType {
  const d = ts[0]!.dtype;
  for (const t of ts) if (t.dtype !== d) throw err(op, `dtypes differ (${ts.map((x) => x.dtype).join(' vs ')})`, ...ts);
  return d;
}

function requireFloat(op: string, t: Tensor): void {
  if (!FLOAT_DTYPES.has(t.dtype)) throw err(op, `needs a floating-point tensor, got ${t.dtype}`, t);
}

function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new ShapeError(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Numpy broadcasting of several shapes; symbolic dims broadcast only against themselves or 1. */
export function broadcastShapes(op: string, ...ts: Tensor[]): Dim[] {
  const rank = Math.max(...ts.map((t) => t.rank));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const t of ts) {
      const td = t.shape[i - (rank - t.rank)];
      if (td === undefined || td === 1) continue;
      if (d === 1) d = td;
      else if (d !== td) throw err(op, `shapes do not broadcast at axis ${i} (${d} vs ${td})`, ...ts);
    }
    out.push(d);
  }
  return out;
}

// ---------- constants ----------

const scalarCache = new WeakMap<Graph, Map<string, Tensor>>();

/** A scalar constant (shape []) of the given dtype, cached per graph. */
export function scalar(g: Graph, value: number, dtype: DType = 'float32'): Tensor {
  let m = scalarCache.get(g);
  if (!m) scalarCache.set(g, (m = new Map()));
  const key = `${dtype}:${Object.is(value, -0) ? '-0' : value}`;
  let t = m.get(key);
  if (!t) {
    t = g.constant(makeData(dtype, [value]), [], dtype, 'scalar');
    m.set(key, t);
  }
  return t;
}

/** A scalar of the same dtype as `like`. */
export function scalarLike(like: Tensor, value: number): Tensor {
  return scalar(like.graph, value, like.dtype);
}

export function makeData(dtype: DType, values: readonly number[]): TensorData {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v))));
    case 'int32':
      return Int32Array.from(values);
    case 'bool':
    case 'uint8':
      return Uint8Array.from(values);
    case 'float16':
      throw new Error('float16 constants are not built from numbers here');
  }
}

export function int64s(g: Graph, values: readonly number[], hint = 'ints'): Tensor {
  return g.constant(makeData('int64', values), [values.length], 'int64', hint);
}

export function tensorConst(g: Graph, data: Float32Array | Float64Array, shape: readonly number[], hint = 'const'): Tensor {
  return g.constant(data, shape, data instanceof Float64Array ? 'float64' : 'float32', hint);
}

// ---------- elementwise ----------

function binary(op: OpType, a: Tensor, b: Tensor, outDType?: DType): Tensor {
  const g = graphOf(op, a, b);
  const dtype = sameDType(op, a, b);
  return g.addNode(op, [a, b], {}, [{ dtype: outDType ?? dtype, shape: broadcastShapes(op, a, b) }])[0]!;
}

const num = (t: Tensor, x: Tensor | number): Tensor => (typeof x === 'number' ? scalarLike(t, x) : x);

export const add = (a: Tensor, b: Tensor | number) => binary('Add', a, num(a, b));
export const sub = (a: Tensor, b: Tensor | number) => binary('Sub', a, num(a, b));
export const mul = (a: Tensor, b: Tensor | number) => binary('Mul', a, num(a, b));
export const div = (a: Tensor, b: Tensor | number) => binary('Div', a, num(a, b));
export const pow = (a: Tensor, b: Tensor | number) => binary('Pow', a, num(a, b));
export const max = (a: Tensor, b: Tensor | number) => binary('Max', a, num(a, b));
export const min = (a: Tensor, b: Tensor | number) => binary('Min', a, num(a, b));
export const equal = (a: Tensor, b: Tensor | number) => binary('Equal', a, num(a, b), 'bool');
export const less = (a: Tensor, b: Tensor | number) => binary('Less', a, num(a, b), 'bool');
export const greater = (a: Tensor, b: Tensor | number) => binary('Greater', a, num(a, b), 'bool');
export const and = (a: Tensor, b: Tensor) => binary('And', a, b);
export const or = (a: Tensor, b: Tensor) => binary('Or', a, b);

function unary(op: OpType, x: Tensor, attrs: Record<string, AttrValue> = {}, outDType?: DType): Tensor {
  return x.graph.addNode(op, [x], attrs, [{ dtype: outDType ?? x.dtype, shape: x.shape }])[0]!;
}
function unaryFloat(op: OpType, x: Tensor, attrs: Record<string, AttrValue> = {}): Tensor {
  requireFloat(op, x);
  return unary(op, x, attrs);
}

export const identity = (x: Tensor) => unary('Identity', x);
export const neg = (x: Tensor) => unary('Neg', x);
export const abs = (x: Tensor) => unary('Abs', x);
export const sign = (x: Tensor) => unary('Sign', x);
export const sqrt = (x: Tensor) => unaryFloat('Sqrt', x);
export const reciprocal = (x: Tensor) => unaryFloat('Reciprocal', x);
export const exp = (x: Tensor) => unaryFloat('Exp', x);
export const log = (x: Tensor) => unaryFloat('Log', x);
export const erf = (x: Tensor) => unaryFloat('Erf', x);
export const tanh = (x: Tensor) => unaryFloat('Tanh', x);
export const sigmoid = (x: Tensor) => unaryFloat('Sigmoid', x);
export const relu = (x: Tensor) => unaryFloat('Relu', x);
export const floor = (x: Tensor) => unaryFloat('Floor', x);
export const leakyRelu = (x: Tensor, alpha = 0.01) => unaryFloat('LeakyRelu', x, { alpha });
/** GELU; `approximate: 'none'` is the exact erf form. */
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none') => unaryFloat('Gelu', x, { approximate });
export const not = (x: Tensor) => unary('Not', x);
export const isNaN = (x: Tensor) => unary('IsNaN', x, {}, 'bool');
export const isInf = (x: Tensor) => unary('IsInf', x, {}, 'bool');

export function cast(x: Tensor, to: DType): Tensor {
  return x.graph.addNode('Cast', [x], { to: ONNX_DTYPE[to] }, [{ dtype: to, shape: x.shape }])[0]!;
}

export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const op = 'Where';
  const g = graphOf(op, cond, a, b);
  if (cond.dtype !== 'bool') throw err(op, `condition must be bool, got ${cond.dtype}`, cond);
  const dtype = sameDType(op, a, b);
  return g.addNode(op, [cond, a, b], {}, [{ dtype, shape: broadcastShapes(op, cond, a, b) }])[0]!;
}

export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('Softmax', x);
  return unary('Softmax', x, { axis: normAxis('Softmax', axis, x.rank) });
}

// ---------- linear algebra ----------

/** Numpy matmul for rank ≥ 2: batch dims broadcast, [..,M,K] @ [..,K,N] → [..,M,N]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const op = 'MatMul';
  const g = graphOf(op, a, b);
  const dtype = sameDType(op, a, b);
  if (a.rank < 2 || b.rank < 2) throw err(op, 'both operands need rank ≥ 2', a, b);
  const k1 = a.shape[a.rank - 1]!;
  const k2 = b.shape[b.rank - 2]!;
  if (k1 !== k2) throw err(op, `inner dims differ (${k1} vs ${k2})`, a, b);
  const batchA = new Tensor(g, 'a', dtype, a.shape.slice(0, -2), 'op');
  const batchB = new Tensor(g, 'b', dtype, b.shape.slice(0, -2), 'op');
  let batch: Dim[];
  try {
    batch = broadcastShapes(op, batchA, batchB);
  } catch {
    throw err(op, 'batch dims do not broadcast', a, b);
  }
  const shape = [...batch, a.shape[a.rank - 2]!, b.shape[b.rank - 1]!];
  return g.addNode(op, [a, b], {}, [{ dtype, shape }])[0]!;
}

/** Gemm: alpha·A'·B' + beta·C for 2-D A, B (' = optional transpose), C broadcast to [M,N]. */
export function gemm(a: Tensor, b: Tensor, c: Tensor | null, o: { transA?: 0 | 1; transB?: 0 | 1; alpha?: number; beta?: number } = {}): Tensor {
  const op = 'Gemm';
  const g = graphOf(op, a, b);
  const dtype = sameDType(op, a, b);
  if (a.rank !== 2 || b.rank !== 2) throw err(op, 'A and B must be 2-D', a, b);
  const [m, ka] = o.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = o.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (ka !== kb) throw err(op, `inner dims differ (${ka} vs ${kb})`, a, b);
  const shape = [m, n];
  if (c) {
    // unidirectional: C broadcasts to [M, N], never the other way (ORT: "Invalid bias shape for broadcast")
    const cd = c.shape;
    const fits = (d: Dim | undefined, want: Dim) => d === undefined || d === 1 || d === want;
    if (c.rank > 2 || !fits(cd[cd.length - 1], n) || !fits(cd[cd.length - 2], m)) {
      throw err(op, `C ${fmtShape(cd)} does not broadcast to [${m},${n}]`, a, b, c);
    }
  }
  const attrs = { transA: o.transA ?? 0, transB: o.transB ?? 0, alpha: o.alpha ?? 1, beta: o.beta ?? 1 };
  return g.addNode(op, c ? [a, b, c] : [a, b], attrs, [{ dtype, shape }])[0]!;
}

// ---------- reductions (opset 18+: axes is an input) ----------

function reduce(op: 'ReduceSum' | 'ReduceMean' | 'ReduceMax', x: Tensor, axes: readonly number[], keepdims: boolean): Tensor {
  const ax = [...new Set(axes.map((a) => normAxis(op, a, x.rank)))].sort((p, q) => p - q);
  if (ax.length === 0) throw err(op, 'needs at least one axis', x);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!ax.includes(i)) shape.push(d);
    else if (keepdims) shape.push(1);
  });
  const g = x.graph;
  return g.addNode(op, [x, int64s(g, ax, 'axes')], { keepdims: keepdims ? 1 : 0 }, [{ dtype: x.dtype, shape }])[0]!;
}
export const reduceSum = (x: Tensor, axes: readonly number[], keepdims = true) => reduce('ReduceSum', x, axes, keepdims);
export const reduceMean = (x: Tensor, axes: readonly number[], keepdims = true) => reduce('ReduceMean', x, axes, keepdims);
export const reduceMax = (x: Tensor, axes: readonly number[], keepdims = true) => reduce('ReduceMax', x, axes, keepdims);
export const allAxes = (x: Tensor) => x.shape.map((_, i) => i);

// ---------- shape manipulation ----------

/**
 * Reshape with ONNX semantics: 0 copies the input dim at that index, one -1 is inferred.
 * A symbolic input dim may only travel through a 0.
 */
export function reshape(x: Tensor, target: readonly number[]): Tensor {
  const op = 'Reshape';
  const out: Dim[] = target.map((d, i) => {
    if (d === 0) {
      if (i >= x.rank) throw err(op, `target ${fmtShape(target)}: 0 at index ${i} has no input dim to copy`, x);
      return x.shape[i]!;
    }
    return d;
  });
  const inferred = out.filter((d) => d === -1).length;
  if (inferred > 1) throw err(op, `target ${fmtShape(target)} has more than one -1`, x);
  if (isStatic(x.shape)) {
    const total = numel(x.shape);
    const known = out.reduce<number>((a, d) => (d === -1 ? a : a * (d as number)), 1);
    const idx = out.indexOf(-1);
    if (idx >= 0) {
      if (known === 0 || total % known !== 0) throw err(op, `cannot infer -1 in ${fmtShape(target)}`, x);
      out[idx] = total / known;
    } else if (known !== total) {
      throw err(op, `target ${fmtShape(target)} holds ${known} elements, input holds ${total}`, x);
    }
  } else {
    // With symbolic dims: everything not copied through 0 must be static; check the static parts agree.
    const symIn = x.shape.filter((d) => typeof d === 'string');
    const symOut = out.filter((d) => typeof d === 'string');
    if (symIn.length !== symOut.length || symIn.some((d) => !symOut.includes(d))) {
      throw err(op, `symbolic dims must pass through a 0 at their own index (target ${fmtShape(target)})`, x);
    }
    const staticIn = numel(x.shape.filter((d): d is number => typeof d === 'number'));
    const idx = out.indexOf(-1);
    const known = out.reduce<number>((a, d) => (d === -1 || typeof d === 'string' ? a : a * d), 1);
    if (idx >= 0) out[idx] = staticIn / known;
    else if (known !== staticIn) throw err(op, `target ${fmtShape(target)} does not match the input's size`, x);
    if (idx >= 0 && !Number.isInteger(out[idx])) throw err(op, `cannot infer -1 in ${fmtShape(target)}`, x);
  }
  return x.graph.addNode(op, [x, int64s(x.graph, target, 'shape')], {}, [{ dtype: x.dtype, shape: out }])[0]!;
}

/** Reshape to the runtime shape of another tensor (used by gradients when dims are symbolic). */
export function reshapeLike(x: Tensor, like: Tensor): Tensor {
  if (isStatic(like.shape)) {
    if (isStatic(x.shape) && numel(x.shape) !== numel(like.shape)) {
      throw err('Reshape', `cannot reshape to ${fmtShape(like.shape)}`, x);
    }
    return x.graph.addNode('Reshape', [x, int64s(x.graph, like.shape, 'shape')], {}, [{ dtype: x.dtype, shape: like.shape }])[0]!;
  }
  return x.graph.addNode('Reshape', [x, shapeOf(like)], {}, [{ dtype: x.dtype, shape: like.shape }])[0]!;
}

export function shapeOf(x: Tensor): Tensor {
  return x.graph.addNode('Shape', [x], {}, [{ dtype: 'int64', shape: [x.rank] }])[0]!;
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  const op = 'Transpose';
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw err(op, `perm ${fmtShape(perm)} is not a permutation of rank ${x.rank}`, x);
  }
  return x.graph.addNode(op, [x], { perm }, [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }])[0]!;
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  const op = 'Concat';
  if (xs.length === 0) throw new ShapeError('Concat: no inputs');
  const g = graphOf(op, ...xs);
  const dtype = sameDType(op, ...xs);
  const r = xs[0]!.rank;
  const a = normAxis(op, axis, r);
  let total: Dim = 0;
  for (const t of xs) {
    if (t.rank !== r) throw err(op, 'ranks differ', ...xs);
    t.shape.forEach((d, i) => {
      if (i !== a && d !== xs[0]!.shape[i]) throw err(op, `dims differ at axis ${i}`, ...xs);
    });
    const d = t.shape[a]!;
    total = typeof total === 'number' && typeof d === 'number' ? total + d : `${total}+${d}`;
  }
  const shape = xs[0]!.shape.map((d, i) => (i === a ? total : d));
  return g.addNode(op, xs, { axis: a }, [{ dtype, shape }])[0]!;
}

/** Split along `axis` into the given static sizes. */
export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const op = 'Split';
  const a = normAxis(op, axis, x.rank);
  const d = x.shape[a]!;
  const sum = sizes.reduce((p, q) => p + q, 0);
  if (typeof d !== 'number' || d !== sum) throw err(op, `sizes ${fmtShape(sizes)} do not sum to dim ${d} of axis ${a}`, x);
  const outs = sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((dd, i) => (i === a ? s : dd)) }));
  return x.graph.addNode(op, [x, int64s(x.graph, sizes, 'split')], { axis: a }, outs);
}

/** Slice with static starts/ends (clamped as ONNX does), step 1 or more. */
export function slice(x: Tensor, axes: readonly number[], starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor {
  const op = 'Slice';
  const shape = [...x.shape];
  const ax = axes.map((a) => normAxis(op, a, x.rank));
  ax.forEach((a, i) => {
    const d = x.shape[a]!;
    const st = steps?.[i] ?? 1;
    if (st < 1) throw err(op, 'only positive steps are supported', x);
    if (typeof d !== 'number') throw err(op, `axis ${a} is symbolic`, x);
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const s = clamp(starts[i]!);
    const e = clamp(ends[i]!);
    shape[a] = Math.max(0, Math.ceil((e - s) / st));
  });
  const g = x.graph;
  const ins = [x, int64s(g, starts, 'starts'), int64s(g, ends, 'ends'), int64s(g, ax, 'axes')];
  if (steps) ins.push(int64s(g, steps, 'steps'));
  return g.addNode(op, ins, {}, [{ dtype: x.dtype, shape }])[0]!;
}

/** Gather along axis (embedding lookup with axis 0): out shape = x[:axis] + idx.shape + x[axis+1:]. */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  const op = 'Gather';
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw err(op, `indices must be int64/int32, got ${indices.dtype}`, indices);
  const a = normAxis(op, axis, x.rank);
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return x.graph.addNode(op, [x, indices], { axis: a }, [{ dtype: x.dtype, shape }])[0]!;
}

export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const op = 'Expand';
  const target = new Tensor(x.graph, 'target', x.dtype, shape, 'op');
  const out = broadcastShapes(op, x, target);
  return x.graph.addNode(op, [x, int64s(x.graph, shape, 'shape')], {}, [{ dtype: x.dtype, shape: out }])[0]!;
}

export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const r = x.rank + axes.length;
  const ax = axes.map((a) => normAxis('Unsqueeze', a, r)).sort((p, q) => p - q);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]!);
  return x.graph.addNode('Unsqueeze', [x, int64s(x.graph, ax, 'axes')], {}, [{ dtype: x.dtype, shape }])[0]!;
}

export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const ax = axes.map((a) => normAxis('Squeeze', a, x.rank));
  for (const a of ax) if (x.shape[a] !== 1) throw err('Squeeze', `axis ${a} has dim ${x.shape[a]}, not 1`, x);
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.addNode('Squeeze', [x, int64s(x.graph, ax, 'axes')], {}, [{ dtype: x.dtype, shape }])[0]!;
}

export function constantOfShape(shapeT: Tensor, value: number, dtype: DType, staticShape: Shape): Tensor {
  const g = shapeT.graph;
  const v = { kind: 'const' as const, dtype, shape: [1], data: makeData(dtype, [value]) };
  return g.addNode('ConstantOfShape', [shapeT], { value: v }, [{ dtype, shape: staticShape }])[0]!;
}

/** Uniform random numbers in [low, high) with the shape of `like` (not differentiable). */
export function randomUniformLike(like: Tensor, low = 0, high = 1, seed?: number): Tensor {
  const attrs: Record<string, AttrValue> = { low, high, dtype: ONNX_DTYPE[like.dtype] };
  if (seed !== undefined) attrs.seed = seed;
  return like.graph.addNode('RandomUniformLike', [like], attrs, [{ dtype: like.dtype, shape: like.shape }])[0]!;
}

/** Zero padding: `pads` = [begin_0..begin_{r-1}, end_0..end_{r-1}], non-negative. */
export function pad(x: Tensor, pads: readonly number[]): Tensor {
  const op = 'Pad';
  if (pads.length !== 2 * x.rank || pads.some((p) => p < 0)) throw err(op, `pads ${fmtShape(pads)} must hold ${2 * x.rank} non-negative values`, x);
  const shape = x.shape.map((d, i) => {
    const extra = pads[i]! + pads[i + x.rank]!;
    if (extra === 0) return d;
    if (typeof d !== 'number') throw err(op, `cannot pad symbolic axis ${i}`, x);
    return d + extra;
  });
  return x.graph.addNode(op, [x, int64s(x.graph, pads, 'pads')], { mode: 'constant' }, [{ dtype: x.dtype, shape }])[0]!;
}

/** ScatterND: copy of `data` with `updates` written (or added, reduction 'add') at `indices` [..., k]. */
export function scatterND(data: Tensor, indices: Tensor, updates: Tensor, reduction: 'none' | 'add' = 'none'): Tensor {
  const op = 'ScatterND';
  if (indices.dtype !== 'int64') throw err(op, 'indices must be int64', indices);
  const k = indices.shape[indices.rank - 1];
  if (typeof k !== 'number' || k > data.rank) throw err(op, 'last dim of indices must be static and ≤ rank of data', data, indices);
  const want = [...indices.shape.slice(0, -1), ...data.shape.slice(k)];
  if (want.length !== updates.rank || want.some((d, i) => d !== updates.shape[i])) {
    throw err(op, `updates must have shape ${fmtShape(want)}`, data, indices, updates);
  }
  return data.graph.addNode(op, [data, indices, updates], { reduction }, [{ dtype: data.dtype, shape: data.shape }])[0]!;
}

/** GatherND (batch_dims 0): out shape = indices.shape[:-1] + data.shape[k:]. */
export function gatherND(data: Tensor, indices: Tensor): Tensor {
  const op = 'GatherND';
  const k = indices.shape[indices.rank - 1];
  if (indices.dtype !== 'int64' || typeof k !== 'number' || k > data.rank) throw err(op, 'bad indices', data, indices);
  const shape = [...indices.shape.slice(0, -1), ...data.shape.slice(k)];
  return data.graph.addNode(op, [data, indices], {}, [{ dtype: data.dtype, shape }])[0]!;
}

/** Zeros with the (static or runtime) shape and dtype of `like`. */
export function zerosLike(like: Tensor): Tensor {
  return broadcastTo(scalarLike(like, 0), like);
}

/** Expands `t` to the shape of `like` (static Expand, or Expand to Shape(like) when symbolic). */
export function broadcastTo(t: Tensor, like: Tensor): Tensor {
  if (isStatic(like.shape)) return expand(t, like.shape);
  const out = broadcastShapes('Expand', t, like);
  return t.graph.addNode('Expand', [t, shapeOf(like)], {}, [{ dtype: t.dtype, shape: out }])[0]!;
}

// ---------- image ops ----------

export type ResizeCoord = 'align_corners' | 'half_pixel' | 'asymmetric';

/** Bilinear (mode linear) resize of the last two dims of an NCHW tensor by integer `scale`. */
export function resize(x: Tensor, scale: number, coord: ResizeCoord): Tensor {
  const op = 'Resize';
  requireFloat(op, x);
  if (x.rank !== 4) throw err(op, 'expects an NCHW tensor', x);
  const [n, c, h, w] = x.shape;
  if (typeof h !== 'number' || typeof w !== 'number') throw err(op, 'spatial dims must be static', x);
  if (!Number.isInteger(scale) || scale < 1) throw err(op, `scale must be a positive integer, got ${scale}`, x);
  const g = x.graph;
  const scales = g.constant(Float32Array.from([1, 1, scale, scale]), [4], 'float32', 'scales');
  const attrs = { mode: 'linear', coordinate_transformation_mode: coord };
  return g.addNode(op, [x, null, scales], attrs, [{ dtype: x.dtype, shape: [n!, c!, h * scale, w * scale] }])[0]!;
}

export interface ConvOptions {
  pads?: readonly number[]; // [top, left, bottom, right]
  strides?: readonly number[];
  group?: number;
}

/** 2-D convolution NCHW, weight [Co, Ci/group, kh, kw]. */
export function conv(x: Tensor, w: Tensor, b: Tensor | null, o: ConvOptions = {}): Tensor {
  const op = 'Conv';
  const g = graphOf(op, x, w);
  sameDType(op, x, w);
  if (x.rank !== 4 || w.rank !== 4) throw err(op, 'expects 4-D input and weight', x, w);
  const group = o.group ?? 1;
  const pads = o.pads ?? [0, 0, 0, 0];
  const strides = o.strides ?? [1, 1];
  const [n, ci, h, wd] = x.shape;
  const [co, wci, kh, kw] = w.shape as number[];
  if (typeof ci === 'number' && ci !== wci! * group) throw err(op, `input channels ${ci} ≠ weight channels ${wci}×group ${group}`, x, w);
  if (b && (b.rank !== 1 || b.shape[0] !== co)) throw err(op, `bias must be [${co}]`, b);
  if (typeof h !== 'number' || typeof wd !== 'number') throw err(op, 'spatial dims must be static', x);
  const oh = Math.floor((h + pads[0]! + pads[2]! - kh!) / strides[0]!) + 1;
  const ow = Math.floor((wd + pads[1]! + pads[3]! - kw!) / strides[1]!) + 1;
  if (oh < 1 || ow < 1) throw err(op, 'kernel larger than padded input', x, w);
  const attrs = { kernel_shape: [kh!, kw!], pads, strides, group, dilations: [1, 1] };
  return g.addNode(op, b ? [x, w, b] : [x, w], attrs, [{ dtype: x.dtype, shape: [n!, co!, oh, ow] }])[0]!;
}

/** ConvTranspose NCHW, weight [Ci, Co, kh, kw], stride 1 (used by Conv's gradient). */
export function convTranspose(x: Tensor, w: Tensor, pads: readonly number[]): Tensor {
  const op = 'ConvTranspose';
  const [n, ci, h, wd] = x.shape;
  const [wci, co, kh, kw] = w.shape as number[];
  if (ci !== wci) throw err(op, `input channels ${ci} ≠ weight's ${wci}`, x, w);
  if (typeof h !== 'number' || typeof wd !== 'number') throw err(op, 'spatial dims must be static', x);
  const oh = h - 1 + kh! - pads[0]! - pads[2]!;
  const ow = wd - 1 + kw! - pads[1]! - pads[3]!;
  const attrs = { kernel_shape: [kh!, kw!], pads, strides: [1, 1], dilations: [1, 1], group: 1 };
  return x.graph.addNode(op, [x, w], attrs, [{ dtype: x.dtype, shape: [n!, co!, oh, ow] }])[0]!;
}

/** BatchNormalization in inference mode (running statistics). */
export function batchNormInference(x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon = 1e-5): Tensor {
  const op = 'BatchNormalization';
  const c = x.shape[1];
  for (const p of [scale, bias, mean, variance]) if (p.rank !== 1 || p.shape[0] !== c) throw err(op, `per-channel tensors must be [${c}]`, x, p);
  return x.graph.addNode(op, [x, scale, bias, mean, variance], { epsilon, training_mode: 0 }, [{ dtype: x.dtype, shape: x.shape }])[0]!;
}

/** LayerNormalization over the last axis (opset 17 op); returns Y. */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, epsilon = 1e-6): Tensor {
  const op = 'LayerNormalization';
  requireFloat(op, x);
  const d = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== d || bias.rank !== 1 || bias.shape[0] !== d) {
    throw err(op, `weight and bias must be [${d}]`, x, weight, bias);
  }
  return x.graph.addNode(op, [x, weight, bias], { axis: -1, epsilon }, [{ dtype: x.dtype, shape: x.shape }])[0]!;
}

// ---------- dtype codes ----------

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};
