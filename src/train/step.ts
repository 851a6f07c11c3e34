// The training step as ONE ONNX graph: forward + loss + backward + AdamW.
//
// Parameters and AdamW moments go in, updated parameters and moments come out, so gradients never
// leave ONNX Runtime. AdamW follows torch.optim.AdamW exactly (decoupled decay p ← p(1 − lr·wd),
// bias-corrected moments, denominator √v̂ + ε), with a learning-rate multiplier per parameter
// group, optional global-norm clipping (torch.nn.utils.clip_grad_norm_: coef = max/(‖g‖+1e-6),
// capped at 1) and a non-finite guard: if the loss or the gradient norm is NaN/Inf, every output
// equals its input (weights and moments unchanged) and `finite` is false.

import { gradients } from '../autodiff/grad.js';
import { Graph, Tensor } from '../graph/graph.js';
import { toModelProto } from '../graph/onnx.js';
import * as op from '../graph/ops.js';
import type { ParamSpec, Registry } from '../nn/params.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Max global gradient norm; null or 0 disables clipping. */
  clipNorm?: number | null;
}

export const TORCH_ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, clipNorm: null };

/** Names of the state tensors of a parameter in the step graph. */
export const stateNames = (p: string) => ({
  param: p,
  m: `adam.m.${p}`,
  v: `adam.v.${p}`,
  outParam: `out.${p}`,
  outM: `out.adam.m.${p}`,
  outV: `out.adam.v.${p}`,
});

export interface TrainStepGraph {
  model: Uint8Array;
  /** Trainable parameters, in graph order. */
  params: ParamSpec[];
  /** Buffers the graph updates itself (BatchNorm running stats): input `name`, output `out.name`. */
  buffers: ParamSpec[];
  /** Data inputs (everything that is not a parameter or optimizer state). */
  dataInputs: { name: string; dtype: string; shape: readonly (number | string)[] }[];
  /** Extra outputs requested by the caller (e.g. logits for logging). */
  extraOutputs: string[];
}

export interface BuildStepOptions {
  registry: Registry;
  loss: Tensor;
  adamw: AdamWConfig;
  /** Learning-rate multiplier of a parameter group (default 1). */
  lrMult?: (group: string) => number;
  /** New values of buffers (name → tensor), written to `out.<name>`. */
  bufferUpdates?: ReadonlyMap<string, Tensor>;
  extraOutputs?: readonly Tensor[];
}

export function buildTrainStep(o: BuildStepOptions): TrainStepGraph {
  const g: Graph = o.loss.graph;
  const specs = [...o.registry.specs.values()];
  const params = specs.filter((s) => !s.buffer);
  const buffers = specs.filter((s) => s.buffer);
  const pt = params.map((s) => o.registry.tensors.get(s.name)!);

  const lossOut = g.named(o.loss, 'loss');
  const grads = g.scope('backward', () => gradients(o.loss, pt));

  const outputs: Tensor[] = [lossOut];
  g.scope('adamw', () => {
    const lr = g.input('lr', 'float32', []);
    const t = g.input('step', 'float32', []); // 1-based step count of this update
    const { beta1, beta2, eps, weightDecay } = o.adamw;

    // ‖g‖ over every parameter
    const sq = grads.map((d) => op.reduceSum(op.mul(d, d), op.allAxes(d), false));
    const norm = op.sqrt(sq.reduce((a, b) => op.add(a, b)));
    const finite = op.not(op.or(op.or(op.isNaN(norm), op.isInf(norm)), op.or(op.isNaN(o.loss), op.isInf(o.loss))));
    const clip = o.adamw.clipNorm ? op.min(op.div(op.scalar(g, o.adamw.clipNorm), op.add(norm, 1e-6)), 1) : null;

    const bc1 = op.sub(op.scalar(g, 1), op.pow(op.scalar(g, beta1), t));
    const bc2sqrt = op.sqrt(op.sub(op.scalar(g, 1), op.pow(op.scalar(g, beta2), t)));

    params.forEach((s, i) => {
      const p = pt[i]!;
      const n = stateNames(s.name);
      const m = g.input(n.m, 'float32', s.shape);
      const v = g.input(n.v, 'float32', s.shape);
      const grad = clip ? op.mul(grads[i]!, clip) : grads[i]!;
      const lrP = o.lrMult && o.lrMult(s.group) !== 1 ? op.mul(lr, o.lrMult(s.group)) : lr;
      // p ← p·(1 − lr·wd)
      const decayed = s.decay && weightDecay ? op.mul(p, op.sub(op.scalar(g, 1), op.mul(lrP, weightDecay))) : p;
      // m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
      const m2 = op.add(op.mul(m, beta1), op.mul(grad, 1 - beta1));
      const v2 = op.add(op.mul(v, beta2), op.mul(op.mul(grad, grad), 1 - beta2));
      // p ← p − (lr/bc1) · m / (√v / √bc2 + ε)
      const denom = op.add(op.div(op.sqrt(v2), bc2sqrt), eps);
      const p2 = op.sub(decayed, op.mul(op.div(lrP, bc1), op.div(m2, denom)));
      outputs.push(
        g.named(op.where(finite, p2, p), n.outParam),
        g.named(op.where(finite, m2, m), n.outM),
        g.named(op.where(finite, v2, v), n.outV),
      );
    });
    for (const s of buffers) {
      const upd = o.bufferUpdates?.get(s.name);
      if (!upd) throw new Error(`buffer '${s.name}' has no update tensor`);
      outputs.push(g.named(op.where(finite, upd, o.registry.tensors.get(s.name)!), `out.${s.name}`));
    }
    outputs.push(g.named(norm, 'grad_norm'), g.named(finite, 'finite'));
  });
  const extra = (o.extraOutputs ?? []).map((t) => t);
  outputs.push(...extra);

  const model = toModelProto(g, { outputs });
  const dataInputs = g.inputs
    .filter((t) => t.name !== 'lr' && t.name !== 'step' && !t.name.startsWith('adam.'))
    .map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  return { model, params, buffers, dataInputs, extraOutputs: extra.map((t) => t.name) };
}
