// The inference runner every consumer shares (eval, validation during training, segment, serve):
// a model's inference graph with its parameters as initializers, one ONNX Runtime session, and
// batched runs over letterboxed images and token ids.

import type { Dim } from '../graph/graph.js';
import { toModelProto } from '../graph/onnx.js';
import { buildInference } from '../models/build.js';
import type { AnyModelDef } from '../models/model.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';

export interface Prediction {
  /** [B, 1, S, S] logits. */
  maskLogits: Float32Array;
  /** Extra outputs by name (ReSTR: patch_logits [B, Nv]). */
  extra: Record<string, HostTensor>;
}

/** Serializes a model's inference graph (symbolic batch 'B' unless given) with its weights inside. */
export function inferenceModelBytes(
  def: AnyModelDef,
  config: unknown,
  params: ReadonlyMap<string, Float32Array>,
  o: { batch?: Dim; metadata?: Record<string, string> } = {},
): { bytes: Uint8Array; outputNames: string[] } {
  const built = buildInference(def, config, o.batch ?? 'B');
  const bytes = toModelProto(built.graph, { outputs: built.outputs, paramValues: params, ...(o.metadata ? { metadata: o.metadata } : {}) });
  return { bytes, outputNames: built.outputs.map((t) => t.name) };
}

export class Predictor {
  private constructor(
    readonly def: AnyModelDef,
    readonly config: unknown,
    private readonly session: Session,
    private readonly outputNames: string[],
  ) {}

  static async create(def: AnyModelDef, config: unknown, params: ReadonlyMap<string, Float32Array>, o: SessionOptions = {}): Promise<Predictor> {
    const { bytes, outputNames } = inferenceModelBytes(def, config, params);
    return new Predictor(def, config, await Session.create(bytes, o), outputNames);
  }

  get imageSize(): number {
    return this.def.imageSize(this.config);
  }
  get maxTokens(): number {
    return this.def.maxTokens(this.config);
  }
  /** The graph's output names: `mask_logits`, then the model's extras (ReSTR: `patch_logits`). */
  get outputs(): readonly string[] {
    return this.outputNames;
  }

  /** Runs a batch: `images` [B,3,S,S] normalized, `tokens` [B,L] (0 = padding). */
  async predict(images: Float32Array, tokens: BigInt64Array, batch: number): Promise<Prediction> {
    const S = this.imageSize;
    const L = this.maxTokens;
    if (images.length !== batch * 3 * S * S) throw new Error(`predict: images hold ${images.length} values, expected ${batch}×3×${S}×${S}`);
    if (tokens.length !== batch * L) throw new Error(`predict: tokens hold ${tokens.length} ids, expected ${batch}×${L}`);
    const out = await this.session.run({
      image: { dtype: 'float32', shape: [batch, 3, S, S], data: images },
      [this.def.tokenInput]: { dtype: 'int64', shape: [batch, L], data: tokens },
    });
    const extra: Record<string, HostTensor> = {};
    for (const n of this.outputNames) if (n !== 'mask_logits') extra[n] = out[n]!;
    return { maskLogits: out.mask_logits!.data as Float32Array, extra };
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
