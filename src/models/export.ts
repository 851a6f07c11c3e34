// ONNX export of a model's inference graph (model-agnostic): symbolic batch 'B', parameters as
// initializers, config / format / vocabulary in metadata_props.
//   full:   image float32 [B,3,S,S] + token ids int64 [B,L] → mask_logits [B,1,S,S] (+ extras)
//   split:  also <out>.image.onnx (image → image features, e.g. ReSTR's v [B,Nv,D]) and
//           <out>.text.onnx (features + token ids → the same outputs as full), so one image is
//           encoded once and serves many expressions (design.md §3.8).

import type { TensorData } from '../graph/graph.js';
import { toModelProto } from '../graph/onnx.js';
import { type BuiltGraph, buildImagePart, buildInference, buildTextPart } from './build.js';
import type { ModelDef } from './model.js';

export type ExportParts = 'full' | 'split';

export interface ExportOptions {
  parts?: ExportParts;
  vocab?: unknown;
}

export interface ExportedModels {
  full: Uint8Array;
  image?: Uint8Array;
  text?: Uint8Array;
}

/** Where the split parts go: `model.onnx` → `model.image.onnx`, `model.text.onnx`. */
export function splitPaths(out: string): { image: string; text: string } {
  const base = out.endsWith('.onnx') ? out.slice(0, -'.onnx'.length) : out;
  return { image: `${base}.image.onnx`, text: `${base}.text.onnx` };
}

function serialize<C>(
  def: ModelDef<C>,
  c: C,
  built: BuiltGraph,
  params: ReadonlyMap<string, TensorData>,
  part: string,
  o: ExportOptions,
): Uint8Array {
  for (const name of built.registry.specs.keys()) {
    if (!params.has(name)) throw new Error(`export: no value for parameter '${name}'`);
  }
  const metadata: Record<string, string> = {
    format: def.format,
    model: def.kind,
    part,
    config: JSON.stringify(c),
    inputs: JSON.stringify(built.inputs.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }))),
    outputs: JSON.stringify(built.outputs.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }))),
  };
  if (o.vocab !== undefined) metadata.vocab = JSON.stringify(o.vocab);
  return toModelProto(built.graph, {
    outputs: built.outputs,
    paramValues: params,
    metadata,
    docString: `refseg ${def.kind} (${part})`,
  });
}

/** Serializes the inference graph(s) with `params` as initializers. */
export function exportModel<C>(
  def: ModelDef<C>,
  c: C,
  params: ReadonlyMap<string, TensorData>,
  o: ExportOptions = {},
): ExportedModels {
  const full = serialize(def, c, buildInference(def, c, 'B'), params, 'full', o);
  if ((o.parts ?? 'full') === 'full') return { full };
  return {
    full,
    image: serialize(def, c, buildImagePart(def, c, 'B'), params, 'image', o),
    text: serialize(def, c, buildTextPart(def, c, 'B'), params, 'text', o),
  };
}
