// Evaluation of a model over referring expressions, per spec/restr.md §5 and spec/data.md §5: each
// image is letterboxed to the model's S×S with the model's normalization, expressions run in
// batches, sigmoid(mask logits) is mapped back to the ORIGINAL image (crop the letterbox, bilinear
// resize) and binarized at probability ≥ threshold, then compared with the ground truth at that
// resolution. `refseg eval` and the training loop's periodic validation both call `evaluate`.
//
// Samples are grouped by image so that an image shared by several expressions (RefCOCO: ~7 per
// image) is decoded and letterboxed once; a group's letterboxed tensor lives only until its last
// expression has run, so memory stays at about one batch of images whatever the split size.
// Each expression's record depends only on its own image, mask and sentence, not on the order of
// the samples or on which others share its batch (the metrics are order-free too); the one caveat
// is the engine's float arithmetic across batch shapes, which on ONNX Runtime CPU gives
// bit-identical records at batch 1, 3 and 4 (test/eval/evaluate.test.ts), so shards merge exactly.

import { readSampleImage, sampleMask, type CorruptBudget, type ReferSample } from '../data/refer.js';
import type { DatasetName } from '../data/datasets.js';
import { letterbox, binarize, type Letterboxed, type Normalization, type RgbImage } from '../data/image.js';
import type { Mask } from '../data/rle.js';
import type { TextEncoder } from '../data/text.js';
import { tokenizeWords } from '../data/tokenizer.js';
import { probabilityFromLogits } from '../infer/postprocess.js';
import type { Predictor } from '../infer/predictor.js';
import { Progress, type ProgressOptions } from '../util/progress.js';
import { MetricAccumulator, intersectionUnion, iouOf, pointingHit } from './metrics.js';

/** What `evaluate` needs of a Predictor (a Predictor is one; tests pass hand-made ones). */
export type EvalPredictor = Pick<Predictor, 'def' | 'config' | 'imageSize' | 'maxTokens' | 'predict'>;

export interface PredictionRecord {
  iou: number;
  intersection: number;
  union: number;
}

export interface EvaluateOptions {
  predictor: EvalPredictor;
  encoder: TextEncoder;
  samples: readonly ReferSample[];
  dataset: DatasetName;
  split: string;
  /** Prediction = probability ≥ threshold (ReSTR 0.5: the model's `def.threshold(config)`). */
  threshold: number;
  /** Expressions per run (default 8). */
  batchSize?: number;
  /** A progress bar on stderr (true) or with these options; default none. */
  progress?: boolean | (ProgressOptions & { label?: string });
  /**
   * Called once per expression with the probability and the binary prediction at the original
   * resolution ([height, width] row-major). Awaited: a slow consumer slows the evaluation down
   * rather than piling up predictions in memory.
   */
  onPrediction?: (
    sample: ReferSample,
    probability: Float32Array,
    predMask: Uint8Array,
    record: PredictionRecord,
  ) => void | Promise<void>;
  /** Checked between batches; an abort rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * When given, a sample whose image or mask fails to decode is skipped and counted here
   * (reliability.md: never silently; the budget throws past its limit). Without it, such a
   * failure is an error naming the file.
   */
  budget?: CorruptBudget;
  /** How images are read (default: readSampleImage, which also checks the size against instances.json). */
  readImage?: (sample: ReferSample) => Promise<RgbImage>;
}

interface Pending {
  sample: ReferSample;
  image: Letterboxed;
  gt: Mask;
}

/** The model's normalization as the letterbox wants it (three channels). */
function toNormalization(n: { mean: readonly number[]; std: readonly number[] }): Normalization {
  if (n.mean.length !== 3 || n.std.length !== 3)
    throw new Error(
      `evaluate: normalization needs 3 means and 3 stds, got ${n.mean.length} and ${n.std.length}`,
    );
  return { mean: [n.mean[0]!, n.mean[1]!, n.mean[2]!], std: [n.std[0]!, n.std[1]!, n.std[2]!] };
}

/**
 * Samples grouped by image (`imageId` and file; batching.ts groups training samples by file alone),
 * groups in order of first appearance, samples in given order: the order
 * `evaluate` runs them in (its `predict` calls see the flattened groups, batch by batch).
 */
