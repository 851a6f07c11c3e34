// Referring-segmentation metrics, spec/data.md §5 (and restr.md §5): per expression I = |pred ∧ gt|,
// U = |pred ∨ gt| at the ORIGINAL image resolution, IoU = I/U (1 when U = 0); over a split
// oIoU = ΣI/ΣU, mIoU = mean IoU, Prec@t = share of expressions with IoU ≥ t, t ∈ {0.5..0.9}.
//
// Breakdowns:
// - by expression length, the paper's Table 2 buckets per dataset (RefCOCOg 1–5/6–7/8–10/11–20;
//   RefCOCO, RefCOCO+ 1–2/3/4–5/6–20; ReferIt 1/2/3–4/5–20). Length is the word count of
//   src/data/tokenizer.ts; an expression longer than 20 words falls in the last bucket (the model
//   reads at most 20 words, so to it that is a 20-word expression) and an empty one in the first.
// - by target area ratio |gt| / (W·H): <1%, 1–5%, 5–20%, ≥20% (lower bound inclusive). COCO's
//   small/medium/large are absolute pixel areas, which mean different things across image sizes and
//   datasets; ratios compare across them, and 1/5/20% split RefCOCO's targets into usable groups.
//
// Sharding: an accumulator's state is its per-expression records (ref_id, sent_id, I, U, words,
// |gt|, W·H) with integer pixel counts. Merging concatenates records, refuses duplicates, and every
// summary is computed over records sorted by (ref_id, sent_id), so ΣI, ΣU are exact integer sums and
// the float mean is summed in one fixed order: merged shards give bit-identical numbers to one run.

import { tokenizeWords } from '../data/tokenizer.js';
import { DATASETS, type DatasetName, type LengthFamily } from '../data/datasets.js';
import { binarize, unletterboxProbability, type LetterboxGeometry } from '../data/image.js';
import type { Mask } from '../data/rle.js';

export const PREC_THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.9] as const;
export const METRICS_FORMAT = 'refseg.metrics/1';

/** Inclusive [lo, hi] ranges; the last one is open-ended (see the file header). */
export interface Bucket {
  label: string;
  lo: number;
  hi: number;
}

export const LENGTH_BUCKETS: Record<LengthFamily, readonly Bucket[]> = {
  refcocog: [
    { label: '1-5', lo: 1, hi: 5 },
    { label: '6-7', lo: 6, hi: 7 },
    { label: '8-10', lo: 8, hi: 10 },
    { label: '11-20', lo: 11, hi: 20 },
  ],
  refcoco: [
    { label: '1-2', lo: 1, hi: 2 },
    { label: '3', lo: 3, hi: 3 },
    { label: '4-5', lo: 4, hi: 5 },
    { label: '6-20', lo: 6, hi: 20 },
  ],
  referit: [
    { label: '1', lo: 1, hi: 1 },
    { label: '2', lo: 2, hi: 2 },
    { label: '3-4', lo: 3, hi: 4 },
    { label: '5-20', lo: 5, hi: 20 },
  ],
};

/** Target area ratio buckets, [lo, hi) as fractions of the image. */
export const AREA_BUCKETS: readonly Bucket[] = [
  { label: '<1%', lo: 0, hi: 0.01 },
  { label: '1-5%', lo: 0.01, hi: 0.05 },
  { label: '5-20%', lo: 0.05, hi: 0.2 },
  { label: '>=20%', lo: 0.2, hi: Infinity },
];

export function lengthBucketsFor(dataset: DatasetName): readonly Bucket[] {
  return LENGTH_BUCKETS[DATASETS[dataset].lengthFamily];
}

/** Index of the length bucket for `words` words (clamped into the first/last bucket). */
export function lengthBucket(buckets: readonly Bucket[], words: number): number {
  const i = buckets.findIndex((b) => words <= b.hi);
  return i < 0 ? buckets.length - 1 : i;
}

