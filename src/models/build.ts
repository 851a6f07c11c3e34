// Building a model's graphs from its `ModelDef` (model-agnostic): the inference graph (inputs
// `image`, token ids; outputs `mask_logits` and the model's extra outputs), the image and text
// halves of a split model, the parameter list a config implies, and timm-style random init.

import { type Dim, Graph, type Tensor } from '../graph/graph.js';
import { initParams, sincos2d } from '../nn/init.js';
import { type ParamSpec, type Registry, Scope } from '../nn/params.js';
import { Rng } from '../data/random.js';
import { type ForwardResult, type ModelDef, standardInputs } from './model.js';

export interface BuiltGraph {
  graph: Graph;
  registry: Registry;
  inputs: Tensor[];
  /** `mask_logits` first, then the extra outputs by name (ReSTR: `patch_logits`). */
  outputs: Tensor[];
}

function namedOutputs(g: Graph, out: ForwardResult): Tensor[] {
  return [
    g.named(out.maskLogits, 'mask_logits'),
    ...Object.entries(out.extra).map(([k, t]) => g.named(t, k)),
  ];
}

/** The inference graph for batch `batch` ('B' = symbolic, any batch at run time). */
export function buildInference<C>(def: ModelDef<C>, c: C, batch: Dim = 'B'): BuiltGraph {
  const g = new Graph(def.kind);
  const s = Scope.root(g);
  const x = standardInputs(def, c, g, batch);
  const outputs = namedOutputs(g, def.forward(s, c, x));
  return { graph: g, registry: s.registry, inputs: [x.image, x.tokens], outputs };
}

function splitOf<C>(def: ModelDef<C>) {
  if (!def.split) throw new Error(`model '${def.kind}' cannot be split into image and text parts`);
  return def.split;
}

/** Image half: `image` → the image features (ReSTR: `v`), which depend on the image only. */
export function buildImagePart<C>(def: ModelDef<C>, c: C, batch: Dim = 'B'): BuiltGraph {
  const split = splitOf(def);
  const g = new Graph(`${def.kind}.image`);
  const s = Scope.root(g);
  const S = def.imageSize(c);
  const image = g.input('image', 'float32', [batch, 3, S, S]);
  const feats = split.encodeImage(s, c, image);
  const outputs = Object.keys(split.features(c, batch)).map((k) => {
    const t = feats[k];
    if (!t) throw new Error(`model '${def.kind}': encodeImage did not return feature '${k}'`);
    return g.named(t, k);
  });
  return { graph: g, registry: s.registry, inputs: [image], outputs };
}

/** Text half: image features + token ids → `mask_logits` and the extra outputs. */
export function buildTextPart<C>(def: ModelDef<C>, c: C, batch: Dim = 'B'): BuiltGraph {
  const split = splitOf(def);
  const g = new Graph(`${def.kind}.text`);
  const s = Scope.root(g);
  const feats: Record<string, Tensor> = {};
  for (const [k, f] of Object.entries(split.features(c, batch))) feats[k] = g.input(k, f.dtype, f.shape);
  const tokens = g.input(def.tokenInput, 'int64', [batch, def.maxTokens(c)]);
  const outputs = namedOutputs(g, split.fromFeatures(s, c, feats, tokens));
  return { graph: g, registry: s.registry, inputs: [...Object.values(feats), tokens], outputs };
}

/** Every parameter the config implies, in registration order (traced at batch 1, nothing runs). */
export function parameterSpecs<C>(def: ModelDef<C>, c: C): ParamSpec[] {
  return [...buildInference(def, c, 1).registry.specs.values()];
}

/**
 * Random initial parameters as timm initializes them (trunc normal 0.02 weights, zero biases,
 * unit LayerNorm scales); the same config and seed give the same values on every machine.
 */
export function initModel<C>(
  def: ModelDef<C>,
  c: C,
  seed: number,
  o: InitOptions = {},
): Map<string, Float32Array> {
  const rng = Rng.from('init', def.kind, seed);
  const params = initParams(parameterSpecs(def, c), () => rng.next()); // buffers too (their init is their start value)
  if (o.posInit === 'sincos') {
    const t = def.patchPositionTable?.(c);
    if (!t)
      throw new Error(
        `--pos-init sincos: model '${def.kind}' has no learned patch position table of its own`,
      );
    params.set(t.name, sincos2d(t.grid, t.dim)); // drawn above all the same: other parameters are unchanged
  }
  return params;
}

export const POS_INITS = ['trunc_normal', 'sincos'] as const;
export type PosInit = (typeof POS_INITS)[number];

export interface InitOptions {
  /**
   * The patch position table: 'trunc_normal' (timm, default) or 'sincos' (a fixed 2-D sine-cosine
   * table, still trained; nn/init.ts sincos2d). ReSTR only.
   */
  posInit?: PosInit;
}