export function evaluationGroups(samples: readonly ReferSample[]): ReferSample[][] {
  const groups = new Map<string, ReferSample[]>();
  for (const s of samples) {
    const k = `${s.imageId}\0${s.file}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(s);
  }
  return [...groups.values()];
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('evaluation aborted');
}

/** Evaluates `samples` and returns the accumulated per-expression records (metrics.ts). */
export async function evaluate(o: EvaluateOptions): Promise<MetricAccumulator> {
  const { predictor, encoder, signal } = o;
  const acc = new MetricAccumulator({ dataset: o.dataset, split: o.split, threshold: o.threshold });
  const batchSize = o.batchSize ?? 8;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new Error(`evaluate: batchSize must be a positive integer, got ${batchSize}`);
  const S = predictor.imageSize;
  const L = predictor.maxTokens;
  if (encoder.length !== L)
    throw new Error(`evaluate: the text encoder pads to ${encoder.length} tokens, the model reads ${L}`);
  const norm = toNormalization(predictor.def.normalization(predictor.config));
  const readImage = o.readImage ?? ((s: ReferSample) => readSampleImage(s));
  const plane = 3 * S * S;

  let progress: Progress | undefined;
  if (o.progress) {
    const { label, ...opts } = o.progress === true ? { label: undefined } : o.progress;
    progress = new Progress(label ?? `eval ${o.dataset} ${o.split}`, o.samples.length, {
      unit: 'expressions',
      ...opts,
    });
  }

  // One input buffer reused across full batches (ORT only reads it during the run).
  const fullImages = new Float32Array(batchSize * plane);
  const fullTokens = new BigInt64Array(batchSize * L);
  let pending: Pending[] = [];

  const flush = async (): Promise<void> => {
    const batch = pending;
    pending = [];
    const n = batch.length;
    if (n === 0) return;
    throwIfAborted(signal);
    const images = n === batchSize ? fullImages : new Float32Array(n * plane);
    const tokens = n === batchSize ? fullTokens : new BigInt64Array(n * L);
    batch.forEach((p, k) => {
      images.set(p.image.tensor, k * plane);
      tokens.set(encoder.encode(p.sample.sentence), k * L);
    });
    const { maskLogits } = await predictor.predict(images, tokens, n);
    if (maskLogits.length !== n * S * S)
      throw new Error(
        `evaluate: the model returned ${maskLogits.length} mask logits, expected ${n}×1×${S}×${S}`,
      );
    for (let k = 0; k < n; k++) {
      const { sample, image, gt } = batch[k]!;
      const probability = probabilityFromLogits(
        maskLogits.subarray(k * S * S, (k + 1) * S * S),
        image,
        gt.width,
        gt.height,
      );
      const pred = binarize(probability, o.threshold);
      const { intersection, union, target } = intersectionUnion(pred, gt.data);
      const pointed = pointingHit(probability, gt.data);
      acc.add({
        refId: sample.refId,
        sentId: sample.sentId,
        intersection,
        union,
        words: tokenizeWords(sample.sentence).length,
        target,
        pixels: gt.data.length,
        ...(pointed === null ? {} : { pointed }),
      });
      await o.onPrediction?.(sample, probability, pred, {
        iou: iouOf(intersection, union),
        intersection,
        union,
      });
    }
    progress?.tick(n);
  };

  try {
    for (const group of evaluationGroups(o.samples)) {
      throwIfAborted(signal);
      const first = group[0]!;
      let image: Letterboxed;
      try {
        const rgb = await readImage(first);
        // The mask has instances.json's size; an image of another size would misplace the letterbox.
        if (rgb.width !== first.width || rgb.height !== first.height)
          throw new Error(
            `${first.file}: image is ${rgb.width}×${rgb.height}, instances.json gives ${first.width}×${first.height}`,
          );
        image = letterbox(rgb, S, norm);
      } catch (e) {
        if (!o.budget) throw e;
        o.budget.skip(first.file, (e as Error).message, group.length);
        progress?.tick(group.length);
        continue;
      }
      const masks = new Map<number, Mask>(); // one decode per annotation of this image
      for (const sample of group) {
        let gt = masks.get(sample.annId);
        if (!gt) {
          try {
            gt = sampleMask(sample);
          } catch (e) {
            if (!o.budget) throw e;
            o.budget.skip(`ref_id ${sample.refId} sent_id ${sample.sentId}`, (e as Error).message);
            progress?.tick();
            continue;
          }
          masks.set(sample.annId, gt);
        }
        pending.push({ sample, image, gt });
        if (pending.length === batchSize) await flush();
      }
    }
    await flush();
  } catch (e) {
    progress?.stop();
    throw e;
  }
  progress?.finish();
  return acc;
}
