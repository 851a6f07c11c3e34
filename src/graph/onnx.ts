// Serialization of a traced Graph to an ONNX ModelProto (IR_VERSION, opset OPSET), via the
// protobufjs code of the `onnx-proto` package. Only nodes that the requested outputs depend on
// are written; parameters become graph inputs (training graphs) or initializers (exported models).

import onnxProto from 'onnx-proto';
import { type AttrValue, type ConstData, type DType, Graph, type Node, Tensor, type TensorData } from './graph.js';
import { IR_VERSION, ONNX_DTYPE, OPSET } from './ops.js';

const { onnx } = onnxProto;

export interface SerializeOptions {
  /** Graph outputs in order; names are the tensors' names (use Graph.named for public names). */
  outputs: readonly Tensor[];
  /** When given, parameters are stored as initializers with these values (by parameter name). */
  paramValues?: ReadonlyMap<string, TensorData>;
  /** Free-form metadata_props. */
  metadata?: Record<string, string>;
  docString?: string;
}

/** The nodes the outputs need, in topological (trace) order. */
export function liveNodes(graph: Graph, outputs: readonly Tensor[]): Node[] {
  const live = new Set<Node>();
  const stack: Tensor[] = [...outputs];
  while (stack.length) {
    const t = stack.pop()!;
    const n = t.producer;
    if (!n || live.has(n)) continue;
    live.add(n);
    for (const i of n.inputs) if (i) stack.push(i);
  }
  return graph.nodes.filter((n) => live.has(n));
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function tensorProto(name: string, c: ConstData): onnxProto.onnx.ITensorProto {
  return { name, dims: [...c.shape], dataType: ONNX_DTYPE[c.dtype], rawData: bytesOf(c.data) };
}

function valueInfo(t: Tensor): onnxProto.onnx.IValueInfoProto {
  return {
    name: t.name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[t.dtype],
        shape: { dim: t.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

const AT = onnx.AttributeProto.AttributeType;

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  if (typeof v === 'number') {
    return Number.isInteger(v) && !FLOAT_ATTRS.has(name) ? { name, type: AT.INT, i: v } : { name, type: AT.FLOAT, f: v };
  }
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) {
    if (v.length === 0 || typeof v[0] === 'number') return { name, type: AT.INTS, ints: v as number[] };
    return { name, type: AT.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) };
  }
  return { name, type: AT.TENSOR, t: tensorProto('', v as ConstData) };
}

/** Attributes whose ONNX type is float even when the value happens to be an integer. */
const FLOAT_ATTRS = new Set(['alpha', 'beta', 'epsilon', 'momentum', 'low', 'high', 'seed', 'gamma', 'cubic_coeff_a', 'extrapolation_value']);

export function toModelProto(graph: Graph, o: SerializeOptions): Uint8Array {
  const nodes = liveNodes(graph, o.outputs);
  const used = new Set<Tensor>(o.outputs);
  for (const n of nodes) for (const i of n.inputs) if (i) used.add(i);

  const inputs: onnxProto.onnx.IValueInfoProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  for (const t of graph.inputs) if (used.has(t)) inputs.push(valueInfo(t));
  for (const p of graph.params) {
    if (!used.has(p)) continue;
    if (o.paramValues) {
      const data = o.paramValues.get(p.name);
      if (!data) throw new Error(`no value for parameter '${p.name}'`);
      initializers.push(tensorProto(p.name, { kind: 'const', dtype: p.dtype, shape: p.shape as number[], data }));
    } else {
      inputs.push(valueInfo(p));
    }
  }
  for (const [t, c] of graph.consts) if (used.has(t)) initializers.push(tensorProto(t.name, c));

  const model: onnxProto.onnx.IModelProto = {
    irVersion: IR_VERSION,
    producerName: 'refseg',
    producerVersion: '0.1.0',
    docString: o.docString ?? '',
    opsetImport: [{ domain: '', version: OPSET }],
    metadataProps: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: graph.name,
      node: nodes.map((n) => ({
        opType: n.op,
        name: `${n.op}_${n.index}`,
        input: n.inputs.map((i) => (i ? i.name : '')),
        output: n.outputs.map((t) => t.name),
        attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
      })),
      initializer: initializers,
      input: inputs,
      output: o.outputs.map(valueInfo),
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

export function dtypeOfOnnx(code: number): DType {
  const e = Object.entries(ONNX_DTYPE).find(([, v]) => v === code);
  if (!e) throw new Error(`unsupported ONNX element type ${code}`);
  return e[0] as DType;
}