export function areaBucket(ratio: number): number {
  const i = AREA_BUCKETS.findIndex((b) => ratio < b.hi);
  return i < 0 ? AREA_BUCKETS.length - 1 : i;
}

export interface IntersectionUnion {
  intersection: number;
  union: number;
  /** |gt| */
  target: number;
}

/** I, U and |gt| of two binary masks of the same size (nonzero = foreground). */
export function intersectionUnion(pred: Uint8Array, gt: Uint8Array): IntersectionUnion {
  if (pred.length !== gt.length)
    throw new Error(`metrics: prediction has ${pred.length} pixels, ground truth ${gt.length}`);
  let i = 0;
  let u = 0;
  let t = 0;
  for (let k = 0; k < pred.length; k++) {
    const p = pred[k] !== 0;
    const g = gt[k] !== 0;
    if (p && g) i++;
    if (p || g) u++;
    if (g) t++;
  }
  return { intersection: i, union: u, target: t };
}

export function iouOf(intersection: number, union: number): number {
  return union === 0 ? 1 : intersection / union;
}

/**
 * Pointing: does the most probable pixel (at the original resolution; the first in raster order on
 * ties) lie on the target? Threshold-free, it measures grounding apart from mask quality and
 * calibration. null when the target is empty (nothing to point at).
 */
export function pointingHit(probability: Float32Array, gt: Uint8Array): boolean | null {
  if (probability.length !== gt.length)
    throw new Error(`pointing: probability has ${probability.length} pixels, ground truth ${gt.length}`);
  let best = 0;
  let any = false;
  for (let i = 0; i < gt.length; i++) {
    if (probability[i]! > probability[best]!) best = i;
    if (gt[i]) any = true;
  }
  return any ? gt[best] !== 0 : null;
}

/** One evaluated expression. */
export interface ExpressionRecord {
  refId: number;
  sentId: number;
  intersection: number;
  union: number;
  /** Word count of the expression (tokenizer.ts), before truncation. */
  words: number;
  /** |gt| and W·H at the original resolution, for the area-ratio breakdown. */
  target: number;
  pixels: number;
  /** pointingHit of the expression; absent when unknown (binary masks only, or an empty target). */
  pointed?: boolean;
}

export interface GroupSummary {
  count: number;
  /** ΣI / ΣU (1 when ΣU = 0, consistent with the per-expression rule). */
  oIoU: number;
  mIoU: number;
  /** Prec@t keyed by the threshold as written: "0.5" … "0.9". */
  precision: Record<string, number>;
  /** Share of the expressions with a known pointing result that hit (null: none known). */
  pointing: number | null;
  intersection: number;
  union: number;
}

export interface BucketSummary extends GroupSummary {
  label: string;
}

export interface MetricSummary extends GroupSummary {
  byLength: BucketSummary[];
  byArea: BucketSummary[];
}

/** Serialized shard: columns of integers, one row per expression. */
export interface MetricsState extends EvalSetting {
  format: typeof METRICS_FORMAT;
  /**
   * [refId, sentId, I, U, words, |gt|, W·H, pointed] per expression, in insertion order; pointed is
   * 1 (hit), 0 (miss) or -1 (unknown), and absent in shards written before it existed.
   */
  records: number[][];
}

function summarize(records: readonly ExpressionRecord[]): GroupSummary {
  let si = 0;
  let su = 0;
  let sum = 0;
  const hits = PREC_THRESHOLDS.map(() => 0);
  let pointedKnown = 0;
  let pointedHits = 0;
  for (const r of records) {
    if (r.pointed !== undefined) {
      pointedKnown++;
      if (r.pointed) pointedHits++;
    }
    si += r.intersection;
    su += r.union;
    const iou = iouOf(r.intersection, r.union);
    sum += iou;
    PREC_THRESHOLDS.forEach((t, k) => {
      if (iou >= t) hits[k]!++;
    });
  }
  const n = records.length;
  const precision: Record<string, number> = {};
  PREC_THRESHOLDS.forEach((t, k) => (precision[String(t)] = n ? hits[k]! / n : 0));
  return {
    count: n,
    oIoU: iouOf(si, su),
    mIoU: n ? sum / n : 0,
    precision,
    pointing: pointedKnown ? pointedHits / pointedKnown : null,
    intersection: si,
    union: su,
  };
}

