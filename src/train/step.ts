// The training step: ONE ONNX graph for forward + loss + backward, then AdamW in place.
//
// The graph takes parameters, buffers and data, and returns the loss, every parameter gradient,
// the global gradient norm, a `finite` flag and the buffers' new values. AdamW (adamw.ts) then
// updates parameters and moments in place in host memory, as torch.optim.AdamW does.
//
// Why the update is not in the graph (measured, bench engine, ViT-B/16): onnxruntime-node copies
// every output of a run into a fresh JS buffer, even an output the caller pre-allocated. With the
// updated parameters and both moments as outputs, each step allocated and dropped 988 MiB (the
// whole optimizer state), and the peak held the state three times over (inputs, ORT's outputs,
// the binding's copies): 1.78× PyTorch's peak memory. Gradients are a third of that, and the host
// update touches each state element once.
//
// Non-finite guard: if the loss or the gradient norm is NaN/Inf, `finite` is false, the buffers'
// outputs equal their inputs, and the runner skips the update (weights and moments unchanged).

import { gradients } from '../autodiff/grad.js';
import { Graph, Tensor } from '../graph/graph.js';
import { toModelProto } from '../graph/onnx.js';
import * as op from '../graph/ops.js';
import type { ParamSpec, Registry } from '../nn/params.js';
import type { AdamWConfig } from './adamw.js';

export { type AdamWConfig, TORCH_ADAMW_DEFAULTS } from './adamw.js';

/** Output name of a parameter's gradient in the step graph. */
export const gradName = (p: string) => `grad.${p}`;

/** Names of a parameter's AdamW moments and weight average (`--ema`) in run-state files. */
export const stateNames = (p: string) => ({ m: `adam.m.${p}`, v: `adam.v.${p}`, ema: `ema.${p}` });

export interface TrainStepGraph {
  model: Uint8Array;
  /** Parameters, in graph order. */
  params: ParamSpec[];
  /** Learning-rate multiplier of each parameter (same order as `params`). */
  lrMults: number[];
  /**
   * Indices (into `params`) of the parameters the graph differentiates: those whose multiplier is
   * not 0. A multiplier of 0 freezes a parameter: no gradient output, no update, moments untouched.
   */
  trainable: number[];
  adamw: AdamWConfig;
  /** Buffers the graph updates itself (BatchNorm running stats): input `name`, output `out.name`. */
  buffers: ParamSpec[];
  /** Data inputs (everything that is not a parameter or a buffer). */
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

  const lrMults = params.map((s) => o.lrMult?.(s.group) ?? 1);
  // Frozen parameters are not differentiated, so the backward stops where only frozen ones lie
  // behind a tensor: a frozen vision encoder costs its forward pass only.
  const trainable = params.flatMap((s, i) => (lrMults[i] === 0 ? [] : [i]));
  if (!trainable.length) throw new Error('every parameter is frozen (learning-rate multiplier 0)');

  const lossOut = g.named(o.loss, 'loss');
  const wrt = trainable.map((i) => pt[i]!);
  const grads = g.scope('backward', () => gradients(o.loss, wrt));

  const outputs: Tensor[] = [lossOut];
  g.scope('guard', () => {
    // ‖g‖ over every trainable parameter
    const sq = grads.map((d) => op.reduceSum(op.mul(d, d), op.allAxes(d), false));
    const norm = op.sqrt(sq.reduce((a, b) => op.add(a, b)));
    const finite = op.not(
      op.or(op.or(op.isNaN(norm), op.isInf(norm)), op.or(op.isNaN(o.loss), op.isInf(o.loss))),
    );
    trainable.forEach((p, i) => outputs.push(g.named(grads[i]!, gradName(params[p]!.name))));
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
  const stateInputs = new Set(specs.map((s) => s.name));
  const dataInputs = g.inputs
    .filter((t) => !stateInputs.has(t.name))
    .map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  return {
    model,
    params,
    lrMults,
    trainable,
    adamw: o.adamw,
    buffers,
    dataInputs,
    extraOutputs: extra.map((t) => t.name),
  };
}
