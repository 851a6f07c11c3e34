// Cost of a traced graph: multiply-accumulates of every matrix product (MatMul, Gemm, Conv,
// ConvTranspose — attention's QKᵀ and AV included), the count the papers report as (G)MACs or
// fvcore "FLOPs". Symbolic dims are bound through `dims` (e.g. { B: 1 }).

import { type Dim, type Node, type Tensor } from './graph.js';
import { liveNodes } from './onnx.js';

function resolve(d: Dim, dims: Readonly<Record<string, number>>): number {
  if (typeof d === 'number') return d;
  const v = dims[d];
  if (v === undefined) throw new Error(`cost: symbolic dim '${d}' has no value (pass it in dims)`);
  return v;
}

const numelOf = (t: Tensor, dims: Readonly<Record<string, number>>) => t.shape.reduce<number>((a, d) => a * resolve(d, dims), 1);

/** MACs of one node (0 for ops that are not matrix products). */
export function nodeMacs(n: Node, dims: Readonly<Record<string, number>> = {}): number {
  const out = n.outputs[0]!;
  switch (n.op) {
    case 'MatMul': {
      const a = n.inputs[0]!;
      return numelOf(out, dims) * resolve(a.shape[a.rank - 1]!, dims);
    }
    case 'Gemm': {
      const a = n.inputs[0]!;
      const k = resolve(a.shape[(n.attrs.transA as number) ? 0 : 1]!, dims);
      return numelOf(out, dims) * k;
    }
    case 'Conv': {
      const w = n.inputs[1]!; // [Co, Ci/g, kh, kw]
      return numelOf(out, dims) * resolve(w.shape[1]!, dims) * resolve(w.shape[2]!, dims) * resolve(w.shape[3]!, dims);
    }
    case 'ConvTranspose': {
      const x = n.inputs[0]!;
      const w = n.inputs[1]!; // [Ci, Co, kh, kw]
      return numelOf(x, dims) * resolve(w.shape[1]!, dims) * resolve(w.shape[2]!, dims) * resolve(w.shape[3]!, dims);
    }
    default:
      return 0;
  }
}

/** Total MACs of the nodes that `outputs` depend on. */
export function countMacs(outputs: readonly Tensor[], dims: Readonly<Record<string, number>> = {}): number {
  if (outputs.length === 0) return 0;
  return liveNodes(outputs[0]!.graph, outputs).reduce((s, n) => s + nodeMacs(n, dims), 0);
}