/** What one evaluation is over; shards merge only when these agree. */
export interface EvalSetting {
  dataset: DatasetName;
  split: string;
  /** Binarization threshold on the probability (prediction is probability ≥ threshold). */
  threshold: number;
}

const key = (r: ExpressionRecord): string => `${r.refId}/${r.sentId}`;

export class MetricAccumulator {
  private readonly records: ExpressionRecord[] = [];
  private readonly seen = new Set<string>();

  readonly dataset: DatasetName;
  readonly split: string;
  readonly threshold: number;

  constructor(setting: EvalSetting) {
    if (!(setting.dataset in DATASETS)) throw new Error(`metrics: unknown dataset ${setting.dataset}`);
    if (!(setting.threshold >= 0 && setting.threshold <= 1))
      throw new Error(`metrics: threshold must be in [0, 1], got ${setting.threshold}`);
    this.dataset = setting.dataset;
    this.split = setting.split;
    this.threshold = setting.threshold;
  }

  get setting(): EvalSetting {
    return { dataset: this.dataset, split: this.split, threshold: this.threshold };
  }

  /** Adds one expression's counts. (ref_id, sent_id) must be new: shards must not overlap. */
  add(r: ExpressionRecord): void {
    for (const f of ['refId', 'sentId', 'intersection', 'union', 'words', 'target', 'pixels'] as const) {
      if (!Number.isSafeInteger(r[f]) || r[f] < 0)
        throw new Error(`metrics: ${f} must be a non-negative integer, got ${r[f]}`);
    }
    if (r.intersection > r.target || r.target > r.union || r.union > r.pixels) {
      throw new Error(
        `metrics: inconsistent counts for ref ${r.refId} sent ${r.sentId} (I=${r.intersection} U=${r.union} |gt|=${r.target} W·H=${r.pixels})`,
      );
    }
    const k = key(r);
    if (this.seen.has(k)) throw new Error(`metrics: ref ${r.refId} sent ${r.sentId} counted twice`);
    this.seen.add(k);
    if (r.pointed !== undefined && typeof r.pointed !== 'boolean')
      throw new Error(`metrics: pointed must be a boolean, got ${String(r.pointed)}`);
    this.records.push({ ...r });
  }

  /**
   * Scores a probability map at S×S: maps it back to the original image (restr.md §5), binarizes at
   * this accumulator's threshold, adds the expression; returns its IoU.
   */
  addProbability(
    ids: { refId: number; sentId: number; sentence: string },
    prob: Float32Array,
    box: LetterboxGeometry,
    gt: Mask,
  ): number {
    const probability = unletterboxProbability(prob, box, gt.width, gt.height);
    const pred = binarize(probability, this.threshold);
    return this.addMasks(ids, pred, gt.data, pointingHit(probability, gt.data));
  }

  /**
   * Scores binary masks (original resolution) and adds the result; returns the expression's IoU.
   * `pointed` is the pointingHit when a probability map was scored (null/absent: unknown).
   */
  addMasks(
    ids: { refId: number; sentId: number; sentence: string },
    pred: Uint8Array,
    gt: Uint8Array,
    pointed: boolean | null = null,
  ): number {
    const { intersection, union, target } = intersectionUnion(pred, gt);
    const words = tokenizeWords(ids.sentence).length;
    this.add({
      refId: ids.refId,
      sentId: ids.sentId,
      intersection,
      union,
      words,
      target,
      pixels: gt.length,
      ...(pointed === null ? {} : { pointed }),
    });
    return iouOf(intersection, union);
  }

  get size(): number {
    return this.records.length;
  }

