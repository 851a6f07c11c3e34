// Reverse-mode driver: walks the traced graph backwards from a scalar loss and emits the backward
// ops into the same graph, using the rule table in rules.ts.
//
// Only needed gradients are emitted (a node is visited only if it lies on a path from a `wrt`
// tensor to the loss, and a rule is asked only for inputs on such a path — ONNX Runtime
// training's IsGradientRequired). Broadcast reduction and fan-out accumulation happen here, once.

import { FLOAT_DTYPES, type Node, ShapeError, Tensor, fmtShape, isStatic } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import type { OpType } from '../graph/ops.js';
import { RULES } from './rules.js';

/** Sums a broadcast gradient down to `x`'s shape (numpy broadcasting in reverse). */
export function unbroadcast(g: Tensor, x: Tensor): Tensor {
  if (g.rank === x.rank && g.shape.every((d, i) => d === x.shape[i])) return g;
  const lead = g.rank - x.rank;
  if (lead < 0) throw new ShapeError(`gradient ${fmtShape(g.shape)} has lower rank than ${x}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else if (x.shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
    else if (x.shape[i - lead] !== g.shape[i]) {
      throw new ShapeError(`gradient ${fmtShape(g.shape)} does not broadcast to ${x} at axis ${i}`);
    }
  }
  const summed = axes.length ? op.reduceSum(g, axes, true) : g;
  return op.reshapeLike(summed, x);
}

function isDiffDType(t: Tensor): boolean {
  return FLOAT_DTYPES.has(t.dtype);
}

/**
 * Gradients of scalar `loss` with respect to each tensor of `wrt` (same order). A `wrt` tensor the
 * loss does not depend on gets zeros.
 */
export function gradients(loss: Tensor, wrt: readonly Tensor[], seed?: Tensor): Tensor[] {
  const g = loss.graph;
  if (!isDiffDType(loss)) throw new ShapeError(`gradients: loss ${loss} is not floating-point`);
  if (!seed && loss.size !== 1) throw new ShapeError(`gradients: loss ${loss} is not a scalar; pass a seed gradient`);

  // Forward: tensors that depend on some wrt tensor.
  const dependsOnWrt = new Set<Tensor>(wrt);
  const nodesAtStart = g.nodes.slice();
  for (const n of nodesAtStart) {
    if (RULES[n.op as OpType] === 'nondiff') continue;
    if (n.inputs.some((i) => i && dependsOnWrt.has(i))) for (const o of n.outputs) if (isDiffDType(o)) dependsOnWrt.add(o);
  }
  // Backward: nodes the loss depends on.
  const feedsLoss = new Set<Node>();
  const stack: Tensor[] = [loss];
  const seen = new Set<Tensor>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.producer) {
      feedsLoss.add(t.producer);
      for (const i of t.producer.inputs) if (i) stack.push(i);
    }
  }

  const pending = new Map<Tensor, Tensor[]>();
  const push = (t: Tensor, d: Tensor) => {
    const l = pending.get(t);
    if (l) l.push(d);
    else pending.set(t, [d]);
  };
  // Fan-out accumulation: the contributions of every consumer, summed once.
  const total = (t: Tensor): Tensor | null => {
    const l = pending.get(t);
    if (!l) return null;
    const sum = l.reduce((a, b) => op.add(a, b));
    pending.set(t, [sum]);
    return sum;
  };

  push(loss, seed ?? op.broadcastTo(op.scalarLike(loss, 1), loss));

  for (let k = nodesAtStart.length - 1; k >= 0; k--) {
    const n = nodesAtStart[k]!;
    if (!feedsLoss.has(n)) continue;
    const rule = RULES[n.op as OpType];
    if (rule === undefined) throw new ShapeError(`no gradient rule for op ${n.op}`);
    if (rule === 'nondiff') continue;
    const needs = n.inputs.map((i) => !!i && dependsOnWrt.has(i) && isDiffDType(i));
    if (!needs.some(Boolean)) continue;
    const dy = n.outputs.map(total);
    if (dy.every((d) => d === null)) continue;
    const grads = g.scope(`grad/${n.op}_${n.index}`, () => rule({ node: n, x: n.inputs, y: n.outputs, dy, needs }));
    grads.forEach((d, i) => {
      const x = n.inputs[i];
      if (!needs[i] || !x) return;
      // A rule that returns null for a needed input would silently zero a gradient.
      if (!d) throw new ShapeError(`gradient rule for ${n.op} returned no gradient for input ${i} (${x})`);
      push(x, g.scope(`grad/${n.op}_${n.index}`, () => unbroadcast(d, x)));
    });
  }

  return wrt.map((w) => total(w) ?? op.zerosLike(w));
}

export function assertStatic(t: Tensor, what: string): readonly number[] {
  if (!isStatic(t.shape)) throw new ShapeError(`${what}: ${t} must have a static shape`);
  return t.shape;
}
