// The one model interface. Every pipeline (inspect, init, export, train, eval, segment) talks to a
// `ModelDef`, so ReSTR and Shared-RIS share all of them: a model says how to build its graph from
// its config, what its inputs and outputs are, its loss, its parts, and how to read its text.

import type { DType, Dim, Graph, Tensor } from '../graph/graph.js';
import type { Registry, Scope } from '../nn/params.js';

/** Inputs every model's forward takes: a letterboxed normalized image and token ids (`TextFraming`). */
export interface ModelInputs {
  image: Tensor; // float32 [B, 3, S, S]
  tokens: Tensor; // int64 [B, L]
}

/** Training-only inputs: targets and host-fed stochastic-depth scales. */
export interface TrainInputs {
  mask: Tensor; // float32 [B, 1, S, S] ground truth
  /** Model-specific extra targets (e.g. ReSTR's patch labels [B, Nv]). */
  extra: Record<string, Tensor>;
  /** Stochastic depth scales by block name ([B,1,1] each), absent at inference. */
  dropPath?: ReadonlyMap<string, { attn: Tensor; mlp: Tensor }>;
}

export interface ForwardResult {
  /** [B, 1, S, S] mask logits at input resolution. */
  maskLogits: Tensor;
  /** Optional extra named outputs (ReSTR: patch_logits [B, Nv]). */
  extra: Record<string, Tensor>;
  /** Buffers updated in training (BatchNorm running stats): name → new value. */
  bufferUpdates?: Map<string, Tensor>;
}

export interface PartCost {
  name: string;
  params: number;
  macs: number;
}

/** A part reported by `inspect`: parameters by name prefix, MACs by graph scope (`graph.scope`). */
export interface PartDef {
  name: string;
  paramPrefix: string[];
  scope: string[];
  /** A breakdown inside an earlier part (shown, not summed into the total). */
  sub?: boolean;
}

/** A number the paper reports, shown beside ours by `inspect` (row = a part name or 'total'). */
export interface PaperNumber {
  row: string;
  params?: number;
  /** The 'total' params count the word-embedding table (Shared-RIS, Table VI); default: without it (ReSTR). */
  withWordTable?: boolean;
  /** MACs at `imageSize`. */
  macs?: number;
  imageSize?: number;
  source: string;
  /**
   * MACs our graph does not spend against the paper's way of computing the same values (an
   * equal-valued reordering); the report compares both ways.
   */
  reordered?: { macs: number; what: string };
}

/**
 * The model cut in two where the image no longer depends on the text: `encodeImage` runs once per
 * image, `fromFeatures` once per expression (design.md §3.8). Optional: a single-encoder model
 * (Shared-RIS) mixes image and text from the first layer and cannot be cut.
 */
export interface SplitDef<C> {
  /** The features `encodeImage` returns, by graph-input name, for batch `batch`. */
  features(c: C, batch: Dim): Record<string, { dtype: DType; shape: Dim[] }>;
  encodeImage(s: Scope, c: C, image: Tensor, train?: TrainInputs): Record<string, Tensor>;
  fromFeatures(
    s: Scope,
    c: C,
    features: Record<string, Tensor>,
    tokens: Tensor,
    train?: TrainInputs,
  ): ForwardResult;
}

/**
 * How a model lays out its token ids (src/data/text.ts builds and reads the vocabularies):
 * - 'words': word ids from 2, `<unk>` = 1, right-padded with 0, no framing (ReSTR, spec/restr.md §5);
 * - 'beit3': BEiT-3's fairseq dictionary, `[CLS]` = 0, `<pad>` = 1, `[EOT]` = 2, `<unk>` = 3,
 *   a sentence framed `[CLS] tokens [EOT]` and right-padded with 1 (Shared-RIS, spec/shared-ris.md §1).
 */
export type TextFraming = 'words' | 'beit3';

export interface ModelDef<C> {
  /** `model` field of the config and checkpoint format id (`refseg.restr/1`). */
  readonly kind: string;
  readonly format: string;
  /** Name of the token-id graph input in exported models (ReSTR `words`, Shared-RIS `text`). */
  readonly tokenInput: string;
  /** The token-id layout the model reads (default 'words'). */
  readonly textFraming?: TextFraming;
  /** Validates and completes a config (errors name the field). */
  validate(raw: unknown): C;
  imageSize(c: C): number;
  maxTokens(c: C): number;
  /** Probability threshold for binarization (ReSTR 0.5, Shared-RIS 0.35). */
  threshold(c: C): number;
  /** Pixel normalization applied after letterboxing. */
  normalization(c: C): { mean: readonly number[]; std: readonly number[] };
  /** Builds the forward; `train` adds drop path / batch statistics. */
  forward(s: Scope, c: C, x: ModelInputs, train?: TrainInputs): ForwardResult;
  /** The scalar loss (training graph). */
  loss(c: C, out: ForwardResult, t: TrainInputs): Tensor;
  /** Extra training targets: name → dtype and shape for batch B. */
  trainTargets(c: C, batch: number): Record<string, { dtype: DType; shape: number[] }>;
  /** One sample's extra targets from its letterboxed S×S ground-truth mask (0/1 floats). */
  makeTargets(c: C, mask: Float32Array): Record<string, Float32Array>;
  /** Block names that get a stochastic-depth scale and their drop rates. */
  dropPathBlocks(c: C): { name: string; rate: number }[];
  /** Name prefixes of the parts reported by `inspect` (MACs by graph scope, params by name). */
  parts(c: C): PartDef[];
  /** Dotted config paths that model-agnostic commands set (`inspect --image-size`, `init --vocab-size`). */
  readonly configPaths: { imageSize: string; vocabSize: string };
  /** Parameters that form the word-embedding table (reported with and without it). */
  wordEmbeddingParams(c: C): string[];
  /** The learned position table of the patch grid, for `--pos-init sincos` (absent: not offered). */
  patchPositionTable?(c: C): { name: string; grid: number; dim: number };
  /** The paper's numbers for this config, when it is a paper configuration. */
  paperNumbers?(c: C): PaperNumber[];
  /** Image/text split for export and one-image-many-expressions inference. */
  readonly split?: SplitDef<C>;
}

export type AnyModelDef = ModelDef<unknown>;

/** Helper for builders: a fresh graph with the model's standard inputs. */
export function standardInputs<C>(def: ModelDef<C>, c: C, g: Graph, batch: number | string): ModelInputs {
  const s = def.imageSize(c);
  return {
    image: g.input('image', 'float32', [batch, 3, s, s]),
    tokens: g.input(def.tokenInput, 'int64', [batch, def.maxTokens(c)]),
  };
}

export type { Registry };