  /** Records sorted by (ref_id, sent_id): the one order every summary is computed in. */
  sorted(): ExpressionRecord[] {
    return [...this.records].sort((a, b) => a.refId - b.refId || a.sentId - b.sentId);
  }

  /** Per-expression IoUs in (ref_id, sent_id) order. */
  ious(): { refId: number; sentId: number; iou: number }[] {
    return this.sorted().map((r) => ({
      refId: r.refId,
      sentId: r.sentId,
      iou: iouOf(r.intersection, r.union),
    }));
  }

  summary(): MetricSummary {
    const all = this.sorted();
    const lb = lengthBucketsFor(this.dataset);
    const byLen = lb.map(() => [] as ExpressionRecord[]);
    const byArea = AREA_BUCKETS.map(() => [] as ExpressionRecord[]);
    for (const r of all) {
      byLen[lengthBucket(lb, r.words)]!.push(r);
      byArea[areaBucket(r.pixels ? r.target / r.pixels : 0)]!.push(r);
    }
    return {
      ...summarize(all),
      byLength: lb.map((b, i) => ({ label: b.label, ...summarize(byLen[i]!) })),
      byArea: AREA_BUCKETS.map((b, i) => ({ label: b.label, ...summarize(byArea[i]!) })),
    };
  }

  toJSON(): MetricsState {
    return {
      format: METRICS_FORMAT,
      ...this.setting,
      records: this.records.map((r) => [
        r.refId,
        r.sentId,
        r.intersection,
        r.union,
        r.words,
        r.target,
        r.pixels,
        r.pointed === undefined ? -1 : r.pointed ? 1 : 0,
      ]),
    };
  }

  static fromJSON(json: unknown): MetricAccumulator {
    const s = json as Partial<MetricsState> | null;
    if (!s || s.format !== METRICS_FORMAT)
      throw new Error(`metrics state: format must be "${METRICS_FORMAT}"`);
    if (typeof s.dataset !== 'string' || typeof s.split !== 'string' || typeof s.threshold !== 'number') {
      throw new Error('metrics state: "dataset", "split" and "threshold" are required');
    }
    if (!Array.isArray(s.records)) throw new Error('metrics state: "records" must be an array');
    const acc = new MetricAccumulator({ dataset: s.dataset, split: s.split, threshold: s.threshold });
    s.records.forEach((row, i) => {
      if (!Array.isArray(row) || (row.length !== 7 && row.length !== 8))
        throw new Error(`metrics state: record ${i} must have 8 numbers (7 before pointing was recorded)`);
      const [refId, sentId, intersection, union, words, target, pixels, pointed = -1] = row as number[];
      if (pointed !== -1 && pointed !== 0 && pointed !== 1)
        throw new Error(`metrics state: record ${i}: pointed must be 1, 0 or -1, got ${pointed}`);
      acc.add({
        refId: refId!,
        sentId: sentId!,
        intersection: intersection!,
        union: union!,
        words: words!,
        target: target!,
        pixels: pixels!,
        ...(pointed === -1 ? {} : { pointed: pointed === 1 }),
      });
    });
    return acc;
  }

  /** Exact merge of shards of one evaluation (same setting; no expression in two shards). */
  static merge(shards: readonly (MetricAccumulator | MetricsState)[]): MetricAccumulator {
    const accs = shards.map((s) => (s instanceof MetricAccumulator ? s : MetricAccumulator.fromJSON(s)));
    if (accs.length === 0) throw new Error('metrics: nothing to merge');
    const out = new MetricAccumulator(accs[0]!.setting);
    for (const a of accs) {
      if (a.dataset !== out.dataset || a.split !== out.split || a.threshold !== out.threshold) {
        throw new Error(
          `metrics: cannot merge ${JSON.stringify(a.setting)} into ${JSON.stringify(out.setting)}`,
        );
      }
      for (const r of a.records) out.add(r);
    }
    return out;
  }
}
